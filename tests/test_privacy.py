"""Data rights: /mydata exports everything stored about the customer; /deleteme erases it and
leaves accounting whole; old support messages go after the retention period."""

from __future__ import annotations

import json
from typing import Any

from aiogram.methods import EditForumTopic, EditMessageText, SendDocument
from aiogram.types import User
from sqlalchemy import func, select, text
from sqlmodel import SQLModel

from bot.core.callbacks import ConsentCB, DeleteMeCB, JoinCB, ProfileCB, SurveyCB
from bot.core.inbox import Inbox, Outcome
from storage.models import Customer, EntryKind, LedgerEntry, TicketMessage
from tests.conftest import CASHIER, EMMA, GROUP_ID, MANAGER, Harness, entries
from tests.test_support import topic_message, topic_of
from tests.test_surveys import asked

ZOFIA = User(id=1005, is_bot=False, first_name="Zofia", last_name="Wiśniewska", username="zofia_w", language_code="pl")
COMMENT = "The latte was cold and the barista Zbigniew was rude"
SUPPORT_TEXT = "My phone is +48 601 234 567, please call me about order 77"
FAQ_TEXT = "do you have oat milk for my daughter Helenka"
SECRETS = ["Zofia", "Wiśniewska", "zofia_w", "15.03", COMMENT, SUPPORT_TEXT, FAQ_TEXT, "Helenka", "601 234 567"]


async def a_full_life(h: Harness) -> None:
    """Zofia joins, agrees to offers, adds her birthday, buys, answers a survey with a comment,
    asks the FAQ and writes to support, and a manager answers her."""
    await h.send(ZOFIA, "/start")
    await h.press(ZOFIA, JoinCB())
    await h.press(ZOFIA, ConsentCB(granted=True))
    await h.press(ZOFIA, ProfileCB(action="birthday"))
    await h.send(ZOFIA, "15.03")
    survey = await asked(h, ZOFIA)
    await h.press(ZOFIA, SurveyCB(survey_id=survey.id, score=3))  # type: ignore[arg-type]
    await h.send(ZOFIA, COMMENT)
    await h.send(ZOFIA, FAQ_TEXT)
    await h.send(ZOFIA, "/support")
    await h.send(ZOFIA, SUPPORT_TEXT)
    await topic_message(h, ZOFIA, "We will call you today, Zofia")


async def test_mydata_sends_everything_stored(shop: Harness) -> None:
    h = shop
    await a_full_life(h)
    h.clear()
    await h.send(ZOFIA, "/mydata")
    (document,) = h.sent(SendDocument, ZOFIA.id)
    assert document.document.filename.startswith("my-data-") and document.document.filename.endswith(".json")
    data = json.loads(h.session.documents[max(h.session.documents)])
    profile = data["profile"]
    assert (profile["first_name"], profile["last_name"], profile["username"]) == ("Zofia", "Wiśniewska", "zofia_w")
    assert profile["telegram_id"] == ZOFIA.id and profile["birthday"] == "15.03"
    customer = await h.customer(ZOFIA)
    assert profile["card_number"] == customer.card_number and profile["balance_points"] == customer.balance
    assert data["consents"]["marketing"]["given"] is True
    assert [(c["purpose"], c["granted"]) for c in data["consents"]["history"]] == [
        ("programme", True),
        ("marketing", True),
    ]
    assert [e["kind"] for e in data["ledger"]] == ["welcome", "purchase"]
    assert sum(e["points"] for e in data["ledger"]) == customer.balance
    assert [(s["score"], s["comment"]) for s in data["surveys"]] == [(3, COMMENT)]
    messages = [(m["from"], m["text"]) for m in data["support_messages"]]
    assert ("you", SUPPORT_TEXT) in messages and ("manager", "We will call you today, Zofia") in messages
    assert FAQ_TEXT in [q["text"] for q in data["faq_questions"]]


async def all_values(h: Harness) -> list[tuple[str, str, Any]]:
    """Every value of every column of every table: (table, column, value)."""
    out = []
    async with h.db.reading() as session:
        for table in SQLModel.metadata.sorted_tables:
            rows = await session.execute(text(f"SELECT * FROM {table.name}"))  # noqa: S608 - our own table names
            for row in rows.mappings():
                out += [(table.name, column, value) for column, value in row.items()]
    return out


