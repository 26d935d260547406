"""Sending to someone other than the person who wrote: it may fail, and that must not stop the
operation that caused it. What a committed movement owes people goes through notices instead
(`bot/core/notices.py`), which are sent again until they get through."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import Message

logger = logging.getLogger(__name__)


async def notify(bot: Bot, chat_id: int, text: str, **kwargs: Any) -> Message | None:
    try:
        return await bot.send_message(chat_id, text, **kwargs)
    except TelegramForbiddenError:
        logger.info("chat %s has blocked the bot; message not delivered", chat_id)
    except TelegramAPIError:
        logger.exception("could not send a message to chat %s", chat_id)
    return None


async def edit_or_notify(bot: Bot, chat_id: int, message_id: int | None, text: str, **kwargs: Any) -> None:
    """Edit an earlier message in place; if that fails (too old, deleted), send a new one."""
    if message_id is not None:
        try:
            await bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id, **kwargs)
            return
        except TelegramAPIError:
            logger.info("could not edit message %s in chat %s; sending a new one", message_id, chat_id)
    await notify(bot, chat_id, text, **kwargs)
