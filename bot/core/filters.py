"""Rights, checked on every message and every button press."""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiogram import Bot
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Filter
from aiogram.types import Chat, Message, TelegramObject, User

from bot.core.config import Settings


class InPrivateChat(Filter):
    """A message in a private chat, or a button under one: the only place a customer's record is
    read (`CustomerMiddleware`), so the customers' routers take nothing else. Async on purpose:
    aiogram runs a sync (magic `F`) filter in a thread."""

    async def __call__(self, event: TelegramObject, event_chat: Chat | None = None) -> bool:
        return event_chat is not None and event_chat.type == ChatType.PRIVATE


class InManagersGroup(Filter):
    """A message in the managers' group, or a button under one."""

    async def __call__(self, event: TelegramObject, settings: Settings, event_chat: Chat | None = None) -> bool:
        group = settings.manager_chat_id
        return group is not None and event_chat is not None and event_chat.id == group


class InManagersPlace(Filter):
    """The managers' group or a private chat: the only places staff commands and buttons show
    customers' names, card numbers and words. Another group a manager (or anyone) added the bot
    to never gets them, whoever types there."""

    async def __call__(self, event: TelegramObject, settings: Settings, event_chat: Chat | None = None) -> bool:
        if event_chat is None:
            return False
        if event_chat.type == ChatType.PRIVATE:
            return True
        return settings.manager_chat_id is not None and event_chat.id == settings.manager_chat_id


class IsAdmin(Filter):
    async def __call__(self, event: TelegramObject, event_from_user: User | None, settings: Settings) -> bool:
        return event_from_user is not None and event_from_user.id in settings.admin_ids


MEMBER_STATUSES = {"creator", "administrator", "member"}
MEMBERSHIP_TTL = 60.0  # seconds a getChatMember answer is trusted


class IsManager(Filter):
    """An admin, anyone writing in the managers' group (only members can), or a member of that
    group (checked with getChatMember and remembered for a minute) pressing a button anywhere or
    writing in private. A button under a message in the group is checked too: in a public group
    people who are not members can see and press it."""

    def __init__(self) -> None:
        self._members: dict[int, tuple[float, bool]] = {}

    async def __call__(
        self,
        event: TelegramObject,
        event_from_user: User | None,
        settings: Settings,
        bot: Bot,
        event_chat: Chat | None = None,
    ) -> bool:
        if event_from_user is None or event_from_user.is_bot:
            return False
        if event_from_user.id in settings.admin_ids:
            return True
        group = settings.manager_chat_id
        if group is None:
            return False
        if isinstance(event, Message) and event_chat is not None and event_chat.id == group:
            return True
        now = time.monotonic()
        cached = self._members.get(event_from_user.id)
        if cached is not None and now - cached[0] < MEMBERSHIP_TTL:
            return cached[1]
        try:
            member = await bot.get_chat_member(group, event_from_user.id)
        except TelegramAPIError:
            return False
        is_member = member.status in MEMBER_STATUSES or bool(getattr(member, "is_member", False))
        self._members[event_from_user.id] = (now, is_member)
        return is_member


# --- the shape of a message: async, so no thread hop on the hot path --------------------------
# aiogram runs a sync callable (a magic `F` filter included) through `asyncio.to_thread`, about
# 0.2 ms a hop; these small async filters say the same things for nothing.


class HasText(Filter):
    """A message with text (not a photo, a sticker, a contact...)."""

    async def __call__(self, message: Message) -> bool:
        return message.text is not None


class HasNoText(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.text is None


class HasPhoto(Filter):
    async def __call__(self, message: Message) -> bool:
        return bool(message.photo)


class NotCommand(Filter):
    """Anything but a command: a text not starting with "/", or a message without text. With
    `notes`, a "//" note (a manager's line kept in the group) counts as not a command."""

    def __init__(self, *, notes: bool = False) -> None:
        self.notes = notes

    async def __call__(self, message: Message) -> bool:
        text = message.text
        if text is None or not text.startswith("/"):
            return True
        return self.notes and text.startswith("//")


class IsReply(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.reply_to_message is not None


class ContentIn(Filter):
    """A message of one of these content types."""

    def __init__(self, content_types: Iterable[str]) -> None:
        self.content_types = frozenset(content_types)

    async def __call__(self, message: Message) -> bool:
        return message.content_type in self.content_types


class FromPerson(Filter):
    """Sent by a person, not a bot (the bot's own messages in the group come back as updates)."""

    async def __call__(self, message: Message) -> bool:
        return message.from_user is not None and not message.from_user.is_bot
