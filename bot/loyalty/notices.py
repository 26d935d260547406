"""What loyalty movements owe people: the drawers that turn a notice (`bot/core/notices.py`) into
the message its person reads, and the direct word on a balance change."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.notices import Notices, Undeliverable
from bot.core.notify import notify
from bot.loyalty import keyboards, texts
from bot.loyalty.service import Applied, LoyaltyService
from storage.models import Customer, EntryKind, OperationStatus

logger = logging.getLogger(__name__)


async def tell_balance_change(
    bot: Bot, i18n: I18n, loyalty: LoyaltyService, business: Business, applied: Applied
) -> None:
    """Push a movement to its customer at once, in their language, with a word on a new tier."""
    customer = applied.customer
    with i18n.use_locale(await loyalty.language_of(customer.telegram_id)):
        text = texts.balance_change(applied.entry, business)
        congratulation = texts.tier_reached(
            customer.lifetime_spend - applied.entry.spend, customer.lifetime_spend, business
        )
        if congratulation:
            text += "\n" + congratulation
        await notify(bot, customer.telegram_id, text)


def register_loyalty_notices(
    notices: Notices,
    i18n: I18n,
    loyalty: LoyaltyService,
    business: Business,
    after_movement: Callable[[Bot, int], Awaitable[None]] | None = None,
) -> None:
    """The drawers of what loyalty movements owe people. `after_movement(bot, customer_id)` runs
    once the customer was told (the desk brings the customer's pinned header up to date)."""

    async def movement(bot: Bot, chat_id: int, payload: dict[str, Any]) -> None:
        """The customer's word on a movement on their card: points, balance, a tier reached."""
        entry = await loyalty.entry(int(payload["entry_id"]))
        customer = await loyalty.customer(entry.customer_id) if entry is not None else None
        if entry is None or customer is None or customer.deleted_at is not None or customer.telegram_id != chat_id:
            raise Undeliverable("the customer is no longer there")
        language = await loyalty.language_of(chat_id)
        with i18n.context(), i18n.use_locale(language):
            if entry.kind == EntryKind.APOLOGY:
                text = _(
                    "We are sorry your visit was not what it should have been. We have added {points} to your "
                    "card. Balance: {balance}."
                ).format(points=texts.points(entry.points), balance=texts.points(entry.balance_after))
            else:
                text = texts.balance_change(entry, business)
                before = int(payload.get("spend_before", customer.lifetime_spend))
                congratulation = texts.tier_reached(before, before + entry.spend, business)
                if congratulation:
                    text += "\n" + congratulation
        await bot.send_message(chat_id, text)
        with i18n.context(), i18n.use_locale(language):
            await keep_card_current(bot, loyalty, customer, business)
        if after_movement is not None and customer.id is not None:
            try:  # the customer has been told: nothing after this may send the notice again
                await after_movement(bot, customer.id)
            except Exception:
                logger.exception("could not bring the desk up to date after entry %s", entry.id)

    async def cashier_result(bot: Bot, chat_id: int, payload: dict[str, Any]) -> None:
        """The cashier's word on their operation: "Done" with Undo, or what the customer answered."""
        operation = await loyalty.operation(int(payload["operation_id"]))
        if operation is None:
            raise Undeliverable("no such operation")
        entry = await loyalty.entry(operation.entry_id) if operation.entry_id is not None else None
        customer = await loyalty.customer(operation.customer_id)
        with i18n.context(), i18n.use_locale(await loyalty.language_of(chat_id)):
            if operation.kind == EntryKind.PURCHASE:
                if entry is None or customer is None or operation.status != OperationStatus.DONE:
                    raise Undeliverable("the purchase is not done")
                text = texts.purchase_done(entry, customer)
            else:
                text = texts.redemption_outcome(operation, entry, customer, business)
            markup = keyboards.undo(entry.id) if entry is not None and entry.id is not None else None
        await _edit_or_send(bot, chat_id, payload.get("message_id"), text, markup)

    async def staff_warning(bot: Bot, chat_id: int, payload: dict[str, Any]) -> None:
        """An owner's warning: a staff member did something the limits watch for."""
        staff = await loyalty.active_staff(int(payload["staff"]))
        customer_id = payload.get("customer_id")
        customer = await loyalty.customer(int(customer_id)) if customer_id is not None else None
        with i18n.context(), i18n.use_locale(await loyalty.language_of(chat_id)):
            name = staff.name if staff is not None else str(payload["staff"])
            text = texts.staff_warning(str(payload["reason"]), name, int(payload["count"]), customer)
        await bot.send_message(chat_id, text)

    notices.register("movement", movement)
    notices.register("cashier_result", cashier_result)
    notices.register("staff_warning", staff_warning)


async def keep_card_current(bot: Bot, loyalty: LoyaltyService, customer: Customer, business: Business) -> None:
    """The customer's card message after a movement, in the current locale (see `_edit_card`): the
    balance, and what its newest code is good for now."""
    if customer.card_message_id is not None:
        used = await loyalty.card_code_spent(customer.id or 0)
        caption = texts.card_caption(customer, business, used=used)
        markup = keyboards.card(invite=business.lifecycle.referral_bonus > 0)
        await _edit_card(bot, customer.telegram_id, customer.card_message_id, caption, markup)


async def _edit_card(bot: Bot, chat_id: int, message_id: int, caption: str, markup: InlineKeyboardMarkup) -> None:
    """The card message in the chat shows the balance after a movement and, after a use at the till,
    that its code is spent, with Refresh one tap away. Best effort: the movement's own message has
    been sent, so a failure here is logged and not tried again."""
    try:
        await bot.edit_message_caption(chat_id=chat_id, message_id=message_id, caption=caption, reply_markup=markup)
    except TelegramAPIError as error:  # deleted, too old, not modified, or Telegram failing now
        logger.info("could not bring card message %s in chat %s up to date: %s", message_id, chat_id, error)


async def _edit_or_send(
    bot: Bot, chat_id: int, message_id: int | None, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """For a notice: edit the person's earlier message, or send a new one when it cannot be edited
    (deleted, too old). Raises on a fault worth another try (a 5xx, a timeout, 429s)."""
    if message_id is not None:
        try:
            await bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id, reply_markup=markup)
            return
        except TelegramBadRequest as error:
            if "message is not modified" in error.message:
                return
            logger.info("could not edit message %s in chat %s (%s); sending anew", message_id, chat_id, error.message)
    await bot.send_message(chat_id, text, reply_markup=markup)
