"""Every update Telegram really sends is recorded and handled: real update JSON of each kind the bot
handles, optional fields included, through the production dispatcher as polling and the webhook
parse it (`feed_raw_update`). The fields aiogram fills with `Default` placeholders
(`link_preview_options` on a text with a link, or on the bot's own message inside a button press)
once made an update impossible to record, and so lost it."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiogram.methods import SendMessage
from aiogram.types import Update
from sqlalchemy import select

from bot.core.callbacks import SupportCB, UnsubscribeCB
from bot.core.inbox import update_json
from storage.models import ProcessedUpdate
from tests.conftest import EMMA, GROUP_ID, MANAGER, Harness

DATE = 1_773_223_200  # a fixed moment: nothing here reads the wall clock
_ids = itertools.count(500_000)

PREVIEW_OFF = {"is_disabled": True}


def user(person: Any) -> dict[str, Any]:
    return {
        "id": person.id,
        "is_bot": False,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "language_code": person.language_code,
    }


def private(person: Any, **message: Any) -> dict[str, Any]:
    chat = {"id": person.id, "type": "private", "first_name": person.first_name}
    return {"message_id": next(_ids), "date": DATE, "chat": chat, "from": user(person), **message}


def bot_message(chat_id: int, **message: Any) -> dict[str, Any]:
    """A message of the bot's own, as it comes back inside a button press."""
    chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
    me = {"id": 123456789, "is_bot": True, "first_name": "Front door", "username": "frontdoor_bot"}
    return {"message_id": next(_ids), "date": DATE, "chat": chat, "from": me, **message}


def link_text(text: str, url: str) -> dict[str, Any]:
    offset = text.index(url)
    return {
        "text": text,
        "entities": [{"type": "url", "offset": offset, "length": len(url)}],
        "link_preview_options": PREVIEW_OFF,
    }


async def feed(h: Harness, **update: Any) -> int:
    update_id = next(_ids)
    await h.dp.feed_raw_update(h.bot, {"update_id": update_id, **update})
    return update_id


async def recorded(h: Harness, update_id: int) -> ProcessedUpdate:
    async with h.db.reading() as session:
        row = await session.scalar(select(ProcessedUpdate).where(ProcessedUpdate.update_id == update_id))
    assert row is not None, f"update {update_id} was never recorded"
    return row


async def handled(h: Harness, update_id: int) -> None:
    row = await recorded(h, update_id)
    assert row.finished_at is not None and row.error is None, row.error


async def test_a_customers_message_with_a_link_reaches_the_topic(shop: Harness) -> None:
    await shop.press(EMMA, SupportCB(source="menu"))
    shop.clear()
    update_id = await feed(shop, message=private(EMMA, **link_text("Is this yours? https://example.com/x", "https://")))
    await handled(shop, update_id)
    (copy,) = [r for r in shop.sent(SendMessage, GROUP_ID) if r.text.startswith("<b>Emma:</b>")]
    assert copy.text == "<b>Emma:</b>\nIs this yours? https://example.com/x"


async def test_a_managers_answer_with_a_link_reaches_the_customer(shop: Harness) -> None:
    await shop.press(EMMA, SupportCB(source="menu"))
    await shop.send(EMMA, "Where are you?")
    (copy,) = [r for r in shop.sent(SendMessage, GROUP_ID) if r.text.startswith("<b>Emma:</b>")]
    shop.clear()
    group = {"id": GROUP_ID, "type": "supergroup", "title": "Managers", "is_forum": True}
    answer = {
        "message_id": next(_ids),
        "date": DATE,
        "chat": group,
        "from": user(MANAGER),
        "message_thread_id": copy.message_thread_id,
        "is_topic_message": True,
        **link_text("Here: https://maps.example.com/cafe", "https://maps.example.com/cafe"),
    }
    update_id = await feed(shop, message=answer)
    await handled(shop, update_id)
    assert any("maps.example.com" in text for text in shop.texts(EMMA.id))


