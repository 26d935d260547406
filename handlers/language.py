"""/language: Русский, Polski, English; remembered and applied at once."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core import keyboards as core_keyboards
from bot.core.callbacks import LanguageCB
from bot.core.commands import register_chat_commands_safely
from bot.core.config import Settings
from bot.core.filters import InPrivateChat
from bot.core.languages import LANGUAGES, pick_language
from bot.loyalty.service import LoyaltyService
from storage.models import Customer


async def cmd_language(message: Message, customer: Customer, business: Business) -> None:
    current = pick_language(customer.language, customer.telegram_language, business.default_language)
    await message.answer(_("Choose your language:"), reply_markup=core_keyboards.languages(current))


async def language_chosen(
    callback: CallbackQuery,
    callback_data: LanguageCB,
    bot: Bot,
    i18n: I18n,
    customer: Customer,
    loyalty: LoyaltyService,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    if callback_data.code not in LANGUAGES:
        callback_answer.text = _("This button no longer works.")
        return
    await loyalty.set_language(customer.id, callback_data.code)
    i18n.current_locale = callback_data.code  # everything below, and every later update, speaks it
    is_staff = customer.telegram_id in settings.admin_ids or (
        await loyalty.active_staff(customer.telegram_id) is not None
    )
    await register_chat_commands_safely(bot, customer.telegram_id, is_staff)
    if isinstance(callback.message, Message):
        await callback.message.edit_text(
            _("Done! I will speak English with you now."), reply_markup=core_keyboards.languages(callback_data.code)
        )


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(InPrivateChat())
    router.callback_query.filter(InPrivateChat())
    router.message.register(cmd_language, Command("language"))
    router.callback_query.register(language_chosen, LanguageCB.filter())
    return router
