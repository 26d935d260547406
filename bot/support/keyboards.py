"""Inline keyboards. Button labels are translated when the keyboard is built."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.core.callbacks import (
    TicketCB,
)
from bot.core.keyboards import Buttons
from storage.models import Ticket, TicketStatus


def ticket_actions(ticket: Ticket | None) -> InlineKeyboardMarkup | None:
    """Take and Close under a request's header and its reminders, while it is open."""
    if ticket is None or ticket.id is None or ticket.status != TicketStatus.OPEN:
        return None
    builder = Buttons()
    if ticket.assignee_id is None:
        builder.button(text=_("🙋 Take"), callback_data=TicketCB(action="take", ticket_id=ticket.id))
    builder.button(text=_("✅ Close"), callback_data=TicketCB(action="close", ticket_id=ticket.id))
    return builder.as_markup()


def assign_to(ticket_id: int, managers: list[tuple[int, str]]) -> InlineKeyboardMarkup:
    builder = Buttons()
    for manager_id, name in managers:
        builder.button(text=name, callback_data=TicketCB(action="assign", ticket_id=ticket_id, to=manager_id))
    builder.adjust(2)
    return builder.as_markup()
