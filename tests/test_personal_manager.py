"""A personal manager (issue 19): the manager who last helped a customer is theirs; the customer's
next request is offered to that manager first (named with a mention in the topic, told in
private), and the customer reads "Your manager: ‹name›" in /help and when a request opens;
handing a request over changes it. Through the real dispatcher, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from aiogram.methods import SendMessage

from bot.core.callbacks import TicketCB
from tests.conftest import EMMA, GROUP_ID, MANAGER, MANAGER_2, Harness
from tests.test_support import WEDNESDAY_NOON, conversation, tickets, topic_message


async def helped_by(h: Harness, manager=MANAGER) -> int:
    ticket_id = await conversation(h, EMMA, "Where are my points?")
    await topic_message(h, EMMA, "They are on your card now.", manager=manager)
    await h.press_group(manager, TicketCB(action="close", ticket_id=ticket_id))
    return ticket_id


async def test_the_manager_who_helped_last_is_offered_the_next_request(harness: Harness) -> None:
    await helped_by(harness)
    assert (await harness.customer(EMMA)).manager_id == MANAGER.id
    harness.clock.now = WEDNESDAY_NOON + timedelta(days=7)  # past the reopening window, a Wednesday noon
    await harness.send(EMMA, "/support")
    second = (await tickets(harness))[-1]
    assert second.id != (await tickets(harness))[0].id and second.assignee_id == MANAGER.id
    assert "Your manager: Marta Manager" in harness.last(EMMA.id)
    opened = next(t for t in reversed(harness.texts(GROUP_ID)) if f"Request #{second.id}" in t)
    assert f'<a href="tg://user?id={MANAGER.id}">Marta Manager</a>' in opened  # the mention notifies her
    told = [r.text for r in harness.sent(SendMessage, MANAGER.id)]
    assert any(f"has opened request #{second.id}. It is yours first" in t for t in told)
    await harness.send(EMMA, "/help")
    assert "Your manager: Marta Manager" in harness.last(EMMA.id)


async def test_handing_a_request_over_changes_the_personal_manager(shop: Harness) -> None:
    shop.session.group_members.add(MANAGER_2.id)
    ticket_id = await conversation(shop, EMMA, "Hello?")
    await shop.press_group(MANAGER, TicketCB(action="take", ticket_id=ticket_id))
    assert (await shop.customer(EMMA)).manager_id is None  # taking is not helping yet
    await shop.press_group(MANAGER, TicketCB(action="assign", ticket_id=ticket_id, to=MANAGER_2.id))
    customer = await shop.customer(EMMA)
    assert customer.manager_id == MANAGER_2.id and customer.manager_name  # as the group names them


async def test_a_customer_nobody_helped_has_no_manager(harness: Harness) -> None:
    await conversation(harness, EMMA, "Hi")
    (ticket,) = await tickets(harness)
    assert ticket.assignee_id is None and "Your manager" not in harness.last(EMMA.id)
    await harness.send(EMMA, "/help")
    assert "Your manager" not in harness.last(EMMA.id)


async def test_a_manager_who_left_the_group_is_not_offered_the_request(harness: Harness) -> None:
    await helped_by(harness)
    harness.session.group_members.discard(MANAGER.id)  # Marta has left the managers' group
    harness.clock.now = WEDNESDAY_NOON + timedelta(days=7)
    before = len(harness.sent(SendMessage, MANAGER.id))
    await harness.send(EMMA, "/support")
    second = (await tickets(harness))[-1]
    assert second.assignee_id is None and "Your manager" not in harness.last(EMMA.id)
    assert len(harness.sent(SendMessage, MANAGER.id)) == before  # her customers' names stay with the team
    assert (await harness.customer(EMMA)).manager_id is None
