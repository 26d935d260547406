"""Work that runs every so often in the background (due surveys, check-backs). Jobs claim their
rows in the database, so several bot processes can run the same scheduler without doubling."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot

logger = logging.getLogger(__name__)

Job = Callable[[Bot], Awaitable[Any]]


class Scheduler:
    def __init__(self, interval: float = 30.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.interval = interval
        self._sleep = sleep  # tests pass their clock's sleep
        self._jobs: list[Job] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, job: Job) -> None:
        self._jobs.append(job)

    async def run_once(self, bot: Bot) -> None:
        for job in self._jobs:
            try:
                await job(bot)
            except Exception:  # one failing job must not stop the others, nor the loop
                logger.exception("scheduled job %s failed", getattr(job, "__qualname__", job))

    async def start(self, bot: Bot) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(bot), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self, bot: Bot) -> None:
        while True:
            await self.run_once(bot)
            await self._sleep(self.interval)
