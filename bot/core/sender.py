"""The one path every Bot API call takes (a request middleware on the Bot's session, installed by
`create_bot`): replies in handlers, relays, alerts, surveys, greetings and broadcasts alike.

- Messages and edits pass the RateLimiter (`bot/core/limiter.py`): about 30 a second overall, about
  one a second per private chat, 20 a minute per group; bulk sending gives way to replies.
- A 429 pauses every sender for its `retry_after`, and the call is made again (up to RETRIES).
- A text over Telegram's 4 096 characters is sent as several messages, cut at paragraph, line or
  word boundaries, formatting kept; the keyboard goes with the last part.
- The answer to a button press that has become too old (a replayed update) is not an error.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import (
    AnswerCallbackQuery,
    CopyMessage,
    CopyMessages,
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    ForwardMessage,
    ForwardMessages,
    Response,
    SendAnimation,
    SendAudio,
    SendContact,
    SendDice,
    SendDocument,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendPoll,
    SendSticker,
    SendVenue,
    SendVideo,
    SendVideoNote,
    SendVoice,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import MessageEntity

from bot.core.entities import MAX_TEXT, parse_html, telegram_length
from bot.core.limiter import RateLimiter

logger = logging.getLogger(__name__)

RETRIES = 5  # 429s in a row for one call before it is given up
SENDING = (
    SendMessage,
    SendPhoto,
    SendDocument,
    SendVideo,
    SendAnimation,
    SendAudio,
    SendVoice,
    SendVideoNote,
    SendSticker,
    SendLocation,
    SendVenue,
    SendContact,
    SendPoll,
    SendDice,
    SendMediaGroup,
    CopyMessage,
    CopyMessages,
    ForwardMessage,
    ForwardMessages,
)
EDITING = (EditMessageText, EditMessageCaption, EditMessageMedia, EditMessageReplyMarkup)
STALE_QUERY = ("query is too old", "query id is invalid")


class Outbox(BaseRequestMiddleware):
    def __init__(self, limiter: RateLimiter, retries: int = RETRIES) -> None:
        self.limiter = limiter
        self.retries = retries

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Response[TelegramType]:
        if isinstance(method, SendMessage) and telegram_length(method.text) > MAX_TEXT:
            parts = split_message(method, bot)
            if parts != [method]:
                response: Response[TelegramType] | None = None
                for part in parts:
                    # Each part is a SendMessage like `method`: it answers with the same type.
                    response = await self._call(make_request, bot, part)  # type: ignore[arg-type]
                assert response is not None
                return response  # the last part's, the one with the keyboard
        return await self._call(make_request, bot, method)

    async def _call(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Response[TelegramType]:
        limited = isinstance(method, SENDING + EDITING)
        chat = _chat_of(method) if isinstance(method, SENDING) else None
        attempt = 0
        while True:
            if limited:
                await self.limiter.acquire(chat)
            else:
                await self.limiter.wait_out_pause()
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                await self.limiter.pause_everywhere(error.retry_after)
                attempt += 1
                if attempt > self.retries:
                    raise
                logger.warning("%s: Telegram asks to wait %s s", type(method).__name__, error.retry_after)
            except TelegramBadRequest as error:
                if isinstance(method, AnswerCallbackQuery) and any(s in error.message.lower() for s in STALE_QUERY):
                    logger.info("a button's answer came too late for Telegram; skipped")
                    # What Telegram answers when it works (aiogram passes the result, typed as a Response).
                    return True  # type: ignore[return-value]
                raise


def _chat_of(method: TelegramMethod[Any]) -> int | None:
    chat_id = getattr(method, "chat_id", None)
    return chat_id if isinstance(chat_id, int) else None


# --- long texts ----------------------------------------------------------------------------------


def split_message(method: SendMessage, bot: Bot) -> list[SendMessage]:
    """The parts of a text too long for one message; one part when it cannot be split."""
    parse_mode = method.parse_mode
    if isinstance(parse_mode, Default):
        parse_mode = bot.default[parse_mode.name]
    entities = list(method.entities or [])
    text = method.text
    if parse_mode and not entities:
        if str(getattr(parse_mode, "value", parse_mode)).lower() != "html":
            return [method]  # Markdown is not used by the bot; Telegram will say if it is too long
        try:
            text, raw = parse_html(method.text)
        except ValueError:
            return [method]
        entities = [MessageEntity(**entity) for entity in raw]
    # Telegram refuses a blank message; whitespace at a cut goes with the part before it.
    pieces = [piece for piece in split_text(text, entities, MAX_TEXT) if piece[0].strip()]
    if not pieces:
        return [method]
    if len(pieces) == 1 and not parse_mode and pieces[0][0] == text:
        return [method]
    last = len(pieces) - 1
    return [
        method.model_copy(
            update={
                "text": piece,
                "entities": piece_entities or None,
                "parse_mode": None,
                "reply_markup": method.reply_markup if index == last else None,
                "reply_parameters": method.reply_parameters if index == 0 else None,
                "reply_to_message_id": method.reply_to_message_id if index == 0 else None,
            }
        )
        for index, (piece, piece_entities) in enumerate(pieces)
    ]


def split_text(text: str, entities: list[MessageEntity], limit: int) -> list[tuple[str, list[MessageEntity]]]:
    """Cut `text` into parts of at most `limit` UTF-16 units, preferring a blank line, then a line
    end, then a space; each part keeps the formatting that falls inside it."""
    bounds: list[tuple[int, int]] = []  # code point ranges
    start = 0
    while start < len(text):
        end = _longest_fit(text, start, limit)
        if end < len(text):
            end = _best_break(text, start, end)
        bounds.append((start, end))
        start = end
    pieces = []
    units = [0]  # UTF-16 offset of each code point
    for char in text:
        units.append(units[-1] + (2 if ord(char) > 0xFFFF else 1))
    for start, end in bounds:
        first, last = units[start], units[end]
        kept = []
        for entity in entities:
            left, right = max(entity.offset, first), min(entity.offset + entity.length, last)
            if right > left:
                kept.append(entity.model_copy(update={"offset": left - first, "length": right - left}))
        pieces.append((text[start:end], kept))
    return pieces


def _longest_fit(text: str, start: int, limit: int) -> int:
    units = 0
    for index in range(start, len(text)):
        units += 2 if ord(text[index]) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _best_break(text: str, start: int, end: int) -> int:
    """Where to cut within text[start:end]: after a blank line, a line end or a space in its
    second half, else at `end`."""
    floor = start + (end - start) // 2
    for mark in ("\n\n", "\n", " "):
        found = text.rfind(mark, floor, end)
        if found != -1:
            return found + len(mark)
    return end
