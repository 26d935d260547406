"""Abuse found by the security probe (issue 15): customers' words and data must not reach places
they were never meant for: a public FAQ button, another group, a group's button, an old alert."""

from __future__ import annotations

from typing import Any

from aiogram.methods import SendDocument, SendMessage, SendPhoto
from aiogram.types import Chat, Message, Update, User

from bot.callbacks import AlertCB, DraftCB, StatsCB, TicketCB
from tests.conftest import EMMA, GROUP_ID, MANAGER, OWNER, Harness
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
