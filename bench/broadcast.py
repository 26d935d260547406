"""Benchmark of a broadcast on SQLite and PostgreSQL, in real time.

    python bench/broadcast.py                      # 10 000 recipients, both databases (~6 min each)
    python bench/broadcast.py --sqlite             # SQLite only
    python bench/broadcast.py --recipients 1500    # a shorter run

A recording Bot session answers each call after a simulated network round trip (40 ms), so the
workers overlap as they do against Telegram; every call goes through the production Bot's Outbox
(`create_bot`), the one sender path with its limiter. Figures: the rate achieved against the
30-a-second limit, the most messages and edits that fell in any one second (must never exceed 30),
and the time to snapshot the recipients. PostgreSQL: BENCH_POSTGRES_URL, else the `test` database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core import lazy_types  # noqa: E402, F401  (before aiogram: its types are then built on first use)

# isort: split

from aiogram import Bot  # noqa: E402
from aiogram.methods import SendMessage, TelegramMethod  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bot.broadcasts.jobs import Broadcaster  # noqa: E402
from bot.broadcasts.rules import Segment, SegmentKind  # noqa: E402
from bot.broadcasts.service import BroadcastService  # noqa: E402
from bot.business import load_business  # noqa: E402
from bot.core.config import DEFAULT_BUSINESS_FILE  # noqa: E402
from bot.core.i18n import create_i18n  # noqa: E402
from bot.core.sender import EDITING, SENDING  # noqa: E402
from bot.dispatcher import create_bot  # noqa: E402
from storage.models import Customer  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.fake_telegram import RecordingSession  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loyalty import POSTGRES_URL, fresh, postgres_reachable  # noqa: E402

RECIPIENTS = 10_000
LATENCY = 0.040  # seconds a Bot API call takes to come back
LIMIT = 30
GROUP = -1001
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


class SlowSession(RecordingSession):
    """Answers like Telegram, a round trip later, and notes when each call left."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: list[float] = []  # messages to customers
        self.limited_at: list[float] = []  # every message and edit (the progress message too)

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None) -> Any:
        if isinstance(method, SendMessage) and int(method.chat_id) > 0:
            self.sent_at.append(time.monotonic())
        if isinstance(method, SENDING + EDITING):
            self.limited_at.append(time.monotonic())
        await asyncio.sleep(LATENCY)
        return await super().make_request(bot, method, timeout)


def busiest_second(moments: list[float]) -> int:
    window: deque[float] = deque()
    most = 0
    for moment in sorted(moments):
        window.append(moment)
        while window[0] <= moment - 1.0:
            window.popleft()
        most = max(most, len(window))
    return most


async def bench(url: str, label: str, recipients: int) -> None:
    db = await fresh(url)
    business = load_business(DEFAULT_BUSINESS_FILE)
    rows = [
        {
            "telegram_id": 10_000_000 + i,
            "first_name": f"Guest {i}",
            "language": ("ru", "pl", "en")[i % 3],
            "card_number": f"{10_000_000 + i}",
            "joined_at": NOW - timedelta(days=60),
            "created_at": NOW - timedelta(days=60),
            "marketing_consent_at": NOW - timedelta(days=30),
        }
        for i in range(recipients)
    ]
    async with db.writing() as session:
        await session.execute(insert(Customer), rows)
    settings = make_settings(manager_chat_id=str(GROUP))
    session = SlowSession()
    bot = create_bot(settings, session=session)
    service = BroadcastService(db, business, clock=lambda: NOW)
    broadcaster = Broadcaster(service, business, settings, create_i18n("en"))
    started = time.perf_counter()
    broadcast = await service.create(
        Segment(SegmentKind.ALL),
        text="Weekend brunch: 20% off",
        photo_file_id=None,
        created_by=1,
        created_by_name="Owner",
        chat_id=GROUP,
    )
    snapshot = time.perf_counter() - started
    assert broadcast is not None
    started = time.perf_counter()
    broadcaster.start(bot, broadcast)
    await broadcaster.wait()
    elapsed = time.perf_counter() - started
    sent = len(session.sent_at)
    assert sent == recipients, sent
    rate = sent / (session.sent_at[-1] - session.sent_at[0])
    await db.dispose()
    print(f"{label}:")
    print(f"  recipients snapshot (ms)          {snapshot * 1000:10.1f}")
    print(f"  sent                              {sent:10d}")
    print(f"  achieved rate (/s)                {rate:10.1f}   ({rate / LIMIT:.0%} of the {LIMIT}/s limit)")
    print(f"  most calls in any one second      {busiest_second(session.limited_at):10d}   (messages and edits)")
    print(f"  wall time (s)                     {elapsed:10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sqlite", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--recipients", type=int, default=RECIPIENTS, help=f"default {RECIPIENTS}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench(f"sqlite+aiosqlite:///{tmp}/bench.db", "SQLite", args.recipients))
    if not args.sqlite and postgres_reachable():
        asyncio.run(bench(os.environ.get("BENCH_POSTGRES_URL", POSTGRES_URL), "PostgreSQL", args.recipients))


if __name__ == "__main__":
    main()
