"""Benchmarks of the surveys on SQLite and PostgreSQL.

    python bench/surveys.py             # both databases (PostgreSQL if reachable)
    python bench/surveys.py --sqlite    # SQLite only

Figures: due surveys claimed and sent per second by the scheduler (a recording Bot session, no
network), the /stats report, the CSV export and the chart over 10 000 answered surveys, and the
process's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from bot.business import load_business  # noqa: E402
from bot.core.config import DEFAULT_BUSINESS_FILE  # noqa: E402
from bot.core.i18n import create_i18n  # noqa: E402
from bot.dispatcher import create_bot  # noqa: E402
from bot.surveys.export import responses_csv  # noqa: E402
from bot.surveys.jobs import SurveySender  # noqa: E402
from bot.surveys.rules import Trigger  # noqa: E402
from bot.surveys.service import SurveyService  # noqa: E402
from handlers.reports import _chart  # noqa: E402
from storage.models import Customer, Survey  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.fake_telegram import RecordingSession  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loyalty import POSTGRES_URL, fresh, postgres_reachable  # noqa: E402

CUSTOMERS = 2_000
DUE = 1_000
ANSWERED = 10_000
NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 12:00 in Warsaw: outside quiet hours


async def seed(db, customers: int) -> list[int]:  # type: ignore[no-untyped-def]
    rows = [
        {
            "telegram_id": 10_000_000 + i,
            "first_name": f"Guest {i}",
            "language": random.choice(["ru", "pl", "en"]),
            "card_number": f"{10_000_000 + i}",
            "balance": 0,
            "lifetime_spend": 0,
            "joined_at": NOON - timedelta(days=60),
            "created_at": NOON - timedelta(days=60),
        }
        for i in range(customers)
    ]
    async with db.writing() as session:
        await session.execute(insert(Customer), rows)
    async with db.reading() as session:
        from sqlalchemy import select

        return list(await session.scalars(select(Customer.id).order_by(Customer.id)))


async def bench(url: str, label: str) -> dict[str, float]:
    random.seed(7)
    db = await fresh(url)
    business = load_business(DEFAULT_BUSINESS_FILE)
    ids = await seed(db, CUSTOMERS)
    clock = [NOON]
    surveys = SurveyService(db, business, clock=lambda: clock[0])
    settings = make_settings(manager_chat_id="-1001")
    bot = create_bot(settings, session=RecordingSession())
    i18n = create_i18n("en")
    sender = SurveySender(surveys, business, settings, i18n)

    # Answered surveys over the last 90 days, for the report and the export.
    rows = []
    for n in range(ANSWERED):
        asked = NOON - timedelta(days=random.uniform(0, 90))
        kind = random.choice(["nps", "nps", "rating"])
        score = random.randint(0, 10) if kind == "nps" else random.randint(1, 5)
        rows.append(
            {
                "key": f"old:{n}",
                "customer_id": random.choice(ids),
                "kind": kind,
                "trigger": "purchase",
                "status": "answered",
                "created_at": asked,
                "due_at": asked,
                "asked_at": asked,
                "answered_at": asked + timedelta(minutes=5),
                "score": score,
                "comment": random.choice([None, "ok", "Кофе был холодный", "Za długo czekałem"]),
            }
        )
    async with db.writing() as session:
        await session.execute(insert(Survey), rows)

    # Due surveys, one per customer who has not been asked in the recontact period.
    clock[0] = NOON + timedelta(days=120)
    for customer_id in ids[:DUE]:
        await surveys.request(customer_id, Trigger.PURCHASE, key=f"due:{customer_id}")
    started = time.perf_counter()
    sent = 0
    while True:
        batch = await sender.run_due(bot)
        sent += batch
        if batch == 0:
            break
    send_rate = sent / (time.perf_counter() - started)
    assert sent == DUE, sent

    clock[0] = NOON
    figures = {"sent per second": send_rate}
    for days in (30, 90):
        started = time.perf_counter()
        report = await surveys.report(days)
        figures[f"/stats over {days} days (ms)"] = (time.perf_counter() - started) * 1000
    assert report.answered > 9_000
    started = time.perf_counter()
    export = await surveys.export_rows(90)
    with i18n.context(), i18n.use_locale("pl"):
        data = responses_csv(export, business, "pl")
    figures["CSV of 90 days (ms)"] = (time.perf_counter() - started) * 1000
    figures["CSV size (kB)"] = len(data) / 1024
    started = time.perf_counter()
    with i18n.context(), i18n.use_locale("en"):
        await _chart(report, 90)
    figures["chart of 90 days (ms)"] = (time.perf_counter() - started) * 1000
    await db.dispose()
    print(f"{label}:")
    for name, value in figures.items():
        print(f"  {name:32} {value:10.1f}")
    return figures


async def main(sqlite_only: bool) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        await bench(f"sqlite+aiosqlite:///{folder}/bench.db", "SQLite")
    if not sqlite_only:
        if postgres_reachable():
            await bench(POSTGRES_URL, "PostgreSQL")
        else:
            print("PostgreSQL: not reachable at 127.0.0.1:5432, skipped")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", action="store_true", help="SQLite only")
    asyncio.run(main(parser.parse_args().sqlite))
