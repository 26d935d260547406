"""Benchmarks of the ledger and the bot pipeline on SQLite and PostgreSQL.

    python bench/loyalty.py             # both databases (PostgreSQL if reachable)
    python bench/loyalty.py --sqlite    # SQLite only

Figures: ledger movements per second (one service call each), the 50-way redemption race,
and whole cashier purchases fed through the production dispatcher with a recording Bot
session (no network), plus the process's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bot.business import load_business  # noqa: E402
from bot.core.callbacks import FlowCB, OperationCB, ScanCB  # noqa: E402
from bot.core.config import DEFAULT_BUSINESS_FILE  # noqa: E402
from bot.core.i18n import create_i18n  # noqa: E402
from bot.core.throttle import PersonThrottle  # noqa: E402
from bot.dispatcher import create_bot, create_dispatcher  # noqa: E402
from bot.loyalty.service import LoyaltyService  # noqa: E402
from storage.database import Database, migrate  # noqa: E402
from storage.models import utcnow  # noqa: E402
from tests.conftest import CASHIER, EMMA, OWNER, Harness, empty_postgres, make_settings  # noqa: E402
from tests.fake_telegram import RecordingSession  # noqa: E402

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def fresh(url: str) -> Database:
    if url.startswith("postgresql"):
        await empty_postgres(url)
    await migrate(url)
    return Database(url)


async def bench(url: str, label: str) -> None:
    db = await fresh(url)
    business = load_business(DEFAULT_BUSINESS_FILE)
    loyalty = LoyaltyService(db, business)
    session = RecordingSession()
    settings = make_settings()
    bot = create_bot(settings, session=session)
    # One cashier plays a day's till in seconds: the per-person limit of messages a minute is lifted.
    dp = create_dispatcher(settings, business, db, create_i18n("en"), loyalty=loyalty, throttle=PersonThrottle(10**9))
    h = Harness(bot=bot, dp=dp, session=session, db=db, loyalty=loyalty, business=business, clock=utcnow, surveys=None)  # type: ignore[arg-type]
    await h.make_cashier(CASHIER)
    await h.join(EMMA)
    emma = await h.customer(EMMA)

    # 1. Ledger movements, one after another.
    n = 1000
    started = time.perf_counter()
    for i in range(n):
        await loyalty.adjust(emma.id, 1, OWNER.id, "bench", key=f"bench:{i}")  # type: ignore[arg-type]
    ledger_rate = n / (time.perf_counter() - started)

    # 2. The race: 50 redemptions of 10 against a balance of 100.
    race_ms = []
    for round_no in range(5):
        balance = (await h.customer(EMMA)).balance
        await loyalty.adjust(emma.id, -balance + 100, OWNER.id, "reset", key=f"reset:{round_no}")  # type: ignore[arg-type]
        ops = [(await loyalty.prepare_redemption(emma.id, CASHIER.id, 10_000, 10))[0] for _ in range(50)]  # type: ignore[arg-type]
        # keep the daily limit out of the way of the benchmark
        started = time.perf_counter()
        await asyncio.gather(*(loyalty.answer_redemption(op.id, EMMA.id, True) for op in ops))  # type: ignore[arg-type]
        race_ms.append((time.perf_counter() - started) * 1000)
        assert (await h.customer(EMMA)).balance == 0
        async with db.writing() as s:  # let the next round pass the daily limit
            await s.execute(text("UPDATE ledger_entries SET kind = 'adjustment' WHERE kind = 'redemption'"))

    # 3. Whole purchases through the dispatcher: open card, Purchase, amount, Skip, Confirm.
    purchases = 100
    latencies = []
    number = emma.card_number
    for i in range(purchases):
        started = time.perf_counter()
        await h.send(CASHIER, f"/scan {number}")
        await h.press(CASHIER, ScanCB(action="buy", customer_id=emma.id))  # type: ignore[arg-type]
        await h.send(CASHIER, "25,00")
        await h.press(CASHIER, FlowCB(action="skip_receipt"))
        op_id = int(h.button(CASHIER.id, "✅").split(":")[-1])
        await h.press(CASHIER, OperationCB(action="confirm", op_id=op_id))
        latencies.append((time.perf_counter() - started) * 1000 / 5)
        if i % 9 == 8:
            async with db.writing() as s:
                await s.execute(text("UPDATE ledger_entries SET kind = 'adjustment' WHERE kind = 'purchase'"))
        session.requests.clear()
    per_update = statistics.median(latencies)
    await dp.emit_shutdown(bot=bot)
    await db.dispose()

    print(f"{label}:")
    print(f"  ledger movements, sequential     {ledger_rate:8.0f} /s")
    print(f"  50-way redemption race           {statistics.median(race_ms):8.0f} ms (median of 5; 10 succeed)")
    rate = 1000 / per_update
    print(f"  cashier purchase via dispatcher  {per_update:8.2f} ms per update (median), {rate:6.0f} updates/s")


def postgres_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sqlite", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", "SQLite (WAL, file)"))
    if not args.sqlite:
        if postgres_reachable():
            asyncio.run(bench(POSTGRES_URL, "PostgreSQL (127.0.0.1)"))
        else:
            print("PostgreSQL: not reachable at 127.0.0.1:5432, skipped")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
