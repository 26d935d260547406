"""The customer's ✅ / ❌ on a request to pay with points, in their own chat."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.callbacks import RedeemAnswerCB
from bot.core.filters import InPrivateChat
from bot.core.notices import Notices
from bot.loyalty import texts
from bot.loyalty.notices import keep_card_current
from bot.loyalty.service import Applied, LoyaltyService, Refusal, Refused, cashier_notice
from storage.models import OperationStatus


async def redemption_answered(
    callback: CallbackQuery,
    callback_data: RedeemAnswerCB,
    bot: Bot,
    loyalty: LoyaltyService,
    notices: Notices,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        outcome = await loyalty.answer_redemption(callback_data.op_id, callback.from_user.id, callback_data.accept)
    except Refused as refused:
        if refused.reason in (Refusal.NOT_YOURS, Refusal.OPERATION_UNKNOWN):
            callback_answer.text = _("This button no longer works.")
        else:
            callback_answer.text = texts.refusal(refused.reason, business, refused.details)
            if isinstance(callback.message, Message):
                await callback.message.edit_text(texts.refusal(refused.reason, business, refused.details))
        callback_answer.show_alert = True
        return
    if isinstance(outcome, Applied):
        if not outcome.created:
            callback_answer.text = _("Already done: the points were redeemed once.")
            await notices.deliver(bot, outcome.notices)  # the cashier's word, if it did not get through
            return
        operation = outcome.operation
        mine = texts.balance_change(outcome.entry, business)
    else:
        operation = outcome
        mine = {
            OperationStatus.DECLINED: _("OK, no points were redeemed."),
            OperationStatus.EXPIRED: _("This request has expired. Nothing was redeemed."),
            OperationStatus.CANCELLED: _("This request was cancelled. Nothing was redeemed."),
        }.get(OperationStatus(operation.status), _("Not enough points on your card. Nothing was redeemed."))
    assert operation is not None and operation.id is not None
    # The cashier's word on the outcome was committed with it: it reaches them even if the
    # customer's own screen below cannot be updated.
    await notices.deliver(bot, (cashier_notice(operation.id),))
    if isinstance(callback.message, Message):
        await callback.message.edit_text(mine)
    if isinstance(outcome, Applied):  # the card in the chat: the new balance, its code spent
        await keep_card_current(bot, loyalty, outcome.customer, business)


def create_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.filter(InPrivateChat())
    router.callback_query.register(redemption_answered, RedeemAnswerCB.filter())
    return router
