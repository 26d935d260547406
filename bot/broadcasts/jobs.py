"""Broadcasts on their way to Telegram: a few workers, sending in bulk through the Bot's Outbox
(its limiter gives way to replies to people and waits out 429s), claim recipients in small batches
and record each outcome; a progress message in the managers' group is edited now and then. A
broadcast runs in the process that holds its lease; when that process stops or dies, the scheduler
job (`resume`) of any process takes it over. The rules live in BroadcastService."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _

from bot.broadcasts.rules import Progress, minutes_left, seconds_left
from bot.broadcasts.service import LEASE, BroadcastService, Delivery
from bot.business import Business
from bot.core import formatting
from bot.core.config import Settings
from bot.core.limiter import sending_in_bulk
from bot.core.timers import renewing
from bot.lifecycle import keyboards
from storage.database import on_the_loop
from storage.models import Broadcast, RecipientStatus

logger = logging.getLogger(__name__)

T = TypeVar("T")

WORKERS = 4
BATCH = 10  # recipients claimed at a time by one worker
PROGRESS_EVERY = 6.0  # seconds between two edits: a group takes about 20 messages a minute
MAX_RETRIES = 5  # 429s for one recipient before giving up on them
# Bad requests that mean the person cannot be reached at all, like a block.
UNREACHABLE = ("chat not found", "user is deactivated", "bot was blocked", "bot was kicked", "user not found")


@dataclass
class _Run:
    """One process sending one broadcast."""

    broadcast: Broadcast
    lease: datetime  # the lease this process holds; also its token for renewing it
    started: float  # when this run began, by the limiter's clock (for the time left)
    done: int = 0  # outcomes recorded by this run
    last_shown: float = float("-inf")
    lost: bool = False  # another process took the broadcast over
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # renewing and editing, one at a time

    @property
    def id(self) -> int:
        assert self.broadcast.id is not None
        return self.broadcast.id


@dataclass
class _Worker:
    in_flight: int | None = None  # the recipient whose call to Telegram has not come back


async def _finish_even_if_cancelled(work: Awaitable[T]) -> T:
    """Record what happened even when the runner is being stopped: the write completes, then the
    cancellation goes on."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


