"""The benchmark scripts still load against the code as it is (they are run by hand, not by the
suite, so a moved module would otherwise break them unnoticed)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

BENCH = sorted((Path(__file__).resolve().parent.parent / "bench").glob("*.py"))


@pytest.mark.parametrize("script", BENCH, ids=lambda p: p.name)
def test_a_benchmark_script_loads(script: Path) -> None:
    names = runpy.run_path(str(script), run_name="loaded_by_the_tests")  # its main() does not run
    assert callable(names.get("main")), f"{script.name} has no main()"
