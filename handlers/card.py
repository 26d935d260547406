"""The customer's card: /card with its one-time QR, Refresh code, /history."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, InputMediaPhoto, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.business import Business
from bot.core import formatting
from bot.core.callbacks import CardCB
from bot.core.filters import InPrivateChat
from bot.loyalty import keyboards, texts
from bot.loyalty.qr import qr_png
from bot.loyalty.rules import CARD_LINK_PREFIX
from bot.loyalty.service import LoyaltyService
from storage.models import Customer


async def _card_photo(bot: Bot, customer: Customer, loyalty: LoyaltyService) -> BufferedInputFile:
    token, _expires = await loyalty.issue_card_code(customer.id)
    me = await bot.me()
    link = f"https://t.me/{me.username}?start={CARD_LINK_PREFIX}{token}"
    return BufferedInputFile(qr_png(link), filename="card.png")


def _caption(customer: Customer, business: Business) -> str:
    minutes = business.code_ttl_seconds // 60
    return (
        texts.card_details(customer, business)
        + "\n\n"
        + ngettext(
            "Show this code at the till. It works once, for {count} minute.",
            "Show this code at the till. It works once, for {count} minutes.",
            minutes,
        ).format(count=formatting.number(minutes))
    )


async def send_card(bot: Bot, customer: Customer, loyalty: LoyaltyService, business: Business) -> None:
    photo = await _card_photo(bot, customer, loyalty)
    await bot.send_photo(
        customer.telegram_id, photo, caption=_caption(customer, business), reply_markup=_keyboard(business)
    )


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
        InputMediaPhoto(media=photo, caption=_caption(customer, business)), reply_markup=_keyboard(business)
    )
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
