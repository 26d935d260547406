"""The inbox of updates: nothing a person sends is lost or handled twice.

Every update is written to `processed_updates` (its JSON included) before the handlers run, in
its own transaction, and marked finished after them:

- a redelivered update (Telegram sends one again after a timeout, a crash or a 5xx) finds its
  row and does nothing;
- an update whose handling failed is replayed by the scheduler of whichever process comes first,
  after 10 s, 1 min and 5 min; then it is given up, kept a week with its error for the operator,
  and the person is told;
- an update whose process died mid-way is replayed when its lease (2 minutes) runs out; a
  handler that is slow but alive renews the lease;
- a replay goes ahead only if the person is still at the step where the update failed.

A replay goes through the whole dispatcher again; the ledger's idempotency keys and the services'
conditional updates make that safe. If the inbox itself cannot be written (the database is down),
the update is refused with `UpdateNotRecorded`: in webhook mode Telegram gets a 500 and sends it
again later (so does any failure before the inbox took the update).

Handled updates keep only their id for 24 hours, as long as Telegram keeps undelivered updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from aiogram import Bot
from aiogram.types import Update
from sqlalchemy import and_, delete, func, or_, select, update
from sqlmodel import col

from bot.core.redaction import redact
from storage.database import Database, changed, placeholders
from storage.models import ProcessedUpdate, utcnow

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # longer than any handler takes; then the update counts as interrupted
BACKOFF = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5))  # waits after each failure
REMEMBER = timedelta(hours=24)  # handled ids; Telegram keeps an undelivered update as long
KEEP_GIVEN_UP = timedelta(days=7)
BATCH = 20
PURGE_EVERY = timedelta(hours=1)
CONTEXT_LENGTH = 160
GROUP = 200  # inbox writes committed together at most (a statement's parameters stay far below the limits)

_TAKE, _FINISH, _STEP = "take", "finish", "step"


class Outcome(StrEnum):
    RETRY = "retry"  # it will be replayed
    GAVE_UP = "gave_up"  # every try failed


class UpdateNotRecorded(Exception):
    """The inbox could not take the update (the database is unreachable); it was not handled."""


class InterruptedEveryTry(Exception):
    """The update's process died on every try (a crash loop): it is given up without being
    handled again, and its person is told, as after failures."""


class Due(NamedTuple):
    """An update the scheduler claimed: to replay, or, when `interrupted` on every try, to give up."""

    update_id: int
    payload: str
    context: str | None
    interrupted: bool = False


class ConversationMovedOn(Exception):
    """A replay found the person in another step than when the update failed (they went on, say
    to the next customer): handling it now could read "500" as someone else's amount."""


class _Write(NamedTuple):
    """One inbox write waiting for its group's commit."""

    kind: str  # _TAKE (text: the update's JSON), _FINISH or _STEP (text: the step)
    update_id: int
    text: str | None = None


