"""Resident memory of the running bot with 100 000 customers in its database.

    python bench/memory.py                                  # SQLite in a temporary directory (~4 min)
    python bench/memory.py --postgres                       # PostgreSQL database bench_memory (~4 min)
    python bench/memory.py --customers 20000 --updates 600  # a shorter run

The database is filled in bulk with SQLAlchemy Core: members who joined, each with a card number,
the welcome bonus as their one ledger entry (so every balance is the sum of its entries) and their
consent records, half of them with marketing consent; and 20 cashiers. Then `python main.py` runs
in webhook mode against the sandbox's Telegram (sandbox/world.py posts every update to it, as
Telegram does), and people drive --updates updates through it, --people at a time, each person a
different customer: /card (the card with its QR picture), /history, and cashier purchases
(/scan <number>, Purchase, the amount, Skip receipt, Confirm: five updates). Everyone waits for
the bot's answer before the next step. The scheduler looks for due work every 5 s, so its jobs
(birthdays, win-back, surveys, inbox replays) run over the 100 000 rows while the updates come.

Figures: VmRSS (resident now) and VmHWM (the peak) of the bot's process, read from
/proc/<pid>/status once it answers /healthz and again after the updates; the target is under
200 MB resident. For scale, the same figures of a bare process that only imports the bot. The
rate is printed too, but it is not the point: the bot keeps Telegram's limits (about 30 messages
a second overall, one a second per chat). PostgreSQL is BENCH_POSTGRES_URL, default
postgresql+asyncpg://postgres@127.0.0.1:5432/bench_memory, created if missing; its public schema
is dropped and made again, so never point it at a database you need.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import String, cast, insert, literal, select, text, true  # noqa: E402

from bot.loyalty.rules import luhn_check_digit  # noqa: E402
from sandbox.runner import TOKEN  # noqa: E402
from sandbox.server import create_app  # noqa: E402
from sandbox.world import BOT_ID, Person, World  # noqa: E402
from storage.database import Database, migrate  # noqa: E402
from storage.models import ConsentEvent, Customer, EntryKind, LedgerEntry, Staff  # noqa: E402
from tests.conftest import empty_postgres, free_port, stop_process  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_memory")
SECRET = "bench-memory-secret"
HOOK_PATH = "/telegram/updates"
OWNER = 900_001
FIRST_CUSTOMER = 10_000_000  # Telegram ids: FIRST_CUSTOMER + n
FIRST_CASHIER = 20_000_000
CASHIERS = 20
BATCH = 10_000  # rows per INSERT
ANSWER_TIMEOUT = 60.0
TARGET_MB = 200


def card_number(n: int) -> str:
    body = str(1_000_000 + n)  # seven digits while n < 9 000 000; the Luhn digit as the bot draws it
    return body + str(luhn_check_digit(body))


# --- the database --------------------------------------------------------------------------


async def fill(url: str, customers: int) -> float:
    """Migrate, then insert the members, their ledger and consents, and the cashiers; seconds taken."""
    started = time.perf_counter()
    await migrate(url)
    db = Database(url)
    now = datetime.now(UTC)
    customers_table = Customer.__table__  # type: ignore[attr-defined]
    try:
        async with db.writing() as session:
            for first in range(0, customers, BATCH):
                rows = []
                for n in range(first, min(first + BATCH, customers)):
                    joined = now - timedelta(days=n % 50, minutes=n % 1440)  # recent: no win-back due
                    rows.append(
                        {
                            "telegram_id": FIRST_CUSTOMER + n,
                            "first_name": f"C{n}",
                            "last_name": "Bench",
                            "telegram_language": "en",
                            "card_number": card_number(n),
                            "balance": 50,
                            "lifetime_spend": 0,
                            "joined_at": joined,
                            "created_at": joined,
                            "marketing_consent_at": joined if n % 2 == 0 else None,
                        }
                    )
                await session.execute(insert(customers_table), rows)  # Core: one multi-row INSERT per batch
            c = customers_table.c
            await session.execute(
                insert(LedgerEntry.__table__).from_select(  # type: ignore[attr-defined]
                    ["customer_id", "kind", "points", "spend", "balance_after", "idempotency_key", "created_at"],
                    select(
                        c.id,
                        literal(EntryKind.WELCOME.value),
                        literal(50),
                        literal(0),
                        literal(50),
                        literal("welcome:") + cast(c.id, String),
                        c.joined_at,
                    ),
                )
            )
            consent = ["customer_id", "purpose", "granted", "source", "created_at"]
            await session.execute(
                insert(ConsentEvent.__table__).from_select(  # type: ignore[attr-defined]
                    consent,
                    select(c.id, literal("programme"), true(), literal("join"), c.joined_at),
                )
            )
            await session.execute(
                insert(ConsentEvent.__table__).from_select(  # type: ignore[attr-defined]
                    consent,
                    select(c.id, literal("marketing"), true(), literal("after_join"), c.joined_at).where(
                        c.marketing_consent_at.is_not(None)
                    ),
                )
            )
            await session.execute(
                insert(Staff.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "telegram_id": FIRST_CASHIER + k,
                        "name": f"Cashier {k}",
                        "role": "cashier",
                        "invited_by": OWNER,
                        "created_at": now,
                    }
                    for k in range(CASHIERS)
                ],
            )
        async with db.reading() as session:
            wrong = await session.scalar(
                text(
                    "SELECT count(*) FROM customers c WHERE c.balance <> "
                    "(SELECT COALESCE(SUM(points), 0) FROM ledger_entries l WHERE l.customer_id = c.id)"
                )
            )
            assert wrong == 0, f"{wrong} balances differ from their ledger"
    finally:
        await db.dispose()
    return time.perf_counter() - started


# --- people driving the bot -----------------------------------------------------------------


def newest_bot_text(world: World, chat: int, after: int, pattern: re.Pattern[str]) -> str | None:
    """The bot's newest message in the chat after message `after` that matches."""
    for stored in reversed(list(world.messages.get(chat, {}).values())):
        data = stored.data
        if data["message_id"] <= after:
            return None
        if data["from"]["id"] == BOT_ID and pattern.search(data.get("text") or data.get("caption") or ""):
            return data.get("text") or data.get("caption") or ""
    return None


