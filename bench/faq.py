"""FAQ matching quality and speed, overall and per language: top-1 accuracy on the labelled
questions, the share of uncovered questions handed to a person, and the time per match.

    python bench/faq.py

The FAQ is the example file as the example business offers it (`Business.offers`: an entry about
something the business file turns off is left out, as in the bot).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.business import load_business  # noqa: E402
from bot.core.config import DEFAULT_BUSINESS_FILE, DEFAULT_FAQ_FILE  # noqa: E402
from bot.faq.rules import LANGUAGES, FaqMatcher, Verdict, load_faq  # noqa: E402

SETS = {
    "evaluation set (tuned on)": Path("tests/faq_eval.yaml"),
    "held-out set (never tuned on)": Path("tests/faq_holdout.yaml"),
    "fresh held-out set (written blind to the matcher)": Path("tests/faq_fresh.yaml"),
}


def share(hits: int, total: int) -> str:
    return f"{hits / total:6.1%} ({hits}/{total})" if total else "     —"


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    business = load_business(DEFAULT_BUSINESS_FILE)
    matcher = FaqMatcher(load_faq(DEFAULT_FAQ_FILE).offered(business.offers()))
    for label, relative in SETS.items():
        data = yaml.safe_load((root / relative).read_text(encoding="utf-8"))
        covered, uncovered = data["covered"], data["uncovered"]
        rows: dict[str, list[int]] = {language: [0, 0, 0, 0, 0, 0] for language in (*LANGUAGES, "all")}
        for item in covered:
            match = matcher.match(item["text"], item["lang"])
            for key in (item["lang"], "all"):
                row = rows[key]
                row[0] += 1
                row[1] += match.verdict != Verdict.NONE and match.best == item["entry"]
                row[2] += match.verdict == Verdict.ANSWER and match.best == item["entry"]
                row[3] += match.verdict == Verdict.CHOICE and item["entry"] in [e for e, _ in match.ranked]
        for item in uncovered:
            handed = matcher.match(item["text"], item["lang"]).verdict == Verdict.NONE
            for key in (item["lang"], "all"):
                rows[key][4] += 1
                rows[key][5] += handed
        questions = [(i["text"], i["lang"]) for i in covered + uncovered]
        rounds = 20
        start = time.perf_counter()
        for _ in range(rounds):
            for text, language in questions:
                matcher.match(text, language)
        per_match = (time.perf_counter() - start) / (rounds * len(questions)) * 1000
        print(f"{label}: {len(covered)} covered, {len(uncovered)} uncovered questions; {per_match:.2f} ms a match")
        print(f"  {'':<5}{'top-1':>16}{'answered, right':>18}{'among choices':>18}{'uncovered handed on':>22}")
        for key, (n, top1, answered, choice, m, handed) in rows.items():
            print(f"  {key:<5}{share(top1, n):>16}{share(answered, n):>18}{share(choice, n):>18}{share(handed, m):>22}")


if __name__ == "__main__":
    main()
