"""Closing the loop: alerts in the managers' group and what managers do with them."""

from __future__ import annotations

from aiogram.methods import CopyMessage, EditMessageText, SendMessage
from sqlalchemy import select

from bot.core.callbacks import AlertCB, ContactCB, SurveyCB
from storage.models import AlertStatus, EntryKind, Survey, SurveyStatus
from tests.conftest import ANNA, EMMA, GROUP_ID, IVAN, MANAGER, MANAGER_2, STRANGER, Harness, entries
from tests.test_surveys import alerts, asked, surveys_of


async def unhappy(h: Harness, user=EMMA, score: int = 2) -> int:
    survey = await asked(h, user)
    await h.press(user, SurveyCB(survey_id=survey.id, score=score))
    (alert,) = await alerts(h)
    assert alert.id is not None
    return alert.id


def group_texts(h: Harness) -> list[str]:
    return h.texts(GROUP_ID)


async def test_a_detractor_is_posted_to_the_managers_group_with_what_they_need(shop: Harness) -> None:
    await unhappy(shop, ANNA, score=4)
    header, post = shop.sent(SendMessage, GROUP_ID)  # the customer's topic begins with their card
    assert post.message_thread_id == header.message_thread_id is not None  # one customer, one place
    assert "Anna Nowak" in header.text and "no request yet" in header.text
    text = post.text
    assert "Unhappy customer" in text  # the group reads the managers' language (English here)
    assert "Anna Nowak" in text and "Polski" in text and "Tier: Base" in text and "Balance: 52 points" in text
    assert "NPS 4 of 10" in text and "cashier Kasia Kowalska" in text and "No comment yet." in text
    labels = [b.text for row in post.reply_markup.inline_keyboard for b in row]
    assert labels == ["💬 Contact customer", "🎁 Apology bonus", "✅ Resolved"]
    (alert,) = await alerts(shop)
    assert alert.status == AlertStatus.OPEN and alert.chat_id == GROUP_ID and alert.message_id is not None


async def test_happy_and_middling_answers_raise_no_alert(shop: Harness) -> None:
    survey = await asked(shop)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=7))
    assert await alerts(shop) == [] and shop.sent(SendMessage, GROUP_ID) == []


async def test_a_bad_rating_raises_an_alert_too(shop: Harness) -> None:
    from bot.surveys.rules import SurveyKind, Trigger

    customer = await shop.customer(EMMA)
    shop.clock.set_local(12)  # outside the quiet hours, whatever TEST_CLOCK says
    await shop.surveys.request(customer.id, Trigger.SUPPORT, key="ticket:7", kind=SurveyKind.RATING)
    await shop.tick()
    (survey,) = await surveys_of(shop, EMMA)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=2))
    assert "rating 🙁 (2 of 5)" in shop.last(GROUP_ID)


async def test_a_comment_after_the_alert_is_added_to_it(shop: Harness) -> None:
    await unhappy(shop)
    await shop.send(EMMA, "The coffee was cold & <late>")
    edit = shop.sent(EditMessageText, GROUP_ID)[-1]
    assert "Comment: “The coffee was cold &amp; &lt;late&gt;”" in edit.text


async def test_apology_bonus_is_one_ledger_entry_however_often_it_is_pressed(shop: Harness) -> None:
    alert_id = await unhappy(shop)
    before = (await shop.customer(EMMA)).balance
    await shop.press_group(MANAGER, AlertCB(action="bonus", alert_id=alert_id))
    await shop.press_group(MANAGER_2, AlertCB(action="bonus", alert_id=alert_id))
    (bonus,) = await entries(shop, EntryKind.APOLOGY)
    assert bonus.points == 50 and bonus.staff_telegram_id == MANAGER.id
    assert (await shop.customer(EMMA)).balance == before + 50
    assert await shop.loyalty.balance_is_consistent((await shop.customer(EMMA)).id)
    assert "We have added 50 points to your card" in shop.last(EMMA.id)
    assert "уже начислен (Marta Manager)" in shop.alerts()[-1]  # Oleg reads Russian
    (alert,) = await alerts(shop)
    assert alert.bonus_entry_id == bonus.id
    edit = shop.sent(EditMessageText, GROUP_ID)[-1]
    assert "Apology bonus of 50 points from Marta Manager" in edit.text
    assert "🎁 Apology bonus" not in [b.text for row in edit.reply_markup.inline_keyboard for b in row]
    await shop.send(EMMA, "/history")
    assert "Apology bonus from our team" in shop.last(EMMA.id)


