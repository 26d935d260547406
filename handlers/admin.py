"""Owners (ADMIN_IDS): invite and revoke cashiers, void entries, adjust points."""

from __future__ import annotations

from aiogram import Bot, F, Router, html
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core import formatting
from bot.core.callbacks import InviteCB, StaffCB
from bot.core.commands import register_chat_commands_safely
from bot.core.filters import InPrivateChat, IsAdmin
from bot.core.money import whole_number
from bot.core.notices import Notices
from bot.core.notify import notify
from bot.loyalty import texts
from bot.loyalty.keyboards import staff_list, store_choice
from bot.loyalty.rules import STAFF_LINK_PREFIX, CardNumberError, format_card_number, parse_card_number
from bot.loyalty.service import LoyaltyService, Refused

MAX_REASON = 200


INVITE_QUESTION = "invite_question"  # FSM data: the "which store?" message whose button makes the link


async def cmd_invite(
    message: Message, bot: Bot, state: FSMContext, loyalty: LoyaltyService, business: Business
) -> None:
    """In a chain the owner first picks the store the new cashier will work in."""
    assert message.from_user is not None
    if business.chain:
        asked = await message.answer(
            _("Which store will the new cashier work in?"),
            reply_markup=store_choice(business.stores, lambda store: InviteCB(store=store.id)),
        )
        await state.update_data({INVITE_QUESTION: asked.message_id})
        return
    await message.answer(await _invite_text(bot, loyalty, business, message.from_user.id, None))


async def invite_store_pressed(
    callback: CallbackQuery,
    callback_data: InviteCB,
    bot: Bot,
    loyalty: LoyaltyService,
    business: Business,
    state: FSMContext,
    callback_answer: CallbackAnswer,
) -> None:
    if callback_data.store not in business.store_ids or not isinstance(callback.message, Message):
        callback_answer.text, callback_answer.show_alert = _("That store is no longer in the business file."), True
        return
    # One link per question: a second tap (or a press on an older question) makes none.
    if (await state.get_data()).get(INVITE_QUESTION) != callback.message.message_id:
        callback_answer.text, callback_answer.show_alert = _("This button no longer works."), True
        return
    await state.update_data({INVITE_QUESTION: None})
    text = await _invite_text(bot, loyalty, business, callback.from_user.id, callback_data.store)
    await callback.message.edit_text(text)


async def _invite_text(bot: Bot, loyalty: LoyaltyService, business: Business, admin: int, store: str | None) -> str:
    token, expires_at = await loyalty.create_invite(admin, store)
    me = await bot.me()
    link = f"https://t.me/{me.username}?start={STAFF_LINK_PREFIX}{token}"
    text = _(
        "Send this link to your new cashier. It works once, until {expires}:\n{link}\n"
        "Whoever opens it becomes a cashier, so share it only with them."
    ).format(expires=formatting.when(expires_at, business), link=link)
    if store is not None:
        text = _("Store: {store}").format(store=texts.store_name(business.store(store))) + "\n" + text
    return text


async def cmd_staff(message: Message, loyalty: LoyaltyService, business: Business) -> None:
    text, markup = await _staff_screen(loyalty, business)
    await message.answer(text, reply_markup=markup)


async def _staff_screen(loyalty: LoyaltyService, business: Business) -> tuple[str, InlineKeyboardMarkup | None]:
    staff = await loyalty.list_staff()
    if not staff:
        return _("No cashiers yet. Send /invite to add one."), None
    lines = [_("<b>Cashiers</b>")]
    for person in staff:
        name = html.quote(person.name) + (f" (@{person.username})" if person.username else "")
        since = formatting.when(person.created_at, business)
        if business.chain:
            lines.append(
                _("{name} · {store} · since {date}").format(
                    name=name, store=texts.store_name(business.store(person.store)), date=since
                )
            )
        else:
            lines.append(_("{name} · since {date}").format(name=name, date=since))
    return "\n".join(lines), staff_list(staff, business.chain)


async def move_pressed(
    callback: CallbackQuery,
    callback_data: StaffCB,
    business: Business,
    loyalty: LoyaltyService,
    callback_answer: CallbackAnswer,
) -> None:
    """Which store? Then the move; the list shows it at once."""
    if not isinstance(callback.message, Message):
        return
    if callback_data.action == "move":
        staff_id = callback_data.staff_id
        await callback.message.edit_reply_markup(
            reply_markup=store_choice(
                business.stores, lambda store: StaffCB(action="to", staff_id=staff_id, store=store.id)
            )
        )
        callback_answer.text = _("Which store?")
        return
    moved = await loyalty.move_staff(callback_data.staff_id, callback_data.store)
    if moved is None:
        callback_answer.text, callback_answer.show_alert = _("Nothing changed: that cashier or store is gone."), True
    else:
        callback_answer.text = _("{name} now works at {store}.").format(
            name=moved.name, store=business.store(moved.store).name.get(formatting.locale())
        )
    text, markup = await _staff_screen(loyalty, business)
    await callback.message.edit_text(text, reply_markup=markup)


