"""Outer middlewares: the inbox of updates, the person's record."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Chat, TelegramObject, Update, User

from bot.inbox import ConversationMovedOn, Inbox, InterruptedEveryTry, Outcome, UpdateNotRecorded, conversation
from bot.services import LoyaltyService

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def is_harmless(error: BaseException) -> bool:
    """Failures that mean nothing went wrong: a double tap re-rendered the same screen."""
    return isinstance(error, TelegramBadRequest) and "message is not modified" in error.message


class InboxMiddleware(BaseMiddleware):
    """Takes each update through the inbox (`bot/inbox.py`): a redelivered one does nothing, a
    failed one is scheduled for replay, and `data["inbox_outcome"]` tells the error handler what
    to say. Replays (`inbox_replay=True`) were taken by the scheduler already; they go ahead only
    if the person is still at the step where the update failed (`inbox_context`). An update
    whose process died on every try comes back once more with `inbox_give_up`, only for the
    error handler to tell its person.

    `data["inbox_taken"]` marks an update the inbox holds: a failure before that (Redis down
    while the FSM loads the person's step) is not the inbox's to replay, so the error handler
    lets it through and a webhook answers 500 for Telegram to send it again."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        if data.get("inbox_give_up"):  # claimed and given up by the scheduler: only the apology
            data["inbox_taken"], data["inbox_outcome"] = True, Outcome.GAVE_UP
            raise InterruptedEveryTry(f"update {event.update_id}")
        replay = bool(data.get("inbox_replay"))
        if not replay:
            try:
                taken = await self.inbox.take(event)
            except Exception as error:
                raise UpdateNotRecorded(f"update {event.update_id} could not be recorded") from error
            if not taken:
                logger.info("update %s was delivered again; skipped", event.update_id)
                return None
        data["inbox_taken"] = True
        async with self.inbox.leased(event.update_id):
            expected = data.get("inbox_context")  # None: interrupted, its step unknown
            if replay and expected is not None and expected != await conversation(data):
                await self.inbox.give_up(event.update_id, "the person had moved on to another step")
                data["inbox_outcome"] = Outcome.GAVE_UP
                raise ConversationMovedOn(f"update {event.update_id}")
            try:
                result = await handler(event, data)
            except Exception as error:
                if is_harmless(error):
                    await self._finish(event.update_id)
                else:
                    data["inbox_outcome"] = await self._failed(event.update_id, error, data)
                raise
        await self._finish(event.update_id)
        return result

    async def _failed(self, update_id: int, error: Exception, data: dict[str, Any]) -> Outcome:
        try:
            return await self.inbox.failed(update_id, error, await conversation(data))
        except Exception:  # noqa: BLE001 - the lease still brings the replay, so say that
            logger.exception("update %s failed and the failure could not be recorded", update_id)
            return Outcome.RETRY

    async def _finish(self, update_id: int) -> None:
        try:
            await self.inbox.finished(update_id)
        except Exception:  # noqa: BLE001 - handled already; at worst it is replayed after its lease
            logger.exception("update %s was handled but could not be marked so", update_id)


class CustomerMiddleware(BaseMiddleware):
    """Puts the private-chat person's record into `data["customer"]`."""

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
        return await handler(event, data)
