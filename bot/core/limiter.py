"""One gate in front of Telegram for every message the bot sends (`bot/core/sender.py` calls it):

- at most `per_second` calls in any sliding window of a little over a second (Telegram's bulk
  limit, about 30 a second);
- in one private chat, at most `chat_burst` messages in `chat_span` seconds: about one a second,
  with the short burst Telegram tolerates (a cashier's quick purchase: card, amount, receipt,
  confirmation);
- in one group, at most `group_per_minute` messages a minute (Telegram's limit is 20);
- a pause for everyone when Telegram answers 429 `retry_after`;
- bulk sending (broadcasts, scheduled messages) gives way to replies a person is waiting for.

aiogram neither throttles nor retries by itself.

The windows slide: the (n + size)-th call starts at least a span after the n-th. A token bucket
would let a full bucket and a span's refill through within one span, twice the limit. The global
window is a little over a second (WINDOW): between the grant and the request leaving the process,
the event loop adds a few milliseconds of jitter, which measured 31 calls in one second
(`bench/broadcast.py`) with an exact second.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

WINDOW = 1.05  # seconds
CHAT_BURST = 5
CHAT_SPAN = 5.0  # seconds: five messages in five seconds, one a second on average
GROUP_PER_MINUTE = 20

logger = logging.getLogger(__name__)

_bulk: ContextVar[bool] = ContextVar("bulk_sending", default=False)


@contextlib.contextmanager
def sending_in_bulk() -> Iterator[None]:
    """Everything sent inside (and in tasks started inside) waits behind replies to people."""
    token = _bulk.set(True)
    try:
        yield
    finally:
        _bulk.reset(token)


class _Window:
    """At most `size` grants in any `span` seconds."""

    __slots__ = ("size", "span", "stamps")

    def __init__(self, size: int, span: float) -> None:
        self.size = size
        self.span = span
        self.stamps: deque[float] = deque(maxlen=size)

    def wait(self, now: float) -> float:
        if len(self.stamps) < self.size:
            return 0.0
        return self.stamps[0] + self.span - now

    def idle(self, now: float) -> bool:
        return not self.stamps or self.stamps[-1] + self.span <= now


# Checks and records one grant in Redis for every instance at once, on Redis's own clock:
# KEYS = the pause key, the overall window, [the chat's window]; ARGV = the overall size and span
# (ms), the chat's size and span (ms), a unique member. Returns 0 when granted, else ms to wait.
SHARED_GRANT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local paused = redis.call('PTTL', KEYS[1])
if paused > 0 then return paused end
local wait = 0
local function check(key, size, span)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  if redis.call('ZCARD', key) >= size then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + span - now)
  end
end
check(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
if #KEYS > 2 then check(KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4])) end
if wait > 0 then return math.max(wait, 1) end
for index = 2, #KEYS do
  redis.call('ZADD', KEYS[index], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[index], 60000)
end
return 0
"""
SHARED_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], 1, 'PX', ARGV[1]) end
"""


class SharedLimits:
    """The limits kept in Redis, so that several instances together stay within Telegram's (which
    are per bot, not per process)."""

    # The braces make every key hash to one slot, as a Lua script on Redis Cluster needs.
    def __init__(self, redis: Any, prefix: str = "{frontdoor:send}") -> None:
        self.redis = redis
        self.prefix = prefix
        self._grant = redis.register_script(SHARED_GRANT)
        self._pause = redis.register_script(SHARED_PAUSE)
        self._members = itertools.count()
        self._me = uuid.uuid4().hex[:12]
        self._warned_at = -1e9

    async def grant(self, limiter: RateLimiter, chat_id: int | None) -> float:
        """0 when the call may go now (and it is counted), else the seconds to wait."""
        keys = [f"{self.prefix}:pause", f"{self.prefix}:all"]
        args: list[Any] = [limiter.per_second, int(limiter.window * 1000), 0, 0, f"{self._me}:{next(self._members)}"]
        if chat_id is not None:
            size, span = limiter.limits_of(chat_id)
            keys.append(f"{self.prefix}:chat:{chat_id}")
            args[2:4] = [size, int(span * 1000)]
        try:
            wait_ms = await self._grant(keys=keys, args=args)
        except Exception:  # noqa: BLE001 - Redis down: this instance's own limits still hold
            self._warn()
            return 0.0
        return int(wait_ms) / 1000

    async def pause(self, seconds: float) -> None:
        try:
            await self._pause(keys=[f"{self.prefix}:pause"], args=[max(int(seconds * 1000), 1)])
        except Exception:  # noqa: BLE001
            self._warn()

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:  # once a minute, not once a message
            self._warned_at = now
            logger.warning("Redis does not answer: sending within this instance's limits only", exc_info=True)


class RateLimiter:
    def __init__(
        self,
        per_second: int = 30,
        *,
        chat_burst: int = CHAT_BURST,
        chat_span: float = CHAT_SPAN,
        group_per_minute: int = GROUP_PER_MINUTE,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        window: float = WINDOW,
        shared: SharedLimits | None = None,
    ) -> None:
        if per_second < 1:
            raise ValueError("per_second must be at least 1")
        self.per_second = per_second
        self.chat_burst = chat_burst
        self.chat_span = chat_span
        self.group_per_minute = group_per_minute
        self._now = now  # tests pass a virtual clock
        self._sleep = sleep
        self.window = window
        self.shared = shared  # with REDIS_URL: the same limits across instances
        self._global = _Window(per_second, window)
        self._chats: dict[int, _Window] = {}
        self._paused_until = 0.0
        # Callers pass the global window one at a time, in order: the decision and its record
        # must not interleave, or two callers could both take the last place in the window.
        self._lock = asyncio.Lock()
        self._waiting_replies = 0
        self._no_replies_waiting = asyncio.Event()
        self._no_replies_waiting.set()

    def now(self) -> float:
        """The limiter's clock (virtual in tests), for callers that pace themselves by it."""
        return self._now()

    def pause(self, seconds: float) -> None:
        """Telegram said 429 `retry_after`: nobody calls before it has passed."""
        self._paused_until = max(self._paused_until, self._now() + max(seconds, 0.0))

    async def pause_everywhere(self, seconds: float) -> None:
        """The pause, for the other instances too."""
        self.pause(seconds)
        if self.shared is not None:
            await self.shared.pause(seconds)

    def limits_of(self, chat_id: int) -> tuple[int, float]:
        """How many messages in how many seconds one chat may get."""
        return (self.group_per_minute, 60.0) if chat_id < 0 else (self.chat_burst, self.chat_span)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    async def wait_out_pause(self) -> None:
        """For calls that are not limited themselves (a button's answer): sleep through a 429."""
        wait = self._paused_until - self._now()
        if wait > 0:
            await self._sleep(wait)

    def _chat(self, chat_id: int) -> _Window:
        window = self._chats.get(chat_id)
        if window is None:
            window = _Window(*self.limits_of(chat_id))  # groups and channels have negative ids
            if len(self._chats) > 4 * self.per_second:
                self._forget(self._now())
            self._chats[chat_id] = window
        return window

    def _forget(self, now: float) -> None:
        """Chats whose window has emptied no longer constrain anything."""
        for chat, window in list(self._chats.items()):
            if window.idle(now):
                del self._chats[chat]

    async def acquire(self, chat_id: int | None = None, *, bulk: bool | None = None) -> None:
        """Wait until a message to `chat_id` (None: an edit, counted only overall) is allowed,
        and count it as sent now. The caller should make the call right away.

        A chat's own limit is waited out without holding the queue: one busy group never delays
        the messages to everyone else.
        """
        bulk = _bulk.get() if bulk is None else bulk
        while True:
            if bulk:
                await self._no_replies_waiting.wait()
            if chat_id is not None and (wait := self._chat(chat_id).wait(self._now())) > 0:
                await self._sleep(wait)
                continue
            if not bulk:
                self._replies_waiting(+1)
            try:
                async with self._lock:
                    while True:
                        now = self._now()
                        wait = max(self._paused_until - now, self._global.wait(now))
                        if wait <= 0:
                            break
                        await self._sleep(wait)
                    if bulk and self._waiting_replies:
                        continue  # a reply came while this waited: it goes first
                    chat = self._chat(chat_id) if chat_id is not None else None
                    if chat is not None and chat.wait(now) > 0:
                        continue  # another call to this chat took the place meanwhile
                    shared_wait = await self.shared.grant(self, chat_id) if self.shared is not None else 0.0
                    if shared_wait <= 0:
                        self._global.stamps.append(now)
                        if chat is not None:
                            chat.stamps.append(now)
                        return
                # Other instances took the places (or a 429 paused them all): wait outside the queue.
                await self._sleep(shared_wait)
            finally:
                if not bulk:
                    self._replies_waiting(-1)

    def _replies_waiting(self, change: int) -> None:
        self._waiting_replies += change
        if self._waiting_replies:
            self._no_replies_waiting.clear()
        else:
            self._no_replies_waiting.set()
