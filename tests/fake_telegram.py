"""A recording stand-in for the Bot API: it answers every method the bot uses the way Telegram
would, keeps each request for assertions, and never touches the network."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import (
    AnswerCallbackQuery,
    CopyMessage,
    CreateForumTopic,
    EditForumTopic,
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    GetChat,
    GetChatMember,
    GetFile,
    GetMe,
    GetUpdates,
    PinChatMessage,
    ReopenForumTopic,
    SendDocument,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import (
    Chat,
    ChatFullInfo,
    ChatMemberLeft,
    ChatMemberMember,
    Document,
    File,
    ForumTopic,
    Message,
    MessageId,
    PhotoSize,
    Update,
    User,
)
from aiohttp import RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bot.core.entities import MAX_CAPTION, MAX_TEXT, parse_html, telegram_length

SENT_AT = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)  # the date of every message the fake sends: no wall clock
BOT_USER = User(id=424242, is_bot=True, first_name="Acme Café", username="acme_cafe_bot")


class RecordingSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self.blocked: set[int] = set()
        self.files: dict[str, bytes] = {}
        self.photos: dict[int, bytes] = {}  # message id -> PNG the bot sent
        self.documents: dict[int, bytes] = {}  # message id -> file the bot sent
        self.group_members: set[int] = set()  # who getChatMember finds in the managers' group
        self.failures: list[Exception] = []  # raised, in order, by the next sendMessage calls
        self.refused: list[Any] = []  # calls that failed: nobody saw them
        self.updates: list[Update] = []  # waiting for getUpdates, as Telegram keeps them
        self.offsets: list[int | None] = []  # every getUpdates offset asked for
        self.confirmed_below = 0
        self.fail_next: dict[type, list[Exception]] = {}  # per method type: raised, in order, by the next calls
        # Per chat: raised, in order, by the next sendMessage/sendPhoto calls to that chat.
        self.chat_failures: dict[int, list[Exception]] = {}
        self.hanging: set[int] = set()  # chats whose sendMessage/sendPhoto never gets an answer
        self.on_request: Callable[[TelegramMethod[Any]], None] | None = None  # sees every call first
        # The managers' group: a forum (topics on) where the bot may manage topics and pin.
        self.forum = True
        self.can_manage_topics = True
        self.can_pin = True
        self.topics: dict[int, str] = {}  # thread id -> name, as the group shows them now
        self.deleted_topics: set[int] = set()
        self.pinned: list[tuple[int, int]] = []  # (chat, message) pinned
        self.delay_create_topic = 0.0  # seconds createForumTopic takes (races)
        self._ids = itertools.count(10_000)
        self._answered: set[str] = set()
        self._shown: dict[tuple[int, int], tuple[str | None, str]] = {}  # what each message shows now

    async def close(self) -> None:
        return None

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        name = url.rsplit("/", 1)[-1]
        if name not in self.files:  # as aiohttp says it: the URL, with the bot's token in it
            request = RequestInfo(URL(url), "GET", CIMultiDictProxy(CIMultiDict()), URL(url))
            raise aiohttp.ClientResponseError(request, (), status=404, message="Not Found")
        yield self.files[name]

    def _message(self, chat_id: int | str, **fields: Any) -> Message:
        return Message(
            message_id=next(self._ids),
            date=SENT_AT,
            chat=Chat(id=int(chat_id), type="private" if int(chat_id) > 0 else "supergroup"),
            from_user=BOT_USER,
            **fields,
        )

    def buttons(self, chat_id: int, message_id: int) -> list[str]:
        """The callback data of the buttons a message shows now (none once they were taken off)."""
        dumped = self._shown.get((chat_id, message_id), (None, ""))[1]
        if not dumped:
            return []
        rows = json.loads(dumped).get("inline_keyboard", [])
        return [button.get("callback_data", "") for row in rows for button in row]

    def carrying(self, chat_id: int, data: str) -> tuple[int, str | None] | None:
        """The newest message of a chat whose buttons include `data`, and its text: where a person
        presses that button in Telegram."""
        for (chat, message_id), (text, _markup) in sorted(self._shown.items(), reverse=True):
            if chat == chat_id and data in self.buttons(chat, message_id):
                return message_id, text
        return None

    def _remember(self, chat_id: int | str, message_id: int, text: str | None, markup: Any) -> None:
        dumped = markup.model_dump_json(exclude_none=True) if markup is not None else ""
        self._shown[(int(chat_id), message_id)] = (text, dumped)

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None) -> Any:
        self.requests.append(method)
        if self.on_request is not None:
            self.on_request(method)
        planned = self.fail_next.get(type(method))
        if planned:  # a test's Telegram fault for the next call of this kind (a 5xx, a 429, a timeout)
            self.refused.append(method)
            raise planned.pop(0)
        refused = _refused_formatting(bot, method)
        if refused is not None:
            self.refused.append(method)
            raise TelegramBadRequest(method=method, message=refused)
        # Telegram's refusals that a handler must be ready for.
        if isinstance(method, AnswerCallbackQuery):
            if method.callback_query_id in self._answered:
                raise TelegramBadRequest(
                    method=method,
                    message="Bad Request: query is too old and response timeout expired or query ID is invalid",
                )
            self._answered.add(method.callback_query_id)
        if isinstance(method, EditMessageText) and method.message_id is not None:
            key = (int(method.chat_id or 0), method.message_id)
            markup = method.reply_markup.model_dump_json(exclude_none=True) if method.reply_markup else ""
            if self._shown.get(key) == (method.text, markup):
                raise TelegramBadRequest(
                    method=method,
                    message="Bad Request: message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message",
                )
            self._shown[key] = (method.text, markup)
        if isinstance(method, EditMessageReplyMarkup) and method.message_id is not None:
            key = (int(method.chat_id or 0), method.message_id)
            text, shown = self._shown.get(key, (None, None))
            markup = method.reply_markup.model_dump_json(exclude_none=True) if method.reply_markup else ""
            if shown == markup:  # a message the bot never sent here (a test's own) is not checked
                raise TelegramBadRequest(
                    method=method,
                    message="Bad Request: message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message",
                )
            self._shown[key] = (text, markup)
        if isinstance(method, (EditMessageCaption, EditMessageMedia)) and method.message_id is not None:
            caption = method.caption if isinstance(method, EditMessageCaption) else method.media.caption
            self._remember(method.chat_id or 0, method.message_id, caption, method.reply_markup)
        chat_id = getattr(method, "chat_id", None)
        thread = getattr(method, "message_thread_id", None)
        if thread is not None and (thread in self.deleted_topics or not self.forum):
            raise TelegramBadRequest(method=method, message="Bad Request: message thread not found")
        if chat_id is not None and int(chat_id) in self.blocked:
            raise TelegramForbiddenError(method=method, message="Forbidden: bot was blocked by the user")
        if isinstance(method, GetMe):
            return BOT_USER
        if isinstance(method, GetUpdates):
            # Long polling: an offset confirms every update below it, which Telegram then forgets.
            if method.offset is not None:
                self.updates = [u for u in self.updates if u.update_id >= method.offset]
                self.confirmed_below = max(self.confirmed_below, method.offset)
            self.offsets.append(method.offset)
            if not self.updates:
                await asyncio.sleep(0.005)  # "timeout": nothing new yet
            return list(self.updates[: method.limit or 100])
        if isinstance(method, GetChat):
            # Only the fields the bot reads; the full object has dozens of required ones.
            return ChatFullInfo.model_construct(
                id=int(method.chat_id),
                type="supergroup" if int(method.chat_id) < 0 else "private",
                is_forum=self.forum if int(method.chat_id) < 0 else None,
            )
        if isinstance(method, CreateForumTopic):
            if not self.forum:
                raise TelegramBadRequest(method=method, message="Bad Request: the chat is not a forum")
            if not self.can_manage_topics:
                raise TelegramBadRequest(method=method, message="Bad Request: not enough rights to create a topic")
            if self.delay_create_topic:
                await asyncio.sleep(self.delay_create_topic)
            topic_id = next(self._ids)
            self.topics[topic_id] = method.name
            return ForumTopic(message_thread_id=topic_id, name=method.name, icon_color=7322096)
        if isinstance(method, EditForumTopic):
            if method.message_thread_id in self.topics and method.name:
                self.topics[method.message_thread_id] = method.name
            return True
        if isinstance(method, PinChatMessage):
            if not self.can_pin:
                raise TelegramBadRequest(method=method, message="Bad Request: not enough rights to pin a message")
            self.pinned.append((int(method.chat_id), method.message_id))
            return True
        if isinstance(method, ReopenForumTopic):
            return True
        if isinstance(method, (SendMessage, SendPhoto)) and chat_id is not None:
            scripted = self.chat_failures.get(int(chat_id))
            if scripted:
                raise scripted.pop(0)
            if int(chat_id) in self.hanging:
                await asyncio.Event().wait()  # a stalled connection: the request left, no answer came
        if isinstance(method, SendMessage) and self.failures:
            raise self.failures.pop(0)
        if isinstance(method, SendMessage):
            sent = self._message(method.chat_id, text=method.text, reply_markup=method.reply_markup)
            self._remember(method.chat_id, sent.message_id, method.text, method.reply_markup)
            return sent
        if isinstance(method, SendPhoto):
            message = self._message(
                method.chat_id,
                caption=method.caption,
                photo=[PhotoSize(file_id="sent", file_unique_id="sent", width=330, height=330)],
                reply_markup=method.reply_markup,
            )
            self._remember(method.chat_id, message.message_id, method.caption, method.reply_markup)
            photo = method.photo
            if hasattr(photo, "data"):
                self.photos[message.message_id] = photo.data  # type: ignore[union-attr]
            return message
        if isinstance(method, SendDocument):
            document = method.document
            message = self._message(
                method.chat_id,
                caption=method.caption,
                document=Document(file_id="doc", file_unique_id="doc", file_name=getattr(document, "filename", None)),
            )
            if hasattr(document, "data"):
                self.documents[message.message_id] = document.data  # type: ignore[union-attr]
            return message
        if isinstance(method, CopyMessage):
            return MessageId(message_id=next(self._ids))
        if isinstance(method, GetChatMember):
            user = User(id=method.user_id, is_bot=False, first_name="Someone")
            if method.user_id in self.group_members:
                return ChatMemberMember(user=user)
            return ChatMemberLeft(user=user)
        if isinstance(method, EditMessageMedia):
            data = getattr(method.media.media, "data", None)
            if data is not None and method.message_id is not None:
                self.photos[method.message_id] = data
            return True
        if isinstance(method, (EditMessageText, EditMessageReplyMarkup)):
            return True
        if isinstance(method, GetFile):
            return File(file_id=method.file_id, file_unique_id=method.file_id, file_path=f"photos/{method.file_id}")
        if isinstance(method, AnswerCallbackQuery):
            return True
        return True


def _formatted(method: TelegramMethod[Any]) -> tuple[str, Any, int, str] | None:
    """The text or caption a call carries: (words, parse mode, Telegram's limit, what it is)."""
    if isinstance(method, (SendMessage, EditMessageText)):
        return method.text, method.parse_mode, MAX_TEXT, "message is too long"
    if isinstance(method, EditMessageMedia):
        holder: Any = method.media
    elif isinstance(method, (SendPhoto, SendDocument, CopyMessage, EditMessageCaption)):
        holder = method
    else:
        return None
    caption = getattr(holder, "caption", None)
    if caption is None:
        return None
    return caption, getattr(holder, "parse_mode", None), MAX_CAPTION, "message caption is too long"


def _refused_formatting(bot: Bot, method: TelegramMethod[Any]) -> str | None:
    """What Telegram answers to a text it cannot show: HTML it cannot parse (the bot's default
    parse mode is HTML), or more than 4096 UTF-16 units in a message, 1024 in a caption."""
    found = _formatted(method)
    if found is None:
        return None
    words, parse_mode, limit, too_long = found
    if isinstance(parse_mode, Default):
        parse_mode = bot.default[parse_mode.name]
    if parse_mode is not None and str(getattr(parse_mode, "value", parse_mode)).lower() == "html":
        try:
            words, _entities = parse_html(words)
        except ValueError as error:
            return f"Bad Request: can't parse entities: {error}"
    if telegram_length(words) > limit:
        return f"Bad Request: {too_long}"
    return None
