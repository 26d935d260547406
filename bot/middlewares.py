"""Outer middlewares: drop redelivered updates, load the person's record."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, Update, User
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.services import LoyaltyService
from storage.database import Database
from storage.models import ProcessedUpdate, utcnow

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

REMEMBER_UPDATES_FOR = timedelta(hours=24)
PURGE_EVERY = 1000


class DropRepeatedUpdates(BaseMiddleware):
    """Telegram can deliver an update twice; the second one does nothing.

    The id is recorded before the handlers run; if they fail, the record is removed again so
    a redelivery gets another chance (the ledger's idempotency keys make that safe).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._seen = 0

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        try:
            async with self.db.writing() as session:
                session.add(ProcessedUpdate(update_id=event.update_id, processed_at=utcnow()))
        except IntegrityError:
            logger.info("update %s was delivered again; skipped", event.update_id)
            return None
        self._seen += 1
        if self._seen % PURGE_EVERY == 0:
            await self._purge()
        try:
            return await handler(event, data)
        except Exception:
            async with self.db.writing() as session:
                await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.update_id == event.update_id))
            raise

    async def _purge(self) -> None:
        async with self.db.writing() as session:
            await session.execute(
                delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < utcnow() - REMEMBER_UPDATES_FOR)
            )


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
