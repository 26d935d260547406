"""Plain-words intent recognition quality and speed: accuracy per language and overall on the
labelled phrases, how many FAQ-style questions (`none`) an intent wrongly captured, and the time
per recognise call.

    python bench/intents.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.faq.intents import recognise  # noqa: E402

SETS = {
    "evaluation set (tuned on)": Path("tests/intents_eval.yaml"),
    "held-out set (never tuned on)": Path("tests/intents_holdout.yaml"),
}
LANGUAGES = ("ru", "pl", "en")


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    everything: list[tuple[str, str]] = []
    for label, relative in SETS.items():
        phrases = yaml.safe_load((root / relative).read_text(encoding="utf-8"))["phrases"]
        print(f"{label}: {len(phrases)} phrases")
        for language in (*LANGUAGES, "all"):
            items = [p for p in phrases if language in ("all", p["lang"])]
            got = []
            for item in items:
                found = recognise(item["text"], item["lang"])
                got.append(found.value if found is not None else "none")
            right = sum(g == item["intent"] for g, item in zip(got, items, strict=True))
            questions = sum(item["intent"] == "none" for item in items)
            captured = sum(g != "none" and item["intent"] == "none" for g, item in zip(got, items, strict=True))
            print(
                f"  {language:>3}: {right / len(items):6.1%} right ({right}/{len(items)}), "
                f"{captured} of {questions} FAQ questions captured"
            )
        everything += [(p["text"], p["lang"]) for p in phrases]
    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        for text, language in everything:
            recognise(text, language)
    per_call = (time.perf_counter() - start) / (rounds * len(everything)) * 1_000_000
    print(f"time per recognise call:     {per_call:.0f} µs ({len(everything)} phrases × {rounds})")


if __name__ == "__main__":
    main()
