"""Broadcasts in the database: the recipients chosen when the admin confirms, the lease that lets
one process at a time send a broadcast, and each recipient's claim and outcome. Each method is
one short transaction; nothing here talks to Telegram.

Never twice beats at least once: a recipient is claimed (pending → sending) before the call to
Telegram, and a claim whose process died is turned into `unknown`, never sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.broadcasts.rules import Progress, Segment, SegmentKind, matches, reachable
from bot.business import Business
from bot.core.languages import pick_language
from bot.core.redaction import redact
from storage.database import Database, changed
from storage.models import Broadcast, BroadcastRecipient, BroadcastStatus, Customer, RecipientStatus, utcnow
from storage.repositories import Customers

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # a sender that has not renewed its lease for this long is presumed dead
MAX_ERROR = 128


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed recipient: where to send, and the language of the Unsubscribe button."""

    recipient_id: int
    telegram_id: int
    language: str


class BroadcastService:
    def __init__(self, db: Database, business: Business, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.business = business
        self.clock = clock

    # --- composing -------------------------------------------------------------------------------

    async def _audience(self, session: AsyncSession, segment: Segment, now: datetime) -> list[Customer]:
        query = select(Customer).where(
            col(Customer.joined_at).is_not(None),
            col(Customer.card_number).is_not(None),
            col(Customer.deleted_at).is_(None),
            col(Customer.marketing_consent_at).is_not(None),
            col(Customer.blocked_at).is_(None),
        )
        if segment.kind == SegmentKind.BIRTHDAY:  # the rest of the rules are checked in Python
            query = query.where(col(Customer.birthday_month) == now.astimezone(self.business.timezone).month)
        customers = await session.scalars(query.order_by(col(Customer.id)))
        return [c for c in customers if reachable(c) and matches(segment, c, self.business, now)]

    async def count(self, segment: Segment) -> int:
        """How many people the segment reaches now (the preview)."""
        async with self.db.reading(bulk=True) as session:
            return len(await self._audience(session, segment, self.clock()))

    async def create(
        self,
        segment: Segment,
        *,
        text: str | None,
        photo_file_id: str | None,
        created_by: int,
        created_by_name: str,
        chat_id: int | None,
        thread_id: int | None = None,
        lease: timedelta = LEASE,
    ) -> Broadcast | None:
        """The broadcast with its recipients as of now, leased to the caller, who starts sending
        it at once. None when the segment reaches nobody any more."""
        now = self.clock()
        async with self.db.writing(bulk=True) as session:
            audience = await self._audience(session, segment, now)
            if not audience:
                return None
            broadcast = Broadcast(
                created_by=created_by,
                created_by_name=created_by_name[:256],
                text=text,
                photo_file_id=photo_file_id,
                segment=segment.kind.value,
                segment_value=segment.value,
                status=BroadcastStatus.SENDING,
                total=len(audience),
                chat_id=chat_id,
                thread_id=thread_id,
                lease_until=now + lease,
                created_at=now,
            )
            session.add(broadcast)
            await session.flush()
            assert broadcast.id is not None
            await session.execute(
                insert(BroadcastRecipient),
                [
                    {"broadcast_id": broadcast.id, "customer_id": c.id, "status": RecipientStatus.PENDING.value}
                    for c in audience
                ],
            )
            return broadcast

    async def get(self, broadcast_id: int) -> Broadcast | None:
        async with self.db.reading() as session:
            return await session.get(Broadcast, broadcast_id)

    # --- who sends it --------------------------------------------------------------------------

    async def expired(self) -> list[int]:
        """Broadcasts still sending whose sender stopped renewing its lease (it died, or stopped)."""
        now = self.clock()
        async with self.db.reading() as session:
            rows = await session.scalars(
                select(col(Broadcast.id))
                .where(
                    col(Broadcast.status) == BroadcastStatus.SENDING.value,
                    or_(col(Broadcast.lease_until).is_(None), col(Broadcast.lease_until) <= now),
                )
                .order_by(col(Broadcast.id))
            )
            return [row for row in rows if row is not None]

    async def take_over(self, broadcast_id: int, lease: timedelta = LEASE) -> datetime | None:
        """Lease a broadcast whose sender is gone; its unfinished claims become `unknown`. Returns
        the new lease (the caller's token), or None when someone else holds it."""
        now = self.clock()
        until = now + lease
        async with self.db.writing() as session:
            result = await session.execute(
                update(Broadcast)
                .where(
                    col(Broadcast.id) == broadcast_id,
                    col(Broadcast.status) == BroadcastStatus.SENDING.value,
                    or_(col(Broadcast.lease_until).is_(None), col(Broadcast.lease_until) <= now),
                )
                .values(lease_until=until)
            )
            if changed(result) != 1:
                return None
            lost = await session.execute(
                update(BroadcastRecipient)
                .where(
                    col(BroadcastRecipient.broadcast_id) == broadcast_id,
                    col(BroadcastRecipient.status) == RecipientStatus.SENDING.value,
                )
                .values(status=RecipientStatus.UNKNOWN.value, error="interrupted")
            )
            if changed(lost):
                logger.warning(
                    "broadcast %s: %s sends were interrupted and may have arrived; not sending them again",
                    broadcast_id,
                    changed(lost),
                )
            return until

    async def renew(self, broadcast_id: int, token: datetime, lease: timedelta = LEASE) -> datetime | None:
        """Keep the lease; None when it was lost (another process took the broadcast over)."""
        until = self.clock() + lease
        async with self.db.writing() as session:
            result = await session.execute(
                update(Broadcast)
                .where(
                    col(Broadcast.id) == broadcast_id,
                    col(Broadcast.status) == BroadcastStatus.SENDING.value,
                    col(Broadcast.lease_until) == token,
                )
                .values(lease_until=until)
            )
            return until if changed(result) == 1 else None

    async def release(self, broadcast_id: int, token: datetime) -> None:
        """This process stops sending (shutdown): the next one may resume at once."""
        async with self.db.writing() as session:
            await session.execute(
                update(Broadcast)
                .where(col(Broadcast.id) == broadcast_id, col(Broadcast.lease_until) == token)
                .values(lease_until=self.clock())
            )

    # --- recipients ----------------------------------------------------------------------------

    async def claim(self, broadcast_id: int, limit: int) -> list[Delivery]:
        """Take up to `limit` pending recipients for sending; each row is taken by one caller only.
        Those who withdrew consent or erased their data since the snapshot are skipped, those
        known to have blocked the bot meanwhile are marked blocked; neither is returned."""
        now = self.clock()
        async with self.db.writing() as session:
            candidates = list(
                await session.scalars(
                    select(col(BroadcastRecipient.id))
                    .where(
                        col(BroadcastRecipient.broadcast_id) == broadcast_id,
                        col(BroadcastRecipient.status) == RecipientStatus.PENDING.value,
                    )
                    .order_by(col(BroadcastRecipient.id))
                    .limit(limit)
                    .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's writer lock serialises
                )
            )
            if not candidates:
                return []
            claimed = (
                await session.execute(
                    update(BroadcastRecipient)
                    .where(
                        col(BroadcastRecipient.id).in_(candidates),
                        col(BroadcastRecipient.status) == RecipientStatus.PENDING.value,
                    )
                    .values(status=RecipientStatus.SENDING.value, claimed_at=now)
                    .returning(col(BroadcastRecipient.id), col(BroadcastRecipient.customer_id))
                )
            ).all()
            customer_ids = [customer_id for _, customer_id in claimed]
            customers = {
                c.id: c for c in await session.scalars(select(Customer).where(col(Customer.id).in_(customer_ids)))
            }
            deliveries: list[Delivery] = []
            skipped: list[int] = []
            blocked: list[int] = []
            for recipient_id, customer_id in sorted(claimed):
                assert recipient_id is not None  # RETURNING gives the stored id
                customer = customers.get(customer_id)
                if customer is None or customer.deleted_at is not None or customer.marketing_consent_at is None:
                    skipped.append(recipient_id)
                elif customer.blocked_at is not None:
                    blocked.append(recipient_id)
                else:
                    language = pick_language(
                        customer.language, customer.telegram_language, self.business.default_language
                    )
                    deliveries.append(Delivery(recipient_id, customer.telegram_id, language))
            for ids, status, error in (
                (skipped, RecipientStatus.SKIPPED, "no consent"),
                (blocked, RecipientStatus.BLOCKED, "blocked earlier"),
            ):
                if ids:
                    await session.execute(
                        update(BroadcastRecipient)
                        .where(col(BroadcastRecipient.id).in_(ids))
                        .values(status=status.value, error=error)
                    )
            return deliveries

    async def unclaim(self, recipient_ids: Sequence[int]) -> None:
        """Claims never tried (the sender is stopping): back in the queue."""
        if not recipient_ids:
            return
        async with self.db.writing() as session:
            await session.execute(
                update(BroadcastRecipient)
                .where(
                    col(BroadcastRecipient.id).in_(list(recipient_ids)),
                    col(BroadcastRecipient.status) == RecipientStatus.SENDING.value,
                )
                .values(status=RecipientStatus.PENDING.value, claimed_at=None)
            )

    async def record(self, recipient_id: int, status: RecipientStatus, error: str | None = None) -> None:
        """The outcome of a send. A blocked customer is skipped by every later broadcast."""
        now = self.clock()
        # A send that went out is recorded even if another process has meanwhile called it unknown.
        allowed = [RecipientStatus.SENDING.value]
        if status == RecipientStatus.SENT:
            allowed.append(RecipientStatus.UNKNOWN.value)
        async with self.db.writing() as session:
            result = await session.execute(
                update(BroadcastRecipient)
                .where(col(BroadcastRecipient.id) == recipient_id, col(BroadcastRecipient.status).in_(allowed))
                .values(
                    status=status.value,
                    sent_at=now if status == RecipientStatus.SENT else None,
                    error=redact(error)[:MAX_ERROR] if error else None,  # never the bot token
                )
                .returning(col(BroadcastRecipient.customer_id))
            )
            customer_id = result.scalar_one_or_none()
            if customer_id is None:
                logger.warning("recipient %s: outcome %s came after the claim was lost", recipient_id, status)
                return
            if status == RecipientStatus.BLOCKED:
                await Customers(session).mark_blocked(customer_id, now)

    # --- progress --------------------------------------------------------------------------------

    async def progress(self, broadcast_id: int) -> Progress | None:
        async with self.db.reading() as session:
            return await self._progress(session, broadcast_id)

    async def _progress(self, session: AsyncSession, broadcast_id: int) -> Progress | None:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None:
            return None
        rows = await session.execute(
            select(col(BroadcastRecipient.status), func.count())
            .where(col(BroadcastRecipient.broadcast_id) == broadcast_id)
            .group_by(col(BroadcastRecipient.status))
        )
        return Progress.from_counts(broadcast.total, {status: count for status, count in rows.all()})

    async def progress_shown(self, broadcast_id: int, message_id: int) -> None:
        async with self.db.writing() as session:
            await session.execute(
                update(Broadcast).where(col(Broadcast.id) == broadcast_id).values(progress_message_id=message_id)
            )

    async def finish(self, broadcast_id: int) -> Progress | None:
        """Done, when nobody is left to send to; the figures either way."""
        now = self.clock()
        async with self.db.writing() as session:
            progress = await self._progress(session, broadcast_id)
            if progress is not None and progress.finished:
                await session.execute(
                    update(Broadcast)
                    .where(col(Broadcast.id) == broadcast_id, col(Broadcast.status) == BroadcastStatus.SENDING.value)
                    .values(status=BroadcastStatus.DONE.value, finished_at=now, lease_until=None)
                )
            return progress