class Broadcaster:
    def __init__(
        self,
        service: BroadcastService,
        business: Business,
        settings: Settings,
        i18n: I18n,
        *,
        now: Callable[[], float] = time.monotonic,
        workers: int = WORKERS,
        batch: int = BATCH,
        progress_every: float = PROGRESS_EVERY,
        lease: timedelta = LEASE,
    ) -> None:
        self.service = service
        self.business = business
        self.settings = settings
        self.i18n = i18n
        self.per_second = settings.send_limit_per_second  # for the time left
        self._now = now  # the clock of the pace and the progress (virtual in tests)
        self.workers = workers
        self.batch = batch
        self.progress_every = progress_every
        self.lease = lease
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._markups: dict[str, InlineKeyboardMarkup] = {}

    # --- starting and stopping -----------------------------------------------------------------

    def start(self, bot: Bot, broadcast: Broadcast) -> asyncio.Task[None]:
        """Send a broadcast this process holds the lease of (just created, or taken over)."""
        assert broadcast.id is not None and broadcast.lease_until is not None
        running = self._tasks.get(broadcast.id)
        if running is not None and not running.done():
            return running
        # A broadcast's work is long (its figures count every recipient): off the loop on SQLite,
        # started from a manager's command as when the scheduler resumes it (`on_the_loop`).
        with on_the_loop(False):
            task = asyncio.create_task(
                self.run(bot, broadcast, broadcast.lease_until), name=f"broadcast-{broadcast.id}"
            )
        self._tasks[broadcast.id] = task
        task.add_done_callback(lambda done: self._forget(broadcast.id or 0, done))
        return task

    def _forget(self, broadcast_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(broadcast_id) is task:
            del self._tasks[broadcast_id]
        if not task.cancelled() and task.exception() is not None:
            logger.error("broadcast %s stopped on an error", broadcast_id, exc_info=task.exception())

    async def resume(self, bot: Bot) -> int:
        """The scheduler job: take over broadcasts whose sender is gone (a restart, a crash)."""
        resumed = 0
        for broadcast_id in await self.service.expired():
            if broadcast_id in self._tasks:
                continue  # ours, and still running; its next renewal tells whether it lost the lease
            lease = await self.service.take_over(broadcast_id, self.lease)
            broadcast = await self.service.get(broadcast_id) if lease is not None else None
            if broadcast is None:
                continue
            logger.info("broadcast %s: resuming", broadcast_id)
            self.start(bot, broadcast)
            resumed += 1
        return resumed

    async def wait(self) -> None:
        """Until every broadcast this process is sending has ended (tests, graceful exits)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def stop(self) -> None:
        """Shutdown: stop sending; unsent recipients stay pending and the lease is released, so the
        next process resumes at once."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- one broadcast -------------------------------------------------------------------------

    async def run(self, bot: Bot, broadcast: Broadcast, lease: datetime) -> None:
        with sending_in_bulk():  # replies to people go first
            await self._run(bot, broadcast, lease)

    async def _run(self, bot: Bot, broadcast: Broadcast, lease: datetime) -> None:
        run = _Run(broadcast=broadcast, lease=lease, started=self._now())
        # The lease is renewed on a clock of its own too: a worker may wait long inside the Outbox
        # (a group's limit, 429s), and a lapsed lease would let another process take over.
        keep_lease = renewing(lambda: self._renew(run), self.lease.total_seconds() / 3, f"broadcast {run.id}")
        try:
            async with keep_lease:
                await self._show(bot, run, force=True)
                async with asyncio.TaskGroup() as group:
                    for _ in range(self.workers):
                        group.create_task(self._work(bot, run))
        except asyncio.CancelledError:
            if not run.lost:
                await self.service.release(run.id, run.lease)
            raise
        if run.lost:
            logger.warning("broadcast %s: another process took it over", run.id)
            return
        progress = await self.service.finish(run.id)
        if progress is not None:
            await self._show(bot, run, force=True, progress=progress)
            logger.info("broadcast %s: %s sent of %s", run.id, progress.sent, progress.total)

    async def _work(self, bot: Bot, run: _Run) -> None:
        worker = _Worker()
        while not run.lost:
            claiming = asyncio.ensure_future(self.service.claim(run.id, self.batch))
            try:
                claimed = await asyncio.shield(claiming)
            except asyncio.CancelledError:  # stopped while claiming: the claim is not ours to keep
                await self.service.unclaim([d.recipient_id for d in await claiming])
                raise
            if not claimed:
                return
            queue = deque(claimed)
            try:
                while queue and not run.lost:
                    status, error = await self._deliver(bot, run, worker, queue[0])
                    delivery = queue.popleft()
                    await _finish_even_if_cancelled(self.service.record(delivery.recipient_id, status, error))
                    run.done += 1
                    await self._tick(bot, run)
            finally:
                # Claims never tried go back to the queue; the one whose call did not come back
                # stays claimed and becomes `unknown` when the broadcast is taken over.
                untried = [d.recipient_id for d in queue if d.recipient_id != worker.in_flight]
                if untried:
                    await self.service.unclaim(untried)

    async def _deliver(
        self, bot: Bot, run: _Run, worker: _Worker, delivery: Delivery
    ) -> tuple[RecipientStatus, str | None]:
        broadcast = run.broadcast
        markup = self._markup(delivery.language)
        for _attempt in range(MAX_RETRIES + 1):
            worker.in_flight = delivery.recipient_id
            try:  # the Outbox waits for the limits and waits out a 429 itself
                if broadcast.photo_file_id:
                    await bot.send_photo(
                        delivery.telegram_id, broadcast.photo_file_id, caption=broadcast.text, reply_markup=markup
                    )
                else:
                    await bot.send_message(delivery.telegram_id, broadcast.text or "", reply_markup=markup)
            except TelegramRetryAfter as error:
                worker.in_flight = None
                logger.info("broadcast %s: Telegram still asks to wait %s s", run.id, error.retry_after)
                await self._renew(run, extra=timedelta(seconds=error.retry_after))
                continue
            except TelegramForbiddenError as error:
                worker.in_flight = None
                return RecipientStatus.BLOCKED, error.message
            except TelegramBadRequest as error:
                worker.in_flight = None
                if any(reason in error.message.lower() for reason in UNREACHABLE):
                    return RecipientStatus.BLOCKED, error.message
                logger.warning("broadcast %s: Telegram refused a message: %s", run.id, error.message)
                return RecipientStatus.FAILED, error.message
            except (TelegramNetworkError, TelegramServerError) as error:
                # It may have arrived: sending again could send twice.
                worker.in_flight = None
                return RecipientStatus.UNKNOWN, error.message
            except TelegramAPIError as error:
                worker.in_flight = None
                logger.warning("broadcast %s: a message failed: %s", run.id, error.message)
                return RecipientStatus.FAILED, error.message
            worker.in_flight = None
            return RecipientStatus.SENT, None
        return RecipientStatus.FAILED, "too many retry_after"

    def _markup(self, language: str) -> InlineKeyboardMarkup:
        """The Unsubscribe button in the recipient's language."""
        if language not in self._markups:
            with self.i18n.context(), self.i18n.use_locale(language):
                self._markups[language] = keyboards.unsubscribe()
        return self._markups[language]

    # --- the lease and the progress message ----------------------------------------------------

    async def _renew(self, run: _Run, extra: timedelta = timedelta(0)) -> None:
        async with run.lock:
            if run.lost:
                return
            lease = await _finish_even_if_cancelled(self.service.renew(run.id, run.lease, self.lease + extra))
            if lease is None:
                run.lost = True
            else:
                run.lease = lease

    async def _tick(self, bot: Bot, run: _Run) -> None:
        """Now and then: keep the lease and show the figures."""
        if self._now() - run.last_shown < self.progress_every or run.lock.locked():
            return
        run.last_shown = self._now()
        await self._renew(run)
        if not run.lost:
            await self._show(bot, run)

    async def _show(self, bot: Bot, run: _Run, force: bool = False, progress: Progress | None = None) -> None:
        """Post the progress message (first time) or edit it."""
        broadcast = run.broadcast
        chat_id = broadcast.chat_id
        if chat_id is None:
            return
        if progress is None:
            progress = await self.service.progress(run.id)
            if progress is None:
                return
        elapsed = self._now() - run.started
        left = seconds_left(progress.remaining, run.done, elapsed, self.per_second)
        with self.i18n.context(), self.i18n.use_locale(self.business.managers_language):
            text = progress_text(run.id, progress, left) if not progress.finished else done_text(run.id, progress)
        run.last_shown = self._now()
        try:
            if broadcast.progress_message_id is None:
                message = await bot.send_message(chat_id, text, message_thread_id=broadcast.thread_id)
                broadcast.progress_message_id = message.message_id
                await self.service.progress_shown(run.id, message.message_id)
            else:
                await bot.edit_message_text(text=text, chat_id=chat_id, message_id=broadcast.progress_message_id)
        except TelegramRetryAfter:
            if force:  # the first or the last figures matter: one more try, after the pause
                await self._show(bot, run, progress=progress)
        except TelegramBadRequest as error:
            if "message is not modified" not in error.message:
                logger.warning("broadcast %s: could not show the progress: %s", run.id, error.message)
        except TelegramAPIError:
            logger.exception("broadcast %s: could not show the progress", run.id)


# --- words -------------------------------------------------------------------------------------


def progress_text(broadcast_id: int, progress: Progress, seconds: float) -> str:
    """The managers' view while sending (in the current locale)."""
    minutes = minutes_left(seconds)
    if minutes:
        left = ngettext("Time left: about {count} minute", "Time left: about {count} minutes", minutes).format(
            count=formatting.number(minutes)
        )
    else:
        left = _("Time left: less than a minute")
    return "\n".join(
        [
            _("📣 Broadcast #{id}: sending…").format(id=broadcast_id),
            _("Sent: {sent} · Not delivered: {failed} · Remaining: {remaining}").format(
                sent=formatting.number(progress.sent),
                failed=formatting.number(progress.not_delivered),
                remaining=formatting.number(progress.remaining),
            ),
            left,
        ]
    )


def done_text(broadcast_id: int, progress: Progress) -> str:
    """The managers' view when it is over: every recipient accounted for."""
    lines = [
        _("✅ Broadcast #{id} is done: sent to {sent} of {total}.").format(
            id=broadcast_id, sent=formatting.number(progress.sent), total=formatting.number(progress.total)
        )
    ]
    if progress.blocked:
        lines.append(
            ngettext(
                "{count} person has blocked the bot; later broadcasts skip them.",
                "{count} people have blocked the bot; later broadcasts skip them.",
                progress.blocked,
            ).format(count=formatting.number(progress.blocked))
        )
    if progress.failed:
        lines.append(
            ngettext(
                "Telegram did not accept {count} message.", "Telegram did not accept {count} messages.", progress.failed
            ).format(count=formatting.number(progress.failed))
        )
    if progress.unknown:
        lines.append(
            ngettext(
                "{count} message was interrupted by a restart and may not have arrived; it will not be sent again.",
                "{count} messages were interrupted by a restart and may not have arrived; they will not be sent again.",
                progress.unknown,
            ).format(count=formatting.number(progress.unknown))
        )
    if progress.skipped:
        lines.append(
            ngettext(
                "{count} person unsubscribed or left before the message reached them.",
                "{count} people unsubscribed or left before the message reached them.",
                progress.skipped,
            ).format(count=formatting.number(progress.skipped))
        )
    return "\n".join(lines)
