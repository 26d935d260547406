"""/help and /cancel, which work in every state."""

from __future__ import annotations

from aiogram import Router, html
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core import keyboards as core_keyboards
from bot.core import prompts
from bot.core.config import Settings
from bot.core.filters import InPrivateChat
from bot.loyalty.service import LoyaltyService
from storage.models import Customer


async def cmd_help(
    message: Message, customer: Customer, settings: Settings, loyalty: LoyaltyService, business: Business
) -> None:
    lines = [
        _("<b>{business}: what I can do</b>").format(business=html.quote(business.name)),
        _("/card: your loyalty card with its QR code, balance and tier"),
        _("/history: your points history"),
        _("/faq: questions & answers, or just write your question"),
        _("/support: talk to a person from our team"),
        _("/owner: write to the owner, past the staff"),
        _("/profile: your birthday, offers and news, language"),
        _("/language: change language"),
        _("/mydata: everything we store about you; /deleteme: erase it"),
    ]
    is_admin = customer.telegram_id in settings.admin_ids
    if is_admin or await loyalty.active_staff(customer.telegram_id) is not None:
        lines += [
            "",
            _("<b>For cashiers</b>"),
            _("Scan a customer's QR code with your phone camera, or:"),
            _("/scan: find a card by its number or a photo of its QR code"),
            _("/undo: take back the last points you added or redeemed (within {minutes}\u00a0min)").format(
                minutes=business.undo_seconds // 60
            ),
            _("/cancel: stop the current operation"),
        ]
    if is_admin:
        lines += [
            "",
            _("<b>For owners</b>"),
            _("/invite: a one-time link that makes someone a cashier"),
            _("/staff: the team, with a button to revoke access"),
            _("/void ENTRY REASON: cancel any entry in a customer's points history"),
            _("/adjust CARD POINTS REASON: add or take points, e.g. /adjust 1234 5678 +20 apology"),
        ]
    if customer.manager_name:
        lines += ["", _("Your manager: {name}").format(name=html.quote(customer.manager_name))]
    await message.answer("\n".join(lines), reply_markup=core_keyboards.main_menu())


async def cmd_cancel(message: Message, state: FSMContext) -> None:
    had_state = await state.get_state() is not None
    assert message.bot is not None
    await prompts.finish(message.bot, message.chat.id, state)  # the step's buttons go with it
    await message.answer(_("Cancelled.") if had_state else _("Nothing to cancel."))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(InPrivateChat())
    router.message.register(cmd_help, Command("help"))
    router.message.register(cmd_cancel, Command("cancel"))
    return router