async def test_resolved_records_who_and_when(shop: Harness) -> None:
    alert_id = await unhappy(shop)
    await shop.press_group(MANAGER, AlertCB(action="resolve", alert_id=alert_id))
    (alert,) = await alerts(shop)
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_by == MANAGER.id
    assert alert.resolved_at == shop.clock.now and alert.resolved_by_name == "Marta Manager"
    assert any("Resolved by Marta Manager" in edit.text for edit in shop.sent(EditMessageText, GROUP_ID))
    await shop.press_group(MANAGER_2, AlertCB(action="resolve", alert_id=alert_id))
    assert "Уже решено: Marta Manager." in shop.alerts()[-1]  # Oleg reads Russian


async def test_contact_customer_sends_the_managers_next_message_under_their_name(shop: Harness) -> None:
    alert_id = await unhappy(shop, ANNA)
    await shop.press_group(MANAGER, AlertCB(action="contact", alert_id=alert_id))
    # Marta's Telegram speaks Polish, but what the bot posts in the group is in the group's language.
    assert "your next message in this chat goes to them" in shop.last(GROUP_ID)
    await shop.send_group(MANAGER, "So sorry! Your next coffee is on us.")
    assert shop.last(ANNA.id) == "<b>Marta Manager z naszego zespołu:</b>\nSo sorry! Your next coffee is on us."
    assert "✉️ Sent to Anna Nowak. Their reply will appear here." in shop.sent(SendMessage, GROUP_ID)[-1].text
    (alert,) = await alerts(shop)
    assert alert.contacted_by == MANAGER.id and alert.contacted_at == shop.clock.now
    assert any("Marta Manager: message to the customer" in t for t in group_texts(shop))
    # The next group message is a normal message again.
    shop.clear()
    await shop.send_group(MANAGER, "thanks team")
    assert shop.sent(SendMessage, ANNA.id) == []
    # Anna's answer comes back to the group.
    await shop.send(ANNA, "Thank you, that is kind")
    assert "Reply from Anna Nowak (alert #" in shop.sent(SendMessage, GROUP_ID)[-1].text
    (copy,) = shop.sent(CopyMessage, GROUP_ID)
    assert int(copy.from_chat_id) == ANNA.id


async def test_contact_with_a_photo_keeps_the_name_in_the_caption(shop: Harness) -> None:
    from aiogram.types import PhotoSize

    alert_id = await unhappy(shop)
    await shop.press_group(MANAGER, AlertCB(action="contact", alert_id=alert_id))
    photo = [PhotoSize(file_id="p", file_unique_id="p", width=10, height=10)]
    await shop.send_group(MANAGER, None, photo=photo, caption="Our new cups")
    (copy,) = shop.sent(CopyMessage, EMMA.id)
    assert copy.caption == "<b>Marta Manager, manager:</b>\nOur new cups"


async def test_contact_can_be_cancelled(shop: Harness) -> None:
    alert_id = await unhappy(shop)
    await shop.press_group(MANAGER, AlertCB(action="contact", alert_id=alert_id))
    await shop.press_group(MANAGER, ContactCB(action="cancel"))
    shop.clear()
    await shop.send_group(MANAGER, "not for the customer")
    assert shop.sent(SendMessage, EMMA.id) == []


async def test_a_customer_who_blocked_the_bot_is_reported_to_the_manager(shop: Harness) -> None:
    alert_id = await unhappy(shop)
    shop.session.blocked.add(EMMA.id)
    await shop.press_group(MANAGER, AlertCB(action="contact", alert_id=alert_id))
    await shop.send_group(MANAGER, "Hello?")
    assert "Emma Stone has blocked the bot, so the message was not delivered." in shop.last(GROUP_ID)
    assert (await alerts(shop))[0].contacted_at is None


async def test_alert_buttons_are_for_managers_only(shop: Harness) -> None:
    alert_id = await unhappy(shop)
    # Forged presses from a private chat: a stranger is no manager; nothing happens.
    for action in ("bonus", "resolve", "contact"):
        await shop.press(STRANGER, AlertCB(action=action, alert_id=alert_id))
        assert "no longer works" in shop.alerts()[-1]
    assert await entries(shop, EntryKind.APOLOGY) == []
    assert (await alerts(shop))[0].status == AlertStatus.OPEN
    # A member of the managers' group may use them from a private chat too.
    shop.session.group_members.add(MANAGER_2.id)
    await shop.press(MANAGER_2, AlertCB(action="resolve", alert_id=alert_id))
    assert (await alerts(shop))[0].status == AlertStatus.RESOLVED


