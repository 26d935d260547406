"""The hand-off: a customer's request in their own topic of the managers' group, messages both
ways, take/assign/close/reopen, the rating after, working hours, reminders, canned replies,
blocked customers, missing rights and the group without topics."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from aiogram.methods import CopyMessage, CreateForumTopic, EditForumTopic, SendMessage
from aiogram.types import Chat, Contact, Location, Message, PhotoSize, Sticker, Voice
from sqlalchemy import select

from bot.core.callbacks import MenuCB, SupportCB, SurveyCB, TicketCB
from bot.core.i18n import create_i18n
from bot.core.scheduler import Scheduler
from bot.core.timers import Timers
from bot.dispatcher import create_dispatcher
from bot.loyalty.service import LoyaltyService
from bot.support.service import SupportService
from bot.surveys.service import SurveyService
from storage.models import SupportThread, Survey, Ticket, TicketMessage
from tests.conftest import (
    ANNA,
    EMMA,
    GROUP_ID,
    IVAN,
    MANAGER,
    MANAGER_2,
    STRANGER,
    Harness,
    make_settings,
    recorded_sql,
)

WEDNESDAY_NOON = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # 12:00 in Warsaw: the café is open


async def tickets(h: Harness) -> list[Ticket]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(Ticket).order_by(Ticket.id)))


async def threads(h: Harness) -> list[SupportThread]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(SupportThread)))


async def topic_of(h: Harness, user: Any) -> int:
    customer = await h.customer(user)
    async with h.db.reading() as session:
        thread = await session.scalar(select(SupportThread).where(SupportThread.customer_id == customer.id))
    assert thread is not None and thread.topic_id is not None
    return thread.topic_id


async def conversation(h: Harness, user: Any, first: str | None = None) -> int:
    h.clock.now = WEDNESDAY_NOON
    await h.send(user, "/support")
    if first is not None:
        await h.send(user, first)
    (ticket,) = [t for t in await tickets(h) if t.customer_id == (await h.customer(user)).id]
    return ticket.id  # type: ignore[return-value]


async def topic_message(
    h: Harness, user: Any, text: str | None = None, manager: Any = MANAGER, **fields: Any
) -> Message:
    """A manager writes in the customer's topic; returns the message as the group has it."""
    topic = await topic_of(h, user)
    update = h.group_update(manager, text, message_thread_id=topic, is_topic_message=True, **fields)
    await h.feed(update)
    assert update.message is not None
    return update.message


def copies_into(h: Harness, topic: int) -> list[CopyMessage | SendMessage]:
    """The customer's messages as they reached their topic: a text under their name line
    ("<b>Emma:</b>"), anything else copied."""
    return [
        r
        for r in h.session.requests
        if (isinstance(r, CopyMessage) or (isinstance(r, SendMessage) and re.match(r"<b>[^<]+:</b>\n", r.text)))
        and r.message_thread_id == topic
    ]


async def test_support_opens_one_topic_with_a_pinned_header_and_copies_the_question(harness: Harness) -> None:
    await conversation(harness, EMMA, "My points from Monday are missing")
    assert "A manager will answer in this chat." in harness.texts(EMMA.id)[0]
    (create,) = harness.sent(CreateForumTopic, GROUP_ID)
    assert create.name.startswith("🇬🇧 Emma S.")
    topic = await topic_of(harness, EMMA)
    header = harness.sent(SendMessage, GROUP_ID)[0]
    assert header.message_thread_id == topic and "Emma Stone" in header.text and "Language: English" in header.text
    assert (
        GROUP_ID,
        harness.session.requests.index(header) and harness.session.pinned[0][1],
    ) and harness.session.pinned
    (copy,) = copies_into(harness, topic)
    assert isinstance(copy, SendMessage) and copy.text == "<b>Emma:</b>\nMy points from Monday are missing"
    (message,) = [m for m in await messages(harness) if m.direction == "in"]
    assert message.text == "My points from Monday are missing"
    with recorded_sql(harness.db) as statements:
        await harness.send(EMMA, "Card 1234")  # later messages reuse the topic
    assert len(harness.sent(CreateForumTopic, GROUP_ID)) == 1 and len(copies_into(harness, topic)) == 2
    # ...found with one read: no attempt to make the topic row again, nothing rolled back
    assert not [s for s in statements if "INSERT INTO support_threads" in s or s == "ROLLBACK"]
    assert len([s for s in statements if "FROM support_threads" in s]) == 1


