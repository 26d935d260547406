"""Abuse found by the security probe (issue 15): customers' words and data must not reach places
they were never meant for: a public FAQ button, another group, a group's button, an old alert."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiogram.methods import EditMessageText, SendDocument, SendMessage, SendPhoto
from aiogram.types import Chat, Message, Update, User
from sqlalchemy import select

from bot.core.callbacks import AlertCB, DeleteMeCB, DraftCB, FaqMenuCB, StatsCB, TicketCB
from bot.core.entities import parse_html
from storage.models import Alert, FaqDraft, ProcessedUpdate
from tests.conftest import EMMA, GROUP_ID, MANAGER, OWNER, STRANGER, Harness
from tests.test_alerts import unhappy

OTHER_GROUP = -1002000000002  # a group a manager added the bot to: not the managers' group


def other_group_update(h: Harness, user: User, text: str) -> Update:
    message = Message(
        message_id=next(h._message_ids),
        date=h.clock(),
        chat=Chat(id=OTHER_GROUP, type="supergroup", title="Friends"),
        from_user=user,
        text=text,
    )
    return Update(update_id=next(h._update_ids), message=message)


def anything_to(h: Harness, chat_id: int) -> list[Any]:
    return [r for r in h.session.requests if int(getattr(r, "chat_id", 0) or 0) == chat_id]


# --- #8: staff commands and buttons stay in the managers' group and private chats -------------------


async def test_reports_and_staff_commands_say_nothing_in_another_group(shop: Harness) -> None:
    h = shop
    await unhappy(h, EMMA)  # an alert with Emma's name, and figures to report
    h.clear()
    for user, command in (
        (MANAGER, "/stats"),
        (MANAGER, "/export"),
        (OWNER, "/stats 90"),
        (OWNER, "/export"),
        (OWNER, "/faq_drafts"),
        (OWNER, "/faq_stats"),
        (OWNER, "/reload_faq"),
        (MANAGER, "/faq"),
        (MANAGER, "/close"),
        (OWNER, "/broadcast"),
        (MANAGER, "/cancel"),
    ):
        await h.feed(other_group_update(h, user, command))
    assert anything_to(h, OTHER_GROUP) == []
    # The same in the managers' group still answers.
    await h.send_group(MANAGER, "/stats")
    assert "Feedback, last 30 days" in h.last(GROUP_ID) or "Opinie" in h.last(GROUP_ID)


async def test_staff_buttons_pressed_in_another_group_do_nothing(shop: Harness) -> None:
    h = shop
    alert_id = await unhappy(h, EMMA)
    await h.send(EMMA, "/support")
    h.clear()
    for user, data in (
        (MANAGER, StatsCB(action="show", days=30)),
        (MANAGER, StatsCB(action="csv", days=30)),
        (MANAGER, StatsCB(action="chart", days=30)),
        (MANAGER, AlertCB(action="contact", alert_id=alert_id)),
        (MANAGER, TicketCB(action="take", ticket_id=1)),
        (OWNER, DraftCB(action="approve", draft_id=1)),
    ):
        await h.feed(h.callback_update(user, data, chat_id=OTHER_GROUP))
    for kind in (SendMessage, SendDocument, SendPhoto):
        assert h.sent(kind, OTHER_GROUP) == []
    assert [r for r in anything_to(h, OTHER_GROUP)] == []


# --- #6, #11: a customer's words never become a public FAQ button; a manager's answer is text ------


async def faq_draft_from(h: Harness, user: User, question: str, answer: str) -> int:
    """Emma asks a person, Marta answers in the topic and proposes the answer for the FAQ."""
    from tests.test_support import conversation, topic_message

    await conversation(h, user, question)
    reply = await topic_message(h, user, answer)
    await h.send_group(
        MANAGER, "/faq", message_thread_id=reply.message_thread_id, is_topic_message=True, reply_to_message=reply
    )
    async with h.db.reading() as session:
        draft = await session.scalar(select(FaqDraft).order_by(FaqDraft.id.desc()))
    assert draft is not None and draft.question == question
    return draft.id  # type: ignore[return-value]


async def approve(h: Harness, draft_id: int, wording: str) -> None:
    await h.send(OWNER, "/faq_drafts")
    await h.press(OWNER, DraftCB(action="approve", draft_id=draft_id))
    await h.press(OWNER, DraftCB(action="put", draft_id=draft_id, category="menu"))
    await h.send(OWNER, wording)


def buttons_of(h: Harness, chat_id: int) -> list[str]:
    return [b.text for row in h.last_markup(chat_id).inline_keyboard for b in row]


async def test_an_approved_faq_entry_shows_the_owners_wording_never_the_customers(harness: Harness) -> None:
    h = harness
    question = "Hi, it's Emma Stone, my son Tom is allergic: are your oat cookies nut free?"
    draft_id = await faq_draft_from(h, EMMA, question, "Yes: our oat cookies are baked without nuts.")
    await approve(h, draft_id, "Are the oat cookies nut free?")
    async with h.db.reading() as session:
        draft = await session.get(FaqDraft, draft_id)
    assert draft is not None and draft.status == "approved" and draft.title == "Are the oat cookies nut free?"
    # Another customer browses the FAQ: the button reads the owner's words.
    await h.send(STRANGER, "/faq")
    await h.press(STRANGER, FaqMenuCB(action="cat", value="menu"))
    labels = buttons_of(h, STRANGER.id)
    assert "Are the oat cookies nut free?" in labels
    assert not any("Emma" in label or "Tom" in label for label in labels)
    # And finds it by asking.
    await h.send(STRANGER, "are the oat cookies nut free?")
    assert "baked without nuts" in h.last(STRANGER.id) and "Emma" not in h.last(STRANGER.id)


async def test_a_draft_needs_a_wording_of_its_own_before_it_goes_live(harness: Harness) -> None:
    h = harness
    draft_id = await faq_draft_from(h, EMMA, "Do you sell oat cookies?", "Yes, every morning.")
    await h.send(OWNER, "/faq_drafts")
    await h.press(OWNER, DraftCB(action="approve", draft_id=draft_id))
    await h.press(OWNER, DraftCB(action="put", draft_id=draft_id, category="menu"))
    await h.send(OWNER, "no")  # too short for a question
    assert "3 to 120 characters" in h.last(OWNER.id)
    await h.send(OWNER, "/cancel")
    async with h.db.reading() as session:
        draft = await session.get(FaqDraft, draft_id)
    assert draft is not None and draft.status == "draft"  # still waiting, nothing live
    await h.send(STRANGER, "do you sell oat cookies?")
    assert "every morning" not in h.last(STRANGER.id)


async def test_a_managers_answer_with_a_less_than_sign_reaches_customers(harness: Harness) -> None:
    h = harness
    draft_id = await faq_draft_from(h, EMMA, "How much is a refill?", "A refill costs <3 PLN, & it's free on Mondays.")
    await approve(h, draft_id, "How much is a coffee refill?")
    await h.send(STRANGER, "how much is a coffee refill?")  # the fake Telegram refuses broken HTML
    shown, _entities = parse_html(h.last(STRANGER.id))  # what the customer reads
    assert "A refill costs <3 PLN, & it's free on Mondays." in shown


async def test_a_managers_answer_with_braces_reaches_customers_as_written(harness: Harness) -> None:
    """FAQ answers from the file may name the programme's figures ({tiers}); a manager's words are
    plain text, so their braces are shown as typed, never read as a figure (or a crash)."""
    h = harness
    draft_id = await faq_draft_from(h, EMMA, "Is the wifi code on the receipt?", "Type {wifi} or {} at the login page.")
    await approve(h, draft_id, "Where is the wifi code?")
    await h.send(STRANGER, "where is the wifi code?")
    assert "Type {wifi} or {} at the login page." in h.last(STRANGER.id)


async def test_erasure_reaches_approved_and_rejected_drafts(harness: Harness) -> None:
    h = harness
    live = await faq_draft_from(h, EMMA, "Emma here: can I bring my dog Rex?", "Dogs are welcome on the terrace.")
    await approve(h, live, "Can I bring a dog?")
    gone = await faq_draft_from(h, EMMA, "Emma again, is Tom's birthday cake ready?", "Yes, at 5 pm.")
    await h.send(OWNER, "/faq_drafts")
    await h.press(OWNER, DraftCB(action="reject", draft_id=gone))
    await h.send(EMMA, "/deleteme")
    await h.press(EMMA, DeleteMeCB(confirm=True))
    async with h.db.reading() as session:
        drafts = {d.id: d for d in await session.scalars(select(FaqDraft))}
    assert drafts[live].question == "" and drafts[gone].question == ""
    assert drafts[live].status == "approved" and drafts[live].title == "Can I bring a dog?"  # the owner's words stay
    # The live FAQ no longer holds her words, and still answers in the owner's.
    entries = [e for e in h.dp["faq"].faq.entries if e.id == f"draft_{live}"]
    assert entries and all("Rex" not in p for t in entries[0].texts.values() for p in t.phrasings)
    await h.send(STRANGER, "can I bring a dog?")  # the FAQ file has a pets entry too: a choice, or the answer
    assert "terrace" in h.last(STRANGER.id) or "Can I bring a dog?" in buttons_of(h, STRANGER.id)


# --- #17: the alert already posted forgets the customer who erased their data ---------------------


async def test_after_deleteme_the_posted_alert_no_longer_names_the_customer(shop: Harness) -> None:
    h = shop
    h.clock.set_local(12)
    alert_id = await unhappy(h, EMMA)
    await h.send(EMMA, "The barista Tom was rude to me")  # the follow-up comment
    (before,) = [r for r in h.sent(SendMessage, GROUP_ID) if "Unhappy customer" in r.text]
    assert "Emma Stone" in before.text
    h.clear()
    await h.send(EMMA, "/deleteme")
    await h.press(EMMA, DeleteMeCB(confirm=True))
    edits = [r for r in h.session.requests if isinstance(r, EditMessageText) and f"alert #{alert_id}" in r.text]
    assert edits, "the alert's message was not edited"
    async with h.db.reading() as session:
        alert = await session.get(Alert, alert_id)
    assert alert is not None and edits[-1].message_id == alert.message_id and edits[-1].chat_id == alert.chat_id
    last = edits[-1].text
    assert "Emma" not in last and "Stone" not in last and "rude" not in last and "Deleted customer" in last


# --- #7: the bot token never lands in a table or a log line ----------------------------------------


async def every_stored_value(h: Harness) -> str:
    """Every row of every table, as one text to search."""
    from sqlalchemy import text

    from storage.models import SQLModel

    found = []
    async with h.db.reading() as session:
        for table in SQLModel.metadata.sorted_tables:
            for row in await session.execute(text(f"SELECT * FROM {table.name}")):
                found.append(repr(tuple(row)))
    return "\n".join(found)


async def test_the_token_in_an_error_lands_in_no_table_and_no_log(
    shop: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiogram.types import PhotoSize

    from tests.conftest import CASHIER, TOKEN

    caplog.set_level(logging.DEBUG)
    h = shop
    # A QR photo Telegram's file server will not give (aiohttp's error names the URL, token and all).
    await h.send(CASHIER, "/scan")
    photo = [PhotoSize(file_id="gone", file_unique_id="gone", width=600, height=600, file_size=1000)]
    await h.feed(h.message_update(CASHIER, None, photo=photo))
    assert "could not download this photo" in h.last(CASHIER.id)  # told plainly, and asked again
    assert "ClientResponseError" in caplog.text
    # A handler that fails with such an error: the inbox stores the error for the operator.
    url = f"https://api.telegram.org/file/bot{TOKEN}/photos/file_7.jpg"

    async def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"GET {url} failed")

    monkeypatch.setattr(h.loyalty, "history", failing)
    await h.send(EMMA, "/history")
    assert "Sorry, something went wrong" in h.last(EMMA.id)
    async with h.db.reading() as session:
        (failed,) = list(await session.scalars(select(ProcessedUpdate).where(ProcessedUpdate.error.is_not(None))))
    assert "RuntimeError: GET https://api.telegram.org/file/bot<redacted>/photos" in (failed.error or "")
    secret = TOKEN.partition(":")[2]
    assert secret not in await every_stored_value(h)
    assert secret not in caplog.text
    for record in caplog.records:  # as any handler would print it, traceback included
        assert secret not in logging.Formatter().format(record)
