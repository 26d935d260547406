"""Cashiers: open a card (QR deep link, typed number, QR photo), type the receipt total (that is
the sale, with Undo for the undo window) or pay with points; Undo.

Each step asks in a new message, its prompt (`bot/core/prompts.py`): the prompt before loses its
buttons, and a button acts only on the step it belongs to.

Every handler here is registered with IsStaff, checked on each message and button press, so a revoked
cashier loses access at once and forged buttons from anyone else fall through to the fallback. It is
each handler's last filter, not the router's: a customer's message, which no handler here takes,
costs no staff lookup.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
from aiogram import Bot, F, Router, html
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, CommandStart, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core import formatting, prompts
from bot.core.callbacks import FlowCB, OperationCB, ScanCB, UndoCB
from bot.core.filters import HasPhoto, HasText, InPrivateChat
from bot.core.money import AmountError, parse_amount
from bot.core.notices import Notices
from bot.core.notify import edit_or_notify, notify
from bot.core.states import Purchase, Redemption, Scan
from bot.core.timers import Timers
from bot.loyalty import keyboards, texts
from bot.loyalty.filters import IsStaff
from bot.loyalty.qr import read_qr
from bot.loyalty.rules import (
    CARD_LINK_PREFIX,
    CardNumberError,
    max_redeemable,
    parse_card_number,
    parse_points,
    token_from_card_link,
)
from bot.loyalty.service import Applied, LoyaltyService, Refusal, Refused
from storage.models import Customer, EntryKind, OperationStatus

logger = logging.getLogger(__name__)

MAX_RECEIPT_NO = 32
OPEN_CARD = "open_card"  # FSM data: the card the cashier opened last, the one its buttons act on
OPENED_AT = "opened_at"  # FSM data: when (Unix seconds): a card left open stops taking sales
OPEN_FOR = timedelta(minutes=15)  # an open card takes sales this long: the next customer is not sold to
MAX_PHOTO_BYTES = 10 * 1024 * 1024


# --- opening a card ------------------------------------------------------------------------


def _bot_of(message: Message) -> Bot:
    assert message.bot is not None  # a message the dispatcher handed over carries its bot
    return message.bot


def _bot_of_press(callback: CallbackQuery) -> Bot:
    assert callback.bot is not None
    return callback.bot


class CurrentPrompt(Filter):
    """The pressed button sits on the step's current prompt (`bot/core/prompts.py`)."""

    async def __call__(self, callback: CallbackQuery, state: FSMContext) -> bool:
        return isinstance(callback.message, Message) and await prompts.is_current(callback, state)


async def _show_card(
    message: Message, customer: Customer, state: FSMContext, loyalty: LoyaltyService, business: Business
) -> None:
    """The card open at the till: the next amount the cashier types is a sale on it."""
    assert message.from_user is not None
    try:
        customer = await loyalty.check_card(customer.id, message.from_user.id)
    except Refused as refused:
        await message.answer(texts.refusal(refused.reason, business, refused.details))
        return
    # The card this cashier has open now: its buttons act on it and on no other (callback data
    # can be forged: a "Pay with points" for a card never opened here is refused).
    await state.set_state(Scan.card_open)
    await state.update_data({OPEN_CARD: customer.id, OPENED_AT: int(loyalty.clock().timestamp())})
    await prompts.show(
        message,
        state,
        texts.cashier_card_view(customer, business)
        + "\n\n"
        + _("Type the receipt total, like {example}, to add points.").format(
            example=formatting.amount_example(business)
        ),
        keyboards.scanned_card(customer.id),
    )


async def _open_by_token(
    message: Message,
    token: str,
    state: FSMContext,
    loyalty: LoyaltyService,
    notices: Notices,
    business: Business,
    method: str = "qr",
) -> None:
    assert message.from_user is not None
    try:
        opened = await loyalty.use_card_code(token, message.from_user.id, method)
    except Refused as refused:  # a camera that fired twice: the card opened by the first stays open
        await message.answer(texts.refusal(refused.reason, business, refused.details))
        return
    await prompts.finish(_bot_of(message), message.chat.id, state)
    await notices.deliver(_bot_of(message), opened.notices)  # owners warned of many cards opened without a QR
    await _show_card(message, opened.customer, state, loyalty, business)


async def cmd_start_card(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    loyalty: LoyaltyService,
    notices: Notices,
    business: Business,
) -> None:
    assert command.args is not None
    await _open_by_token(message, command.args.removeprefix(CARD_LINK_PREFIX), state, loyalty, notices, business)


