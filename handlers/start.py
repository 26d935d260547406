"""/start: greeting, privacy notice and Join; staff invitations; card links opened by non-staff."""

from __future__ import annotations

from aiogram import Bot, F, Router, html
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core import keyboards as core_keyboards
from bot.core.callbacks import JoinCB
from bot.core.commands import register_chat_commands_safely
from bot.core.config import Settings
from bot.core.filters import InPrivateChat
from bot.core.notify import notify
from bot.lifecycle import keyboards as lifecycle_keyboards
from bot.lifecycle import texts as lifecycle_texts
from bot.lifecycle.rules import REFERRAL_PREFIX, referral_code_from_args
from bot.lifecycle.service import LifecycleService, Referral
from bot.loyalty import keyboards as loyalty_keyboards
from bot.loyalty import texts
from bot.loyalty.filters import IsStaff
from bot.loyalty.rules import CARD_LINK_PREFIX, STAFF_LINK_PREFIX
from bot.loyalty.service import LoyaltyService, Refused
from handlers.card import send_card
from storage.models import Customer


def privacy_notice() -> str:
    return _(
        "<b>About your data.</b> We keep your Telegram name and id, your language, your card "
        "number and the history of your points, only to run the loyalty programme. /mydata sends you "
        "all of it, and /deleteme erases it. We never ask for documents or payment cards. "
        "Send /help to see what else the bot can do."
    )


async def cmd_start_card_not_staff(message: Message) -> None:
    # Someone who is not staff opened a card link: say nothing about the card.
    await message.answer(_("This code is for our cashiers: show it at the till. To see your own card, send /card."))


async def cmd_start_staff(
    message: Message,
    command: CommandObject,
    bot: Bot,
    i18n: I18n,
    loyalty: LoyaltyService,
    business: Business,
) -> None:
    assert message.from_user is not None and command.args is not None
    token = command.args.removeprefix(STAFF_LINK_PREFIX)
    try:
        staff, invited_by = await loyalty.accept_invite(
            token, message.from_user.id, message.from_user.full_name, message.from_user.username
        )
    except Refused as refused:
        await message.answer(texts.refusal(refused.reason, business, refused.details))
        return
    await message.answer(
        _(
            "Welcome to the {business} team! You are now a cashier.\nScan a customer's QR code with "
            "your phone camera, or send /scan to type a card number."
        ).format(business=html.quote(business.name))
    )
    await register_chat_commands_safely(bot, message.from_user.id, is_staff=True)
    with i18n.use_locale(await loyalty.language_of(invited_by)):
        await notify(bot, invited_by, _("{name} is now a cashier.").format(name=html.quote(staff.name)))


async def cmd_start_referral(
    message: Message,
    command: CommandObject,
    bot: Bot,
    customer: Customer,
    business: Business,
    settings: Settings,
    loyalty: LoyaltyService,
    lifecycle: LifecycleService,
) -> None:
    """A friend's "bring a friend" link: a newcomer is linked to them; a member earns nothing."""
    code = referral_code_from_args(command.args)
    outcome, referrer = (
        await lifecycle.link_referral(customer.id, code)
        if code is not None and business.lifecycle.referral_bonus > 0
        else (Referral.UNKNOWN, None)
    )
    if outcome == Referral.ALREADY_MEMBER:
        await message.answer(lifecycle_texts.referral_for_newcomers())
        return
    note = lifecycle_texts.referral_welcome(referrer, business) if referrer is not None else None
    if outcome == Referral.UNKNOWN and not customer.is_member:
        note = lifecycle_texts.referral_unknown()
    await cmd_start(message, bot, customer, business, settings, loyalty, note=note)


async def cmd_start(
    message: Message,
    bot: Bot,
    customer: Customer,
    business: Business,
    settings: Settings,
    loyalty: LoyaltyService,
    note: str | None = None,
) -> None:
    if customer.telegram_id in settings.admin_ids or await loyalty.active_staff(customer.telegram_id):
        # Owners and cashiers get their commands in the menu, in the language they read.
        await register_chat_commands_safely(bot, customer.telegram_id, is_staff=True)
    if customer.is_member:
        await message.answer(
            _("Welcome back, {name}! Send /card to show your loyalty card.").format(
                name=html.quote(customer.first_name)
            ),
            reply_markup=core_keyboards.main_menu(),
        )
        return
    await message.answer(
        _(
            "Hello, {name}! This is the {business} loyalty programme: earn points on every purchase "
            "and pay with them later."
        ).format(name=html.quote(customer.first_name), business=html.quote(business.name))
        + (f"\n\n{note}" if note else "")
        + "\n\n"
        + privacy_notice(),
        reply_markup=loyalty_keyboards.join(),
    )


async def join_pressed(
    callback: CallbackQuery, bot: Bot, customer: Customer, loyalty: LoyaltyService, business: Business
) -> None:
    joined = await loyalty.join(customer.id)
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
    if joined.created:
        text = _("You have joined the {business} loyalty programme!").format(business=html.quote(business.name))
        if joined.bonus is not None:
            text += "\n" + texts.balance_change(joined.bonus, business)
        await bot.send_message(customer.telegram_id, text)
    await send_card(bot, joined.customer, loyalty, business)
    if joined.created:  # marketing is a consent of its own, asked apart and never pre-ticked
        await bot.send_message(
            customer.telegram_id, lifecycle_texts.consent_question(business), reply_markup=lifecycle_keyboards.consent()
        )


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(InPrivateChat())
    router.callback_query.filter(InPrivateChat())
    router.message.register(
        cmd_start_card_not_staff,
        CommandStart(deep_link=True, magic=F.args.startswith(CARD_LINK_PREFIX)),
        ~IsStaff(),
    )
    router.message.register(cmd_start_staff, CommandStart(deep_link=True, magic=F.args.startswith(STAFF_LINK_PREFIX)))
    router.message.register(cmd_start_referral, CommandStart(deep_link=True, magic=F.args.startswith(REFERRAL_PREFIX)))
    router.message.register(cmd_start, CommandStart())
    router.callback_query.register(join_pressed, JoinCB.filter())
    return router
