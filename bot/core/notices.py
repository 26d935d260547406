"""Notices: messages owed to people, committed in the same transaction as what they tell.

A purchase confirmed by the cashier is saved, and then two people must hear of it: the customer
(their new balance) and the cashier (the "Done" with its Undo). Sent straight from the handler, a
Telegram 500, a timeout or a run of 429s after the commit failed the update; its replay found the
purchase done and returned, and neither was ever told. So a movement writes its notices beside
itself (`add`), in its own transaction, and they are delivered after it:

- at once, by the handler that made them (`deliver`), which never raises for a failed send;
- again by the scheduler (`deliver_due`) until they get through: after 10 s, 1 min, 5 min and
  30 min; then, or at once when Telegram refuses for good (the person blocked the bot), they are
  given up with the reason;
- once: each has a key (a repeat of the movement finds its notices and adds none), and a
  delivery claims its notice first, so two processes never send the same one. A process that dies
  between Telegram's answer and marking it sent sends it once more after its lease: as a message
  it may then arrive twice, which is the price of never losing it.

What a notice says is drawn when it is sent (`register` names a drawer per kind), in the
language the person has then, from the ids its payload carries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from sqlalchemy import delete, select, update
from sqlmodel import col

from bot.core.redaction import redact
from storage.database import Database, changed
from storage.models import Notice, utcnow
from storage.repositories import claim_fresh_notices

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # a claimed notice is someone's for this long
BACKOFF = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
BATCH = 50
KEEP = timedelta(days=7)

Drawer = Callable[[Bot, int, dict[str, Any]], Awaitable[None]]


class Undeliverable(Exception):
    """A drawer's word that this notice can never be sent (its customer erased their data, say)."""


class Notices:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        backoff: tuple[timedelta, ...] = BACKOFF,
    ) -> None:
        self.db = db
        self.clock = clock
        self.backoff = backoff
        self._drawers: dict[str, Drawer] = {}
        self._forgot_at: datetime | None = None

    def register(self, kind: str, drawer: Drawer) -> None:
        """`drawer(bot, chat_id, payload)` sends one notice of this kind; raising means not sent."""
        self._drawers[kind] = drawer

    async def deliver(self, bot: Bot, keys: Iterable[str]) -> None:
        """Send these notices now, the ones nobody sent yet, in the order given; a failure waits
        for the scheduler. Every update that moves points comes here, so the claim is one
        statement through the driver."""
        order = {key: n for n, key in enumerate(dict.fromkeys(keys))}
        if not order:
            return
        async with self.db.direct(one=True) as tx:
            claimed = await claim_fresh_notices(tx, list(order), self.clock() + LEASE)
        for notice in sorted(claimed, key=lambda n: order[n.key]):
            await self._send(bot, notice)

    async def deliver_due(self, bot: Bot) -> int:
        """The scheduler's job: notices whose first tries failed, or whose sender died."""
        await self._forget_old()
        sent = 0
        for notice in await self._claim_due():
            sent += await self._send(bot, notice)
        return sent

    async def _forget_old(self) -> None:
        """Notices sent or given up keep their row a week (to find a repeat's), then go. Hourly."""
        now = self.clock()
        if self._forgot_at is not None and now - self._forgot_at < timedelta(hours=1):
            return
        self._forgot_at = now
        async with self.db.writing() as session:
            await session.execute(
                delete(Notice).where(col(Notice.next_try_at).is_(None), col(Notice.created_at) < self.clock() - KEEP)
            )

    async def pending(self) -> list[Notice]:
        async with self.db.reading() as session:
            return list(await session.scalars(select(Notice).where(col(Notice.next_try_at).is_not(None))))

    async def _claim_due(self) -> list[Notice]:
        """Take the notices due for another try (their first failed, or their sender died)."""
        now = self.clock()
        async with self.db.writing() as session:
            query = select(Notice).where(
                col(Notice.next_try_at).is_not(None), col(Notice.sent_at).is_(None), col(Notice.next_try_at) <= now
            )
            candidates = list(
                await session.scalars(query.order_by(col(Notice.id)).limit(BATCH).with_for_update(skip_locked=True))
            )
            claimed = []
            for notice in candidates:
                tried = notice.attempts
                result = await session.execute(
                    update(Notice)
                    .where(col(Notice.id) == notice.id, col(Notice.attempts) == tried, col(Notice.sent_at).is_(None))
                    .values(attempts=tried + 1, next_try_at=now + LEASE)
                    .execution_options(synchronize_session=False)
                )
                if changed(result) == 1:
                    notice.attempts = tried + 1
                    claimed.append(notice)
            session.expunge_all()
        return claimed

    async def _send(self, bot: Bot, notice: Notice) -> int:
        drawer = self._drawers.get(notice.kind)
        try:
            if drawer is None:
                raise Undeliverable(f"no drawer for notices of kind {notice.kind!r}")
            await drawer(bot, notice.chat_id, json.loads(notice.payload))
        except (Undeliverable, TelegramForbiddenError) as error:
            logger.info("notice %s to %s given up: %s", notice.key, notice.chat_id, error)
            await self._finish(notice, sent=False, error=str(error))
            return 0
        except TelegramBadRequest as error:
            if "message is not modified" in error.message:  # it says so already
                await self._finish(notice, sent=True)
                return 1
            logger.warning("notice %s to %s refused by Telegram: %s", notice.key, notice.chat_id, error.message)
            await self._finish(notice, sent=False, error=error.message)
            return 0
        except Exception as error:  # noqa: BLE001 - a 5xx, a timeout, 429s: tried again later
            await self._retry(notice, error)
            return 0
        await self._finish(notice, sent=True)
        return 1

    async def _retry(self, notice: Notice, error: BaseException) -> None:
        now = self.clock()
        description = redact(f"{type(error).__name__}: {error}")[:256]
        if notice.attempts > len(self.backoff):
            logger.error(
                "notice %s to %s failed %s times; given up: %s",
                notice.key,
                notice.chat_id,
                notice.attempts,
                description,
            )
            await self._finish(notice, sent=False, error=description)
            return
        wait = self.backoff[notice.attempts - 1]
        if isinstance(error, TelegramRetryAfter):
            wait = max(wait, timedelta(seconds=error.retry_after))
        logger.warning("notice %s to %s not sent (%s); next try in %s", notice.key, notice.chat_id, description, wait)
        async with self.db.writing() as session:
            await session.execute(
                update(Notice).where(col(Notice.id) == notice.id).values(next_try_at=now + wait, error=description)
            )

    async def _finish(self, notice: Notice, *, sent: bool, error: str | None = None) -> None:
        async with self.db.direct(one=True) as tx:  # after every notice sent: through the driver
            await tx.execute(
                "UPDATE notices SET next_try_at = NULL, sent_at = $1, error = $2 WHERE id = $3",
                self.clock() if sent else None,
                None if sent else redact(error or "")[:256],
                notice.id,
            )