def last_id(world: World, chat: int) -> int:
    return max(world.messages.get(chat, {}), default=0)


def button(world: World, chat: int, prefix: str) -> tuple[int, str]:
    for stored in reversed(list(world.messages.get(chat, {}).values())):
        for row in (stored.data.get("reply_markup") or {}).get("inline_keyboard", []):
            for key in row:
                if key.get("callback_data", "").startswith(prefix):
                    return stored.data["message_id"], key["callback_data"]
    raise AssertionError(f"no button {prefix!r} in chat {chat}")


class People:
    def __init__(self, world: World) -> None:
        self.world = world
        self.updates = 0
        self.cashiers: asyncio.Queue[int] = asyncio.Queue()
        for k in range(CASHIERS):
            self.cashiers.put_nowait(FIRST_CASHIER + k)
            world.people[FIRST_CASHIER + k] = Person(FIRST_CASHIER + k, f"Cashier {k}", "Bench", "en", "cashier", "")

    async def _answer(self, chat: int, after: int, pattern: str) -> str:
        regex = re.compile(pattern)
        return await self.world.wait_for(lambda: newest_bot_text(self.world, chat, after, regex), ANSWER_TIMEOUT)  # type: ignore[no-any-return]

    async def say(self, who: int, words: str, pattern: str, answer_in: int | None = None) -> str:
        chat = who if answer_in is None else answer_in
        after = last_id(self.world, chat)
        await self.world.person_says(who, who, words)
        self.updates += 1
        return await self._answer(chat, after, pattern)

    async def press(self, who: int, prefix: str, pattern: str, answer_in: int | None = None) -> str:
        chat = who if answer_in is None else answer_in
        after = last_id(self.world, chat)
        await self.world.person_presses(who, who, *button(self.world, who, prefix))
        self.updates += 1
        return await self._answer(chat, after, pattern)

    async def card(self, customer: int) -> None:
        await self.say(customer, "/card", "Card number")

    async def history(self, customer: int) -> None:
        await self.say(customer, "/history", "Your last movements")

    async def purchase(self, customer: int, n: int, amount: int) -> None:
        cashier = await self.cashiers.get()
        try:
            await self.say(cashier, f"/scan {card_number(n)}", rf"C{n}\b")
            await self.press(cashier, "scan:buy", f"Purchase for C{n}")
            await self.say(cashier, str(amount), "Receipt total")
            await self.press(cashier, "flow:skip_receipt", f"to C{n} for a purchase")
            await self.press(cashier, "op:confirm", "for your purchase", answer_in=customer)
        finally:
            self.cashiers.put_nowait(cashier)


