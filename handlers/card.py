"""The customer's card: /card with its one-time QR, Refresh code, /history.

The newest card message is the live one: after each use its caption shows the new balance and
that the code was used (`bot/loyalty/notices.py`); an older one says it was replaced."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, InputMediaPhoto, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.callbacks import CardCB
from bot.core.filters import InPrivateChat
from bot.loyalty import keyboards, texts
from bot.loyalty.qr import qr_png
from bot.loyalty.rules import CARD_LINK_PREFIX
from bot.loyalty.service import LoyaltyService
from storage.models import Customer

logger = logging.getLogger(__name__)


async def _card_photo(bot: Bot, customer: Customer, loyalty: LoyaltyService) -> BufferedInputFile:
    token, _expires = await loyalty.issue_card_code(customer.id)
    me = await bot.me()
    link = f"https://t.me/{me.username}?start={CARD_LINK_PREFIX}{token}"
    return BufferedInputFile(qr_png(link), filename="card.png")


async def send_card(bot: Bot, customer: Customer, loyalty: LoyaltyService, business: Business) -> None:
    """A new card message; the one before it in the chat is retired (its code no longer works)."""
    photo = await _card_photo(bot, customer, loyalty)
    sent = await bot.send_photo(
        customer.telegram_id, photo, caption=texts.card_caption(customer, business), reply_markup=_keyboard(business)
    )
    await _now_live(bot, customer, sent.message_id, loyalty)


async def _now_live(bot: Bot, customer: Customer, message_id: int, loyalty: LoyaltyService) -> None:
    """`message_id` is the customer's live card from now on; the one before it is retired."""
    if customer.card_message_id == message_id:
        return
    await loyalty.remember_card_message(customer.id, message_id)
    if customer.card_message_id is not None:
        await retire_card(bot, customer.telegram_id, customer.card_message_id)


async def retire_card(bot: Bot, chat_id: int, message_id: int) -> None:
    """An older card message says it was replaced and loses its buttons, so nobody shows its QR."""
    try:
        await bot.edit_message_caption(
            chat_id=chat_id, message_id=message_id, caption=_("This card was replaced by a newer one below.")
        )
    except TelegramBadRequest as error:  # deleted by the customer, or already retired
        logger.debug("could not retire card message %s in chat %s: %s", message_id, chat_id, error.message)


def _keyboard(business: Business) -> InlineKeyboardMarkup:
    return keyboards.card(invite=business.lifecycle.referral_bonus > 0)


async def not_a_member(message: Message) -> None:
    await message.answer(
        _("You have not joined the loyalty programme yet. Join in one tap:"), reply_markup=keyboards.join()
    )


async def cmd_card(message: Message, bot: Bot, customer: Customer, loyalty: LoyaltyService, business: Business) -> None:
    if not customer.is_member:
        await not_a_member(message)
        return
    await send_card(bot, customer, loyalty, business)


async def refresh_pressed(
    callback: CallbackQuery,
    bot: Bot,
    customer: Customer,
    loyalty: LoyaltyService,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    if not customer.is_member or not isinstance(callback.message, Message):
        callback_answer.text = _("This button no longer works.")
        return
    photo = await _card_photo(bot, customer, loyalty)
    await callback.message.edit_media(
        InputMediaPhoto(media=photo, caption=texts.card_caption(customer, business)), reply_markup=_keyboard(business)
    )
    await _now_live(bot, customer, callback.message.message_id, loyalty)  # an older card refreshed is live
    callback_answer.text = _("New code ready. The old one no longer works.")


async def cmd_history(message: Message, customer: Customer, loyalty: LoyaltyService, business: Business) -> None:
    if not customer.is_member:
        await not_a_member(message)
        return
    entries = await loyalty.history(customer.id)
    await message.answer(texts.history(entries, business))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(InPrivateChat())
    router.callback_query.filter(InPrivateChat())
    router.message.register(cmd_card, Command("card"))
    router.message.register(cmd_history, Command("history"))
    router.callback_query.register(refresh_pressed, CardCB.filter(F.action == "refresh"))
    return router