async def _open_by_number(
    message: Message, text: str, state: FSMContext, loyalty: LoyaltyService, notices: Notices, business: Business
) -> None:
    try:
        number = parse_card_number(text)
    except CardNumberError as error:
        await state.set_state(Scan.entering_card)
        await prompts.show(message, state, texts.card_number_error(error), keyboards.flow_cancel())
        return
    assert message.from_user is not None
    opened = await loyalty.open_by_card_number(number, message.from_user.id)
    if opened is None:
        await state.set_state(Scan.entering_card)
        await prompts.show(
            message, state, _("No card with this number. Check it and send it again."), keyboards.flow_cancel()
        )
        return
    await prompts.finish(_bot_of(message), message.chat.id, state)
    await notices.deliver(_bot_of(message), opened.notices)  # owners warned of many cards opened by number
    await _show_card(message, opened.customer, state, loyalty, business)


async def cmd_scan(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    loyalty: LoyaltyService,
    notices: Notices,
    business: Business,
) -> None:
    if command.args:
        await _open_by_number(message, command.args, state, loyalty, notices, business)
        return
    await state.set_state(Scan.entering_card)
    await prompts.show(
        message,
        state,
        _("Send the customer's card number (8 digits) or a photo of their QR code."),
        keyboards.flow_cancel(),
    )


async def card_number_entered(
    message: Message, state: FSMContext, loyalty: LoyaltyService, notices: Notices, business: Business
) -> None:
    assert message.text is not None
    token = token_from_card_link(message.text)
    if token is not None:
        await _open_by_token(message, token, state, loyalty, notices, business)
        return
    await _open_by_number(message, message.text, state, loyalty, notices, business)


async def card_photo_sent(
    message: Message, bot: Bot, state: FSMContext, loyalty: LoyaltyService, notices: Notices, business: Business
) -> None:
    assert message.photo is not None
    photo = message.photo[-1]
    if photo.file_size is not None and photo.file_size > MAX_PHOTO_BYTES:
        await prompts.show(message, state, _("This photo is too large. Send a smaller one."), keyboards.flow_cancel())
        return
    buffer = io.BytesIO()
    try:
        await bot.download(photo, destination=buffer)
    except (TelegramAPIError, aiohttp.ClientError, TimeoutError):
        logger.warning("could not download a QR photo from cashier %s", message.chat.id, exc_info=True)
        await state.set_state(Scan.entering_card)
        await prompts.show(
            message,
            state,
            _("I could not download this photo. Send it again, or type the card number."),
            keyboards.flow_cancel(),
        )
        return
    texts_in_photo = await asyncio.to_thread(read_qr, buffer.getvalue())  # decoding may take a while
    tokens = [token for token in map(token_from_card_link, texts_in_photo) if token]
    if not tokens:
        await state.set_state(Scan.entering_card)
        await prompts.show(
            message,
            state,
            _("I could not find a loyalty card QR code in this photo. Try again closer, or type the card number."),
            keyboards.flow_cancel(),
        )
        return
    await _open_by_token(message, tokens[0], state, loyalty, notices, business, method="photo")


async def scan_wrong_input(message: Message, state: FSMContext) -> None:
    await prompts.show(
        message, state, _("Send the card number as digits, or a photo of the QR code."), keyboards.flow_cancel()
    )


async def scan_cancel_pressed(callback: CallbackQuery, state: FSMContext) -> None:
    assert isinstance(callback.message, Message)  # CurrentPrompt let it through: it is the prompt
    await prompts.finish(_bot_of_press(callback), callback.message.chat.id, state, keep=callback.message.message_id)
    await callback.message.edit_text(_("Cancelled."))


def _still_open(data: dict[str, Any], loyalty: LoyaltyService) -> bool:
    """Whether the card in this step was opened lately enough to act on (a card left open overnight
    must not take the next morning's first sale)."""
    opened = data.get(OPENED_AT)
    return opened is None or loyalty.clock().timestamp() - int(opened) <= OPEN_FOR.total_seconds()


