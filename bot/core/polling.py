"""Long polling (the default mode) that confirms an update to Telegram only once it is recorded.

Telegram forgets an update when the next getUpdates asks for a higher offset. aiogram's own loop
moves the offset on as soon as it hands an update to a task, so an update the inbox could not
record (the database down for 30 s) was confirmed and lost; in webhook mode a 500 made Telegram
send it again. Here each batch is fed to the dispatcher, and the next getUpdates waits until the
inbox middleware has recorded every update of it (or the throttle dropped it on purpose). When one
could not be recorded, the poller waits (1, 2, 5, 10, then 30 s) and asks again from that update:
Telegram sends it and the ones after it again, and the inbox skips those it has.

Each update runs as a task: recording is quick, and the wait for a person's lock comes after it,
so one person's backlog never holds up the poll nor anyone else's update
(`bot/core/middlewares.py`). At most `BUFFERED` updates wait in the process; past that the poller
stops fetching until some finish (back-pressure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramConflictError, TelegramUnauthorizedError
from aiogram.types import Update

logger = logging.getLogger(__name__)

POLL_TIMEOUT = 30  # seconds Telegram holds a getUpdates open when there is nothing
BUFFERED = 1000  # updates fetched and not finished, at most
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between tries while updates cannot be recorded


class Poller:
    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        *,
        allowed_updates: list[str] | None = None,
        timeout: int = POLL_TIMEOUT,
        buffered: int = BUFFERED,
        backoff: tuple[float, ...] = BACKOFF,
    ) -> None:
        self.dp = dp
        self.bot = bot
        self.allowed_updates = allowed_updates
        self.timeout = timeout
        self.backoff = backoff
        self._room = asyncio.Semaphore(buffered)
        self._tasks: set[asyncio.Task[None]] = set()
        self.offset: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and hand out updates until `stop` is set; the updates in flight go on."""
        failures = 0
        while not stop.is_set():
            try:
                updates = await self._fetch(stop)
            except (TelegramUnauthorizedError, TelegramConflictError):
                raise  # a wrong token, or another poller: nothing to wait out
            except Exception as error:  # noqa: BLE001 - the network, Telegram's 5xx: wait and ask again
                failures += 1
                wait = self.backoff[min(failures, len(self.backoff)) - 1]
                logger.warning("getUpdates failed (%s); asking again in %s s", type(error).__name__, wait)
                await self._sleep(stop, wait)
                continue
            if updates is None:  # told to stop
                break
            unrecorded = await self._hand_out(updates)
            if unrecorded is None:
                failures = 0
                if updates:
                    self.offset = updates[-1].update_id + 1
                continue
            # Not confirmed: Telegram sends it (and those after it) again at the next getUpdates.
            failures += 1
            wait = self.backoff[min(failures, len(self.backoff)) - 1]
            self.offset = unrecorded
            logger.error("update %s could not be recorded; fetching it again in %s s", unrecorded, wait)
            await self._sleep(stop, wait)
        await self._confirm_last()

    async def _fetch(self, stop: asyncio.Event) -> list[Update] | None:
        fetch = asyncio.ensure_future(
            self.bot.get_updates(
                offset=self.offset,
                timeout=self.timeout,
                allowed_updates=self.allowed_updates,
                request_timeout=self.timeout + 10,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            done, _pending = await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if fetch not in done:
            fetch.cancel()
            with contextlib.suppress(BaseException):
                await fetch
            return None
        return fetch.result()

    async def _hand_out(self, updates: list[Update]) -> int | None:
        """Feed a batch to the dispatcher; the first update id that could not be recorded, if any."""
        loop = asyncio.get_running_loop()
        recorded: list[tuple[int, asyncio.Future[bool]]] = []
        for update in updates:
            await self._room.acquire()
            future: asyncio.Future[bool] = loop.create_future()
            task = asyncio.create_task(self._handle(update, future), name=f"update {update.update_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            recorded.append((update.update_id, future))
        unrecorded = [update_id for update_id, future in recorded if not await future]
        return min(unrecorded) if unrecorded else None

    async def _handle(self, update: Update, recorded: asyncio.Future[bool]) -> None:
        try:
            await self.dp.feed_update(self.bot, update, inbox_recorded=recorded)
        except Exception:  # noqa: BLE001 - logged by the error handler; a poll goes on
            logger.debug("update %s ended with an error", update.update_id, exc_info=True)
        finally:
            if not recorded.done():  # it never reached the inbox: not recorded
                recorded.set_result(False)
            self._room.release()

    async def _confirm_last(self) -> None:
        """On the way out: tell Telegram which updates this process took, so the next one starts
        after them (the inbox would skip them anyway)."""
        if self.offset is None:
            return
        with contextlib.suppress(Exception):
            await self.bot.get_updates(offset=self.offset, timeout=0, limit=1, allowed_updates=self.allowed_updates)

    @staticmethod
    async def _sleep(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def wait_in_flight(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def serve(dp: Dispatcher, bot: Bot, *, stop: asyncio.Event | None = None, **kwargs: Any) -> None:
    """Poll until SIGTERM/SIGINT (or `stop`), then let the updates in flight finish and shut down."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    poller = Poller(dp, bot, allowed_updates=dp.resolve_used_update_types(), **kwargs)
    workflow = {"dispatcher": dp, **dp.workflow_data}
    await dp.emit_startup(bot=bot, **workflow)
    try:
        me = await bot.me()
        logger.info("polling as @%s", me.username)
        await poller.run(stop)
        logger.info("stopping: no new updates; finishing the ones in flight")
    finally:
        await dp.emit_shutdown(bot=bot, **workflow)  # the inbox drains the updates in flight first
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
