"""Issue 15: odd input and odd places. Numbers in digits that are not ASCII, captions counted the
way Telegram counts them, and a customer's buttons pressed where they make no sense. Each probe
once ended in a crash, an apology and three replays."""

from __future__ import annotations

import logging

import pytest
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import CopyMessage, SendMessage
from aiogram.types import PhotoSize

from bot.core.callbacks import (
    CardCB,
    CommentCB,
    ConsentCB,
    DeleteMeCB,
    FaqMenuCB,
    FaqRateCB,
    JoinCB,
    LanguageCB,
    MenuCB,
    ProfileCB,
    RedeemAnswerCB,
    SupportCB,
    SurveyCB,
    UnsubscribeCB,
)
from bot.core.entities import MAX_CAPTION, parse_html, telegram_length
from storage.models import EntryKind
from tests.conftest import CASHIER, EMMA, GROUP_ID, MANAGER, OWNER, Harness, entries, open_card
from tests.test_support import conversation, topic_message

SORRY = "Sorry, something went wrong"
NOT_ASCII = ["²", "①", "٣", "５", "12²", "1①"]  # superscript, circled, Arabic-Indic, full-width


# --- #12: numbers are read from ASCII digits only ----------------------------------------------


@pytest.mark.parametrize("number", NOT_ASCII)
async def test_commands_with_numbers_refuse_digits_that_are_not_ascii(shop: Harness, number: str) -> None:
    emma = await shop.customer(EMMA)
    for user, text in (
        (OWNER, f"/void {number} typo"),
        (OWNER, f"/adjust {emma.card_number} +{number} bonus"),
        (OWNER, f"/stats {number}"),
        (CASHIER, f"/scan {number}"),
    ):
        shop.clear()
        await shop.send(user, text)
        reply = shop.last(user.id)
        assert SORRY not in reply, (text, reply)
    assert await entries(shop, EntryKind.ADJUSTMENT) == [] and await entries(shop, EntryKind.REVERSAL) == []


@pytest.mark.parametrize("number", NOT_ASCII)
async def test_a_redemption_refuses_points_in_digits_that_are_not_ascii(shop: Harness, number: str) -> None:
    from bot.core.callbacks import ScanCB

    customer_id = await open_card(shop, EMMA)
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=customer_id))
    await shop.send(CASHIER, "100")
    shop.clear()
    await shop.send(CASHIER, number)
    assert "whole number" in shop.last(CASHIER.id)
    assert shop.sent(SendMessage, EMMA.id) == []  # nobody was asked to confirm anything


# --- #14: one length rule, Telegram's ------------------------------------------------------------


async def test_a_caption_of_emoji_is_counted_as_telegram_counts_it(harness: Harness) -> None:
    await conversation(harness, EMMA, "Show me the cake")
    caption = "🎂" * 505  # 505 characters, but 1 010 UTF-16 units: with the name on top, over 1 024
    photo = [PhotoSize(file_id="cake", file_unique_id="cake", width=10, height=10)]
    await topic_message(harness, EMMA, None, photo=photo, caption=caption)
    copies = [r for r in harness.session.requests if isinstance(r, CopyMessage) and int(r.chat_id) == EMMA.id]
    assert copies, "the photo never reached the customer"
    for copy in copies:  # the fake Telegram refuses a caption over the limit
        if copy.caption is not None:
            assert telegram_length(parse_html(copy.caption)[0]) <= MAX_CAPTION
    assert "Marta Manager" in " ".join(harness.texts(EMMA.id)) + " ".join(c.caption or "" for c in copies)


# --- #13: a customer's buttons pressed in a group ------------------------------------------------

CUSTOMER_BUTTONS: list[CallbackData] = [
    MenuCB(action="card"),
    MenuCB(action="faq"),
    MenuCB(action="support"),
    FaqMenuCB(action="cats"),
    FaqMenuCB(action="cat", value="menu"),
    FaqRateCB(query=1, helpful=False),
    SupportCB(source="menu"),
    CardCB(action="refresh"),
    CardCB(action="invite"),
    JoinCB(),
    LanguageCB(code="pl"),
    ProfileCB(action="birthday"),
    ConsentCB(granted=True),
    UnsubscribeCB(),
    DeleteMeCB(confirm=True),
    SurveyCB(survey_id=1, score=0),
    CommentCB(action="skip", survey_id=1),
    RedeemAnswerCB(op_id=1, accept=True),
]


@pytest.mark.parametrize("data", CUSTOMER_BUTTONS, ids=lambda d: d.pack())
async def test_a_customers_button_pressed_in_a_group_is_answered_quietly(
    shop: Harness, data: CallbackData, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    await shop.press_group(EMMA, data)
    await shop.press_group(MANAGER, data)
    assert shop.sent(SendMessage, GROUP_ID) == []  # no apology, nothing else, in the group
    assert "This button no longer works." in shop.alerts()  # the press itself is answered
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    async with shop.db.reading() as session:
        from sqlalchemy import select

        from storage.models import ProcessedUpdate

        waiting = list(await session.scalars(select(ProcessedUpdate).where(ProcessedUpdate.finished_at.is_(None))))
    assert waiting == []  # nothing was scheduled for a replay


# --- #16: a survey's follow-up never swallows a message meant for a person ------------------------

THANKS = "Thank you for your feedback!"


async def copied_to_topic(h: Harness, text_fragment: str) -> bool:
    from storage.models import TicketMessage

    async with h.db.reading() as session:
        from sqlalchemy import select

        texts = list(await session.scalars(select(TicketMessage.text)))
    return any(text_fragment in (t or "") for t in texts)


async def test_after_support_a_pending_follow_up_does_not_take_the_question(shop: Harness) -> None:
    from tests.abuse.test_money import feedback

    await feedback(shop, EMMA, 3)  # "What went wrong?" now waits for a comment
    assert "What went wrong?" in shop.last(EMMA.id)
    await shop.send(EMMA, "/support")
    shop.clear()
    await shop.send(EMMA, "My points from Monday are missing")
    assert THANKS not in " ".join(shop.texts(EMMA.id))
    assert await copied_to_topic(shop, "points from Monday")
    assert [r for r in shop.sent(SendMessage, GROUP_ID) if r.text.startswith("<b>Emma:</b>\nMy points from Monday")]


async def test_after_rating_a_closed_request_the_next_message_goes_to_the_managers(shop: Harness) -> None:
    from bot.core.callbacks import TicketCB
    from storage.models import Survey

    ticket_id = await conversation(shop, EMMA, "Can I change my order?")
    await shop.press_group(MANAGER, TicketCB(action="close", ticket_id=ticket_id))
    async with shop.db.reading() as session:
        from sqlalchemy import select

        (survey,) = list(await session.scalars(select(Survey)))
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=2))  # unhappy: a follow-up is asked
    shop.clear()
    await shop.send(EMMA, "Also, is my order from yesterday ready?")
    assert THANKS not in " ".join(shop.texts(EMMA.id))
    assert await copied_to_topic(shop, "order from yesterday")