async def messages(h: Harness) -> list[TicketMessage]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(TicketMessage).order_by(TicketMessage.id)))


async def test_every_kind_of_customer_message_is_copied_into_the_topic(harness: Harness) -> None:
    await conversation(harness, ANNA)
    topic = None
    kinds: list[dict[str, Any]] = [
        {"photo": [PhotoSize(file_id="p", file_unique_id="p", width=10, height=10)], "caption": "receipt"},
        {"voice": Voice(file_id="v", file_unique_id="v", duration=3)},
        {
            "sticker": Sticker(
                file_id="s", file_unique_id="s", type="regular", width=1, height=1, is_animated=False, is_video=False
            )
        },
        {"location": Location(latitude=52.2, longitude=21.0)},
        {"contact": Contact(phone_number="+48123", first_name="Anna")},
    ]
    for fields in kinds:
        await harness.feed(harness.message_update(ANNA, None, **fields))
    topic = await topic_of(harness, ANNA)
    assert len(copies_into(harness, topic)) == len(kinds)
    assert [m.content_type for m in await messages(harness)] == ["photo", "voice", "sticker", "location", "contact"]


async def test_a_managers_reply_reaches_the_customer_under_their_name_and_assigns_them(harness: Harness) -> None:
    await conversation(harness, ANNA, "Czy macie ciasto bez glutenu?")
    harness.clear()
    await topic_message(harness, ANNA, "Tak, mamy sernik bezglutenowy!")
    texts = harness.texts(ANNA.id)
    assert "Marta Manager" in texts[0]  # "<name> will help you" first
    assert texts[1].startswith("<b>Marta Manager") and "Tak, mamy sernik bezglutenowy!" in texts[1]
    (ticket,) = await tickets(harness)
    assert ticket.assignee_id == MANAGER.id and ticket.waiting_since is None
    renamed = harness.sent(EditForumTopic, GROUP_ID)[-1]
    assert renamed.name.endswith("→ Marta")
    await topic_message(harness, ANNA, "// she was here yesterday, check the receipt")
    assert not any("check the receipt" in t for t in harness.texts(ANNA.id))  # a note stays in the group
    assert [m.direction for m in await messages(harness)] == ["in", "out", "note"]


async def test_manager_media_goes_as_a_copy_with_the_name_in_the_caption(harness: Harness) -> None:
    await conversation(harness, EMMA, "Where exactly is the entrance?")
    photo = [PhotoSize(file_id="m", file_unique_id="m", width=10, height=10)]
    await topic_message(harness, EMMA, None, photo=photo, caption="Here, the green door")
    (copy,) = [r for r in harness.session.requests if isinstance(r, CopyMessage) and int(r.chat_id) == EMMA.id]
    assert copy.caption.startswith("<b>Marta Manager, manager:</b>") and "green door" in copy.caption
    location = Location(latitude=52.23, longitude=21.01)
    await topic_message(harness, EMMA, None, location=location)
    assert harness.last(EMMA.id) == "<b>Marta Manager, manager:</b>"  # the name, then the copied pin


async def test_take_then_assign_then_close_tells_the_customer_and_asks_for_a_rating(shop: Harness) -> None:
    ticket_id = await conversation(shop, EMMA, "Can I change my order?")
    await shop.press_group(MANAGER, TicketCB(action="take", ticket_id=ticket_id))
    assert "Marta Manager from our team will help you." in shop.last(EMMA.id)
    await shop.press_group(MANAGER_2, TicketCB(action="take", ticket_id=ticket_id))
    assert "Marta Manager" in shop.alerts()[-1]  # Oleg reads Russian: "Marta is already on it"
    await shop.press_group(MANAGER, TicketCB(action="assign", ticket_id=ticket_id, to=MANAGER_2.id))
    assert shop.last(EMMA.id).endswith(" from our team will help you.")  # the name Telegram gives for Oleg
    assert (await tickets(shop))[0].assignee_id == MANAGER_2.id
    await shop.press_group(MANAGER, TicketCB(action="assign", ticket_id=ticket_id, to=STRANGER.id))
    assert (await tickets(shop))[0].assignee_id == MANAGER_2.id  # not to someone outside the group
    topic = await topic_of(shop, EMMA)
    await shop.send_group(MANAGER_2, "/close", message_thread_id=topic, is_topic_message=True)
    texts = shop.texts(EMMA.id)
    assert "Oleg Manager has closed your request." in texts[-2]
    assert "How did we do in this conversation?" in texts[-1]
    async with shop.db.reading() as session:
        (survey,) = list(await session.scalars(select(Survey)))
    assert survey.key == f"ticket:{ticket_id}:0" and survey.kind == "rating" and survey.trigger == "support"
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=5))
    await shop.send_group(MANAGER_2, "/close", message_thread_id=topic, is_topic_message=True)
    assert shop.last(GROUP_ID) == "This customer has no open request."  # in the group's language, not Oleg's


