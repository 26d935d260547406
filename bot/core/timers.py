"""Delayed in-process jobs (a redemption's confirmation window), cancelled on shutdown, and a
lease kept alive while its work runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def renewing(renew: Callable[[], Awaitable[None]], every: float, what: str) -> AsyncIterator[None]:
    """While the block runs, call `renew` every `every` seconds (a lease that must not lapse while
    the work is slow but alive); a renewal that fails is logged and tried again the next time."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await renew()
            except Exception:  # noqa: BLE001 - the next round tries again
                logger.warning("could not renew %s", what, exc_info=True)

    keeper = asyncio.create_task(keep(), name=f"renewing {what}")
    try:
        yield
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


class Timers:
    def __init__(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._sleep = sleep  # tests pass their clock's sleep, so time passes when they say
        self._tasks: set[asyncio.Task[None]] = set()

    def later(self, delay: float, job: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            await self._sleep(delay)
            try:
                await job()
            except Exception:
                logger.exception("delayed job failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
