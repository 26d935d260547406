"""Each person may send at most so many messages and button presses a minute (`limits:
messages_per_minute` in the business file); past it they are asked once to slow down, and the
rest is dropped before it costs anything: no inbox row, no database work, no lock on their step.

The window slides, as the send limiter's does (`bot/core/limiter.py`). With Redis, the count is shared
by every instance, so a flood balanced over several processes meets one limit.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

SPAN = 60.0  # seconds

# KEYS = the person's window, their "told" flag; ARGV = size, span (ms), a unique member.
# Returns 1 when allowed, 0 when refused and they were told already, 2 when refused for the first time.
SHARED_ALLOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[2])
  return 1
end
if redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[2]) then return 2 end
return 0
"""


class Verdict:
    ALLOWED = 1
    DROPPED = 0  # over the limit; told already
    FIRST_DROPPED = 2  # over the limit: tell them, once


class PersonThrottle:
    def __init__(
        self,
        per_minute: int,
        *,
        now: Callable[[], float] = time.monotonic,
        redis: Any = None,
        prefix: str = "{frontdoor:throttle}",
    ) -> None:
        self.size = per_minute
        self._now = now
        self._windows: dict[int, deque[float]] = {}
        self._told: set[int] = set()
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(SHARED_ALLOW) if redis is not None else None
        self._members = 0
        self._warned_at = -1e9

    async def check(self, person_id: int) -> int:
        """A `Verdict` for one more message or press from this person, counted if allowed."""
        if self._script is not None:
            self._members += 1
            try:
                return int(
                    await self._script(
                        keys=[f"{self._prefix}:{person_id}", f"{self._prefix}:{person_id}:told"],
                        args=[self.size, int(SPAN * 1000), f"{id(self)}:{self._members}"],
                    )
                )
            except Exception:  # noqa: BLE001 - Redis down: this instance's own count still holds
                self._warn()
        return self._check_here(person_id)

    def _check_here(self, person_id: int) -> int:
        now = self._now()
        window = self._windows.get(person_id)
        if window is None:
            if len(self._windows) > 10_000:
                self._forget(now)
            window = self._windows[person_id] = deque(maxlen=self.size)
        while window and window[0] <= now - SPAN:
            window.popleft()
        if len(window) < self.size:
            window.append(now)
            self._told.discard(person_id)
            return Verdict.ALLOWED
        if person_id in self._told:
            return Verdict.DROPPED
        self._told.add(person_id)
        return Verdict.FIRST_DROPPED

    def _forget(self, now: float) -> None:
        """People whose window has emptied constrain nothing: a long run keeps no one for ever."""
        for person, window in list(self._windows.items()):
            if not window or window[-1] <= now - SPAN:
                del self._windows[person]
                self._told.discard(person)

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            logger.warning("Redis does not answer: each instance counts people's messages on its own", exc_info=True)
