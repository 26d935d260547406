"""The plain-words intent recogniser (bot/faq/intents.py): measured on the labelled sets (the
evaluation set it was tuned on, and a held-out one it never was), the FAQ questions it must leave
alone, and a few direct cases."""

from __future__ import annotations

import ast
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.faq.intents import Intent, recognise

EVAL = Path(__file__).with_name("intents_eval.yaml")
HOLDOUT = Path(__file__).with_name("intents_holdout.yaml")
SOURCE = Path(__file__).resolve().parent.parent / "bot" / "faq" / "intents.py"
LANGUAGES = ("ru", "pl", "en")
LABELS = {intent.value for intent in Intent} | {"none"}


def phrases(path: Path) -> list[dict[str, str]]:
    items: list[dict[str, str]] = yaml.safe_load(path.read_text(encoding="utf-8"))["phrases"]
    return items


def accuracy(path: Path) -> dict[str, dict[str, Any]]:
    """Per language (and "all"): phrases, right answers, their share, `none` phrases and how many
    of those were captured by an intent, and the phrases it got wrong."""
    result: dict[str, dict[str, Any]] = {
        key: {"total": 0, "right": 0, "none": 0, "captured": 0, "wrong": []} for key in (*LANGUAGES, "all")
    }
    for item in phrases(path):
        found = recognise(item["text"], item["lang"])
        got = found.value if found is not None else "none"
        for key in (item["lang"], "all"):
            row = result[key]
            row["total"] += 1
            row["right"] += got == item["intent"]
            if item["intent"] == "none":
                row["none"] += 1
                row["captured"] += got != "none"
            if got != item["intent"]:
                row["wrong"].append(f"{item['text']!r}: {got} (expected {item['intent']})")
    for row in result.values():
        row["accuracy"] = row["right"] / row["total"] if row["total"] else 0.0
    return result


# --- the sets themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("path, least", [(EVAL, 60), (HOLDOUT, 25)], ids=["eval", "holdout"])
def test_each_set_is_big_enough_in_every_language(path: Path, least: int) -> None:
    items = phrases(path)
    assert all(item["lang"] in LANGUAGES and item["intent"] in LABELS for item in items)
    assert all(isinstance(item["text"], str) and item["text"].strip() for item in items)
    per_language = Counter(item["lang"] for item in items)
    for language in LANGUAGES:
        assert per_language[language] >= least, f"{path.name}: {language} has {per_language[language]}"
        labels = Counter(item["intent"] for item in items if item["lang"] == language)
        assert set(labels) == LABELS, f"{path.name}: {language} misses {LABELS - set(labels)}"


def test_the_evaluation_set_covers_every_intent_six_times_and_fifteen_questions_per_language() -> None:
    labels = Counter((item["lang"], item["intent"]) for item in phrases(EVAL))
    for language in LANGUAGES:
        for intent in Intent:
            assert labels[language, intent.value] >= 6, f"{language}/{intent}: {labels[language, intent.value]}"
        assert labels[language, "none"] >= 15, f"{language}/none: {labels[language, 'none']}"


def test_the_sets_do_not_share_a_phrase() -> None:
    seen = {(item["lang"], item["text"].lower()) for item in phrases(EVAL)}
    assert not [item["text"] for item in phrases(HOLDOUT) if (item["lang"], item["text"].lower()) in seen]


# --- measured quality ------------------------------------------------------------------------


@pytest.mark.parametrize("path, threshold", [(EVAL, 0.95), (HOLDOUT, 0.85)], ids=["eval", "holdout"])
def test_accuracy_holds_in_every_language(path: Path, threshold: float) -> None:
    result = accuracy(path)
    for key in (*LANGUAGES, "all"):
        row = result[key]
        assert row["accuracy"] >= threshold, f"{path.name} {key}: {row['accuracy']:.1%}; wrong: {row['wrong']}"


@pytest.mark.parametrize("path", [EVAL, HOLDOUT], ids=["eval", "holdout"])
def test_faq_questions_are_left_for_the_faq(path: Path) -> None:
    result = accuracy(path)
    for language in LANGUAGES:
        row = result[language]
        assert row["captured"] <= 1, f"{path.name} {language}: {row['captured']} of {row['none']}; {row['wrong']}"