async def _flow_data(
    message: Message, state: FSMContext, loyalty: LoyaltyService, need_amount: bool = True
) -> dict[str, int] | None:
    """The card (and amount) this step works on; None, with a word to the cashier, if it is gone."""
    data = await state.get_data()
    if OPEN_CARD not in data and "customer_id" in data:  # a step begun before the one-step sale
        data[OPEN_CARD] = data["customer_id"]
    if OPEN_CARD not in data or (need_amount and "amount" not in data):
        await prompts.finish(_bot_of(message), message.chat.id, state)
        await message.answer(_("This step has ended. Open the card again to start over."))
        return None
    if not _still_open(data, loyalty):
        await prompts.finish(_bot_of(message), message.chat.id, state)
        await message.answer(_("This card was opened too long ago. Scan the customer's QR code again."))
        return None
    return data


# --- a sale: the amount typed into an open card ----------------------------------------------


async def _read_amount(message: Message, business: Business, loyalty: LoyaltyService) -> int | None:
    try:
        amount = parse_amount(message.text or "", business.exponent)
        loyalty.check_purchase_amount(amount)
    except AmountError as error:
        await message.answer(formatting.amount_error(error, business))
        return None
    except Refused as refused:
        await message.answer(texts.refusal(refused.reason, business, refused.details))
        return None
    return amount


def _another_card(text: str, business: Business) -> bool:
    """Whether a text typed into an open card is another card's number rather than an amount: eight
    digits with a right check digit and no decimal part, over the largest receipt."""
    try:
        parse_card_number(text)
    except CardNumberError:
        return False
    try:
        return parse_amount(text, business.exponent) > business.max_receipt
    except AmountError:
        return True


async def _next_card(
    message: Message, state: FSMContext, loyalty: LoyaltyService, notices: Notices, business: Business
) -> bool:
    """The next customer's QR link or card number, typed where an amount was asked: their card
    opens and the step in progress is left. False when the text is not a card."""
    assert message.text is not None
    token = token_from_card_link(message.text)
    if token is not None:
        await _open_by_token(message, token, state, loyalty, notices, business)
        return True
    if _another_card(message.text, business):
        await _open_by_number(message, message.text, state, loyalty, notices, business)
        return True
    return False


async def sale_amount_entered(
    message: Message, state: FSMContext, loyalty: LoyaltyService, notices: Notices, business: Business
) -> None:
    if await _next_card(message, state, loyalty, notices, business):
        return
    amount = await _read_amount(message, business, loyalty)
    if amount is None:
        return
    if business.ask_receipt_number:
        await state.update_data(amount=amount)
        await state.set_state(Purchase.entering_receipt)
        await prompts.show(
            message,
            state,
            _("Receipt total: {amount}. Type the receipt number:").format(amount=formatting.money(amount, business)),
            keyboards.flow_cancel(),
        )
        return
    await _sell(message, amount, None, state, loyalty, notices, business)


async def _sell(
    message: Message,
    amount: int,
    receipt_no: str | None,
    state: FSMContext,
    loyalty: LoyaltyService,
    notices: Notices,
    business: Business,
) -> None:
    """The sale on the open card, keyed by the cashier's message: a redelivered one sells once."""
    assert message.from_user is not None
    data = await _flow_data(message, state, loyalty, need_amount=False)
    if data is None:
        return
    try:
        key = f"sale:{message.chat.id}:{message.message_id}"
        applied = await loyalty.sell(data[OPEN_CARD], message.from_user.id, amount, receipt_no, key=key)
    except Refused as refused:
        if refused.reason == Refusal.RECEIPT_USED:  # a typo in the number, most likely: ask again
            await message.answer(texts.refusal(refused.reason, business, refused.details))
            return
        await prompts.finish(_bot_of(message), message.chat.id, state)
        await message.answer(texts.refusal(refused.reason, business, refused.details))
        return
    await state.set_state(None)  # the card is closed at once: nothing typed next can sell again
    # The cashier's "Added" with Undo and the customer's points were committed with the sale: sent
    # now, drawn from what the sale returned, and again later if Telegram fails now. A repeat sends
    # only what did not get through.
    with loyalty.holding(applied):
        await notices.deliver(_bot_of(message), applied.notices)
    await prompts.finish(_bot_of(message), message.chat.id, state)


async def receipt_entered(
    message: Message, state: FSMContext, loyalty: LoyaltyService, notices: Notices, business: Business
) -> None:
    assert message.text is not None
    receipt_no = " ".join(message.text.split())
    if len(receipt_no) > MAX_RECEIPT_NO or not receipt_no.isprintable():
        await message.answer(
            _("A receipt number is at most {count} characters. Type it again.").format(count=MAX_RECEIPT_NO)
        )
        return
    data = await _flow_data(message, state, loyalty)
    if data is None:
        return
    await _sell(message, data["amount"], receipt_no, state, loyalty, notices, business)