async def test_writing_again_reopens_the_request_in_the_same_topic(harness: Harness) -> None:
    ticket_id = await conversation(harness, EMMA, "Hi")
    await harness.press_group(MANAGER, TicketCB(action="close", ticket_id=ticket_id))
    await harness.press_group(MANAGER, TicketCB(action="close", ticket_id=ticket_id))  # double tap
    assert "To zgłoszenie jest już zamknięte." in harness.alerts()[-1]  # Marta reads Polish
    harness.clock.advance(hours=2)
    await harness.send(EMMA, "One more thing")
    (ticket,) = await tickets(harness)
    assert ticket.status == "open" and ticket.reopened_count == 1
    assert "is open again" in " ".join(harness.texts(GROUP_ID))
    assert len(harness.sent(CreateForumTopic, GROUP_ID)) == 1
    await harness.press_group(MANAGER, TicketCB(action="close", ticket_id=ticket_id))
    harness.clock.advance(days=2)
    await harness.send(EMMA, "what's the wifi password")  # long after: the FAQ answers
    assert "AcmeCafe_Guest" in harness.last(EMMA.id)
    assert len(await tickets(harness)) == 1


async def test_while_a_request_is_open_free_text_goes_to_managers_not_the_faq(harness: Harness) -> None:
    await conversation(harness, EMMA)
    await harness.send(EMMA, "wifi password")
    assert not any("AcmeCafe_Guest" in t for t in harness.texts(EMMA.id))
    assert len(copies_into(harness, await topic_of(harness, EMMA))) == 1


async def test_the_faq_hands_on_the_question_it_could_not_answer(harness: Harness) -> None:
    harness.clock.now = WEDNESDAY_NOON
    await harness.send(EMMA, "are you hiring baristas")
    await harness.press(EMMA, harness.button(EMMA.id, "Talk to a person"))
    assert "I have passed your question on." in harness.last(EMMA.id)
    assert any("• “are you hiring baristas” → no answer" in t for t in harness.texts(GROUP_ID))
    (ticket,) = await tickets(harness)
    assert ticket.source == "faq"


async def test_outside_working_hours_the_customer_is_told_when_to_expect_an_answer(harness: Harness) -> None:
    harness.clock.now = datetime(2026, 11, 25, 21, 30, tzinfo=UTC)  # 22:30 in Warsaw, a Wednesday
    await harness.send(ANNA, "/support")
    assert "jutro o 08:00" in harness.last(ANNA.id)
    harness.clock.now = datetime(2026, 11, 28, 18, 30, tzinfo=UTC)  # Saturday 19:30: closed until Sunday 9:00
    await harness.send(IVAN, "/support")
    assert "завтра в 09:00" in harness.last(IVAN.id)


async def test_a_waiting_customer_earns_one_reminder_naming_the_assignee(harness: Harness) -> None:
    ticket_id = await conversation(harness, EMMA, "Hello?")
    harness.clock.advance(minutes=10)
    await harness.tick()
    assert not any("⏰" in t for t in harness.texts(GROUP_ID))
    harness.clock.advance(minutes=6)
    await harness.tick()
    await harness.tick()
    reminders = [t for t in harness.texts(GROUP_ID) if "⏰" in t]
    assert len(reminders) == 1 and "nobody has taken" in reminders[0]
    await harness.press_group(MANAGER, TicketCB(action="take", ticket_id=ticket_id))
    await topic_message(harness, EMMA, "Hi, here!")
    await harness.send(EMMA, "Thanks, and another question")
    harness.clock.advance(minutes=16)
    await harness.tick()
    reminders = [t for t in harness.texts(GROUP_ID) if "⏰" in t]
    assert len(reminders) == 2 and f"tg://user?id={MANAGER.id}" in reminders[1]


async def test_no_reminder_at_night(harness: Harness) -> None:
    harness.clock.now = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # 21:00 in Warsaw: closed
    await harness.send(EMMA, "/support")
    harness.clock.advance(hours=2)
    await harness.tick()
    assert not any("⏰" in t for t in harness.texts(GROUP_ID))