async def drive(
    world: World, customers: int, updates: int, people: int, pid: int, seed: int = 7
) -> tuple[int, float, list[tuple[int, float]]]:
    """Jobs for distinct random customers until `updates` updates: (updates sent, seconds, and the
    bot's VmRSS in MB every sixth of the way)."""
    rng = random.Random(seed)
    jobs: list[tuple[str, int]] = []
    planned = 0
    while planned < updates:
        kind = rng.choices(("card", "history", "purchase"), weights=(4, 3, 3))[0]
        jobs.append((kind, 0))
        planned += 5 if kind == "purchase" else 1
    chosen = rng.sample(range(customers), len(jobs))
    jobs = [(kind, n) for (kind, _), n in zip(jobs, chosen, strict=True)]
    for _, n in jobs:
        world.people[FIRST_CUSTOMER + n] = Person(FIRST_CUSTOMER + n, f"C{n}", "Bench", "en", "customer", "")
    crowd = People(world)
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def person() -> None:
        while not queue.empty():
            kind, n = queue.get_nowait()
            customer = FIRST_CUSTOMER + n
            if kind == "card":
                await crowd.card(customer)
            elif kind == "history":
                await crowd.history(customer)
            else:
                await crowd.purchase(customer, n, rng.randint(20, 400))

    samples: list[tuple[int, float]] = []

    async def watch() -> None:
        step = max(updates // 6, 1)
        mark = step
        while True:
            await asyncio.sleep(0.2)
            if crowd.updates >= mark:
                samples.append((crowd.updates, memory_of(pid)["VmRSS"]))
                mark += step

    started = time.perf_counter()
    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(person() for _ in range(people)))
    finally:
        watcher.cancel()
    return crowd.updates, time.perf_counter() - started, samples


# --- the bot process ------------------------------------------------------------------------


def memory_of(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM in MB."""
    figures: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0]) / 1024
    return figures


async def imports_alone() -> dict[str, float]:
    """VmRSS and VmHWM of a bare process that only imports the bot (`import main`), for scale."""
    probe = "import sys; sys.path.insert(0, sys.argv[1]); import main; print(open('/proc/self/status').read())"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, str(PROJECT), stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    figures: dict[str, float] = {}
    for line in output.decode().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0]) / 1024
    return figures


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    total = ""
    with contextlib.suppress(OSError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        total = f", {kb / 1024 / 1024:.1f} GB RAM"
    return f"{model}, {os.cpu_count()} cores{total}; Python {platform.python_version()}, {platform.system()}"


async def wait_healthy(http: aiohttp.ClientSession, process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the bot never answered {url} with 200:\n{log.read_text()[-3000:]}")


async def bench(url: str, label: str, customers: int, updates: int, people: int, directory: Path) -> None:
    print(f"\n{label}: {customers:,} customers".replace(",", " "))
    seconds = await fill(url, customers)
    print(f"  filled and migrated in {seconds:.1f} s")

    world = World()
    runner = web.AppRunner(create_app(world, TOKEN), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    port = free_port()
    log = directory / f"bot-{label.lower()}.log"
    env = dict(os.environ)
    env.update(
        {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": f"http://127.0.0.1:{api_port}",
            "DATABASE_URL": url,
            "WEBHOOK_URL": f"http://127.0.0.1:{port}{HOOK_PATH}",
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_HOST": "127.0.0.1",
            "PORT": str(port),
            "ADMIN_IDS": str(OWNER),
            "SCHEDULER_INTERVAL_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("REDIS_URL", None)  # one instance: the FSM in memory
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(PROJECT / "main.py"), env=env, cwd=str(directory), stdout=output, stderr=output
        )
    http = aiohttp.ClientSession()
    try:
        await wait_healthy(http, process, f"http://127.0.0.1:{port}/healthz", log)
        ready = memory_of(process.pid)
        sent, took, samples = await drive(world, customers, updates, people, process.pid)
        after = memory_of(process.pid)
    finally:
        await stop_process(process, 30)
        await http.close()
        await world.close()
        await runner.cleanup()
    print(f"  {sent} updates from {people} people at a time in {took:.1f} s ({sent / took:.0f} updates/s)")
    bare = await imports_alone()
    print(f"  {'':24}{'VmRSS':>10}{'VmHWM':>10}")
    for moment, figures in (
        ("imports alone", bare),
        ("ready (/healthz 200)", ready),
        (f"after {sent} updates", after),
    ):
        print(f"  {moment:24}{figures['VmRSS']:>7.0f} MB{figures['VmHWM']:>7.0f} MB")
    print("  VmRSS on the way: " + ", ".join(f"{n} updates {mb:.0f} MB" for n, mb in samples))
    verdict = "within" if after["VmHWM"] < TARGET_MB else "OVER"
    print(f"  peak {after['VmHWM']:.0f} MB: {verdict} the {TARGET_MB} MB target")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (BENCH_POSTGRES_URL) instead of SQLite")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=3_000, help="updates to drive through the bot")
    parser.add_argument("--people", type=int, default=40, help="people acting at once (default 40)")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if args.postgres:
            await empty_postgres(POSTGRES_URL)
            await bench(POSTGRES_URL, "PostgreSQL", args.customers, args.updates, args.people, directory)
        else:
            url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
            await bench(url, "SQLite", args.customers, args.updates, args.people, directory)


if __name__ == "__main__":
    asyncio.run(main())