async def test_deleteme_erases_personal_data_and_keeps_the_ledger_whole(shop: Harness) -> None:
    h = shop
    await a_full_life(h)
    # A message of hers that failed every try, kept in the inbox for the operator with her words.
    inbox: Inbox = h.dp["inbox"]
    failed = h.message_update(ZOFIA, SUPPORT_TEXT)
    assert await inbox.take(failed)
    outcome = await inbox.failed(failed.update_id, RuntimeError("broken"))
    for wait in (11, 61, 301):  # the replays, failing too
        h.clock.advance(seconds=wait)
        assert await inbox.claim_due()
        outcome = await inbox.failed(failed.update_id, RuntimeError("broken"))
    assert outcome is Outcome.GAVE_UP
    before = await h.customer(ZOFIA)
    topic = await topic_of(h, ZOFIA)
    await h.send(ZOFIA, "/deleteme")
    assert "⚠️" in h.last(ZOFIA.id)  # the points that will be lost are named
    await h.press(ZOFIA, DeleteMeCB(confirm=False))
    assert (await h.customer(ZOFIA)).card_number == before.card_number  # "No" keeps everything
    h.clear()
    await h.press(ZOFIA, DeleteMeCB(confirm=True))
    assert "deleted" in h.last(ZOFIA.id) or "usunięte" in h.last(ZOFIA.id)

    leaks = [
        (table, column, value)
        for table, column, value in await all_values(h)
        if (isinstance(value, str) and any(secret in value for secret in SECRETS)) or value == ZOFIA.id
    ]
    assert leaks == []
    async with h.db.reading() as session:
        erased = await session.get(Customer, before.id)
        assert erased is not None and erased.deleted_at is not None and not erased.is_member
        assert erased.balance == 0 and erased.lifetime_spend == before.lifetime_spend  # accounting keeps amounts
        kept = await session.scalar(select(func.count()).select_from(TicketMessage))
        assert kept and kept > 0  # the rows (dates, directions) stay for the managers' figures
        for customer in await session.scalars(select(Customer)):
            total = await session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(LedgerEntry.customer_id == customer.id)
            )
            assert customer.balance == total
    forfeit = await entries(h, EntryKind.FORFEIT)
    assert [(e.customer_id, e.points) for e in forfeit] == [(before.id, -before.balance)]
    # The managers' topic shows the customer as deleted.
    renamed = [r for r in h.session.requests if isinstance(r, EditForumTopic) and r.message_thread_id == topic]
    assert renamed and "Deleted customer" in (renamed[-1].name or "")
    edits = [r for r in h.session.requests if isinstance(r, EditMessageText) and int(r.chat_id or 0) < 0]
    headers = [r for r in edits if "Unhappy customer" not in r.text]  # the alert is edited too (tests/abuse)
    assert headers and "deleted" in headers[-1].text
    # The card no longer works at the till.
    await h.send(CASHIER, "/scan")
    await h.send(CASHIER, before.card_number or "")
    assert "Zofia" not in h.last(CASHIER.id)
    # Writing again starts afresh, as a stranger.
    await h.send(ZOFIA, "/start")
    fresh = await h.customer(ZOFIA)
    assert fresh.id != before.id and not fresh.is_member and fresh.balance == 0


async def test_a_manager_message_after_erasure_goes_nowhere(shop: Harness) -> None:
    h = shop
    await a_full_life(h)
    topic = await topic_of(h, ZOFIA)
    await h.send(ZOFIA, "/deleteme")
    await h.press(ZOFIA, DeleteMeCB(confirm=True))
    h.clear()
    await h.feed(h.group_update(MANAGER, "Are you still there?", message_thread_id=topic, is_topic_message=True))
    assert h.texts(ZOFIA.id) == []
    assert "not delivered" in h.last(GROUP_ID)
    async with h.db.reading() as session:
        assert "Are you still there?" not in list(await session.scalars(select(TicketMessage.text)))


async def test_old_support_messages_are_deleted_after_the_retention_period(shop: Harness) -> None:
    h = shop
    await a_full_life(h)
    h.clock.advance(days=400)
    await h.send(EMMA, "/support")
    await h.send(EMMA, "A new question")
    await h.tick()  # 24 months in the example file: nothing is old enough yet
    async with h.db.reading() as session:
        assert SUPPORT_TEXT in list(await session.scalars(select(TicketMessage.text)))
    h.clock.advance(days=400)
    await h.tick()
    async with h.db.reading() as session:
        left = list(await session.scalars(select(TicketMessage.text).where(TicketMessage.text.is_not(None))))
    assert left == ["A new question"]
    assert [v for _t, _c, v in await all_values(h) if isinstance(v, str) and FAQ_TEXT in v] == []
    assert await h.customer(ZOFIA)  # the customer and her card stay: only the old messages go