async def revoke_pressed(
    callback: CallbackQuery,
    callback_data: StaffCB,
    bot: Bot,
    i18n: I18n,
    loyalty: LoyaltyService,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    revoked = await loyalty.revoke_staff(callback_data.staff_id)
    if revoked is None:
        callback_answer.text = _("Already revoked.")
    else:
        callback_answer.text = _("{name} is no longer a cashier.").format(name=revoked.name)
        with i18n.use_locale(await loyalty.language_of(revoked.telegram_id)):
            await notify(bot, revoked.telegram_id, _("Your cashier access has been revoked."))
            await register_chat_commands_safely(bot, revoked.telegram_id, is_staff=False)
    if isinstance(callback.message, Message):
        text, markup = await _staff_screen(loyalty, business)
        await callback.message.edit_text(text, reply_markup=markup)


async def cmd_void(
    message: Message, command: CommandObject, bot: Bot, loyalty: LoyaltyService, notices: Notices, business: Business
) -> None:
    assert message.from_user is not None
    entry_text, _sep, reason = (command.args or "").strip().partition(" ")
    reason = reason.strip()
    entry_id = whole_number(entry_text.lstrip("#"))
    if entry_id is None or not reason:
        await message.answer(_("Write it as /void ENTRY REASON, for example: /void 125 double scan"))
        return
    if len(reason) > MAX_REASON:
        await message.answer(_("The reason is too long: at most {count} characters.").format(count=MAX_REASON))
        return
    try:
        applied = await loyalty.void(entry_id, message.from_user.id, reason)
    except Refused as refused:
        await message.answer(texts.refusal(refused.reason, business, refused.details))
        return
    await notices.deliver(bot, applied.notices)  # the customer first: committed with the reversal
    await message.answer(
        _("Entry #{entry} cancelled: {points}. Card {card} balance: {balance}.").format(
            entry=applied.entry.reverses_id,
            points=texts.signed_points(applied.entry.points),
            card=format_card_number(applied.customer.card_number or ""),
            balance=texts.points(applied.customer.balance),
        )
    )


async def cmd_adjust(
    message: Message, command: CommandObject, bot: Bot, loyalty: LoyaltyService, notices: Notices, business: Business
) -> None:
    assert message.from_user is not None
    usage = _("Write it as /adjust CARD POINTS REASON, for example: /adjust 1234 5678 +20 apology for the wait")
    words = (command.args or "").split()
    # The card number may be typed with a space (1234 5678): find the signed points after it.
    split_at = next((i for i, word in enumerate(words) if word[:1] in "+-−" and i > 0), None)
    if split_at is None or split_at + 1 >= len(words):
        await message.answer(usage)
        return
    card_text, points_text, reason = " ".join(words[:split_at]), words[split_at], " ".join(words[split_at + 1 :])
    digits = points_text[1:]
    size = whole_number(digits)
    if size is None or size == 0 or len(digits) > 7:
        await message.answer(usage)
        return
    if len(reason) > MAX_REASON:
        await message.answer(_("The reason is too long: at most {count} characters.").format(count=MAX_REASON))
        return
    try:
        number = parse_card_number(card_text)
    except CardNumberError as error:
        await message.answer(texts.card_number_error(error))
        return
    customer = await loyalty.customer_by_card_number(number)
    if customer is None:
        await message.answer(_("No card with this number."))
        return
    points = size * (1 if points_text[0] == "+" else -1)
    try:
        applied = await loyalty.adjust(
            customer.id,
            points,
            message.from_user.id,
            reason,
            key=f"adj:{message.chat.id}:{message.message_id}",
        )
    except Refused as refused:
        await message.answer(texts.refusal(refused.reason, business, {"balance": customer.balance}))
        return
    await notices.deliver(bot, applied.notices)  # the customer first: committed with the adjustment
    await message.answer(
        _("Done: {points} on card {card}. Balance: {balance}. Entry #{entry}.").format(
            points=texts.signed_points(applied.entry.points),
            card=format_card_number(applied.customer.card_number or ""),
            balance=texts.points(applied.entry.balance_after),
            entry=applied.entry.id,
        )
    )


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(InPrivateChat(), IsAdmin())
    router.callback_query.filter(InPrivateChat(), IsAdmin())
    router.message.register(cmd_invite, Command("invite"))
    router.message.register(cmd_staff, Command("staff"))
    router.message.register(cmd_void, Command("void"))
    router.message.register(cmd_adjust, Command("adjust"))
    router.callback_query.register(revoke_pressed, StaffCB.filter(F.action == "revoke"))
    router.callback_query.register(move_pressed, StaffCB.filter(F.action.in_({"move", "to"})))
    router.callback_query.register(invite_store_pressed, InviteCB.filter())
    return router
