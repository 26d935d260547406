"""FAQ matching quality and speed: top-1 accuracy on the labelled questions, the share of
uncovered questions handed to a manager, and the time per match.

    python bench/faq.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.config import DEFAULT_FAQ_FILE  # noqa: E402
from bot.faq.rules import FaqMatcher, Verdict, load_faq  # noqa: E402

SETS = {
    "evaluation set (tuned on)": Path("tests/faq_eval.yaml"),
    "held-out set (never tuned on)": Path("tests/faq_holdout.yaml"),
}


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    matcher = FaqMatcher(load_faq(DEFAULT_FAQ_FILE))
    for label, relative in SETS.items():
        data = yaml.safe_load((root / relative).read_text(encoding="utf-8"))
        covered, uncovered = data["covered"], data["uncovered"]
        top1 = answered = choice = 0
        for item in covered:
            match = matcher.match(item["text"], item["lang"])
            top1 += match.verdict != Verdict.NONE and match.best == item["entry"]
            answered += match.verdict == Verdict.ANSWER and match.best == item["entry"]
            choice += match.verdict == Verdict.CHOICE and item["entry"] in [e for e, _ in match.ranked]
        handed = sum(matcher.match(i["text"], i["lang"]).verdict == Verdict.NONE for i in uncovered)
        questions = [(i["text"], i["lang"]) for i in covered + uncovered]
        rounds = 20
        start = time.perf_counter()
        for _ in range(rounds):
            for text, language in questions:
                matcher.match(text, language)
        per_match = (time.perf_counter() - start) / (rounds * len(questions)) * 1000
        print(f"{label}: {len(covered)} covered, {len(uncovered)} uncovered questions")
        print(f"  top-1 accuracy:              {top1 / len(covered):.1%}")
        print(f"    answered outright, right:  {answered / len(covered):.1%}")
        print(f"    offered among choices:     {choice / len(covered):.1%}")
        print(f"  uncovered handed on:         {handed / len(uncovered):.1%}")
        print(f"  time per match:              {per_match:.2f} ms")


if __name__ == "__main__":
    main()