async def test_unsubscribe_under_a_broadcast_with_a_link_works(shop: Harness) -> None:
    broadcast = bot_message(
        EMMA.id,
        **link_text("New menu: https://example.com/menu", "https://example.com/menu"),
        reply_markup={"inline_keyboard": [[{"text": "🔕 Unsubscribe", "callback_data": UnsubscribeCB().pack()}]]},
    )
    query = {
        "id": str(next(_ids)),
        "from": user(EMMA),
        "chat_instance": "-77",
        "message": broadcast,
        "data": UnsubscribeCB().pack(),
    }
    update_id = await feed(shop, callback_query=query)
    await handled(shop, update_id)
    assert shop.alerts(), "the press was never answered"


# Shapes of every kind the bot handles, with the optional fields Telegram adds.
SHAPES: dict[str, dict[str, Any]] = {
    "text with a link": {"message": private(EMMA, **link_text("see https://example.com", "https://example.com"))},
    "start with entities": {
        "message": private(EMMA, text="/start", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
    },
    "photo with a caption": {
        "message": private(
            EMMA,
            photo=[{"file_id": "AgAD1", "file_unique_id": "u1", "width": 90, "height": 90, "file_size": 1200}],
            caption="my receipt *bold*",
            caption_entities=[{"type": "bold", "offset": 11, "length": 6}],
            show_caption_above_media=False,
        )
    },
    "sticker": {
        "message": private(
            EMMA,
            sticker={
                "file_id": "CAAD",
                "file_unique_id": "s1",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "👍",
            },
        )
    },
    "contact": {"message": private(EMMA, contact={"phone_number": "+48123", "first_name": "Emma", "user_id": EMMA.id})},
    "reply to the bot's message with a link": {
        "message": private(
            EMMA,
            text="thanks",
            reply_to_message=bot_message(EMMA.id, **link_text("Menu https://example.com", "https://example.com")),
            quote={"text": "Menu", "position": 0, "is_manual": True},
        )
    },
    "button under the bot's message with a link": {
        "callback_query": {
            "id": "cq1",
            "from": user(EMMA),
            "chat_instance": "1",
            "message": bot_message(EMMA.id, **link_text("FAQ https://example.com", "https://example.com")),
            "data": "nonsense",
        }
    },
    "button under an inaccessible message": {
        "callback_query": {
            "id": "cq2",
            "from": user(EMMA),
            "chat_instance": "1",
            "message": {"chat": {"id": EMMA.id, "type": "private"}, "message_id": 1, "date": 0},
            "data": "nonsense",
        }
    },
    "blocked the bot": {
        "my_chat_member": {
            "chat": {"id": EMMA.id, "type": "private", "first_name": "Emma"},
            "from": user(EMMA),
            "date": DATE,
            "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "bot"}},
            "new_chat_member": {
                "status": "kicked",
                "until_date": 0,
                "user": {"id": 1, "is_bot": True, "first_name": "bot"},
            },
        }
    },
    "forum topic service message": {
        "message": {
            "message_id": 42,
            "date": DATE,
            "chat": {"id": GROUP_ID, "type": "supergroup", "title": "Managers", "is_forum": True},
            "from": user(MANAGER),
            "message_thread_id": 41,
            "is_topic_message": True,
            "forum_topic_edited": {"name": "renamed"},
        }
    },
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_every_shape_is_recorded_and_handled(shop: Harness, shape: str) -> None:
    update_id = await feed(shop, **SHAPES[shape])
    await handled(shop, update_id)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_recorded_update_reads_back_as_it_came(shape: str) -> None:
    raw = {"update_id": 1, **SHAPES[shape]}
    parsed = Update.model_validate(raw)
    again = Update.model_validate_json(update_json(parsed))
    assert again.model_dump(exclude_unset=True, exclude_none=True) == parsed.model_dump(
        exclude_unset=True, exclude_none=True
    )