async def operation_confirmed(
    callback: CallbackQuery,
    callback_data: OperationCB,
    bot: Bot,
    loyalty: LoyaltyService,
    notices: Notices,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    """Confirm under a purchase prepared before the one-step sale: such buttons may still be in
    cashiers' chats after an upgrade, and confirm as they did."""
    message_id = callback.message.message_id if isinstance(callback.message, Message) else None
    try:
        applied = await loyalty.confirm_purchase(callback_data.op_id, callback.from_user.id, message_id)
    except Refused as refused:
        callback_answer.text = texts.refusal(refused.reason, business, refused.details)
        callback_answer.show_alert = True
        if refused.reason not in (Refusal.NOT_YOURS, Refusal.OPERATION_UNKNOWN) and isinstance(
            callback.message, Message
        ):
            await callback.message.edit_text(texts.refusal(refused.reason, business, refused.details))
        return
    if not applied.created:
        callback_answer.text = _("Already done: the points were added once.")
    with loyalty.holding(applied):
        await notices.deliver(bot, applied.notices)


async def operation_cancelled(
    callback: CallbackQuery,
    callback_data: OperationCB,
    bot: Bot,
    i18n: I18n,
    loyalty: LoyaltyService,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        operation = await loyalty.cancel_operation(callback_data.op_id, callback.from_user.id)
    except Refused as refused:
        callback_answer.text = texts.refusal(refused.reason, business, refused.details)
        callback_answer.show_alert = True
        if isinstance(callback.message, Message):  # the operation is over: its buttons go
            await prompts.take_off_buttons(bot, callback.message.chat.id, callback.message.message_id)
        return
    if isinstance(callback.message, Message):
        await callback.message.edit_text(_("Cancelled. Nothing was changed."))
    if operation.status == OperationStatus.CANCELLED and operation.kind == EntryKind.REDEMPTION:
        customer = await loyalty.customer(operation.customer_id)
        if customer is not None:
            with i18n.use_locale(await loyalty.language_of(customer.telegram_id)):
                await notify(bot, customer.telegram_id, _("The cashier cancelled the request to pay with points."))


# --- paying with points --------------------------------------------------------------------


async def redeem_pressed(
    callback: CallbackQuery,
    callback_data: ScanCB,
    state: FSMContext,
    loyalty: LoyaltyService,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    assert isinstance(callback.message, Message)  # CurrentPrompt let it through: it is the prompt
    data = await state.get_data()
    if not _still_open(data, loyalty):
        callback_answer.text = _("This card was opened too long ago. Scan the customer's QR code again.")
        callback_answer.show_alert = True
        return
    if data.get(OPEN_CARD) != callback_data.customer_id:
        callback_answer.text = _("This card is not open any more. Scan the customer's QR code or type the card number.")
        callback_answer.show_alert = True
        return
    try:
        customer = await loyalty.check_card(callback_data.customer_id, callback.from_user.id)
    except Refused as refused:
        callback_answer.text = texts.refusal(refused.reason, business, refused.details)
        callback_answer.show_alert = True
        return
    if customer.balance <= 0:
        callback_answer.text = texts.refusal(Refusal.NOT_ENOUGH_POINTS, business, {"balance": 0})
        callback_answer.show_alert = True
        return
    await state.set_state(Redemption.entering_amount)
    await prompts.show(
        callback.message,
        state,
        _("Pay with points. Customer: {name}, balance: {balance}.\nType the receipt total, like {example}:").format(
            name=html.quote(customer.first_name),
            balance=texts.points(customer.balance),
            example=formatting.amount_example(business),
        ),
        keyboards.flow_cancel(),
    )


async def redeem_amount_entered(
    message: Message, state: FSMContext, loyalty: LoyaltyService, notices: Notices, business: Business
) -> None:
    if await _next_card(message, state, loyalty, notices, business):
        return
    amount = await _read_amount(message, business, loyalty)
    if amount is None:
        return
    data = await _flow_data(message, state, loyalty, need_amount=False)
    if data is None:
        return
    customer = await loyalty.customer(data[OPEN_CARD])
    if customer is None:
        await prompts.finish(_bot_of(message), message.chat.id, state)
        await message.answer(texts.refusal(Refusal.NOT_A_MEMBER, business))
        return
    most = max_redeemable(business, amount, customer.balance)
    await state.update_data(amount=amount)
    await state.set_state(Redemption.entering_points)
    await prompts.show(
        message,
        state,
        _(
            "Receipt total: {amount}.\nMost points for this receipt: {points}.\nType how many to use, or tap Max."
        ).format(amount=formatting.money(amount, business), points=texts.points(most)),
        keyboards.points_prompt(most, texts.points(most)),
    )


async def _request_redemption(
    message: Message,
    cashier_id: int,
    points: int | None,
    bot: Bot,
    i18n: I18n,
    state: FSMContext,
    loyalty: LoyaltyService,
    business: Business,
    timers: Timers,
) -> None:
    data = await _flow_data(message, state, loyalty)
    if data is None:
        return
    try:
        operation, customer = await loyalty.prepare_redemption(data[OPEN_CARD], cashier_id, data["amount"], points)
    except Refused as refused:
        if refused.reason in (
            Refusal.NOT_ENOUGH_POINTS,
            Refusal.OVER_CAP,
            Refusal.NOT_POSITIVE,
        ) and refused.details.get("balance", 0):
            most = max_redeemable(business, data["amount"], refused.number("balance"))
            await prompts.show(
                message,
                state,
                texts.refusal(refused.reason, business, refused.details),
                keyboards.points_prompt(most, texts.points(most)),
            )
            return
        await prompts.finish(bot, message.chat.id, state)
        await message.answer(texts.refusal(refused.reason, business, refused.details))
        return
    await prompts.finish(bot, message.chat.id, state)
    with i18n.use_locale(await loyalty.language_of(customer.telegram_id)):
        asked = await notify(
            bot,
            customer.telegram_id,
            texts.redemption_request(operation, business),
            reply_markup=keyboards.redeem_answer(operation.id),
        )
    if asked is None:
        await loyalty.cancel_operation(operation.id, cashier_id)
        await message.answer(_("I could not reach the customer in Telegram, so nothing was redeemed."))
        return
    seconds = business.redeem_confirm_seconds
    waiting = await message.answer(
        texts.redemption_waiting(operation, customer, business, seconds),
        reply_markup=keyboards.waiting_customer(operation.id),
    )
    await loyalty.remember_cashier_message(operation.id, waiting.message_id)

    async def expire() -> None:
        expired = await loyalty.expire_redemption(operation.id)
        if expired is None:
            return
        with i18n.use_locale(await loyalty.language_of(cashier_id)):
            await edit_or_notify(
                bot, cashier_id, waiting.message_id, _("The customer did not confirm in time. Nothing was redeemed.")
            )
        with i18n.use_locale(await loyalty.language_of(customer.telegram_id)):
            await edit_or_notify(bot, customer.telegram_id, asked.message_id, _("This request has expired."))

    timers.later(seconds + 1, expire)


async def redeem_points_entered(
    message: Message,
    bot: Bot,
    i18n: I18n,
    state: FSMContext,
    loyalty: LoyaltyService,
    business: Business,
    timers: Timers,
) -> None:
    assert message.from_user is not None and message.text is not None
    text = message.text.strip().lower()
    if text in {"max", "макс", "максимум", "maks"}:
        points = None
    else:
        points = parse_points(text)
        if points is None:
            await message.answer(_("Type the points as a whole number, like 80, or tap Max."))
            return
    await _request_redemption(message, message.from_user.id, points, bot, i18n, state, loyalty, business, timers)


async def redeem_max_pressed(
    callback: CallbackQuery,
    bot: Bot,
    i18n: I18n,
    state: FSMContext,
    loyalty: LoyaltyService,
    business: Business,
    timers: Timers,
) -> None:
    assert isinstance(callback.message, Message)  # CurrentPrompt let it through: it is the prompt
    await _request_redemption(
        callback.message, callback.from_user.id, None, bot, i18n, state, loyalty, business, timers
    )


async def amount_without_a_card(message: Message, business: Business) -> None:
    """A cashier typed an amount with no card open (the sale before was made, or the card was never
    opened): say so, rather than let the FAQ take a number for a question."""
    await message.answer(
        _("No card is open, so nothing was added. Scan the customer's QR code or send /scan with the card number.")
    )


class LooksLikeAmount(Filter):
    """A short text that reads as an amount of money."""

    async def __call__(self, message: Message, business: Business) -> bool:
        try:
            parse_amount(message.text or "", business.exponent)
        except AmountError:
            return False
        return True


async def flow_wrong_input(message: Message) -> None:
    await message.answer(_("Please type a number, or send /cancel to stop."))


async def flow_cancel_pressed(callback: CallbackQuery, state: FSMContext) -> None:
    assert isinstance(callback.message, Message)  # CurrentPrompt let it through: it is the prompt
    await prompts.finish(_bot_of_press(callback), callback.message.chat.id, state, keep=callback.message.message_id)
    await callback.message.edit_text(_("Cancelled. Nothing was changed."))


async def stale_flow_button(callback: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    """A button of a step that is over (an earlier prompt, a card closed since): it goes."""
    if isinstance(callback.message, Message):
        await prompts.take_off_buttons(_bot_of_press(callback), callback.message.chat.id, callback.message.message_id)
    callback_answer.text = _("This button is from an earlier step. Use the latest message.")
    callback_answer.show_alert = True


# --- undo ----------------------------------------------------------------------------------


async def _undo_done(applied: Applied, bot: Bot, notices: Notices) -> str:
    # The customer's word (and a "bring a friend" bonus the undone purchase had brought back).
    await notices.deliver(bot, applied.notices)
    return texts.undone(applied.entry, applied.customer)


async def undo_pressed(
    callback: CallbackQuery,
    callback_data: UndoCB,
    bot: Bot,
    loyalty: LoyaltyService,
    notices: Notices,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        applied = await loyalty.undo(callback_data.entry_id, callback.from_user.id)
    except Refused as refused:
        callback_answer.text = texts.refusal(refused.reason, business, refused.details)
        callback_answer.show_alert = True
        return
    if isinstance(callback.message, Message):
        await callback.message.edit_text(await _undo_done(applied, bot, notices))


async def cmd_undo(message: Message, bot: Bot, loyalty: LoyaltyService, notices: Notices, business: Business) -> None:
    assert message.from_user is not None
    try:
        applied = await loyalty.undo_last(message.from_user.id)
    except Refused as refused:
        await message.answer(texts.refusal(refused.reason, business, refused.details))
        return
    await message.answer(await _undo_done(applied, bot, notices))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(InPrivateChat())
    router.callback_query.filter(InPrivateChat())
    staff = IsStaff()

    def on_message(handler: Callable[..., Awaitable[Any]], *filters: Any) -> None:
        router.message.register(handler, *filters, staff)

    def on_button(handler: Callable[..., Awaitable[Any]], *filters: Any) -> None:
        router.callback_query.register(handler, *filters, staff)

    on_message(cmd_start_card, CommandStart(deep_link=True, magic=F.args.startswith(CARD_LINK_PREFIX)))
    on_message(cmd_scan, Command("scan"))
    on_message(cmd_undo, Command("undo"))
    on_message(card_number_entered, StateFilter(Scan.entering_card), HasText())
    on_message(card_photo_sent, StateFilter(Scan.entering_card, Scan.card_open, Redemption.entering_amount), HasPhoto())
    on_message(scan_wrong_input, StateFilter(Scan.entering_card))
    on_message(sale_amount_entered, StateFilter(Scan.card_open, Purchase.entering_amount), HasText())
    on_message(receipt_entered, StateFilter(Purchase.entering_receipt), HasText())
    on_message(redeem_amount_entered, StateFilter(Redemption.entering_amount), HasText())
    on_message(redeem_points_entered, StateFilter(Redemption.entering_points), HasText())
    on_message(
        flow_wrong_input,
        StateFilter(
            Scan.card_open,
            Purchase.entering_amount,
            Purchase.entering_receipt,
            Redemption.entering_amount,
            Redemption.entering_points,
        ),
    )

    # A step's buttons act only on their own prompt; any other press of them is a stale button.
    current = CurrentPrompt()
    on_button(scan_cancel_pressed, ScanCB.filter(F.action == "cancel"), current)
    on_button(redeem_pressed, ScanCB.filter(F.action == "redeem"), StateFilter(Scan.card_open), current)
    on_button(redeem_max_pressed, FlowCB.filter(F.action == "max"), StateFilter(Redemption.entering_points), current)
    on_button(flow_cancel_pressed, FlowCB.filter(F.action == "cancel"), current)
    on_button(stale_flow_button, ScanCB.filter())
    on_button(stale_flow_button, FlowCB.filter())
    on_button(operation_confirmed, OperationCB.filter(F.action == "confirm"))
    on_button(operation_cancelled, OperationCB.filter(F.action == "cancel"))
    on_button(undo_pressed, UndoCB.filter())
    return router
