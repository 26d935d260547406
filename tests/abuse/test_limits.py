"""Issue 15, flooding inside the bot: a per-person limit on messages and presses, caps on what one
person can store in a day, and repeated unhappy answers folded into the customer's open alert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiogram.methods import SendMessage
from sqlalchemy import func, select

from bot.business import Business
from bot.core.callbacks import SurveyCB
from bot.core.throttle import PersonThrottle
from storage.database import Database
from storage.models import Alert, FaqQuery, ProcessedUpdate, Survey, SurveyStatus, TicketMessage
from tests.conftest import (
    ANNA,
    EMMA,
    GROUP_ID,
    IVAN,
    MANAGER,
    MANAGER_2,
    Clock,
    Harness,
    build_harness,
    make_settings,
    virtual_bot,
)
from tests.fake_telegram import RecordingSession

SLOW_DOWN = "You are sending messages very fast"


def with_guards(h: Harness, **limits: int) -> None:
    """The business file's per-person limits, set lower for a test (the handlers and services)."""
    business = replace(h.business, guards=replace(h.business.guards, **limits))
    h.dp["business"] = h.loyalty.business = h.business = business


@pytest.fixture
async def limited(db: Database, business: Business) -> AsyncIterator[Harness]:
    """The harness with the business file's own limit of messages a minute, on the test's clock."""
    settings = make_settings(manager_chat_id=str(GROUP_ID))
    session = RecordingSession()
    session.group_members.update({MANAGER.id, MANAGER_2.id})
    clock = Clock()
    throttle = PersonThrottle(business.guards.messages_per_minute, now=lambda: clock().timestamp())
    harness = build_harness(db, business, settings, virtual_bot(settings, session), session, clock, throttle=throttle)
    yield harness
    await harness.dp.emit_shutdown(bot=harness.bot)


async def rows(h: Harness, model: type, *where: object) -> int:
    async with h.db.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_past_the_limit_a_person_is_asked_once_to_slow_down_and_the_rest_is_dropped(limited: Harness) -> None:
    h = limited
    limit = h.business.guards.messages_per_minute
    await h.send(IVAN, "/help")
    for _ in range(limit + 20):
        await h.send(EMMA, "/help")
    assert sum(SLOW_DOWN in t for t in h.texts(EMMA.id)) == 1  # told once, in her language
    assert len(h.texts(EMMA.id)) == limit + 1
    # The dropped ones cost nothing: not even an inbox row.
    assert await rows(h, ProcessedUpdate) == 1 + limit
    await h.send(IVAN, "/help")  # somebody else is not affected
    assert len(h.texts(IVAN.id)) == 2
    h.clock.advance(seconds=61)  # a minute on, she is welcome again
    await h.send(EMMA, "/help")
    assert "/card" in h.last(EMMA.id)


async def test_button_presses_count_too_and_the_press_is_answered(limited: Harness) -> None:
    from bot.core.callbacks import MenuCB

    h = limited
    await h.join(EMMA)
    for _ in range(h.business.guards.messages_per_minute + 5):
        await h.press(EMMA, MenuCB(action="faq"))
    assert sum(SLOW_DOWN in a for a in h.alerts()) == 1


async def test_a_customer_keeps_at_most_a_days_questions(shop: Harness) -> None:
    with_guards(shop, questions_per_day=5)
    for n in range(8):
        await shop.send(EMMA, f"do you sell cakes number {n}?")
    assert await rows(shop, FaqQuery, FaqQuery.text.is_not(None)) == 5
    assert "a lot of questions today" in shop.last(EMMA.id)
    shop.clock.advance(days=1, seconds=1)
    await shop.send(EMMA, "do you sell cakes?")
    assert await rows(shop, FaqQuery, FaqQuery.text.is_not(None)) == 6


async def test_a_customer_passes_at_most_a_days_messages_to_the_managers(shop: Harness) -> None:
    from tests.test_support import conversation

    with_guards(shop, support_messages_per_day=4)
    await conversation(shop, ANNA, "first")
    for n in range(6):
        await shop.send(ANNA, f"more {n}")
    assert await rows(shop, TicketMessage, TicketMessage.direction == "in") == 4
    assert "a lot of messages today" in shop.last(ANNA.id) or "dużo wiadomości" in shop.last(ANNA.id)


async def test_feedback_on_demand_is_limited_per_day(shop: Harness) -> None:
    for _ in range(shop.business.guards.feedback_per_day + 2):
        await shop.send(EMMA, "/feedback")
    assert await rows(shop, Survey) == shop.business.guards.feedback_per_day
    assert "told us a lot today" in shop.last(EMMA.id)


async def test_repeated_unhappy_answers_fold_into_the_open_alert(shop: Harness) -> None:
    with_guards(shop, feedback_per_day=30)
    shop.clock.set_local(12)
    for _ in range(20):
        await shop.send(EMMA, "/feedback")
        async with shop.db.reading() as session:
            survey = await session.scalar(
                select(Survey).where(Survey.status == SurveyStatus.ASKED).order_by(Survey.id.desc()).limit(1)
            )
        assert survey is not None
        await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=0))  # type: ignore[arg-type]
    await shop.send(EMMA, "Still bad!")  # the comment on the latest answer
    async with shop.db.reading() as session:
        (alert,) = list(await session.scalars(select(Alert)))
    assert alert.repeats == 19 and alert.last_survey_id is not None
    posted = [m for m in shop.sent(SendMessage, GROUP_ID) if "Unhappy customer" in m.text]
    assert len(posted) == 1  # one message in the group, not twenty
    shown = [t for t in shop.texts(GROUP_ID) if f"alert #{alert.id}" in t][-1]
    assert "19 more unhappy answers" in shown and "Still bad!" in shown
