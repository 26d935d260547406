"""The person's record, put into every update from a private chat (the last of the outer
middlewares, `bot/core/middlewares.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, User

from bot.loyalty.service import ConversationState, LoyaltyService

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class Routing:
    """The customer's conversation state for this one update, read when a routing filter first
    asks and kept for the others (a free-text message passes three of them)."""

    def __init__(self, read: Callable[[], Awaitable[ConversationState]]) -> None:
        self._read = read
        self._state: ConversationState | None = None

    async def state(self) -> ConversationState:
        if self._state is None:
            self._state = await self._read()
        return self._state


class CustomerMiddleware(BaseMiddleware):
    """Puts the private-chat person's record into `data["customer"]`, and their conversation
    state, read on first use, into `data["routing"]`."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        if user is not None and not user.is_bot and (chat is None or chat.type == "private"):
            loyalty: LoyaltyService = data["loyalty"]
            data["customer"] = await loyalty.ensure_customer(
                telegram_id=user.id,
                first_name=user.first_name,
                last_name=user.last_name,
                username=user.username,
                telegram_language=user.language_code,
            )
            customer_id = data["customer"].id
            if customer_id is not None:
                data["routing"] = Routing(lambda: loyalty.conversation_state(customer_id))
        return await handler(event, data)