async def check_back(h: Harness, user=EMMA) -> Survey:
    alert_id = await unhappy(h, user)
    await h.press_group(MANAGER, AlertCB(action="resolve", alert_id=alert_id))
    h.clock.advance(days=2, hours=23)
    await h.tick()
    assert not any("Did we fix it?" in t for t in h.texts(user.id))
    h.clock.advance(hours=1, minutes=1)
    await h.tick()
    async with h.db.reading() as session:
        (survey,) = await session.scalars(select(Survey).where(Survey.kind == "check_back"))
    assert survey.status == SurveyStatus.ASKED
    return survey


async def test_three_days_after_resolving_the_customer_is_asked_if_it_was_fixed(shop: Harness) -> None:
    survey = await check_back(shop)
    question = shop.sent(SendMessage, EMMA.id)[-1]
    assert "Did we fix it?" in question.text
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=1))
    assert "glad it is sorted" in shop.last(EMMA.id)
    (alert,) = await alerts(shop)
    assert alert.fixed is True and alert.status == AlertStatus.RESOLVED
    assert "The customer says it is fixed" in shop.sent(EditMessageText, GROUP_ID)[-1].text


async def test_not_fixed_opens_the_alert_again(shop: Harness) -> None:
    survey = await check_back(shop, IVAN)
    assert "Удалось ли нам всё исправить?" in shop.sent(SendMessage, IVAN.id)[-1].text
    await shop.press(IVAN, SurveyCB(survey_id=survey.id, score=0))
    (alert,) = await alerts(shop)
    assert alert.fixed is False and alert.status == AlertStatus.OPEN
    assert "says the problem is not fixed" in shop.last(GROUP_ID)
    assert "✅ Resolved" in [b.text for row in shop.last_markup(GROUP_ID).inline_keyboard for b in row]


async def test_a_long_message_from_a_manager_arrives_whole(shop: Harness) -> None:
    alert_id = await unhappy(shop)
    await shop.press_group(MANAGER, AlertCB(action="contact", alert_id=alert_id))
    await shop.send_group(MANAGER, "x" * 4090)
    assert shop.sent(SendMessage, EMMA.id)[-1].text == "<b>Marta Manager, manager:</b>"
    (copy,) = shop.sent(CopyMessage, EMMA.id)
    assert copy.caption is None  # the text itself, as written


async def test_a_button_in_the_group_pressed_by_someone_outside_it_does_nothing(shop: Harness) -> None:
    alert_id = await unhappy(shop)
    await shop.press_group(STRANGER, AlertCB(action="resolve", alert_id=alert_id))
    assert (await alerts(shop))[0].status == AlertStatus.OPEN
    assert "no longer works" in shop.alerts()[-1]


async def test_one_action_finishes_the_case_both_ways(shop: Harness) -> None:
    """Resolving an alert closes the customer's open request, and closing a request resolves their
    alert: the manager never has to finish the same case twice, and the header says it is over."""
    from bot.core.callbacks import TicketCB
    from storage.models import SupportThread, Ticket

    alert_id = await unhappy(shop)
    await shop.send(EMMA, "/support")
    async with shop.db.reading() as session:
        (ticket,) = list(await session.scalars(select(Ticket)))
        (thread,) = list(await session.scalars(select(SupportThread)))
    await shop.press_group(MANAGER, AlertCB(action="resolve", alert_id=alert_id))
    async with shop.db.reading() as session:
        ticket = await session.get(Ticket, ticket.id, populate_existing=True)
    assert ticket is not None and ticket.status == "closed"
    header = [t for t in shop.sent(EditMessageText, GROUP_ID) if t.message_id == thread.header_message_id][-1]
    assert "open" not in header.text.split("Status:")[1].lower()

    # The other way: a new unhappy answer, and the request it brings closed with Close.
    survey = await asked(shop, ANNA)
    await shop.press(ANNA, SurveyCB(survey_id=survey.id, score=1))
    await shop.send(ANNA, "/support")
    async with shop.db.reading() as session:
        ticket = list(await session.scalars(select(Ticket).where(Ticket.status == "open")))[0]
    await shop.press_group(MANAGER, TicketCB(action="close", ticket_id=ticket.id))
    assert all(a.status == AlertStatus.RESOLVED for a in await alerts(shop))


async def test_the_pinned_header_shows_the_balance_after_every_movement(shop: Harness) -> None:
    from storage.models import SupportThread
    from tests.conftest import CASHIER, open_card

    await shop.send(EMMA, "/support")
    async with shop.db.reading() as session:
        (thread,) = list(await session.scalars(select(SupportThread)))
    await open_card(shop)
    await shop.send(CASHIER, "250")
    header = [t for t in shop.sent(EditMessageText, GROUP_ID) if t.message_id == thread.header_message_id][-1]
    assert "62 points" in header.text
