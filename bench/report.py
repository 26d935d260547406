"""The owners' figures at a chain's size (issue 19): 100 000 members, 2 000 000 ledger entries and
1 000 000 answered surveys, on SQLite and PostgreSQL.

    python bench/report.py            # both databases (PostgreSQL if reachable)
    python bench/report.py --sqlite   # SQLite only

Times `/stats` (`SurveyService.report`) and `/report` (`LoyaltyAnalytics.report`) over 30, 90
and 365 days, for all stores and for one of two, each the second of two runs (the first warms the
database's cache), against issue 19's target: under 2 s for 365 days.

PostgreSQL is BENCH_POSTGRES_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/bench);
its public schema is dropped and made again, so never point it at a database you need.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.business import LocalizedName, Store, load_business  # noqa: E402
from bot.core.config import DEFAULT_BUSINESS_FILE  # noqa: E402
from bot.loyalty.analytics import LoyaltyAnalytics  # noqa: E402
from bot.surveys.service import SurveyService  # noqa: E402
from storage.database import Database, stamp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loyalty import fresh, postgres_reachable  # noqa: E402  (the other benchmarks' database set-up)

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench")
MEMBERS = 100_000
ENTRIES = 2_000_000
ANSWERS = 1_000_000
CASHIERS = 20
DAYS = 400  # the history reaches back past the longest period
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
TARGET_SECONDS = 2.0
STORES = ("centre", "old_town")


def moments(count: int, rng: random.Random) -> list[datetime]:
    return [NOW - timedelta(seconds=rng.uniform(0, DAYS * 86_400)) for _ in range(count)]


def tables(rng: random.Random) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """The rows of each table, in insertion order (members, cashiers, ledger, surveys)."""
    joined = moments(MEMBERS, rng)
    members = [
        (n + 1, 10_000_000 + n, f"Guest {n}", rng.choice(["ru", "pl", "en"]), f"{10_000_000 + n}", 0, 0, j, j)
        for n, j in enumerate(joined)
    ]
    staff = [(n + 1, 500_000 + n, f"Cashier {n}", "cashier", NOW - timedelta(days=DAYS)) for n in range(CASHIERS)]
    entries = []
    for n, created in enumerate(moments(ENTRIES, rng)):
        amount = rng.randint(500, 20_000)
        points = amount // 2000
        entries.append(
            (
                n + 1,
                rng.randint(1, MEMBERS),
                "purchase",
                points,
                amount,
                amount,
                points,
                f"bench:{n}",
                500_000 + n % CASHIERS,
                created,
                STORES[n % CASHIERS % 2],  # each cashier works in one of the two stores
            )
        )
    surveys = []
    for n, asked in enumerate(moments(ANSWERS, rng)):
        kind = "nps" if n % 3 else "rating"
        score = rng.randint(0, 10) if kind == "nps" else rng.randint(1, 5)
        entry = rng.randint(1, ENTRIES) if n % 2 else None
        surveys.append(
            (
                f"bench:{n}",
                rng.randint(1, MEMBERS),
                kind,
                "purchase",
                entry,
                "answered",
                asked,
                asked,
                asked,
                asked,
                score,
                rng.choice(STORES),
                500_000 + (entry - 1) % CASHIERS if entry else None,  # the visit's cashier, as the bot records it
            )
        )
    return {
        "customers": (
            "id telegram_id first_name language card_number balance lifetime_spend joined_at created_at".split(),
            members,
        ),
        "staff": (["id", "telegram_id", "name", "role", "created_at"], staff),
        "ledger_entries": (
            (
                "id customer_id kind points spend amount balance_after idempotency_key staff_telegram_id"
                " created_at store"
            ).split(),
            entries,
        ),
        "surveys": (
            (
                "key customer_id kind trigger entry_id status created_at due_at asked_at answered_at score store"
                " staff_telegram_id"
            ).split(),
            surveys,
        ),
    }


async def fill(db: Database, data: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> None:
    """Straight through the driver: COPY on PostgreSQL, one executemany a table on SQLite."""
    if db.is_sqlite:
        import aiosqlite

        path = db.url.split("///", 1)[1]
        async with aiosqlite.connect(path) as connection:
            await connection.execute("PRAGMA foreign_keys=OFF")
            for table, (columns, rows) in data.items():
                marks = ", ".join("?" for _ in columns)
                sqlite_rows = [tuple(stamp(v) if isinstance(v, datetime) else v for v in row) for row in rows]
                await connection.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", sqlite_rows
                )
            await connection.commit()
            await connection.execute("ANALYZE")
        return
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        for table, (columns, rows) in data.items():
            await connection.copy_records_to_table(table, records=rows, columns=columns)
        # What autovacuum does to a table in use: the visibility map lets the report read the
        # ledger's index alone (right after a bulk load every row would be looked up in the table).
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def bench(url: str, label: str, data: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> None:
    db = await fresh(url)
    started = time.perf_counter()
    await fill(db, data)
    print(f"{label}: {MEMBERS:,} members, {ENTRIES:,} ledger entries, {ANSWERS:,} answered surveys".replace(",", " "))
    print(f"  filled in {time.perf_counter() - started:.0f} s")
    example = load_business(DEFAULT_BUSINESS_FILE)
    chain = dataclasses.replace(example, stores=tuple(Store(s, LocalizedName(ru=s, pl=s, en=s)) for s in STORES))
    surveys = SurveyService(db, chain, clock=lambda: NOW)
    analytics = LoyaltyAnalytics(db, chain, clock=lambda: NOW)
    try:
        for label, run in (
            ("/stats", lambda days, store: surveys.report(days, store)),
            ("/report", lambda days, store: analytics.report(days, store)),
        ):
            for days, store in ((30, ""), (90, ""), (365, ""), (365, STORES[1])):
                await run(days, store)  # warms the cache
                started = time.perf_counter()
                await run(days, store)
                took = time.perf_counter() - started
                verdict = ("met" if took < TARGET_SECONDS else "NOT MET") if days == 365 else ""
                where = f"store {store}" if store else "all stores"
                print(f"  {label:<7} over {days:>3} days, {where:<15}: {took * 1000:7.0f} ms {verdict}")
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    data = tables(random.Random(19))
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(bench(f"sqlite+aiosqlite:///{folder}/report.db", "SQLite (WAL)", data))
    if not args.sqlite:
        if postgres_reachable():
            asyncio.run(bench(POSTGRES_URL, "PostgreSQL", data))
        else:
            print("PostgreSQL: not reachable at 127.0.0.1:5432, skipped")


if __name__ == "__main__":
    main()
