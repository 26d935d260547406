"""Sending to someone other than the person who wrote: it may fail, and that must not stop the
operation that caused it."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import Message
from aiogram.utils.i18n import I18n

from bot import texts
from bot.business import Business
from bot.services import Applied, LoyaltyService

logger = logging.getLogger(__name__)


async def notify(bot: Bot, chat_id: int, text: str, **kwargs: Any) -> Message | None:
    try:
        return await bot.send_message(chat_id, text, **kwargs)
    except TelegramForbiddenError:
        logger.info("chat %s has blocked the bot; message not delivered", chat_id)
    except TelegramAPIError:
        logger.exception("could not send a message to chat %s", chat_id)
    return None


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


async def edit_or_notify(bot: Bot, chat_id: int, message_id: int | None, text: str, **kwargs: Any) -> None:
    """Edit an earlier message in place; if that fails (too old, deleted), send a new one."""
    if message_id is not None:
        try:
            await bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id, **kwargs)
            return
        except TelegramAPIError:
            logger.info("could not edit message %s in chat %s; sending a new one", message_id, chat_id)
    await notify(bot, chat_id, text, **kwargs)
