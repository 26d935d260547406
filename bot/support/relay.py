"""A manager's words on their way to a customer, signed with the manager's name. The survey
alerts use it now; the support hand-off will route its topic messages through it too."""

from __future__ import annotations

import logging
from enum import StrEnum

from aiogram import Bot, html
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.core.entities import MAX_CAPTION, MAX_TEXT, parse_html, telegram_length

logger = logging.getLogger(__name__)

CAPTIONED = {"photo", "video", "document", "audio", "voice", "animation"}


class Delivery(StrEnum):
    DELIVERED = "delivered"
    BLOCKED = "blocked"  # the customer blocked the bot
    FAILED = "failed"


def signature(manager_name: str) -> str:
    return _("<b>{name}, manager:</b>").format(name=html.quote(manager_name))


async def deliver_to_customer(
    bot: Bot, i18n: I18n, language: str, customer_telegram_id: int, manager_name: str, message: Message
) -> Delivery:
    """Copy a manager's message of any kind to the customer, under the manager's name.

    Text keeps its formatting; a photo, video or document gets the name as the start of its
    caption; anything without a caption (a sticker, a location) follows a line with the name.
    """
    with i18n.use_locale(language):
        header = signature(manager_name)
    # Telegram counts what is shown (the markup parsed) in UTF-16 units: an emoji is two.
    shown = telegram_length(parse_html(header)[0]) + 1
    try:
        if message.text is not None:
            if shown + telegram_length(message.text) <= MAX_TEXT:
                await bot.send_message(customer_telegram_id, f"{header}\n{message.html_text}")
            else:  # the manager's own text fits; with the name on top it would not
                await bot.send_message(customer_telegram_id, header)
                await bot.copy_message(customer_telegram_id, message.chat.id, message.message_id)
        elif message.content_type in CAPTIONED:
            if shown + telegram_length(message.caption or "") <= MAX_CAPTION:
                caption = f"{header}\n{message.html_text}" if message.caption else header
                await bot.copy_message(customer_telegram_id, message.chat.id, message.message_id, caption=caption)
            else:  # the name goes first, and the caption stays as the manager wrote it
                await bot.send_message(customer_telegram_id, header)
                await bot.copy_message(customer_telegram_id, message.chat.id, message.message_id)
        else:
            await bot.send_message(customer_telegram_id, header)
            await bot.copy_message(customer_telegram_id, message.chat.id, message.message_id)
    except TelegramForbiddenError:
        return Delivery.BLOCKED
    except TelegramAPIError:
        logger.exception("could not deliver a manager's message to %s", customer_telegram_id)
        return Delivery.FAILED
    return Delivery.DELIVERED
