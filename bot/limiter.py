"""One gate in front of Telegram for bulk sending: at most `per_second` calls in any one-second
window, at least `per_chat_interval` between two calls to the same chat, and a pause for everyone
when Telegram answers 429. aiogram neither throttles nor retries by itself.

The window slides: the (n + per_second)-th call starts at least a window after the n-th. A token
bucket would let a full bucket and a second's refill through within one second, twice the limit.
The window is a little over a second (WINDOW): between the grant and the request leaving the
process, the event loop adds a few milliseconds of jitter, which measured 31 calls in one second
(`bench/broadcast.py`) with an exact second.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

WINDOW = 1.05  # seconds


class RateLimiter:
    def __init__(
        self,
        per_second: int = 30,
        per_chat_interval: float = 1.0,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        window: float = WINDOW,
    ) -> None:
        if per_second < 1:
            raise ValueError("per_second must be at least 1")
        self.per_second = per_second
        self.per_chat_interval = per_chat_interval
        self.window = window
        self._now = now  # tests pass a virtual clock
        self._sleep = sleep
        self._starts: deque[float] = deque(maxlen=per_second)  # the last `per_second` grants
        self._last_by_chat: dict[int, float] = {}
        self._paused_until = 0.0
        # Callers are let through one at a time, in order: the decision and its record must not
        # interleave, or two workers could both take the last place in the window.
        self._lock = asyncio.Lock()

    def now(self) -> float:
        """The limiter's clock (virtual in tests), for callers that pace themselves by it."""
        return self._now()

    def pause(self, seconds: float) -> None:
        """Telegram said 429 `retry_after`: nobody calls before it has passed."""
        self._paused_until = max(self._paused_until, self._now() + max(seconds, 0.0))

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def _wait(self, now: float, chat_id: int | None) -> float:
        wait = self._paused_until - now
        if len(self._starts) == self.per_second:
            wait = max(wait, self._starts[0] + self.window - now)
        if chat_id is not None:
            last = self._last_by_chat.get(chat_id)
            if last is not None:
                wait = max(wait, last + self.per_chat_interval - now)
        return wait

    async def acquire(self, chat_id: int | None = None) -> None:
        """Wait until a call to `chat_id` is allowed, and count it as made now.

        The caller should make the call right away, with nothing awaited in between.
        """
        async with self._lock:
            while True:
                now = self._now()
                wait = self._wait(now, chat_id)
                if wait <= 0:
                    break
                await self._sleep(wait)
            self._starts.append(now)
            if chat_id is not None:
                self._last_by_chat[chat_id] = now
                if len(self._last_by_chat) > 4 * self.per_second:
                    self._forget(now)

    def _forget(self, now: float) -> None:
        """Chats whose last call is older than the per-chat interval no longer constrain anything."""
        for chat, last in list(self._last_by_chat.items()):
            if last + self.per_chat_interval <= now:
                del self._last_by_chat[chat]
