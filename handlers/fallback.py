"""Whatever no other handler took: a hint instead of silence. Must be the last router."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.core.filters import InPrivateChat


async def unknown_message(message: Message) -> None:
    await message.answer(_("I did not understand that. Send /help to see what I can do."))


async def unknown_button(callback: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    # Stale buttons, buttons of a revoked cashier and forged callback data all end here.
    callback_answer.text = _("This button no longer works.")
    callback_answer.show_alert = True


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(unknown_message, InPrivateChat())
    router.callback_query.register(unknown_button)
    return router
