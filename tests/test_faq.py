"""The FAQ: its file, normalisation, the measured matcher, and the customer's side through the
dispatcher (answers, choices, misses, 👍/👎, menu, drafts)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.business import load_business
from bot.core.callbacks import DraftCB, FaqMenuCB, FaqRateCB
from bot.core.config import DEFAULT_BUSINESS_FILE, DEFAULT_FAQ_FILE, ConfigError
from bot.faq.rules import FaqMatcher, Verdict, load_faq, normalise
from storage.models import FaqDraft, FaqQuery
from tests.conftest import ANNA, EMMA, IVAN, OWNER, STRANGER, Harness

EVAL = Path(__file__).with_name("faq_eval.yaml")
HOLDOUT = Path(__file__).with_name("faq_holdout.yaml")
FRESH = Path(__file__).with_name("faq_fresh.yaml")


def test_normalising_folds_case_yo_diacritics_and_punctuation() -> None:
    assert normalise("Ещё РАЗ, пожалуйста!!") == "еще раз пожалуйста"
    assert normalise("Czy mogę zapłacić kartą?") == "czy moge zaplacic karta"
    assert normalise("Wi-Fi: hasło?") == "wi fi haslo"
    assert normalise("Какой-то йогурт") == "какой то йогурт"  # й stays й


def test_the_example_faq_is_valid_and_complete() -> None:
    faq = load_faq(DEFAULT_FAQ_FILE)
    assert len(faq.entries) >= 15
    for entry in faq.entries:
        assert set(entry.texts) == {"ru", "pl", "en"}
        assert all(text.phrasings for text in entry.texts.values())


@pytest.mark.parametrize(
    "content, expected",
    [
        ("categories: [", "not valid YAML"),
        ("- a list", "must be a mapping"),
        (
            "categories: [{id: a, name: {en: A, ru: А, pl: A}}]\nentries:\n"
            "  - {id: x, category: b, en: {question: 'Why?', answer: ok}, ru: {question: 'Why?', answer: ok}, "
            "pl: {question: 'Why?', answer: ok}}",
            "unknown category 'b'",
        ),
        (
            "categories: [{id: a, name: {en: A, ru: А, pl: A}}]\nentries:\n"
            "  - {id: x, category: a, en: {question: 'Why?', answer: ok}, ru: {question: 'Why?', answer: ok}}",
            "entries.0.pl: Field required",
        ),
        (
            "categories: [{id: a, name: {en: A, ru: А, pl: A}}]\nentries:\n"
            "  - {id: x, category: a, en: {question: 'Why?', answer: 'Get {cashback}'}, "
            "ru: {question: 'Why?', answer: ok}, pl: {question: 'Why?', answer: ok}}",
            "unknown figure {cashback}: an answer may name {birthday_bonus}",
        ),
        (
            "categories: [{id: a, name: {en: A, ru: А, pl: A}}]\nentries:\n"
            "  - {id: x, category: a, needs: lottery, en: {question: 'Why?', answer: ok}, "
            "ru: {question: 'Why?', answer: ok}, pl: {question: 'Why?', answer: ok}}",
            "needs 'lottery', expected one of birthday_bonus",
        ),
    ],
)
def test_a_broken_faq_file_is_refused_with_a_clear_reason(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_faq(path)
    assert expected in str(error.value)


def _measure(path: Path) -> tuple[float, float, int, int]:
    offers = load_business(DEFAULT_BUSINESS_FILE).offers()  # as the bot matches: without what is off
    matcher = FaqMatcher(load_faq(DEFAULT_FAQ_FILE).offered(offers))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    covered, uncovered = data["covered"], data["uncovered"]
    right = 0
    for item in covered:
        match = matcher.match(item["text"], item["lang"])
        right += match.verdict != Verdict.NONE and match.best == item["entry"]
    handed_on = sum(matcher.match(item["text"], item["lang"]).verdict == Verdict.NONE for item in uncovered)
    return right / len(covered), handed_on / len(uncovered), len(covered), len(uncovered)


def test_the_evaluation_set_is_answered_and_uncovered_questions_are_handed_on() -> None:
    """The labelled set the matcher was tuned on (bench/faq.py prints the figures)."""
    top1, handed_on, covered, uncovered = _measure(EVAL)
    assert covered >= 60 and uncovered >= 15
    assert top1 >= 0.9, f"top-1 accuracy {top1:.0%}"
    assert handed_on >= 0.9, f"uncovered handed on {handed_on:.0%}"


def test_the_held_out_set_stays_close() -> None:
    """A second set, written apart and never tuned on: a guard against overfitting the first.
    Issue 20 asks for 90% of its uncovered questions handed on."""
    top1, handed_on, _, _ = _measure(HOLDOUT)
    assert top1 >= 0.85 and handed_on >= 0.9, (top1, handed_on)


def test_the_fresh_set_does_not_fall() -> None:
    """A third set, written by a reader who saw neither the other two nor the matcher: it finds the
    right entry far less often (60%; most misses are handed to a person rather than answered
    wrongly), so these floors are today's figures, to be raised as the FAQ's phrasings grow."""
    top1, handed_on, covered, uncovered = _measure(FRESH)
    assert covered >= 45 and uncovered >= 36
    assert top1 >= 0.6 and handed_on >= 0.75, (top1, handed_on)


def test_a_close_call_needs_a_telling_word_in_common() -> None:
    """Two entries near each other are offered as a choice only when the question shares a word
    with one that the other entries do not use; "coffee" or "menu" alone point to a subject the
    FAQ does not know, and a person should take it."""
    matcher = FaqMatcher(load_faq(DEFAULT_FAQ_FILE).offered(load_business(DEFAULT_BUSINESS_FILE).offers()))
    assert matcher.match("есть ли у вас кофе без кофеина", "ru").verdict == Verdict.NONE
    assert matcher.match("can i bring my own sandwich and just buy a coffee", "en").verdict == Verdict.NONE
    dog = matcher.match("можно к вам с собакой? она маленькая и спокойная", "ru")
    assert dog.verdict == Verdict.CHOICE and dog.best == "pets"


def test_typos_and_endings_still_meet_but_short_words_must_match_exactly() -> None:
    matcher = FaqMatcher(load_faq(DEFAULT_FAQ_FILE))
    assert matcher.match("haslo do wifii", "pl").best == "wifi"
    assert matcher.match("где припарковатся", "ru").best == "parking"
    assert matcher.match("gdzie mozna zapalic", "pl").verdict == Verdict.NONE  # not "zapłacić"


# --- through the dispatcher ------------------------------------------------------------------


async def queries(h: Harness) -> list[FaqQuery]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(FaqQuery).order_by(FaqQuery.id)))


async def test_a_confident_match_is_answered_with_helped_and_talk_buttons(harness: Harness) -> None:
    await harness.send(EMMA, "what's the wifi password?")
    assert "Wi-Fi" in harness.last(EMMA.id) or "Wi‑Fi" in harness.last(EMMA.id)
    labels = [b.text for row in harness.last_markup(EMMA.id).inline_keyboard for b in row]
    assert labels[:2] == ["👍 Helped", "👎 Talk to a person"]
    (query,) = await queries(harness)
    assert query.outcome == "answer" and query.entry_id == "wifi" and query.text == "what's the wifi password?"
    await harness.press(EMMA, FaqRateCB(query=query.id, helpful=True))
    assert "Glad it helped!" in harness.alerts()
    assert (await queries(harness))[0].helpful is True


async def test_answers_come_in_the_customers_language(harness: Harness) -> None:
    await harness.send(IVAN, "пароль от вайфая")
    assert "AcmeCafe_Guest" in harness.last(IVAN.id)
    await harness.send(ANNA, "jakie macie godziny otwarcia")
    assert "8:00" in harness.last(ANNA.id)


async def test_no_match_offers_a_person_and_a_second_miss_does_too(harness: Harness) -> None:
    await harness.send(EMMA, "are you hiring baristas")
    assert "I'll pass it to a manager" in harness.last(EMMA.id)
    assert harness.button(EMMA.id, "Talk to a person").startswith("sp:faq:")
    (query,) = await queries(harness)
    assert query.outcome == "none"


async def test_after_a_thumbs_down_a_close_call_goes_to_a_person(harness: Harness) -> None:
    """A 👎 on the last answer counts as a miss (on SQLite too, whose booleans come back as 0
    and 1): the next question the bot is unsure of is handed to a person, not offered a choice."""
    faq = harness.dp["faq"]
    await harness.send(IVAN, "/start")
    ivan = await harness.customer(IVAN)
    dog = "можно к вам с собакой? она маленькая и спокойная"
    for rating in (True, False):
        answered = await faq.ask(ivan.id, "ru", "пароль от вайфая", per_day=10)
        assert answered is not None and answered.match.verdict == Verdict.ANSWER and answered.query.id is not None
        await faq.rate(answered.query.id, ivan.id, helpful=rating)
        unsure = await faq.ask(ivan.id, "ru", dog, per_day=10)
        assert unsure is not None and unsure.match.verdict == Verdict.CHOICE
        assert unsure.second_miss is (not rating)  # after a 👍 the choice is offered; after a 👎, a person
    assert [q.helpful for q in await queries(harness)] == [True, None, False, None]
    assert await faq.ask(ivan.id, "ru", dog, per_day=4) is None  # four today already: nothing kept
    assert len(await queries(harness)) == 4


async def test_a_forged_rating_of_someone_elses_question_does_nothing(harness: Harness) -> None:
    await harness.send(EMMA, "wifi password")
    (query,) = await queries(harness)
    await harness.press(IVAN, FaqRateCB(query=query.id, helpful=False))
    assert harness.alerts() == ["Эта кнопка больше не работает."]  # Ivan's language
    assert (await queries(harness))[0].helpful is None


async def test_the_faq_menu_goes_from_topics_to_questions_to_the_answer(harness: Harness) -> None:
    await harness.send(ANNA, "/faq")
    assert harness.last(ANNA.id) == "Najczęstsze pytania: wybierz temat."
    await harness.press(ANNA, FaqMenuCB(action="cat", value="loyalty"))
    await harness.press(ANNA, FaqMenuCB(action="entry", value="tiers"))
    assert "• Złoty: 10% w punktach" in harness.last(ANNA.id)  # the business file's tiers, in Polish
    (query,) = await queries(harness)
    assert query.outcome == "browsed" and query.entry_id == "tiers"
    await harness.press(ANNA, FaqMenuCB(action="entry", value="no_such_entry"))
    assert harness.alerts()[-1]  # a stale button says so


async def test_admins_reload_the_faq_and_a_broken_file_keeps_the_old_one(harness: Harness, tmp_path: Path) -> None:
    faq = harness.dp["faq"]
    good = faq.path
    broken = tmp_path / "faq.yaml"
    broken.write_text("categories: [", encoding="utf-8")
    faq.path = broken
    await harness.send(OWNER, "/reload_faq")
    assert "has a problem" in harness.last(OWNER.id) and "not valid YAML" in harness.last(OWNER.id)
    assert faq.faq.entry("wifi") is not None
    faq.path = good
    await harness.send(OWNER, "/reload_faq")
    assert "FAQ reloaded: 25 entries in 4 topics."  # 26 in the file; one of the two on expiry in harness.last(OWNER.id)
    await harness.send(EMMA, "/reload_faq")
    assert "reloaded" not in harness.last(EMMA.id)


async def test_an_approved_draft_answers_customers(harness: Harness) -> None:
    from tests.test_support import conversation, topic_message

    ticket_id = await conversation(harness, EMMA, "Do you sell oat cookies?")
    answer = await topic_message(harness, EMMA, "Yes, every morning from 8, next to the till.")
    await harness.send_group(
        harness_manager(),
        "/faq",
        message_thread_id=answer.message_thread_id,
        is_topic_message=True,
        reply_to_message=answer,
    )
    assert "/faq_drafts" in harness.last(answer.chat.id)  # "saved as a draft", in Marta's Polish
    async with harness.db.reading() as session:
        (draft,) = list(await session.scalars(select(FaqDraft)))
    assert draft.question == "Do you sell oat cookies?" and draft.language == "en" and ticket_id
    await harness.send(OWNER, "/faq_drafts")
    assert "oat cookies" in harness.last(OWNER.id)
    await harness.press(OWNER, DraftCB(action="approve", draft_id=draft.id))
    await harness.press(OWNER, DraftCB(action="put", draft_id=draft.id, category="menu"))
    assert "FAQ button" in harness.last(OWNER.id)  # the owner words the question customers will see
    await harness.send(OWNER, "Oat cookies: do you have them?")
    assert "Approved" in harness.texts(OWNER.id)[-2]
    await harness.press(OWNER, DraftCB(action="put", draft_id=draft.id, category="menu"))  # an old button
    assert "Someone has already reviewed this draft." in harness.alerts()
    await harness.send(STRANGER, "do you sell oat cookies?")  # an English customer without a request
    assert "next to the till" in harness.last(STRANGER.id)
    await harness.send(
        IVAN, "овсяное печенье есть?"
    )  # the draft is English: Russian customers are not answered from it
    assert "next to the till" not in harness.last(IVAN.id)


def harness_manager():  # noqa: ANN201 - a tiny helper for the import above
    from tests.conftest import MANAGER

    return MANAGER