async def test_canned_replies_go_out_in_each_customers_language(harness: Harness) -> None:
    for user, expected in ((EMMA, "We are open Monday"), (IVAN, "Мы работаем"), (ANNA, "Jesteśmy otwarci")):
        await conversation(harness, user, "hours?")
        await topic_message(harness, user, "/t hours")
        assert expected in harness.last(user.id)
    await topic_message(harness, EMMA, "/t nothing")
    assert "“nothing”" in harness.last(GROUP_ID) and "hours, points_check, thanks" in harness.last(GROUP_ID)


async def test_a_customer_who_blocked_the_bot_is_reported_in_the_topic(harness: Harness) -> None:
    await conversation(harness, EMMA, "hi")
    harness.session.blocked.add(EMMA.id)
    await topic_message(harness, EMMA, "Hello Emma!")
    assert "has blocked the bot" in harness.last(GROUP_ID)
    assert (await harness.customer(EMMA)).blocked_at is not None


async def test_a_deleted_topic_is_made_again(harness: Harness) -> None:
    await conversation(harness, EMMA, "first")
    old = await topic_of(harness, EMMA)
    harness.session.deleted_topics.add(old)
    await harness.send(EMMA, "second")
    new = await topic_of(harness, EMMA)
    assert new != old and len(harness.sent(CreateForumTopic, GROUP_ID)) == 2
    assert len(copies_into(harness, new)) == 1


async def test_without_topics_messages_come_with_a_header_and_a_reply_reaches_the_customer(harness: Harness) -> None:
    harness.session.forum = False
    await conversation(harness, EMMA, "Is the terrace open?")
    group = harness.texts(GROUP_ID)
    assert sum("Topics are turned off" in t for t in group) == 1
    assert any("Emma" in t and "request #1" in t for t in group)
    (copy,) = [r for r in harness.session.requests if isinstance(r, CopyMessage) and int(r.chat_id) == GROUP_ID]
    posted = await messages(harness)
    copied = next(m for m in posted if m.content_type == "text")
    reply_to = Message(
        message_id=copied.group_message_id,  # type: ignore[arg-type]
        date=harness.clock(),
        chat=Chat(id=GROUP_ID, type="supergroup"),
        text="Is the terrace open?",
    )
    await harness.send_group(MANAGER, "Yes, until 22:00!", reply_to_message=reply_to)
    assert "Yes, until 22:00!" in harness.last(EMMA.id)
    await harness.send(IVAN, "/support")
    assert sum("Topics are turned off" in t for t in harness.texts(GROUP_ID)) == 1  # said once


async def test_missing_rights_are_said_once_and_nothing_is_lost(harness: Harness) -> None:
    harness.session.can_manage_topics = False
    await conversation(harness, EMMA, "hello")
    assert sum("Manage topics" in t for t in harness.texts(GROUP_ID)) == 1
    assert any(isinstance(r, CopyMessage) and int(r.chat_id) == GROUP_ID for r in harness.session.requests)
    harness.session.can_manage_topics, harness.session.can_pin = True, False
    await conversation(harness, IVAN, "привет")
    assert sum("Pin messages" in t for t in harness.texts(GROUP_ID)) == 1


async def test_two_quick_first_messages_on_two_bot_processes_make_one_topic(harness: Harness) -> None:
    """Two instances share the database; both get a first message of the same customer at once."""
    harness.clock.now = WEDNESDAY_NOON
    harness.session.delay_create_topic = 0.05
    await harness.send(EMMA, "/support")  # the request exists; its topic is made by the first message
    async with harness.db.writing() as session:
        for thread in await session.scalars(select(SupportThread)):
            await session.delete(thread)
    harness.session.requests.clear()
    settings = make_settings(manager_chat_id=str(GROUP_ID))
    other = create_dispatcher(
        settings,
        harness.business,
        harness.db,
        create_i18n("en"),
        loyalty=LoyaltyService(harness.db, harness.business, clock=harness.clock, admin_ids=settings.admin_ids),
        surveys=SurveyService(harness.db, harness.business, clock=harness.clock),
        support=SupportService(harness.db, harness.business, clock=harness.clock),
        timers=Timers(harness.clock.sleep),
        scheduler=Scheduler(sleep=harness.clock.sleep),
    )
    first, second = harness.message_update(EMMA, "one"), harness.message_update(EMMA, "two")
    await asyncio.gather(harness.feed(first), other.feed_update(harness.bot, second))
    assert len(harness.sent(CreateForumTopic, GROUP_ID)) == 1
    assert len(await threads(harness)) == 1
    topic = await topic_of(harness, EMMA)
    assert len(copies_into(harness, topic)) == 2