# --- direct cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, language",
    [
        ("how do points work?", "en"),
        ("jak zbierać punkty?", "pl"),
        ("как получить карту?", "ru"),
        ("сколько стоит кофе", "ru"),
        ("do you have a card payment?", "en"),
        ("czy mogę płacić kartą?", "pl"),  # paying BY card is not "my card"
        ("czy moge placic karta?", "pl"),  # … nor without the diacritics
        ("можно картой?", "ru"),
        ("can I transfer points to a friend", "en"),
        ("hi, do you have vegan milk?", "en"),  # a greeting and a question: the FAQ answers it
        ("thanks, and what time do you close?", "en"),
        ("привет, у вас есть парковка?", "ru"),
        ("столик на 4 человека", "ru"),  # people at a table, not a person to talk to
        ("do you sell gift cards?", "en"),
        ("", "en"),
        ("👍", "ru"),
    ],
)
def test_questions_and_traps_are_not_captured(text: str, language: str) -> None:
    assert recognise(text, language) is None


@pytest.mark.parametrize(
    "text, language, intent",
    [
        ("moja karta", "pl", Intent.CARD),
        ("покажи карту", "ru", Intent.CARD),
        ("QR code please", "en", Intent.CARD),
        ("ile mam punktów?", "pl", Intent.BALANCE),
        ("hej, ile mam punktów na koncie?", "pl", Intent.BALANCE),  # embedded in a longer message
        ("СКОЛЬКО У МЕНЯ БАЛЛОВ???", "ru", Intent.BALANCE),
        ("история начислений", "ru", Intent.HISTORY),
        ("можно мне поговорить с человеком, а не с ботом", "ru", Intent.HUMAN),
        ("chcę rozmawiać z człowiekiem", "pl", Intent.HUMAN),
        ("chce rozmawiac z czlowiekiem", "pl", Intent.HUMAN),  # no diacritics
        ("менеджер пожалуйста", "ru", Intent.HUMAN),
        ("dzień dobry 😊", "pl", Intent.HELLO),
        ("Hi Acme!", "en", Intent.HELLO),  # the bot's name beside a greeting
        ("спасибо большое!!", "ru", Intent.THANKS),
        ("Спасибо, всё ясно", "ru", Intent.THANKS),  # ё typed as ё
    ],
)
def test_plain_intents_are_recognised(text: str, language: str, intent: Intent) -> None:
    assert recognise(text, language) == intent


def test_other_languages_are_tried_after_the_persons_own() -> None:
    assert recognise("ile mam punktów?", "en") == Intent.BALANCE
    assert recognise("my card", "ru") == Intent.CARD
    assert recognise("спасибо", "pl") == Intent.THANKS
    # …but a function word of their own language stays theirs: Polish "my" is "we"
    assert recognise("my", "pl") is None


def test_typos_are_forgiven_in_long_words_but_not_in_short_ones() -> None:
    assert recognise("histroia", "pl") == Intent.HISTORY  # two letters swapped
    assert recognise("my ponits", "en") == Intent.BALANCE
    assert recognise("здраствуйте", "ru") == Intent.HELLO  # a letter missing
    assert recognise("his", "en") is None  # not "hi"
    assert recognise("my cart", "en") is None  # not "card"


def test_a_greeting_counts_only_alone() -> None:
    assert recognise("hi", "en") == Intent.HELLO
    assert recognise("hi there!", "en") == Intent.HELLO
    assert recognise("hi menu", "en") is None  # a lower-case word beside it may be the question
    assert recognise("Hi Anna?", "en") is None  # and with a question mark it is one


def test_the_rules_import_neither_aiogram_nor_the_database() -> None:
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in {"aiogram", "storage", "sqlalchemy"}}


def test_a_message_is_recognised_well_under_a_millisecond() -> None:
    items = [(item["text"], item["lang"]) for path in (EVAL, HOLDOUT) for item in phrases(path)]
    start = time.perf_counter()
    for text, language in items:
        recognise(text, language)
    per_call = (time.perf_counter() - start) / len(items)
    assert per_call < 0.001, f"{per_call * 1000:.3f} ms per message"
