"""A step's prompt: the one message whose buttons act now.

A flow of several steps (a cashier's sale, a redemption) asks each question in a new message with
its own buttons. When a step moves on, the earlier prompt's buttons would still act, on a step that
is over: an old "Cancel" could stop the sale in progress. So the FSM data remembers the current
prompt's message; a new prompt takes the buttons off the one before, and a button acts only if it
sits on the current prompt.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

logger = logging.getLogger(__name__)

PROMPT = "prompt"  # FSM data: the message id of the step's current prompt


async def take_off_buttons(bot: Bot, chat_id: int, message_id: int | None) -> None:
    """Remove a message's keyboard; a message already without one, or gone, is fine."""
    if message_id is None:
        return
    try:
        await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None)
    except TelegramAPIError as error:  # not modified, deleted, too old, or Telegram failing now
        # Best effort: a button left behind is refused when pressed (`is_current`); an error here
        # must never undo the word on what was just done.
        logger.info("could not take the buttons off message %s in chat %s: %s", message_id, chat_id, error)


async def show(message: Message, state: FSMContext, text: str, markup: InlineKeyboardMarkup | None) -> Message:
    """Send the step's prompt after `message`; the earlier prompt's buttons go."""
    assert message.bot is not None
    earlier = (await state.get_data()).get(PROMPT)
    sent = await message.answer(text, reply_markup=markup)
    if earlier is not None and earlier != sent.message_id:
        await take_off_buttons(message.bot, message.chat.id, earlier)
    await state.update_data({PROMPT: sent.message_id if markup is not None else None})
    return sent


async def finish(bot: Bot, chat_id: int, state: FSMContext, *, keep: int | None = None) -> None:
    """The flow is over: the state cleared, the last prompt's buttons taken off (unless it is
    `keep`, a message the caller edits itself)."""
    earlier = (await state.get_data()).get(PROMPT)
    await state.clear()
    if earlier is not None and earlier != keep:
        await take_off_buttons(bot, chat_id, earlier)


async def is_current(callback: CallbackQuery, state: FSMContext) -> bool:
    """Whether the pressed button sits on the step's current prompt."""
    message = callback.message
    return isinstance(message, Message) and (await state.get_data()).get(PROMPT) == message.message_id
