"""Purchases per second through the ledger, on SQLite and PostgreSQL, and the one-card race.

    python bench/ledger.py                    # SQLite, and PostgreSQL if reachable
    python bench/ledger.py --sqlite           # SQLite only
    python bench/ledger.py --purchases 5000   # more purchases per round (default 2000)

PostgreSQL is BENCH_POSTGRES_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/bench);
its public schema is dropped and made again.

A purchase is what the cashier's buttons do, without Telegram: LoyaltyService.prepare_purchase
(the draft with its points, one transaction) then confirm_purchase (the ledger entry, the balance,
the survey planned after it, another transaction). Figures:
- purchases/s with 1, 8 and 32 purchases in flight, each round N purchases on N different
  customers, with p50/p99 ms of one purchase (prepare + confirm);
- the race: 50 purchases prepared for one customer, then each confirmed twice at once (a double
  tap, 100 calls in flight): its time, and how many were applied (must be 50, once each) and
  answered as repeats (50). The daily limit (10 operations a card) is raised for this race, or
  it would refuse 40 of them by design;
- the same 50 at once under the daily limit: exactly 10 may be applied, 40 refused;
- the checks: every balance equals the sum of its ledger entries, each operation has at most one
  entry, every operation done has its entry and the entries are as many as the purchases applied.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import String, cast, func, insert, literal, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.business import Business, load_business  # noqa: E402
from bot.core.config import DEFAULT_BUSINESS_FILE  # noqa: E402
from bot.loyalty.service import LoyaltyService, Refused  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.models import Customer, EntryKind, LedgerEntry, Operation, OperationStatus  # noqa: E402
from tests.conftest import OWNER  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import POSTGRES_URL, card_number, fresh, machine, percentile, postgres_reachable  # noqa: E402

CONCURRENCY = (1, 8, 32)
RACE = 50
CASHIER_IDS = 7_000_000
MEMBER_IDS = 20_000_000


@dataclasses.dataclass
class Round:
    concurrency: int
    rate: float  # purchases a second
    p50: float  # ms of one purchase, prepare and confirm
    p99: float
    refused: Counter[str]


async def populate(db: Database, loyalty: LoyaltyService, members: int, cashiers: int) -> tuple[list[int], list[int]]:
    """`members` card holders (one more for the race, last) and `cashiers` cashiers, invited."""
    joined = datetime.now(UTC) - timedelta(days=60)
    rows = [
        {
            "telegram_id": MEMBER_IDS + i,
            "first_name": f"Member{i}",
            "card_number": card_number(i),
            "joined_at": joined,
            "created_at": joined,
        }
        for i in range(members + 1)
    ]
    async with db.writing() as session:
        await session.execute(insert(Customer), rows)
    async with db.reading() as session:
        ids = list(await session.scalars(select(Customer.id).order_by(Customer.telegram_id)))
    staff = []
    for i in range(cashiers):
        token, _expires = await loyalty.create_invite(OWNER.id)
        await loyalty.accept_invite(token, CASHIER_IDS + i, f"Cashier {i}", None)
        staff.append(CASHIER_IDS + i)
    return ids, staff


async def purchase(loyalty: LoyaltyService, customer_id: int, cashier: int, amount: int) -> bool:
    """Prepare and confirm; True when this call applied it."""
    operation, _customer = await loyalty.prepare_purchase(customer_id, cashier, amount, None)
    applied = await loyalty.confirm_purchase(operation.id, cashier)  # type: ignore[arg-type]
    return applied.created


async def run_round(loyalty: LoyaltyService, customers: list[int], cashiers: list[int], concurrency: int) -> Round:
    queue = iter(enumerate(customers))
    latencies: list[float] = []
    refused: Counter[str] = Counter()

    async def worker(cashier: int) -> None:
        for n, customer_id in queue:
            started = time.perf_counter()
            try:
                await purchase(loyalty, customer_id, cashier, 1_000 + n % 9_000)
            except Refused as refusal:
                refused[refusal.reason.value] += 1
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(cashiers[i % len(cashiers)]) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Round(concurrency, len(customers) / elapsed, percentile(latencies, 50), percentile(latencies, 99), refused)


async def race(
    db: Database, business: Business, customer_id: int, cashiers: list[int], daily_limit: int
) -> tuple[float, Counter[str]]:
    """RACE purchases prepared for one card, then confirmed at once; with `daily_limit` above
    RACE, each Confirm is pressed twice. Returns the time and the outcomes."""
    loyalty = LoyaltyService(db, dataclasses.replace(business, max_operations_per_day=daily_limit))
    prepared = []
    for n in range(RACE):
        cashier = cashiers[n % len(cashiers)]
        operation, _customer = await loyalty.prepare_purchase(customer_id, cashier, 2_500, None)
        prepared.append((operation.id, cashier))
    taps = 2 if daily_limit > RACE else 1

    async def confirm(operation_id: int, cashier: int) -> str:
        try:
            applied = await loyalty.confirm_purchase(operation_id, cashier)
        except Refused as refusal:
            return f"refused ({refusal.reason.value})"
        return "applied" if applied.created else "repeat"

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(confirm(op, cashier) for op, cashier in prepared for _tap in range(taps)))
    return (time.perf_counter() - started) * 1000, Counter(outcomes)


async def checks(db: Database, applied: int) -> list[tuple[str, bool, str]]:
    async with db.reading() as session:
        sums = (
            select(LedgerEntry.customer_id, func.sum(LedgerEntry.points).label("points"))
            .group_by(LedgerEntry.customer_id)
            .subquery()
        )
        off = await session.scalar(
            select(func.count())
            .select_from(Customer)
            .outerjoin(sums, sums.c.customer_id == Customer.id)
            .where(Customer.balance != func.coalesce(sums.c.points, 0))
        )
        customers = await session.scalar(select(func.count()).select_from(Customer))
        keys = select(LedgerEntry.idempotency_key).group_by(LedgerEntry.idempotency_key)
        twice = await session.scalar(
            select(func.count()).select_from(keys.having(func.count() > 1).subquery())  # type: ignore[arg-type]
        )
        entries = await session.scalar(select(func.count()).where(LedgerEntry.kind == EntryKind.PURCHASE.value))
        done = await session.scalar(select(func.count()).where(Operation.status == OperationStatus.DONE.value))
        linked = await session.scalar(
            select(func.count())
            .select_from(Operation)
            .join(LedgerEntry, LedgerEntry.id == Operation.entry_id)
            .where(
                Operation.status == OperationStatus.DONE.value,
                LedgerEntry.idempotency_key == literal("op:") + cast(Operation.id, String),
            )
        )
    return [
        ("every balance = its ledger", off == 0, f"{off} of {customers} balances off"),
        ("no entry applied twice", twice == 0, f"{twice} keys with two entries"),
        ("entries = purchases applied", entries == applied, f"{entries} entries, {applied} applied"),
        ("operations done = entries", done == entries, f"{done} done"),
        ("each done operation has its entry", linked == done, f"{linked} linked"),
    ]


async def bench(url: str, label: str, purchases: int) -> None:
    db = await fresh(url)
    business = load_business(DEFAULT_BUSINESS_FILE)
    loyalty = LoyaltyService(db, business)
    try:
        ids, cashiers = await populate(db, loyalty, purchases, max(CONCURRENCY))
        customers, racer = ids[:-1], ids[-1]
        rounds = [await run_round(loyalty, customers, cashiers, c) for c in CONCURRENCY]
        raced, outcomes = await race(db, business, racer, cashiers, daily_limit=10 * RACE)
        applied = sum(purchases - sum(r.refused.values()) for r in rounds) + outcomes["applied"]
        # The same again under the real daily limit, on a card that has not bought today.
        async with db.writing() as session:
            session.add(
                Customer(
                    telegram_id=MEMBER_IDS - 1,
                    first_name="Limited",
                    card_number=card_number(purchases + 1),
                    joined_at=datetime.now(UTC) - timedelta(days=1),
                )
            )
        async with db.reading() as session:
            limited = await session.scalar(select(Customer.id).where(Customer.telegram_id == MEMBER_IDS - 1))
        assert limited is not None
        limited_ms, limited_outcomes = await race(db, business, limited, cashiers, business.max_operations_per_day)
        applied += limited_outcomes["applied"]
        results = await checks(db, applied)
    finally:
        await db.dispose()

    print(f"\n{label}: {purchases} purchases a round, each on its own customer")
    print(f"  {'in flight':>10}{'purchases/s':>13}{'p50 ms':>9}{'p99 ms':>9}  refused")
    for r in rounds:
        refused = ", ".join(f"{k} {v}" for k, v in r.refused.items()) or "0"
        print(f"  {r.concurrency:>10}{r.rate:13.1f}{r.p50:9.1f}{r.p99:9.1f}  {refused}")
    print(
        f"  race, one card, {RACE} purchases each confirmed twice at once: {raced:.0f} ms; "
        + ", ".join(f"{outcome} {n}" for outcome, n in sorted(outcomes.items()))
    )
    race_ok = outcomes == Counter({"applied": RACE, "repeat": RACE})
    print(
        f"  the same {RACE} at once under the daily limit ({business.max_operations_per_day}): {limited_ms:.0f} ms; "
        + ", ".join(f"{outcome} {n}" for outcome, n in sorted(limited_outcomes.items()))
    )
    limit_ok = limited_outcomes["applied"] == business.max_operations_per_day
    results = [
        ("race: each applied once, each repeat told so", race_ok, str(dict(outcomes))),
        ("race under the limit: exactly the limit applied", limit_ok, str(dict(limited_outcomes))),
        *results,
    ]
    failed = [r for r in results if not r[1]]
    if failed:
        print(f"  !!! FAILED checks, {label} !!!")
    for name, ok, detail in results:
        print(f"  {'ok    ' if ok else 'FAILED'}  {name:<48}{detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sqlite", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--purchases", type=int, default=2_000, help="purchases a round (default 2000)")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench(f"sqlite+aiosqlite:///{Path(tmp) / 'ledger.db'}", "SQLite (WAL)", args.purchases))
    if not args.sqlite:
        if postgres_reachable(POSTGRES_URL):
            asyncio.run(bench(POSTGRES_URL, "PostgreSQL", args.purchases))
        else:
            print(f"PostgreSQL: not reachable at {make_url(POSTGRES_URL).host}, skipped")


if __name__ == "__main__":
    main()
