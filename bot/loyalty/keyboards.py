"""Inline keyboards. Button labels are translated when the keyboard is built."""

from __future__ import annotations

from collections.abc import Callable

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.business import Store
from bot.core.callbacks import (
    CardCB,
    FlowCB,
    JoinCB,
    OperationCB,
    RedeemAnswerCB,
    ReportCB,
    ScanCB,
    StaffCB,
    UndoCB,
)
from bot.core.formatting import locale
from bot.core.keyboards import Buttons
from storage.models import Staff


def join() -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("Join the loyalty programme"), callback_data=JoinCB())
    return builder.as_markup()


def card(invite: bool = False) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("🔄 Refresh code"), callback_data=CardCB(action="refresh"))
    if invite:
        builder.button(text=_("🎁 Invite a friend"), callback_data=CardCB(action="invite"))
    return builder.as_markup()


def scanned_card(customer_id: int) -> InlineKeyboardMarkup:
    """Under an open card: the amount is typed, not tapped; paying with points and Cancel are buttons."""
    builder = Buttons()
    builder.button(text=_("🎁 Pay with points"), callback_data=ScanCB(action="redeem", customer_id=customer_id))
    builder.button(text=_("Cancel"), callback_data=ScanCB(action="cancel", customer_id=customer_id))
    builder.adjust(2)
    return builder.as_markup()


def flow_cancel() -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("Cancel"), callback_data=FlowCB(action="cancel"))
    return builder.as_markup()


def points_prompt(max_points: int, label: str) -> InlineKeyboardMarkup:
    builder = Buttons()
    if max_points > 0:
        builder.button(text=_("Max: {points}").format(points=label), callback_data=FlowCB(action="max"))
    builder.button(text=_("Cancel"), callback_data=FlowCB(action="cancel"))
    builder.adjust(1)
    return builder.as_markup()


def confirm_operation(op_id: int) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("✅ Confirm"), callback_data=OperationCB(action="confirm", op_id=op_id))
    builder.button(text=_("Cancel"), callback_data=OperationCB(action="cancel", op_id=op_id))
    return builder.as_markup()


def waiting_customer(op_id: int) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("Cancel"), callback_data=OperationCB(action="cancel", op_id=op_id))
    return builder.as_markup()


def redeem_answer(op_id: int) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("✅ Yes, redeem"), callback_data=RedeemAnswerCB(op_id=op_id, accept=True))
    builder.button(text=_("❌ No"), callback_data=RedeemAnswerCB(op_id=op_id, accept=False))
    return builder.as_markup()


def undo(entry_id: int) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("↩️ Undo"), callback_data=UndoCB(entry_id=entry_id))
    return builder.as_markup()


def staff_list(staff: list[Staff], chain: bool = False) -> InlineKeyboardMarkup:
    """Revoke each cashier; in a chain, move them to another store too."""
    builder = Buttons()
    for person in staff:
        if chain:
            builder.button(
                text=_("Move {name}").format(name=person.name),
                callback_data=StaffCB(action="move", staff_id=person.id or 0),
            )
        builder.button(
            text=_("Revoke {name}").format(name=person.name),
            callback_data=StaffCB(action="revoke", staff_id=person.id or 0),
        )
    builder.adjust(2 if chain else 1)
    return builder.as_markup()


def store_choice(stores: tuple[Store, ...], make: Callable[[Store], CallbackData]) -> InlineKeyboardMarkup:
    """One button per store, in the business file's order."""
    builder = Buttons()
    for store in stores:
        builder.button(text=store.name.get(locale()), callback_data=make(store))
    builder.adjust(1)
    return builder.as_markup()


# --- the customer's menu, the FAQ and support ----------------------------------------------------


def figures(
    button: Callable[[str, int, str], CallbackData],
    days: int,
    periods: tuple[int, ...],
    stores: tuple[Store, ...],
    store: str,
    chart: str,
) -> InlineKeyboardMarkup:
    """A report's buttons (/stats, /report): the periods, then (in a chain) all stores and each
    store, then the chart and the CSV. `button(action, days, store)` makes each one's data."""
    builder = Buttons()
    for period in periods:
        label = ngettext("{days} day", "{days} days", period).format(days=period)
        builder.button(text=("✓ " if period == days else "") + label, callback_data=button("show", period, store))
    rows = [len(periods)]
    if len(stores) > 1:
        everywhere = ("✓ " if not store else "") + _("All stores")
        builder.button(text=everywhere, callback_data=button("show", days, ""))
        for each in stores:
            builder.button(
                text=("✓ " if each.id == store else "") + each.name.get(locale()),
                callback_data=button("show", days, each.id),
            )
        rows += [2] * ((len(stores) + 2) // 2)
    builder.button(text=chart, callback_data=button("chart", days, store))
    builder.button(text=_("📄 CSV"), callback_data=button("csv", days, store))
    builder.adjust(*rows, 2)
    return builder.as_markup()


def report(
    days: int, periods: tuple[int, ...], stores: tuple[Store, ...] = (), store: str = ""
) -> InlineKeyboardMarkup:
    """/report's buttons; 📊 is the cohort chart."""
    return figures(
        lambda action, d, s: ReportCB(action=action, days=d, store=s), days, periods, stores, store, _("📊 Cohorts")
    )
