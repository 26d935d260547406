"""Delayed in-process jobs (a redemption's confirmation window), cancelled on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


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