async def test_forged_ticket_buttons_from_outsiders_do_nothing(harness: Harness) -> None:
    ticket_id = await conversation(harness, EMMA, "hi")
    await harness.press_group(STRANGER, TicketCB(action="close", ticket_id=ticket_id))
    await harness.press(EMMA, TicketCB(action="take", ticket_id=ticket_id))
    (ticket,) = await tickets(harness)
    assert ticket.status == "open" and ticket.assignee_id is None


async def test_the_menu_button_and_support_button_open_a_request(harness: Harness) -> None:
    harness.clock.now = WEDNESDAY_NOON
    await harness.press(EMMA, MenuCB(action="support"))
    await harness.press(IVAN, SupportCB(source="menu"))
    assert [t.source for t in await tickets(harness)] == ["menu", "menu"]
    await harness.press(EMMA, MenuCB(action="support"))
    assert "already talking to our team" in harness.last(EMMA.id)


async def test_a_customer_who_has_not_joined_is_asked_to_rate_the_conversation_too(harness: Harness) -> None:
    """The satisfaction figure counts everyone who talked to the team, not only members."""
    ticket_id = await conversation(harness, EMMA, "Do you deliver?")
    assert not (await harness.customer(EMMA)).is_member
    await harness.press_group(MANAGER, TicketCB(action="close", ticket_id=ticket_id))
    await harness.tick()
    assert "How did we do in this conversation?" in harness.last(EMMA.id)
    async with harness.db.reading() as session:
        (survey,) = list(await session.scalars(select(Survey)))
    assert survey.status == "asked" and survey.trigger == "support"
    await harness.press(EMMA, SurveyCB(survey_id=survey.id, score=4))
    async with harness.db.reading() as session:
        (survey,) = list(await session.scalars(select(Survey)))
    assert survey.score == 4


async def test_take_and_close_go_from_the_lines_of_a_request_taken_and_closed(shop: Harness) -> None:
    ticket_id = await conversation(shop, EMMA, "Can I change my order?")
    take = TicketCB(action="take", ticket_id=ticket_id).pack()
    new_line = shop.session.carrying(GROUP_ID, take)
    assert new_line is not None and "Request #" in (new_line[1] or "")
    await shop.press_group(MANAGER, TicketCB(action="take", ticket_id=ticket_id))
    assert shop.session.buttons(GROUP_ID, new_line[0]) == []
    # The pinned header keeps what still applies: Close, until the request is closed.
    (thread,) = await threads(shop)
    assert shop.session.buttons(GROUP_ID, thread.header_message_id or 0) == [
        TicketCB(action="close", ticket_id=ticket_id).pack()
    ]
    await shop.press_group(MANAGER, TicketCB(action="close", ticket_id=ticket_id))
    assert shop.session.buttons(GROUP_ID, thread.header_message_id or 0) == []


async def test_a_hand_off_carries_the_conversation_that_led_to_it(harness: Harness) -> None:
    """The manager sees the customer's questions to the bot, what it answered, and why it gave up,
    not only the last message."""
    harness.clock.now = WEDNESDAY_NOON
    await harness.send(EMMA, "what's the wifi password?")
    await harness.send(EMMA, "can my parrot come to the poetry night on friday?")
    button = harness.button(EMMA.id, "person")
    await harness.press(EMMA, button)
    block = next(t for t in harness.texts(GROUP_ID) if t.startswith("🧭"))
    assert block.splitlines()[0] == "🧭 Handed on: the bot had no answer."
    assert "Before that, the customer wrote to the bot:" in block
    assert "• “what's the wifi password?” → answered with “Do you have Wi-Fi?”" in block
    assert "• “can my parrot come to the poetry night on friday?” → no answer" in block
    # A manager's reply to the block reaches the customer.
    (ticket,) = await tickets(harness)
    assert ticket.status == "open"


async def test_asking_for_a_person_says_so_at_the_desk(harness: Harness) -> None:
    harness.clock.now = WEDNESDAY_NOON
    await harness.send(EMMA, "/support")
    block = next((t for t in harness.texts(GROUP_ID) if t.startswith("🧭")), None)
    assert block is None, "nothing led here: no hand-off block, the request line says it all"