def _parts(values: Sequence[int], size: int = GROUP) -> list[Sequence[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _settle(future: asyncio.Future[bool], result: bool = False, *, error: BaseException | None = None) -> None:
    """Tell a waiter its write's outcome (unless it stopped waiting)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def update_json(update_obj: Update) -> str:
    """The update as Telegram sent it, to replay later. Only the fields Telegram set are kept:
    aiogram fills some it left out with `Default` placeholders (`link_preview_options` on a text
    with an unpreviewed link, or on the bot's own message inside a button press), which JSON
    cannot hold and which the replay's parsing fills again."""
    return update_obj.model_dump_json(exclude_unset=True, exclude_none=True, by_alias=True, fallback=_unset)


def _unset(value: Any) -> None:
    """A value JSON cannot hold (a `Default` that was set explicitly): stored as absent."""
    return None


async def conversation(data: dict[str, Any]) -> str | None:
    """The person's step and its data (FSM), as a short fingerprint; None when they are in no
    step (a replay then goes ahead only if they are in none either)."""
    context = data.get("state")
    raw_state = data.get("raw_state")
    if context is None or raw_state is None:
        return None
    stored = json.dumps(await context.get_data(), sort_keys=True, default=str)
    digest = hashlib.sha256(stored.encode()).hexdigest()[:16]
    return f"{raw_state}|{digest}"[:CONTEXT_LENGTH]


class Inbox:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = LEASE,
        backoff: tuple[timedelta, ...] = BACKOFF,
        batch: int = BATCH,
    ) -> None:
        self.db = db
        self._now = clock
        self.lease = lease
        self.backoff = backoff
        self.tries = len(backoff) + 1
        self.batch = batch
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._purged_at: datetime | None = None
        self._pending: list[tuple[_Write, asyncio.Future[bool]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._leases: Counter[int] = Counter()  # the updates in flight (a count: one may be leased twice)
        self._renewer: asyncio.Task[None] | None = None

    # --- one update --------------------------------------------------------------------------

    # The statements every update runs go through the driver directly (`Database.direct`): through
    # SQLAlchemy's async layer they were a third of a short update's time. They are committed in
    # groups: the takes, finishes and steps asked for while a commit is under way wait for it and
    # then go together in the next transaction (one INSERT for all the takes, one UPDATE for all
    # the finishes). Alone, an update waits for nobody; under load, many share one commit.

    async def take(self, update_obj: Update) -> bool:
        """Record the update and hold its lease; False when it was already taken (a redelivery),
        unless its handler died without finishing, in which case this one takes it over. Its
        group is committed before this returns."""
        return await self._submit(_Write(_TAKE, update_obj.update_id, update_json(update_obj)))

    async def finished(self, update_id: int) -> None:
        await self._submit(_Write(_FINISH, update_id))

    async def started(self, update_id: int, context: str) -> None:
        """The person's step as their update's handling starts (only when they are in one): a
        replay after a failure or a crash goes ahead only in the same step."""
        await self._submit(_Write(_STEP, update_id, context))

    async def extend(self, *update_ids: int) -> None:
        """Handlers still at work (waiting for a group's send limit, say) keep their updates."""
        for part in _parts(update_ids):
            async with self.db.direct(one=True) as tx:
                await tx.execute(
                    f"UPDATE processed_updates SET retry_at = $1 WHERE update_id IN ({placeholders(2, len(part))})"
                    " AND finished_at IS NULL",
                    self._now() + self.lease,
                    *part,
                )

    @contextlib.asynccontextmanager
    async def leased(self, update_id: int) -> AsyncIterator[None]:
        """While the handlers run: count them (for a shutdown), and keep the lease renewed every
        third of it, by one task for all the updates in flight, so no replay starts beside a
        handler that is slow but alive."""
        self._in_flight += 1
        self._idle.clear()
        self._leases[update_id] += 1
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_leases(), name="renewing the inbox's leases")
        try:
            yield
        finally:
            self._leases[update_id] -= 1
            if self._leases[update_id] <= 0:
                del self._leases[update_id]
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
            if not self._leases and self._renewer is not None:
                self._renewer.cancel()
                self._renewer = None

    async def _renew_leases(self) -> None:
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                await self.extend(*sorted(self._leases))
            except Exception:  # noqa: BLE001 - the next round tries again
                logger.warning("could not renew the leases of %s update(s)", len(self._leases), exc_info=True)

    # --- group commit ----------------------------------------------------------------------------

    def _submit(self, write: _Write) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if self._committer is None:  # it starts on the loop's next turn: what comes meanwhile joins
            self._committer = asyncio.create_task(self._commit_pending(), name="the inbox's group commit")
        return future

    async def _commit_pending(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending[:GROUP], self._pending[GROUP:]
                try:
                    await self._commit(group)
                except Exception as error:  # noqa: BLE001 - each alone, so one bad row fails only itself
                    if len(group) == 1:
                        _settle(group[0][1], error=error)
                        continue
                    logger.warning("a group of %s inbox writes failed; trying each alone", len(group), exc_info=True)
                    for one in group:
                        try:
                            await self._commit([one])
                        except Exception as alone:  # noqa: BLE001 - told to its own waiter
                            _settle(one[1], error=alone)
        finally:
            self._committer = None

    async def _commit(self, group: list[tuple[_Write, asyncio.Future[bool]]]) -> None:
        """One transaction for the group: the finishes and steps, then every take at once and, for
        the takes that found their update there already, the take-over of those left unfinished."""
        now = self._now()
        takes: dict[int, _Write] = {}
        twins: list[asyncio.Future[bool]] = []  # the same update twice in one group
        finishes: list[int] = []
        steps: list[_Write] = []
        for write, future in group:
            if write.kind == _TAKE:
                if write.update_id in takes:
                    twins.append(future)
                else:
                    takes[write.update_id] = write
            elif write.kind == _FINISH:
                finishes.append(write.update_id)
            else:
                steps.append(write)
        taken: set[int] = set()
        # Alone (an update finished, a step recorded: one statement), it needs no BEGIN and COMMIT.
        alone = not takes and len(steps) + bool(finishes) == 1
        async with self.db.direct(one=alone) as tx:
            if finishes:
                await tx.execute(
                    "UPDATE processed_updates SET finished_at = $1, retry_at = NULL, payload = NULL, error = NULL"
                    f" WHERE update_id IN ({placeholders(2, len(finishes))})",
                    now,
                    *finishes,
                )
            for step in steps:
                await tx.execute(
                    "UPDATE processed_updates SET context = $1 WHERE update_id = $2", step.text, step.update_id
                )
            if takes:
                rows = ", ".join(f"(${3 + 2 * i}, $1, ${4 + 2 * i}, 1, $2)" for i in range(len(takes)))
                values = [value for write in takes.values() for value in (write.update_id, write.text)]
                inserted = await tx.fetch(
                    "INSERT INTO processed_updates (update_id, processed_at, payload, attempts, retry_at)"
                    f" VALUES {rows} ON CONFLICT (update_id) DO NOTHING RETURNING update_id",
                    now,
                    now + self.lease,
                    *values,
                )
                taken = {row[0] for row in inserted}
                there = [update_id for update_id in takes if update_id not in taken]
                if there:  # redelivered, or left unfinished by a handler that died: take that one over
                    taken_over = await tx.fetch(
                        "UPDATE processed_updates SET attempts = attempts + 1, retry_at = $1"
                        f" WHERE update_id IN ({placeholders(4, len(there))}) AND finished_at IS NULL"
                        " AND retry_at <= $2 AND attempts < $3 RETURNING update_id",
                        now + self.lease,
                        now,
                        self.tries,
                        *there,
                    )
                    taken |= {row[0] for row in taken_over}
        for future in twins:
            _settle(future, False)  # its twin in the group took the update (or did not)
        for write, future in group:
            _settle(future, write.kind == _TAKE and write.update_id in taken)

    async def failed(self, update_id: int, error: BaseException) -> Outcome:
        """Schedule the next try, or give up after the last one. The step recorded when the
        handling started stays: the replay runs the whole handling again, from that step."""
        now = self._now()
        description = redact(f"{type(error).__name__}: {error}")[:1024]  # never the bot token
        async with self.db.writing() as session:
            attempts = await session.scalar(
                select(col(ProcessedUpdate.attempts)).where(col(ProcessedUpdate.update_id) == update_id)
            )
            attempts = attempts or self.tries
            outcome = Outcome.RETRY if attempts < self.tries else Outcome.GAVE_UP
            retry_at = now + self.backoff[attempts - 1] if outcome is Outcome.RETRY else None
            await session.execute(
                update(ProcessedUpdate)
                .where(col(ProcessedUpdate.update_id) == update_id)
                .values(retry_at=retry_at, error=description)
            )
        if outcome is Outcome.GAVE_UP:
            logger.error("update %s failed %s times; given up (kept in processed_updates)", update_id, attempts)
        return outcome

    async def give_up(self, update_id: int, reason: str) -> None:
        async with self.db.writing() as session:
            await session.execute(
                update(ProcessedUpdate)
                .where(col(ProcessedUpdate.update_id) == update_id)
                .values(retry_at=None, error=reason)
            )

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def drain(self, timeout: float = 25.0) -> None:
        """Shutdown: wait (bounded) for the updates being handled; an unfinished one is replayed
        by the next process when its lease runs out."""
        if self._in_flight:
            logger.info("waiting for %s update(s) in flight", self._in_flight)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)

    # --- the scheduler's part ----------------------------------------------------------------

    async def claim_due(self, limit: int = 1) -> list[Due]:
        """Take the updates due for another try (failed, or interrupted by a dead process). One
        interrupted on every try is given up here and returned `interrupted`, for its person to
        be told.

        PostgreSQL: `FOR UPDATE SKIP LOCKED` lets several processes claim side by side, each row
        once; SQLite's single writer serialises the claim. The conditional update re-checks.
        """
        now = self._now()
        async with self.db.writing() as session:
            rows = (
                await session.execute(
                    select(
                        col(ProcessedUpdate.update_id),
                        col(ProcessedUpdate.payload),
                        col(ProcessedUpdate.attempts),
                        col(ProcessedUpdate.context),
                    )
                    .where(
                        col(ProcessedUpdate.finished_at).is_(None),
                        col(ProcessedUpdate.retry_at) <= now,
                        col(ProcessedUpdate.payload).is_not(None),
                    )
                    .order_by(col(ProcessedUpdate.retry_at))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            claimed = []
            for update_id, payload, attempts, context in rows:
                found = col(ProcessedUpdate.update_id) == update_id
                due = col(ProcessedUpdate.retry_at) <= now
                if attempts >= self.tries:  # its process died on every try: a crash loop
                    result = await session.execute(
                        update(ProcessedUpdate)
                        .where(found, due)
                        .values(retry_at=None, error="interrupted on every try")
                    )
                    assert payload is not None  # the query takes only updates with their payload
                    if changed(result) == 1:
                        logger.error("update %s was interrupted %s times; given up", update_id, attempts)
                        claimed.append(Due(update_id, payload, context, interrupted=True))
                    continue
                result = await session.execute(
                    update(ProcessedUpdate)
                    .where(found, due)
                    .values(attempts=col(ProcessedUpdate.attempts) + 1, retry_at=now + self.lease)
                )
                if changed(result) == 1:
                    assert payload is not None
                    claimed.append(Due(update_id, payload, context))
        return claimed

    async def replay_due(self, feed: Callable[..., Awaitable[Any]], bot: Bot) -> int:
        """Feed the due updates through the dispatcher again (`feed` is `Dispatcher.feed_update`)."""
        await self._purge_now_and_then()
        replayed = 0
        while replayed < self.batch:  # one claim at a time: a claim's lease starts when it is used
            claimed = await self.claim_due()
            if not claimed:
                break
            (due,) = claimed
            update_obj = Update.model_validate_json(due.payload, context={"bot": bot})
            if due.interrupted:  # through the dispatcher only to tell the person, in their language
                extra: dict[str, Any] = {"inbox_give_up": True}
            else:
                logger.info("replaying update %s", due.update_id)
                extra = {"inbox_context": due.context}
            try:
                await feed(bot, update_obj, inbox_replay=True, **extra)
            except Exception:  # the middleware has recorded the failure and scheduled the next try
                logger.exception("replay of update %s failed", due.update_id)
            replayed += 1
        return replayed

    async def _purge_now_and_then(self) -> None:
        now = self._now()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = now
        async with self.db.writing() as session:
            await session.execute(
                delete(ProcessedUpdate).where(
                    or_(
                        and_(
                            col(ProcessedUpdate.finished_at).is_not(None),
                            col(ProcessedUpdate.processed_at) < now - REMEMBER,
                        ),
                        and_(
                            col(ProcessedUpdate.retry_at).is_(None),
                            col(ProcessedUpdate.processed_at) < now - KEEP_GIVEN_UP,
                        ),
                    )
                )
            )

    async def given_up(self) -> int:
        """How many updates failed every try and wait for the operator (for /healthz)."""
        async with self.db.reading() as session:
            return (
                await session.scalar(
                    select(func.count())
                    .select_from(ProcessedUpdate)
                    .where(col(ProcessedUpdate.finished_at).is_(None), col(ProcessedUpdate.retry_at).is_(None))
                )
                or 0
            )
