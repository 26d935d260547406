"""Surveys through the real dispatcher: when they are sent, answering, follow-ups and closing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from aiogram.methods import EditMessageReplyMarkup, SendMessage
from aiogram.types import Chat, ChatMemberBanned, ChatMemberMember, ChatMemberUpdated, Update
from sqlalchemy import select

from bot.core.callbacks import CommentCB, SurveyCB, UndoCB
from bot.core.config import Settings
from bot.core.i18n import create_i18n
from bot.core.scheduler import Scheduler
from bot.dispatcher import create_dispatcher
from bot.surveys.rules import SurveyKind, Trigger
from bot.surveys.service import SurveyService
from storage.models import Alert, AlertStatus, Survey, SurveyStatus
from tests.conftest import (
    ANNA,
    CASHIER,
    EMMA,
    GROUP_ID,
    IVAN,
    Harness,
    make_settings,
    open_card,
)
from tests.fake_telegram import RecordingSession

WARSAW = ZoneInfo("Europe/Warsaw")

QUESTION = {
    "en": "How likely are you to recommend Acme Café to a friend?",
    "ru": "Насколько вероятно, что вы порекомендуете Acme Café друзьям?",
    "pl": "Acme Café: jak bardzo prawdopodobne jest, że polecisz nas znajomym?",
}
WENT_WRONG = {"en": "What went wrong?", "ru": "Что пошло не так?", "pl": "Co poszło nie tak?"}
LIKED_MOST = {
    "en": "What did you like most?",
    "ru": "Что вам понравилось больше всего?",
    "pl": "Co podobało Ci się najbardziej?",
}
CLOSED = {"en": "This survey has closed", "ru": "Этот опрос закрыт", "pl": "Ta ankieta jest już zamknięta"}


def at_local(h: Harness, hour: int, minute: int = 0, day: int = 23) -> None:
    """Put the clock at a local time of the business (Europe/Warsaw), in November 2026."""
    h.clock.now = datetime(2026, 11, day, hour, minute, tzinfo=WARSAW).astimezone(UTC)


async def buy(h: Harness, user=EMMA, amount: str = "40") -> None:
    await open_card(h, user)
    await h.send(CASHIER, amount)  # the amount typed into the open card is the sale


async def surveys_of(h: Harness, user=None) -> list[Survey]:
    async with h.db.reading() as session:
        query = select(Survey).order_by(Survey.id)
        if user is not None:
            query = query.where(Survey.customer_id == (await h.customer(user)).id)
        return list(await session.scalars(query))


async def alerts(h: Harness) -> list[Alert]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(Alert).order_by(Alert.id)))


def questions(h: Harness, user, language: str = "en") -> list[SendMessage]:
    return [
        r
        for r in h.sent(SendMessage, user.id)
        if QUESTION[language] in r.text or "Tap a face" in r.text or "Did we fix it" in r.text
    ]


async def asked(h: Harness, user=EMMA) -> Survey:
    """A purchase an hour and a bit ago, and the survey it brought."""
    at_local(h, 11)
    await buy(h, user)
    h.clock.advance(minutes=61)
    await h.tick()
    (survey,) = [s for s in await surveys_of(h, user) if s.status == SurveyStatus.ASKED]
    return survey


# --- when surveys are sent -------------------------------------------------------------------


async def test_a_purchase_brings_one_nps_survey_an_hour_later(shop: Harness) -> None:
    at_local(shop, 11)
    await buy(shop)
    (planned,) = await surveys_of(shop, EMMA)
    assert planned.status == SurveyStatus.PENDING and planned.trigger == "purchase" and planned.entry_id
    shop.clock.advance(minutes=59)
    await shop.tick()
    assert questions(shop, EMMA) == []
    shop.clock.advance(minutes=2)
    await shop.tick()
    await shop.tick()  # a second round sends nothing more
    (question,) = questions(shop, EMMA)
    rows = question.reply_markup.inline_keyboard
    assert [[b.text for b in row] for row in rows] == [[str(n) for n in range(6)], [str(n) for n in range(6, 11)]]
    assert "0 means not at all likely" in question.text
    (survey,) = await surveys_of(shop, EMMA)
    assert survey.status == SurveyStatus.ASKED and survey.kind == "nps" and survey.asked_at == shop.clock.now


@pytest.mark.parametrize("language", ["ru", "pl"])
async def test_the_question_is_in_the_customers_language(shop: Harness, language: str) -> None:
    user = IVAN if language == "ru" else ANNA
    await asked(shop, user)
    assert len(questions(shop, user, language)) == 1


async def test_a_second_purchase_before_the_survey_plans_nothing_more(shop: Harness) -> None:
    at_local(shop, 11)
    await buy(shop)
    shop.clock.advance(minutes=10)
    await buy(shop)
    assert len(await surveys_of(shop, EMMA)) == 1
    shop.clock.advance(minutes=70)
    await shop.tick()
    assert len(questions(shop, EMMA)) == 1


async def test_a_planned_survey_survives_a_restart_and_two_processes_send_it_once(shop: Harness) -> None:
    at_local(shop, 11)
    await buy(shop)
    await shop.dp.emit_shutdown(bot=shop.bot)  # the first process stops before the survey is due
    shop.clock.advance(minutes=61)

    # Two fresh processes on the same database, each with its own connection to "Telegram".
    def process() -> tuple[RecordingSession, object, object]:
        session = RecordingSession()
        settings: Settings = make_settings(manager_chat_id=str(GROUP_ID))
        from bot.dispatcher import create_bot

        bot = create_bot(settings, session=session)
        surveys = SurveyService(shop.db, shop.business, clock=shop.clock)
        dp = create_dispatcher(
            settings,
            shop.business,
            shop.db,
            create_i18n("en"),
            surveys=surveys,
            scheduler=Scheduler(sleep=shop.clock.sleep),
        )
        return session, bot, dp

    first, second = process(), process()
    await asyncio.gather(first[2]["scheduler"].run_once(first[1]), second[2]["scheduler"].run_once(second[1]))
    sent = [
        r
        for session in (first[0], second[0])
        for r in session.requests
        if isinstance(r, SendMessage) and QUESTION["en"] in r.text
    ]
    assert len(sent) == 1 and int(sent[0].chat_id) == EMMA.id
    (survey,) = await surveys_of(shop, EMMA)
    assert survey.status == SurveyStatus.ASKED


async def test_the_running_bot_sends_due_surveys_by_itself(shop: Harness) -> None:
    at_local(shop, 11)
    await buy(shop)
    await shop.dp.emit_startup(bot=shop.bot)
    shop.clock.advance(minutes=61)
    await shop.eventually(lambda: len(questions(shop, EMMA)) == 1)


async def test_no_survey_at_night_it_waits_for_the_morning(shop: Harness) -> None:
    at_local(shop, 20, 30)
    await buy(shop)
    shop.clock.advance(minutes=61)  # 21:31, quiet hours
    await shop.tick()
    assert questions(shop, EMMA) == []
    (survey,) = await surveys_of(shop, EMMA)
    assert survey.status == SurveyStatus.PENDING
    assert survey.due_at.astimezone(WARSAW) == datetime(2026, 11, 24, 9, 0, tzinfo=WARSAW)
    at_local(shop, 8, 59, day=24)
    await shop.tick()
    assert questions(shop, EMMA) == []
    at_local(shop, 9, 0, day=24)
    await shop.tick()
    assert len(questions(shop, EMMA)) == 1


async def test_one_survey_per_recontact_period(shop: Harness) -> None:
    await asked(shop)
    shop.clock.advance(days=10)
    await buy(shop)
    shop.clock.advance(minutes=61)
    await shop.tick()
    assert len(questions(shop, EMMA)) == 1
    skipped = (await surveys_of(shop, EMMA))[-1]
    assert skipped.status == SurveyStatus.SKIPPED and skipped.skip_reason == "asked_recently"
    shop.clock.advance(days=21)  # 31 days after the first survey
    await buy(shop)
    shop.clock.advance(minutes=61)
    await shop.tick()
    assert len(questions(shop, EMMA)) == 2


async def test_after_a_recent_nps_answer_a_purchase_brings_the_emoticon_rating(shop: Harness) -> None:
    at_local(shop, 11)
    await shop.send(EMMA, "/feedback")
    (feedback,) = await surveys_of(shop, EMMA)
    await shop.press(EMMA, SurveyCB(survey_id=feedback.id, score=9))
    shop.clock.advance(days=2)
    await buy(shop)
    shop.clock.advance(minutes=61)
    await shop.tick()
    rating = questions(shop, EMMA)[-1]
    assert "How was your visit to Acme Café?" in rating.text
    assert [b.text for b in rating.reply_markup.inline_keyboard[0]] == ["😠", "🙁", "😐", "🙂", "😄"]


async def test_feedback_is_asked_at_once_even_at_night_and_right_after_a_survey(shop: Harness) -> None:
    await asked(shop)
    at_local(shop, 23)
    await shop.send(EMMA, "/feedback")
    assert len(questions(shop, EMMA)) == 2


async def test_feedback_needs_a_member(harness: Harness) -> None:
    await harness.send(EMMA, "/start")
    await harness.send(EMMA, "/feedback")
    assert "Join in one tap" in harness.last(EMMA.id)
    assert await surveys_of(harness) == []


def block_update(h: Harness, user, blocked: bool) -> Update:
    from aiogram.types import User

    me = User(id=424242, is_bot=True, first_name="Acme Café")
    old = ChatMemberMember(user=me) if blocked else ChatMemberBanned(user=me, until_date=0)
    new = ChatMemberBanned(user=me, until_date=0) if blocked else ChatMemberMember(user=me)
    event = ChatMemberUpdated(
        chat=Chat(id=user.id, type="private"),
        from_user=user,
        date=h.clock(),
        old_chat_member=old,
        new_chat_member=new,
    )
    return Update(update_id=next(h._update_ids), my_chat_member=event)


async def test_nobody_who_blocked_the_bot_is_asked(shop: Harness) -> None:
    at_local(shop, 11)
    await buy(shop)
    await shop.feed(block_update(shop, EMMA, blocked=True))
    assert (await shop.customer(EMMA)).blocked_at is not None
    shop.clock.advance(minutes=61)
    await shop.tick()
    assert questions(shop, EMMA) == []
    assert (await surveys_of(shop, EMMA))[0].skip_reason == "blocked"
    await shop.feed(block_update(shop, EMMA, blocked=False))
    assert (await shop.customer(EMMA)).blocked_at is None


async def test_a_block_found_when_sending_is_remembered(shop: Harness) -> None:
    at_local(shop, 11)
    await buy(shop)
    shop.session.blocked.add(EMMA.id)
    shop.clock.advance(minutes=61)
    await shop.tick()
    (survey,) = await surveys_of(shop, EMMA)
    assert survey.status == SurveyStatus.SKIPPED and survey.skip_reason == "blocked"
    assert (await shop.customer(EMMA)).blocked_at is not None


async def test_an_undone_purchase_brings_no_survey(shop: Harness) -> None:
    at_local(shop, 11)
    await buy(shop)
    entry_id = (await surveys_of(shop, EMMA))[0].entry_id
    await shop.press(CASHIER, UndoCB(entry_id=entry_id))
    shop.clock.advance(minutes=61)
    await shop.tick()
    assert questions(shop, EMMA) == []
    assert (await surveys_of(shop, EMMA))[0].skip_reason == "purchase_reversed"


# --- answering -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru", "pl"])
async def test_a_score_brings_its_follow_up_and_the_comment_is_kept(shop: Harness, language: str) -> None:
    user = {"en": EMMA, "ru": IVAN, "pl": ANNA}[language]
    survey = await asked(shop, user)
    await shop.press(user, SurveyCB(survey_id=survey.id, score=10))
    assert LIKED_MOST[language] in shop.last(user.id)
    ticked = shop.sent(EditMessageReplyMarkup, user.id)[-1].reply_markup.inline_keyboard
    assert "✓10" in [b.text for row in ticked for b in row]
    await shop.send(user, "The cheesecake!")
    (stored,) = [s for s in await surveys_of(shop, user) if s.id == survey.id]
    assert stored.score == 10 and stored.comment == "The cheesecake!" and stored.comment_status == "given"
    assert stored.answered_at == shop.clock.now and stored.trigger == "purchase" and stored.entry_id is not None
    assert shop.last(user.id) != LIKED_MOST[language]  # a thank-you follows
    await shop.send(user, "hello?")  # later words are not taken as a comment: a greeting is greeted
    assert shop.last(user.id).startswith(("Hello, Emma!", "Здравствуйте, Иван!", "Cześć, Anna!"))


@pytest.mark.parametrize("score, follow_up", [(3, "What went wrong?"), (7, "What would make it a 10?")])
async def test_each_group_gets_its_own_question(shop: Harness, score: int, follow_up: str) -> None:
    survey = await asked(shop)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=score))
    assert follow_up in shop.last(EMMA.id)


async def test_skip_ends_the_follow_up_with_a_thank_you(shop: Harness) -> None:
    survey = await asked(shop)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=8))
    await shop.press(EMMA, CommentCB(action="skip", survey_id=survey.id))
    assert "Thank you for your feedback" in shop.last(EMMA.id)
    (stored,) = await surveys_of(shop, EMMA)
    assert stored.comment_status == "skipped" and stored.comment is None
    await shop.send(EMMA, "hello?")
    assert shop.last(EMMA.id).startswith("Hello, Emma!")  # not taken as a comment


@pytest.mark.parametrize(
    ("hour", "weekday", "expected"),
    [
        (12, 23, "A manager will write to you here within a few hours."),  # Monday noon: open
        (6, 24, "A manager will write to you here today at 8:00\u202fAM."),
        (21, 23, "A manager will write to you here tomorrow at 8:00\u202fAM."),
    ],
)
async def test_an_unhappy_customer_is_told_a_person_will_come_back_and_when(
    shop: Harness, hour: int, weekday: int, expected: str
) -> None:
    survey = await asked(shop)
    at_local(shop, hour, day=weekday)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=2))
    await shop.send(EMMA, "The coffee was cold")
    assert shop.last(EMMA.id) == "We are sorry it was not good. " + expected


async def test_a_detractor_who_skips_the_comment_is_told_too(shop: Harness) -> None:
    survey = await asked(shop)
    at_local(shop, 12)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=4))
    await shop.press(EMMA, CommentCB(action="skip", survey_id=survey.id))
    assert shop.last(EMMA.id) == "We are sorry it was not good. A manager will write to you here within a few hours."


async def test_a_photo_instead_of_words_is_asked_for_words(shop: Harness) -> None:
    survey = await asked(shop)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=8))
    await shop.send_photo(EMMA, b"not really a picture")
    assert "write your answer in words" in shop.last(EMMA.id)


async def test_a_score_can_change_within_five_minutes_and_one_response_is_kept(shop: Harness) -> None:
    survey = await asked(shop)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=3))
    assert WENT_WRONG["en"] in shop.last(EMMA.id)
    shop.clock.advance(minutes=4)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=9))
    assert LIKED_MOST["en"] in shop.last(EMMA.id)  # the follow-up question follows the new score
    (stored,) = await surveys_of(shop, EMMA)
    assert stored.score == 9
    (alert,) = await alerts(shop)
    assert alert.status == AlertStatus.WITHDRAWN
    shop.clock.advance(minutes=2)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=5))
    assert "Your answer is saved" in shop.alerts()[-1]
    assert (await surveys_of(shop, EMMA))[0].score == 9


async def test_a_double_tap_records_one_answer_and_one_follow_up(shop: Harness) -> None:
    survey = await asked(shop)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=6))
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=6))
    assert sum(WENT_WRONG["en"] in t for t in shop.texts(EMMA.id)) == 1
    assert len(await alerts(shop)) == 1


@pytest.mark.parametrize("language", ["en", "ru", "pl"])
async def test_a_week_old_survey_has_closed(shop: Harness, language: str) -> None:
    user = {"en": EMMA, "ru": IVAN, "pl": ANNA}[language]
    survey = await asked(shop, user)
    shop.clock.advance(days=7, minutes=1)
    await shop.press(user, SurveyCB(survey_id=survey.id, score=10))
    assert CLOSED[language] in shop.alerts()[-1]
    assert (await surveys_of(shop, user))[0].score is None


async def test_someone_elses_survey_or_a_forged_score_does_nothing(shop: Harness) -> None:
    survey = await asked(shop)
    await shop.press(ANNA, SurveyCB(survey_id=survey.id, score=0))
    assert "już nie działa" in shop.alerts()[-1]  # Anna reads Polish
    await shop.press(EMMA, SurveyCB(survey_id=survey.id + 100, score=0))
    assert "no longer works" in shop.alerts()[-1]
    assert (await surveys_of(shop, EMMA))[0].score is None and await alerts(shop) == []


async def test_custom_emoji_buttons_store_the_score_not_the_position(shop: Harness) -> None:
    from dataclasses import replace

    rules = replace(shop.business.surveys, rating_emoji=("1⭐", "2⭐", "3⭐", "4⭐", "5⭐"))
    business = replace(shop.business, surveys=rules)
    shop.surveys.business = business
    shop.surveys.rules = rules
    shop.dp["survey_sender"].business = business
    shop.dp["business"] = business
    at_local(shop, 11)
    customer = await shop.customer(EMMA)
    # How the support hand-off asks for a rating when a conversation closes.
    await shop.surveys.request(customer.id, Trigger.SUPPORT, key="ticket:1", kind=SurveyKind.RATING)
    await shop.tick()
    question = questions(shop, EMMA)[-1]
    assert "How did we do in this conversation?" in question.text
    buttons = question.reply_markup.inline_keyboard[0]
    assert [b.text for b in buttons] == ["1⭐", "2⭐", "3⭐", "4⭐", "5⭐"]
    await shop.feed(shop.callback_update(EMMA, buttons[3].callback_data))
    (survey,) = await surveys_of(shop, EMMA)
    assert survey.score == 4 and survey.kind == "rating" and survey.trigger == "support"


async def test_a_send_that_may_have_arrived_is_not_repeated_and_still_takes_answers(shop: Harness) -> None:
    from aiogram.exceptions import TelegramNetworkError
    from aiogram.methods import SendMessage as Send

    at_local(shop, 11)
    await buy(shop)
    shop.clock.advance(minutes=61)
    shop.session.failures.append(TelegramNetworkError(method=Send(chat_id=EMMA.id, text="?"), message="timeout"))
    await shop.tick()
    shop.clock.advance(hours=1)
    await shop.tick()
    (survey,) = await surveys_of(shop, EMMA)
    assert survey.status == SurveyStatus.SKIPPED and survey.skip_reason == "uncertain"
    assert [r for r in shop.sent(SendMessage, EMMA.id) if QUESTION["en"] in r.text] != []  # tried once
    assert len([r for r in shop.session.requests if isinstance(r, SendMessage) and QUESTION["en"] in r.text]) == 1
    # It did arrive after all: Emma's answer counts.
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=9))
    assert (await surveys_of(shop, EMMA))[0].score == 9


async def test_telegram_asking_to_wait_is_waited_out_and_the_survey_goes_once(shop: Harness) -> None:
    from aiogram.exceptions import TelegramRetryAfter
    from aiogram.methods import SendMessage as Send

    at_local(shop, 11)
    await buy(shop)
    shop.clock.advance(minutes=61)
    shop.session.failures.append(
        TelegramRetryAfter(method=Send(chat_id=EMMA.id, text="?"), message="Too Many Requests", retry_after=3)
    )
    await shop.tick()
    assert len(questions(shop, EMMA)) == 2  # the refused attempt, then, 3 s later, the one that arrived
    assert (await surveys_of(shop, EMMA))[0].status == SurveyStatus.ASKED


async def test_telegram_asking_to_wait_again_and_again_puts_the_survey_back(shop: Harness) -> None:
    from aiogram.exceptions import TelegramRetryAfter
    from aiogram.methods import SendMessage as Send

    from bot.core.sender import RETRIES

    at_local(shop, 11)
    await buy(shop)
    shop.clock.advance(minutes=61)
    shop.session.failures.extend(
        TelegramRetryAfter(method=Send(chat_id=EMMA.id, text="?"), message="Too Many Requests", retry_after=3)
        for _n in range(RETRIES + 1)
    )
    await shop.tick()
    (survey,) = await surveys_of(shop, EMMA)
    assert survey.status == SurveyStatus.PENDING and survey.asked_at is None
    shop.clock.advance(minutes=6)
    await shop.tick()
    assert len(questions(shop, EMMA)) == RETRIES + 2  # every refused attempt, then the one that arrived
    assert (await surveys_of(shop, EMMA))[0].status == SurveyStatus.ASKED


async def test_two_surveys_claimed_at_once_for_one_customer_send_one(shop: Harness) -> None:
    at_local(shop, 11)
    customer = await shop.customer(EMMA)
    first = await shop.surveys.request(customer.id, Trigger.PURCHASE, key="a", kind=SurveyKind.NPS)
    second = await shop.surveys.request(customer.id, Trigger.SUPPORT, key="b", kind=SurveyKind.RATING)
    claimed = [await shop.surveys.claim(first.id), await shop.surveys.claim(second.id)]  # neither sent yet
    assert claimed[0] is not None and claimed[1] is None
    skipped = (await surveys_of(shop, EMMA))[1]
    assert skipped.skip_reason == "asked_recently"


async def test_undoing_the_first_of_two_purchases_keeps_the_survey(shop: Harness) -> None:
    at_local(shop, 11)
    await buy(shop)
    first_entry = (await surveys_of(shop, EMMA))[0].entry_id
    shop.clock.advance(minutes=5)
    await buy(shop, amount="60")
    await shop.press(CASHIER, UndoCB(entry_id=first_entry))
    shop.clock.advance(minutes=61)
    await shop.tick()
    assert len(questions(shop, EMMA)) == 1
    assert (await surveys_of(shop, EMMA))[0].entry_id != first_entry
