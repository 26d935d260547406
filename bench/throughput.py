"""Throughput of the whole bot against bare aiogram, on SQLite and PostgreSQL, side by side.

    python bench/throughput.py                  # SQLite, and PostgreSQL if reachable
    python bench/throughput.py --sqlite         # SQLite only
    python bench/throughput.py --seconds 20     # a longer paced run (default 10 s)
    python bench/throughput.py --rate 20 --updates 600   # paced at a rate the stack can carry
    python bench/throughput.py --profile        # per update kind: ms, CPU against bare aiogram, SQL, hot spots
    python bench/throughput.py --before sqlite=0.006,postgres=0.007   # the ratios the commit before gave

Each run ends with issue 17's targets, each "met" or "not met" from that run's own figures.

PostgreSQL is BENCH_POSTGRES_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/bench);
its public schema is dropped and made again, so never point it at a database you need.

The same stream of updates goes through three stacks. "whole stack" is the production dispatcher
(`create_dispatcher`: every middleware, the database, the handlers, i18n); "bare aiogram" is a
Dispatcher with an in-memory FSM whose two handlers answer a message with one sendMessage and a
button press with answerCallbackQuery; "floor" is bare aiogram behind the two outer middlewares
every update of the bot passes (the inbox, which records the update before handling and marks it
finished after, and the sender's customer record), on each database: what "no update lost or
applied twice" costs before any feature. All talk to a recording Bot session (no network), so the
figures are the bot's own cost; the whole stack's Bot is the production one, its Outbox included,
with Telegram's per-chat windows lifted (a group takes 20 messages a minute). The stream mixes,
by weight: /card by members 25%; purchases 30% (a cashier's /scan <number>, then the amount typed
into the open card, which is the sale: two updates); FAQ questions in the member's words 15%; answers to an NPS
survey sent earlier 15%; messages of members in an open support request, copied into their topic
of the managers' group 15%.
3 300 members and 250 cashiers share it so that nobody sends more than one update every 2 s.

Figures:
- capacity, updates/s: the stream fed as fast as possible with 32 updates in flight (one
  person's updates still one after another); "ratio" is whole stack / bare aiogram;
- p50, p99 paced: an open loop of Poisson arrivals averaging 300 updates/s (the whole stack: 100/s,
  issue 17's target) for --seconds,
  each update started on schedule as its own task; latency is from its scheduled start to the
  return of feed_update (waiting for the person's previous update included); "kept" says whether
  the updates started on time (p99 start lag under 100 ms) and the last finished within a second
  of the last arrival;
- the checks after each whole-stack run: errors logged, refusals and fallbacks the bot answered,
  and the rows each kind must leave (ledger entries = sales made, and so on); any miss
  is printed as a FAILED line, because the figures would then measure errors;
- --profile: each kind fed alone, one update at a time (500 each): ms per update, SQL
  statements, transactions and pool checkouts per update, the statements repeated most, and
  cProfile's hot spots by cumulative and by own time (the main thread only: SQLite runs in
  aiosqlite's thread and PostgreSQL in its server, so their time shows as waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import heapq
import itertools
import logging
import os
import platform
import pstats
import random
import re
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core import lazy_types  # noqa: E402, F401  (before aiogram: its types are then built on first use)

# isort: split

import aiogram  # noqa: E402
import sqlalchemy  # noqa: E402
from aiogram import Bot, Dispatcher  # noqa: E402
from aiogram.client.default import DefaultBotProperties  # noqa: E402
from aiogram.enums import ParseMode  # noqa: E402
from aiogram.methods import AnswerCallbackQuery, SendMessage, TelegramMethod  # noqa: E402
from aiogram.types import CallbackQuery, Message, Update, User  # noqa: E402
from aiogram.utils.i18n import I18n  # noqa: E402
from sqlalchemy import event, func, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.business import load_business  # noqa: E402
from bot.core.callbacks import SurveyCB  # noqa: E402
from bot.core.config import DEFAULT_BUSINESS_FILE, DEFAULT_FAQ_FILE, Settings  # noqa: E402
from bot.core.i18n import create_i18n  # noqa: E402
from bot.core.inbox import Inbox  # noqa: E402
from bot.core.limiter import RateLimiter  # noqa: E402
from bot.core.middlewares import InboxMiddleware  # noqa: E402
from bot.core.throttle import PersonThrottle  # noqa: E402
from bot.dispatcher import create_bot, create_dispatcher  # noqa: E402
from bot.faq.intents import recognise  # noqa: E402
from bot.faq.rules import load_faq  # noqa: E402
from bot.faq.service import FaqService  # noqa: E402
from bot.loyalty.middleware import CustomerMiddleware
from bot.loyalty.rules import luhn_check_digit  # noqa: E402
from bot.loyalty.service import LoyaltyService  # noqa: E402
from bot.surveys.service import SurveyService  # noqa: E402
from storage.database import Database, Direct, migrate  # noqa: E402
from storage.models import (  # noqa: E402
    CardCode,
    Customer,
    EntryKind,
    FaqQuery,
    LedgerEntry,
    MessageDirection,
    Operation,
    OperationStatus,
    ProcessedUpdate,
    Survey,
    TicketMessage,
    utcnow,
)
from tests.conftest import GROUP_ID, TOKEN, Harness, empty_postgres, make_settings  # noqa: E402
from tests.fake_telegram import BOT_USER, RecordingSession  # noqa: E402

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench")

KINDS = ("card", "purchase", "faq", "survey", "support")
WEIGHTS = {"card": 25, "purchase": 30, "faq": 15, "survey": 15, "support": 15}
PURCHASE_STAGES = ("scan", "amount")
POOLS = {"card": 800, "faq": 500, "survey": 900, "support": 500, "buyer": 600}  # members by what they do
CASHIERS = 250
GAP = 2.0  # seconds: the shortest time between two updates of one person
RATE = 300.0  # updates a second in the paced run of bare aiogram and the floor
WHOLE_RATE = 100.0  # and of the whole stack (issue 17's target: p99 under 25 ms at 100/s)
CONCURRENCY = 32
CPU_TARGET = 25  # issue 17: CPU per update of each kind at most 25× bare aiogram's
WARM_UP = 600
CAPACITY = 3_000
FIRST_STREAM_ID = 10_000_000  # update ids of the stream, clear of those the set-up feeds
MEMBER_IDS = 10_000_000
CASHIER_IDS = 5_000_000
NPS_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 10, 15, 30, 35)  # scores 0-10: 10% unhappy, 65% promoters
SUPPORT_TEXTS = {
    "en": ("My points from Monday are missing", "Can I book a table for six on Friday?", "Is the terrace open?"),
    "pl": ("Brakuje mi punktów z poniedziałku", "Czy mogę zarezerwować stolik na piątek?", "Czy taras jest otwarty?"),
    "ru": ("Не начислились баллы за понедельник", "Можно забронировать столик на пятницу?", "Терраса открыта?"),
}
# What the bot says when something took a wrong path; none of it may appear in a clean run.
WRONG_PATH = (
    "I did not understand that. Send /help to see what I can do.",
    "This button no longer works.",
    "This step is over. Open the card again to start anew.",
    "Please type a number, or send /cancel to stop.",
    "Sorry, something went wrong on our side. Please try again in a moment.",
    "Sorry, I could not pass this on to our team. Please try again in a moment.",
    "No card is open, so nothing was added. Scan the customer's QR code or send /scan with the card number.",
    "This button belongs to a step that is over. Use the newest message.",
    "This card was opened too long ago. Scan the customer's QR code again.",
)

logger = logging.getLogger("bench.throughput")


# --- the people and what they send ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    first_name: str
    language: str
    card_number: str | None = None  # members only

    def user(self) -> User:
        return User(id=self.id, is_bot=False, first_name=self.first_name, language_code=self.language)


@dataclass(frozen=True, slots=True)
class Step:
    """One update of the stream, before it is built for a particular bot."""

    kind: str
    stage: str  # the purchase step, else the kind
    person: Person
    text: str | None = None  # a message; otherwise a button press
    data: str | None = None  # the button's callback data, when it is known up front
    value: int = 0  # the purchase's customer (telegram id), or the survey answer's score
    at: float = 0.0  # seconds from the start of the stream


def card_number(index: int) -> str:
    body = str(1_000_000 + index)
    return body + str(luhn_check_digit(body))


class Crowd:
    """The café's members and cashiers, and the stream of updates they send.

    Each kind has its own people, so a survey answer's follow-up question never catches an FAQ
    question, and a support request never swallows one. The stream goes on where the previous
    part left it: purchases in progress continue and nobody writes twice within GAP.
    """

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        languages = self.rng.choices(("en", "pl", "ru"), weights=(45, 40, 15), k=sum(POOLS.values()))
        self.members: dict[str, list[Person]] = {}
        index = 0
        for role, size in POOLS.items():
            self.members[role] = [
                Person(MEMBER_IDS + i, f"Member{i}", languages[i], card_number(i)) for i in range(index, index + size)
            ]
            index += size
        self.cashiers = [Person(CASHIER_IDS + i, f"Cashier{i}", "en") for i in range(CASHIERS)]
        faq = load_faq(DEFAULT_FAQ_FILE)
        self.questions = {
            language: [
                phrase
                for entry in faq.entries
                if (found := entry.text(language)) is not None
                for phrase in (found.question, *found.phrasings)
                if recognise(phrase, language) is None  # "my card", "my points": not FAQ questions any more
            ]
            for language in ("en", "pl", "ru")
        }
        self.surveys_needed: Counter[int] = Counter()  # survey answers each member will give
        self.time = 0.0
        self._ready = {role: deque((0.0, p) for p in people) for role, people in self.members.items()}
        self._cashiers = deque((0.0, p) for p in self.cashiers)
        self._buyers = itertools.cycle(self.members["buyer"])
        self._flows: list[tuple[float, int, deque[Step]]] = []  # (next step due, tie, steps left)
        self._tie = itertools.count()

    @property
    def people(self) -> list[Person]:
        return [p for people in self.members.values() for p in people]

    # one update, or one purchase, of a given person

    def single(self, kind: str, person: Person) -> Step:
        if kind == "card":
            return Step(kind, kind, person, text="/card")
        if kind == "faq":
            return Step(kind, kind, person, text=self.rng.choice(self.questions[person.language]))
        if kind == "support":
            return Step(kind, kind, person, text=self.rng.choice(SUPPORT_TEXTS[person.language]))
        assert kind == "survey"
        self.surveys_needed[person.id] += 1
        return Step(kind, kind, person, value=self.rng.choices(range(11), weights=NPS_WEIGHTS)[0])

    def purchase(self, cashier: Person, buyer: Person) -> list[Step]:
        amount = f"{self.rng.randint(8, 120)},{self.rng.choice(('00', '50', '90'))}"
        return [
            Step("purchase", "scan", cashier, text=f"/scan {buyer.card_number}"),
            Step("purchase", "amount", cashier, text=amount),  # typed into the open card: the sale
        ]

    # the paced stream

    def take(self, count: int, rate: float = RATE) -> list[Step]:
        """The next `count` updates: Poisson arrivals averaging `rate` a second, kinds by WEIGHTS."""
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        steps = []
        for _ in range(count):
            self.time += self.rng.expovariate(rate)
            kind = self.rng.choices(kinds, weights=weights)[0]
            if kind == "purchase":
                step = self._purchase_step()
            else:
                ready_at, person = self._ready[kind].popleft()
                if ready_at > self.time:
                    raise RuntimeError(f"too few {kind} members for {rate:.0f} updates/s")
                self._ready[kind].append((self.time + GAP, person))
                step = self.single(kind, person)
            steps.append(dataclasses.replace(step, at=self.time))
        return steps

    def drain(self) -> list[Step]:
        """The steps left of every purchase begun, each cashier's after their GAP, so that a part of
        the stream holds whole purchases (each stack is fed its parts; a sale whose scan went to
        another stack would find no card open)."""
        steps = []
        while self._flows:
            due, _tie, left = heapq.heappop(self._flows)
            self.time = max(self.time, due)
            step = left.popleft()
            steps.append(dataclasses.replace(step, at=self.time))
            if left:
                heapq.heappush(self._flows, (self.time + GAP, _tie, left))
            else:
                self._cashiers.append((self.time + GAP, step.person))
        return steps

    def _purchase_step(self) -> Step:
        """The next step of a purchase whose cashier may act again, else a new purchase."""
        if self._flows and self._flows[0][0] <= self.time:
            _due, tie, left = heapq.heappop(self._flows)
        else:
            ready_at, cashier = self._cashiers.popleft()
            if ready_at > self.time:
                raise RuntimeError("too few cashiers for this rate")
            tie, left = next(self._tie), deque(self.purchase(cashier, next(self._buyers)))
        step = left.popleft()
        if left:
            heapq.heappush(self._flows, (self.time + GAP, tie, left))
        else:
            self._cashiers.append((self.time + GAP, step.person))
        return step


# --- updates as Telegram sends them --------------------------------------------------------


class Builder:
    """Turns steps into updates mounted on one bot (so feed_update does not copy them again)."""

    def __init__(self, bot: Bot, customer_ids: dict[int, int], survey_ids: dict[int, list[int]]) -> None:
        self.bot = bot
        self.customer_ids = customer_ids
        self.survey_ids = {member: deque(ids) for member, ids in survey_ids.items()}
        self.now = int(datetime.now(UTC).timestamp())

    def __call__(self, step: Step, update_id: int) -> Update:
        person = step.person
        user = {"id": person.id, "is_bot": False, "first_name": person.first_name, "language_code": person.language}
        chat = {"id": person.id, "type": "private", "first_name": person.first_name}
        if step.text is not None:
            message = {"message_id": update_id, "date": self.now, "chat": chat, "from": user, "text": step.text}
            return Update.model_validate({"update_id": update_id, "message": message}, context={"bot": self.bot})
        data = step.data
        if step.stage == "survey":
            queue = self.survey_ids.get(person.id)
            data = SurveyCB(survey_id=queue.popleft() if queue else 0, score=step.value).pack()
        bot_user = BOT_USER.model_dump(exclude_none=True)
        message = {"message_id": update_id, "date": self.now, "chat": chat, "from": bot_user, "text": "…"}
        query = {"id": str(update_id), "from": user, "chat_instance": "ci", "data": data, "message": message}
        return Update.model_validate({"update_id": update_id, "callback_query": query}, context={"bot": self.bot})

    def build(self, steps: Iterable[Step], ids: Iterable[int]) -> list[tuple[Step, Update]]:
        return [(step, self(step, update_id)) for step, update_id in zip(steps, ids, strict=False)]


class ErrorCount(logging.Handler):
    """Counts ERROR records (the dispatcher logs "update N failed"), by phase of the run."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: str | None = None
        self.phase = "set-up"
        self.by_phase: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.by_phase[self.phase] += 1
        if self.first is None:
            self.first = record.getMessage()


class Driver:
    """Feeds updates to one dispatcher, one person's after another, and times them."""

    def __init__(self, dp: Dispatcher, bot: Bot, session: RecordingSession, wrong_path: set[str]) -> None:
        self.dp, self.bot = dp, bot
        self.wrong_path = wrong_path
        self._last: dict[int, asyncio.Future[None]] = {}
        self.fed: Counter[str] = Counter()
        self.failures = 0  # feed_update raised (the bare stack has no error handler)
        self.wrong_answers: Counter[str] = Counter()
        self.latencies: list[tuple[Step, float]] = []
        self.lags: list[float] = []
        session.on_request = self._seen

    def _seen(self, method: TelegramMethod[Any]) -> None:
        if isinstance(method, AnswerCallbackQuery):
            if method.show_alert or (method.text and method.text in self.wrong_path):
                self.wrong_answers[method.text or "alert"] += 1
            return
        if not isinstance(method, SendMessage):
            return
        if method.text in self.wrong_path:
            self.wrong_answers[method.text] += 1

    def reset(self) -> None:
        self.latencies, self.lags = [], []

    async def run(self, step: Step, update: Update, due: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        if due is not None:
            self.lags.append(started - due)
        previous = self._last.get(step.person.id)
        mine: asyncio.Future[None] = loop.create_future()
        self._last[step.person.id] = mine
        try:
            if previous is not None and not previous.done():
                await previous
            try:
                await self.dp.feed_update(self.bot, update)
            except Exception:
                self.failures += 1
                logger.exception("update %s raised", update.update_id)
        finally:
            mine.set_result(None)
            if self._last.get(step.person.id) is mine:
                del self._last[step.person.id]
        self.fed[step.stage] += 1
        self.latencies.append((step, loop.time() - (due if due is not None else started)))


# --- the two measurements ------------------------------------------------------------------


@dataclass
class Paced:
    count: int
    p50: float  # ms
    p99: float
    worst: float
    lag_p99: float  # ms between an update's scheduled and actual start
    behind: float  # s between the last arrival and the last update finished
    achieved: float  # updates finished a second, from the first arrival to the last finish
    by_kind: dict[str, tuple[float, float]]

    @property
    def kept(self) -> bool:
        return self.lag_p99 < 100 and self.behind < 1.0


@dataclass
class Capacity:
    rate: float  # updates a second
    cpu: float  # ms of the process's CPU (every thread) per update


async def capacity(driver: Driver, items: list[tuple[Step, Update]], concurrency: int = CONCURRENCY) -> Capacity:
    """Updates per second with `concurrency` updates in flight."""
    queue = iter(items)

    async def worker() -> None:
        for step, update in queue:
            await driver.run(step, update)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Capacity(len(items) / elapsed, cpu / len(items) * 1000)


async def paced(driver: Driver, items: list[tuple[Step, Update]]) -> Paced:
    """Each update started at its arrival time as its own task, whatever the others are doing."""
    loop = asyncio.get_running_loop()
    driver.reset()
    start = loop.time() + 0.1
    offset = items[0][0].at
    tasks = []
    for step, update in items:
        due = start + step.at - offset
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(driver.run(step, update, due)))
    await asyncio.gather(*tasks)
    finished = loop.time()
    behind = finished - (start + items[-1][0].at - offset)
    latencies = [seconds * 1000 for _step, seconds in driver.latencies]
    by_kind: dict[str, list[float]] = {}
    for step, seconds in driver.latencies:
        by_kind.setdefault(step.kind, []).append(seconds * 1000)
    return Paced(
        count=len(items),
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        worst=max(latencies),
        lag_p99=percentile([lag * 1000 for lag in driver.lags], 99),
        behind=behind,
        achieved=len(items) / (finished - start),
        by_kind={kind: (percentile(values, 50), percentile(values, 99)) for kind, values in by_kind.items()},
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


# --- the stacks ----------------------------------------------------------------------------


@dataclass
class Result:
    stack: str
    label: str
    capacity: Capacity
    paced: Paced
    checks: list[tuple[str, bool, str]]


def wrong_path_texts(i18n: I18n) -> set[str]:
    return {i18n.gettext(text, locale=language) for text in WRONG_PATH for language in ("en", "pl", "ru")}


async def echo(message: Message, bot: Bot) -> None:
    await bot.send_message(message.chat.id, "ok")


async def pressed(callback: CallbackQuery) -> None:
    await callback.answer()


async def trivial(
    dp: Dispatcher, customer_ids: dict[int, int], parts: tuple[list[Step], list[Step], list[Step]], concurrency: int
) -> tuple[Capacity, Paced, list[tuple[str, bool, str]], int]:
    """`dp` with one handler answering a message with one sendMessage and one answering a button
    press, fed the stream: its capacity, its paced timing, the checks and the updates fed."""
    dp.message.register(echo)
    dp.callback_query.register(pressed)
    session = RecordingSession()
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    driver = Driver(dp, bot, session, set())
    build = Builder(bot, customer_ids, {})
    ids = itertools.count(FIRST_STREAM_ID)
    warm, fast, slow = (build.build(part, ids) for part in parts)
    await capacity(driver, warm, concurrency)
    most = await capacity(driver, fast, concurrency)
    timing = await paced(driver, slow)
    answered = sum(isinstance(r, (SendMessage, AnswerCallbackQuery)) for r in session.requests)
    fed = sum(driver.fed.values())
    checks = [
        ("no update raised", driver.failures == 0, f"{driver.failures} raised"),
        ("one answer per update", answered == fed, f"{answered} answers to {fed} updates"),
    ]
    return most, timing, checks, fed


async def bare(parts: tuple[list[Step], list[Step], list[Step]], concurrency: int) -> Result:
    """aiogram as it starts (in-memory FSM) with the two trivial handlers."""
    most, timing, checks, _fed = await trivial(Dispatcher(), {}, parts, concurrency)
    return Result("bare aiogram", "—", most, timing, checks)


async def floor(
    url: str, label: str, crowd: Crowd, parts: tuple[list[Step], list[Step], list[Step]], concurrency: int
) -> Result:
    """Bare aiogram's two handlers behind the two outer middlewares every update of the bot goes
    through: the inbox (recorded before handling, marked finished after: no update lost or done
    twice) and the sender's record (who writes). What those promises cost before any feature."""
    db = await fresh(url)
    try:
        customer_ids = await insert_crowd(db, crowd)
        business = load_business(DEFAULT_BUSINESS_FILE)
        dp = Dispatcher(loyalty=LoyaltyService(db, business, admin_ids=[]))
        dp.update.outer_middleware(InboxMiddleware(Inbox(db)))
        dp.update.outer_middleware(CustomerMiddleware())
        most, timing, checks, fed = await trivial(dp, customer_ids, parts, concurrency)
        finished = await count(
            db, select(func.count()).select_from(ProcessedUpdate).where(ProcessedUpdate.finished_at.is_not(None))
        )  # type: ignore[union-attr]
    finally:
        await db.dispose()
    checks.append(("every update recorded and finished", finished == fed, f"{finished} of {fed}"))
    return Result("floor", label, most, timing, checks)


async def fresh(url: str) -> Database:
    """An empty, migrated database (PostgreSQL: created if missing, its public schema dropped;
    SQLite: its files removed)."""
    if url.startswith("postgresql"):
        await empty_postgres(url)
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{make_url(url).database}{suffix}").unlink(missing_ok=True)
    await migrate(url)
    return Database(url)


def production_bot(settings: Settings, session: RecordingSession) -> Bot:
    """The production Bot, its Outbox included, with Telegram's per-chat windows lifted (the
    overall limit stays SEND_LIMIT_PER_SECOND): one managers' group takes 20 messages a minute,
    which would make the bench measure Telegram's pace instead of the bot's cost."""
    unlimited = 10**9
    limiter = RateLimiter(
        settings.send_limit_per_second, chat_burst=unlimited, chat_span=1.0, group_per_minute=unlimited
    )
    return create_bot(settings, session=session, limiter=limiter)


@dataclass
class Stack:
    db: Database
    dp: Dispatcher
    bot: Bot
    session: RecordingSession
    driver: Driver
    build: Builder


async def insert_crowd(db: Database, crowd: Crowd) -> dict[int, int]:
    """The crowd as members who joined 60 days ago; their customer ids by Telegram id."""
    joined = datetime.now(UTC) - timedelta(days=60)
    rows = [
        {
            "telegram_id": p.id,
            "first_name": p.first_name,
            "telegram_language": p.language,
            "card_number": p.card_number,
            "joined_at": joined,
            "created_at": joined,
        }
        for p in crowd.people
    ]
    async with db.writing() as s:
        await s.execute(insert(Customer), rows)
    async with db.reading() as s:
        return dict((await s.execute(select(Customer.telegram_id, Customer.id))).all())  # type: ignore[arg-type]


async def whole_stack(url: str, crowd: Crowd) -> Stack:
    """The production dispatcher over a fresh database with the crowd in it: members inserted,
    cashiers invited and support requests opened through the dispatcher, surveys sent."""
    db = await fresh(url)
    business = load_business(DEFAULT_BUSINESS_FILE)
    settings = make_settings(manager_chat_id=str(GROUP_ID), send_limit_per_second=1000)
    session = RecordingSession()
    bot = production_bot(settings, session)
    i18n = create_i18n(business.default_language)
    loyalty = LoyaltyService(db, business, admin_ids=settings.admin_ids)
    surveys = SurveyService(db, business)
    faq = FaqService(db, settings.faq_file, features=business.offers())
    # The stream is a day's traffic in seconds: the per-person limit is lifted (its check still runs).
    dp = create_dispatcher(
        settings, business, db, i18n, loyalty=loyalty, surveys=surveys, faq=faq, throttle=PersonThrottle(10**9)
    )
    # Startup would also start the scheduler, whose rounds would land at random moments of a run.
    await faq.load()

    customer_ids = await insert_crowd(db, crowd)

    h = Harness(  # type: ignore[arg-type]
        bot=bot, dp=dp, session=session, db=db, loyalty=loyalty, business=business, clock=utcnow, surveys=surveys
    )
    for cashier in crowd.cashiers:
        await h.make_cashier(cashier.user())
    for person in crowd.members["support"]:
        await h.send(person.user(), "/support")
    sender = dp["survey_sender"]
    survey_ids: dict[int, list[int]] = {}
    for member, needed in crowd.surveys_needed.items():
        for n in range(needed):
            question = await surveys.ask_now(customer_ids[member], key=f"bench:{member}:{n}")
            assert question is not None and await sender.send(bot, question)
            survey_ids.setdefault(member, []).append(question.survey.id)  # type: ignore[arg-type]
    session.requests.clear()
    driver = Driver(dp, bot, session, wrong_path_texts(i18n))
    return Stack(db, dp, bot, session, driver, Builder(bot, customer_ids, survey_ids))


async def count(db: Database, query: Any) -> int:
    async with db.reading() as s:
        return int(await s.scalar(query) or 0)


async def check(stack: Stack, errors: ErrorCount) -> list[tuple[str, bool, str]]:
    """What the runs must have left behind, so that an error cannot pass for speed."""
    db, driver, fed = stack.db, stack.driver, stack.driver.fed
    entries = await count(db, select(func.count()).where(LedgerEntry.kind == EntryKind.PURCHASE.value))
    done = await count(db, select(func.count()).where(Operation.status == OperationStatus.DONE.value))
    drafts = await count(db, select(func.count()).select_from(Operation))
    codes = await count(db, select(func.count()).select_from(CardCode))
    questions = await count(db, select(func.count()).select_from(FaqQuery))
    answered = await count(db, select(func.count()).where(Survey.answered_at.is_not(None)))  # type: ignore[union-attr]
    relayed = await count(db, select(func.count()).where(TicketMessage.direction == MessageDirection.IN.value))
    inbox = await count(db, select(func.count()).where(ProcessedUpdate.update_id >= FIRST_STREAM_ID))
    ledger_sums = (
        select(LedgerEntry.customer_id, func.sum(LedgerEntry.points).label("points"))
        .group_by(LedgerEntry.customer_id)
        .subquery()
    )
    off = await count(
        db,
        select(func.count())
        .select_from(Customer)
        .outerjoin(ledger_sums, ledger_sums.c.customer_id == Customer.id)
        .where(Customer.balance != func.coalesce(ledger_sums.c.points, 0)),
    )
    total = sum(fed.values())
    wrong = sum(driver.wrong_answers.values())
    first_wrong = driver.wrong_answers.most_common(1)[0][0] if wrong else ""
    by_phase = ", ".join(f"{phase} {n}" for phase, n in errors.by_phase.items())
    return [
        ("no errors logged", errors.count == 0, f"{errors.count} errors ({by_phase}); first: {errors.first}"),
        ("no update raised", driver.failures == 0, f"{driver.failures} raised"),
        ("no refusal or fallback answered", wrong == 0, f"{wrong}, e.g. {first_wrong!r}"),
        ("purchase entries = sales", entries == fed["amount"], f"{entries} entries, {fed['amount']} amounts typed"),
        ("operations done = sales", done == fed["amount"], f"{done} done"),
        ("operations = sales", drafts == fed["amount"], f"{drafts} operations"),
        ("card codes = /card", codes == fed["card"], f"{codes} codes, {fed['card']} /card"),
        ("FAQ queries = questions", questions == fed["faq"], f"{questions} queries, {fed['faq']} questions"),
        ("surveys answered = answers", answered == fed["survey"], f"{answered} answered, {fed['survey']} answers"),
        ("messages relayed = written", relayed == fed["support"], f"{relayed} relayed, {fed['support']} written"),
        ("inbox rows = updates", inbox == total, f"{inbox} rows, {total} updates"),
        ("every balance = its ledger", off == 0, f"{off} balances off"),
    ]


async def whole(
    url: str, label: str, crowd: Crowd, parts: tuple[list[Step], list[Step], list[Step]], concurrency: int
) -> Result:
    stack = await whole_stack(url, crowd)
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    try:
        ids = itertools.count(FIRST_STREAM_ID)
        warm, fast, slow = (stack.build.build(part, ids) for part in parts)
        errors.phase = "warm-up"
        await capacity(stack.driver, warm, concurrency)
        errors.phase = "capacity"
        most = await capacity(stack.driver, fast, concurrency)
        errors.phase = "paced"
        timing = await paced(stack.driver, slow)
        errors.phase = "checks"
        checks = await check(stack, errors)
    finally:
        logging.getLogger().removeHandler(errors)
        await stack.dp.emit_shutdown(bot=stack.bot)
        await stack.db.dispose()
    return Result("whole stack", label, most, timing, checks)


# --- the profile ---------------------------------------------------------------------------


PG_CASTS = re.compile(r"::(?:BIGINT|INTEGER|VARCHAR|BOOLEAN|TIMESTAMP WITH TIME ZONE|TIMESTAMP WITHOUT TIME ZONE)")


def short_sql(statement: str) -> str:
    """A statement without its column lists and PostgreSQL's casts, so its WHERE shows."""
    statement = PG_CASTS.sub("", " ".join(statement.split()))
    statement = re.sub(r"^SELECT (?!count)(?:(?! FROM ).)+ FROM ", "SELECT … FROM ", statement)
    statement = re.sub(r"^INSERT INTO (\S+) \(.*?\) VALUES \(.*?\)", r"INSERT INTO \1 (…) VALUES (…)", statement)
    return re.sub(r" RETURNING .*", " RETURNING …", statement)


class SqlCount:
    """Statements, transactions and pool checkouts, as the engine sees them."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine.sync_engine
        self.statements: Counter[str] = Counter()
        self.totals: Counter[str] = Counter()

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE is counted as a tx
            self.statements[statement] += 1  # shortened when printed: this runs inside the profile
            self.totals["SQL"] += 1

    def _begin(self, conn: Any) -> None:
        self.totals["tx"] += 1
        self.totals["write tx"] += bool(conn.get_execution_options().get("write"))

    def _rollback(self, _conn: Any) -> None:
        self.totals["rollback"] += 1

    def _checkout(self, *_args: Any) -> None:
        self.totals["checkout"] += 1

    def _patch_direct(self) -> None:
        """Database.direct and Direct's statements (each passes `_bind`), wrapped: the driver's own
        transactions count too (a block of one statement, outside a transaction, counts as one)."""
        counter = self
        self._saved = (Database.direct, Direct._bind)
        direct, bind = self._saved

        @asynccontextmanager
        async def counted_direct(db: Database, *, write: bool = True, one: bool = False) -> Any:
            counter.totals["tx"] += 1
            counter.totals["write tx"] += write
            counter.totals["driver tx"] += 1
            async with direct(db, write=write, one=one) as connection:
                yield connection

        def counted_bind(self: Direct, sql: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
            counter._statement(None, None, sql)
            return bind(self, sql, args)

        Database.direct = counted_direct  # type: ignore[assignment, method-assign]
        Direct._bind = counted_bind  # type: ignore[method-assign]

    def __enter__(self) -> SqlCount:
        self._patch_direct()
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "rollback", self._rollback)
        event.listen(self.engine.pool, "checkout", self._checkout)
        return self

    def __exit__(self, *_exc: Any) -> None:
        Database.direct, Direct._bind = self._saved  # type: ignore[method-assign]
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "rollback", self._rollback)
        event.remove(self.engine.pool, "checkout", self._checkout)


def profile_stream(crowd: Crowd, per_kind: int) -> dict[str, list[Step]]:
    """Per kind, twice `per_kind` updates (a timed half and a profiled half), people in turn."""
    streams: dict[str, list[Step]] = {}
    for kind in KINDS:
        if kind == "purchase":
            buyers, cashiers = itertools.cycle(crowd.members["buyer"]), itertools.cycle(crowd.cashiers)
            flows = [crowd.purchase(next(cashiers), next(buyers)) for _ in range(2 * per_kind // len(PURCHASE_STAGES))]
            streams[kind] = [step for flow in flows for step in flow]
        else:
            people = itertools.cycle(crowd.members[kind])
            streams[kind] = [crowd.single(kind, next(people)) for _ in range(2 * per_kind)]
    return streams


PROJECT = str(Path(__file__).resolve().parent.parent) + "/"
SHORT_PATHS = (PROJECT, "site-packages/", "/lib/python3.11/")
IDLE = "<method 'poll' of 'select.epoll' objects>"  # the event loop waiting (for SQLite's thread, or PG)
COLUMNS = ("SQL", "tx", "write tx", "driver tx", "rollback", "checkout", "API")


def where(file: str, line: int, name: str) -> str:
    for prefix in SHORT_PATHS:
        if prefix in file:
            file = file.split(prefix, 1)[1]
    return f"{file}:{line}({name})" if line else name


def hot_spots(profiler: cProfile.Profile, updates: int, top: int) -> list[str]:
    """The project's functions by cumulative time, and every function by its own time, in ms per
    update. A coroutine's time counts only while it runs, not while it awaits; its calls are its
    resumptions."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [(key[0], where(*key), calls, own, cum) for key, (_cc, calls, own, cum, _callers) in stats.items()]
    idle = sum(own for _file, place, _calls, own, _cum in rows if place == IDLE)
    busy_total = sum(own for _file, place, _calls, own, _cum in rows if place != IDLE)
    ours = [
        r
        for r in rows
        if r[0].startswith(PROJECT) and "/bench/" not in r[0] and "/tests/" not in r[0] and r[4] < 0.8 * busy_total
    ]
    lines = [
        f"      the project's code by cumulative time (ms/update, calls/update; of {busy_total / updates * 1000:.1f}"
        " ms busy; the outer middlewares, which hold everything, left out):"
    ]
    for _file, place, calls, _own, cumulative in sorted(ours, key=lambda r: -r[4])[:top]:
        lines.append(f"        {cumulative / updates * 1000:7.2f}  {calls / updates:6.1f}  {place}")
    idle_ms = idle / updates * 1000
    lines.append(f"      everything by own time (ms/update, calls/update; the loop idle in epoll: {idle_ms:.2f} ms):")
    busy = [r for r in rows if r[1] != IDLE and "/bench/" not in r[0]]  # the bench's own loop left out
    for _file, place, calls, own, _cumulative in sorted(busy, key=lambda r: -r[3])[:top]:
        lines.append(f"        {own / updates * 1000:7.2f}  {calls / updates:6.1f}  {place}")
    return lines


def profile_row(
    name: str,
    stages: list[str],
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
    counts: dict[str, Counter[str]],
    bare_cpu: dict[str, float],
) -> str:
    n = sum(counts[s]["updates"] for s in stages)
    ms = statistics.fmean(v for s in stages for v in wall[s])
    used = statistics.fmean(v for s in stages for v in cpu[s])
    times = used / statistics.fmean(bare_cpu[s] for s in stages)
    cells = "".join(f"{sum(counts[s][c] for s in stages) / n:10.2f}" for c in COLUMNS)
    return f"  {name:<12}{ms:10.2f}{used:8.2f}{times:8.0f}{cells}  {met(times <= CPU_TARGET):>22}"


def met(ok: bool) -> str:
    return "met" if ok else "not met"


async def bare_profile(streams: dict[str, list[Step]]) -> dict[str, float]:
    """Bare aiogram's CPU ms per update, by stage (a kind that is one update: its own name), fed the
    profile's updates one at a time, as the whole stack is."""
    dp = Dispatcher()
    dp.message.register(echo)
    dp.callback_query.register(pressed)
    session = RecordingSession()
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    driver = Driver(dp, bot, session, set())
    build = Builder(bot, {}, {})
    ids = itertools.count(FIRST_STREAM_ID)
    used: dict[str, list[float]] = {}
    for _round in range(2):  # the first warms aiogram's caches up
        used.clear()
        for kind in KINDS:
            for step, update in build.build(streams[kind], ids):
                started = time.process_time()
                await driver.run(step, update)
                used.setdefault(step.stage, []).append((time.process_time() - started) * 1000)
    return {stage: statistics.fmean(values) for stage, values in used.items()}


async def profile(url: str, label: str, per_kind: int, top: int) -> None:
    crowd = Crowd(seed=11)
    streams = profile_stream(crowd, per_kind)
    stack = await whole_stack(url, crowd)
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    ids = itertools.count(FIRST_STREAM_ID)
    bare_cpu = await bare_profile(streams)
    print(f"\n{label}: each kind alone, one update at a time ({per_kind} timed, then {per_kind} counted and profiled)")
    print(
        f"  {'kind':<12}{'ms/update':>10}{'CPU ms':>8}{'× bare':>8}"
        + "".join(f"{c:>10}" for c in COLUMNS)
        + f"  {'CPU at most ' + str(CPU_TARGET) + '× bare':>22}"
    )
    details = []
    try:
        for kind in KINDS:
            built = stack.build.build(streams[kind], ids)
            timed, counted = built[: len(built) // 2], built[len(built) // 2 :]
            wall: dict[str, list[float]] = {}
            cpu: dict[str, list[float]] = {}
            for step, update in timed:
                started, used = time.perf_counter(), time.process_time()
                await stack.driver.run(step, update)
                wall.setdefault(step.stage, []).append((time.perf_counter() - started) * 1000)
                cpu.setdefault(step.stage, []).append((time.process_time() - used) * 1000)
            profiler = cProfile.Profile()
            stack.session.requests.clear()
            counts: dict[str, Counter[str]] = {}
            with SqlCount(stack.db) as sql:
                profiler.enable()
                for step, update in counted:
                    before = sql.totals.copy()
                    before["API"] = len(stack.session.requests)
                    await stack.driver.run(step, update)
                    after = sql.totals.copy()
                    after["API"] = len(stack.session.requests)
                    counts.setdefault(step.stage, Counter()).update(after - before)
                    counts[step.stage]["updates"] += 1
                profiler.disable()

            print(profile_row(kind, list(counts), wall, cpu, counts, bare_cpu))
            if kind == "purchase":
                for stage in PURCHASE_STAGES:
                    print(profile_row("  " + stage, [stage], wall, cpu, counts, bare_cpu))
            n = len(counted)
            lines = [f"    {kind}: statements per update, most repeated first"]
            statements: Counter[str] = Counter()
            for statement, times in sql.statements.items():
                statements[short_sql(statement)] += times
            for statement, times in statements.most_common(25 if kind == "purchase" else 12):
                lines.append(f"      {times / n:5.2f}  {statement[:160]}")
            methods = Counter(type(r).__name__ for r in stack.session.requests)
            lines.append("      Bot API calls per update: " + ", ".join(f"{m} {c / n:.2f}" for m, c in methods.items()))
            lines += hot_spots(profiler, n, top)
            details.append(lines)
    finally:
        logging.getLogger().removeHandler(errors)
        await stack.dp.emit_shutdown(bot=stack.bot)
        await stack.db.dispose()
    print(
        "  ms/update: wall time, one at a time; CPU ms: the process's CPU time (every thread); × bare: CPU\n"
        f"  against bare aiogram's {statistics.fmean(bare_cpu.values()):.3f} ms for the same updates in this run;\n"
        "  per update:"
        " SQL statements, transactions (tx), of them writing (BEGIN IMMEDIATE on SQLite), of them through\n"
        "  the driver itself (driver tx, Database.direct), rollbacks, SQLAlchemy pool checkouts and Bot API calls"
    )
    problems = errors.count + stack.driver.failures + sum(stack.driver.wrong_answers.values())
    if problems:
        print(f"  !!! FAILED: {problems} errors or wrong answers during the profile; first error: {errors.first}")
    for lines in details:
        print("\n".join(lines))


# --- output --------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    return (
        f"machine: {model}, {os.cpu_count()} cores, load average {load}; Python {platform.python_version()}; "
        f"aiogram {aiogram.__version__}; SQLAlchemy {sqlalchemy.__version__}"
    )


def report(results: list[Result], bare_result: Result, rate: float, whole_rate: float) -> None:
    print()
    paced_at = f"paced at {rate:.0f}/s, whole stack {whole_rate:.0f}/s"
    print(f"{'':34}{'capacity':-^26}  {paced_at:-^46}")
    print(
        f"{'stack':<16}{'database':<18}{'updates/s':>10}{'ratio':>7}{'CPU ms':>9}"
        f"{'done/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'lag p99':>9}  kept"
    )
    for result in [bare_result, *results]:
        database, stack = result.label, result.stack
        c, p = result.capacity, result.paced
        kept = "yes" if p.kept else f"no: the last finished {p.behind:.1f} s after the last arrival"
        print(
            f"{stack:<16}{database:<18}{c.rate:10.1f}{c.rate / bare_result.capacity.rate:7.3f}{c.cpu:9.2f}"
            f"{p.achieved:10.1f}{p.p50:9.1f}{p.p99:9.1f}{p.worst:9.1f}{p.lag_p99:9.1f}  {kept}"
        )
    print(
        "CPU ms: the process's CPU time (every thread) per update in the capacity run; done/s: updates\n"
        "finished a second in the paced run; lag p99: ms between an update's arrival and its start"
    )
    print()
    print(f"whole stack, paced at {whole_rate:.0f}/s, by kind: p50 / p99 ms")
    print(f"  {'database':<18}" + "".join(f"{kind:>19}" for kind in KINDS))
    for result in results:
        if result.stack != "whole stack":
            continue
        by_kind = result.paced.by_kind
        cells = "".join(
            f"{by_kind[k][0]:>9.0f} /{by_kind[k][1]:>8.0f}" if k in by_kind else f"{'—':>19}" for k in KINDS
        )
        print(f"  {result.label:<18}{cells}")
    for result in [bare_result, *results]:
        failed = [(name, detail) for name, ok, detail in result.checks if not ok]
        if failed:
            print(f"\n!!! FAILED checks, {result.stack}, {result.label}: these figures include errors !!!")
            for name, detail in failed:
                print(f"  FAILED {name}: {detail}")
        else:
            print(f"\nchecks, {result.stack}, {result.label}: all {len(result.checks)} passed")
        for name, ok, detail in result.checks:
            if ok:
                print(f"  ok  {name:<36}{detail.split(';')[0]}")


def postgres_reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), timeout=1).close()
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sqlite", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced run (default 10)")
    parser.add_argument("--rate", type=float, default=RATE, help="bare and floor paced at (default 300/s)")
    parser.add_argument("--whole-rate", type=float, default=WHOLE_RATE, help="whole stack paced at (default 100/s)")
    parser.add_argument("--before", default="", help="whole/bare capacity ratios before: sqlite=R,postgres=R")
    parser.add_argument("--updates", type=int, default=CAPACITY, help="updates in the capacity run (default 3000)")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="updates in flight (default 32)")
    parser.add_argument("--profile", action="store_true", help="profile each update kind instead")
    parser.add_argument("--per-kind", type=int, default=500, help="updates of each kind in the profile")
    parser.add_argument("--top", type=int, default=15, help="hot spots listed per kind in the profile")
    args = parser.parse_args()
    print(machine())
    urls = []
    with tempfile.TemporaryDirectory() as tmp:
        urls.append((f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", "SQLite (WAL)"))
        if not args.sqlite:
            if postgres_reachable(POSTGRES_URL):
                urls.append((POSTGRES_URL, "PostgreSQL"))
            else:
                print(f"PostgreSQL: not reachable at {make_url(POSTGRES_URL).host}, skipped")
        if args.profile:
            for url, label in urls:
                asyncio.run(profile(url, label, args.per_kind - args.per_kind % len(PURCHASE_STAGES), args.top))
            return
        crowd = Crowd()
        parts = (crowd.take(WARM_UP, args.rate) + crowd.drain(), crowd.take(args.updates, args.rate) + crowd.drain())
        parts += (crowd.take(int(args.rate * args.seconds), args.rate) + crowd.drain(),)
        members = sum(POOLS.values())
        print(
            f"stream: {WARM_UP} warm-up, {args.updates} for capacity ({args.concurrency} in flight), "
            f"{len(parts[2])} paced ({args.rate:.0f}/s for {args.seconds:.0f} s); "
            + ", ".join(f"{k} {w}%" for k, w in WEIGHTS.items())
            + f"; {members} members, {CASHIERS} cashiers"
        )
        whole_parts = (*parts[:2], crowd.take(int(args.whole_rate * args.seconds), args.whole_rate) + crowd.drain())
        bare_result = asyncio.run(bare(parts, args.concurrency))  # type: ignore[arg-type]
        results = []
        for url, label in urls:
            started = time.perf_counter()
            results.append(asyncio.run(floor(url, label, crowd, parts, args.concurrency)))  # type: ignore[arg-type]
            results.append(asyncio.run(whole(url, label, crowd, whole_parts, args.concurrency)))  # type: ignore[arg-type]
            print(f"{label}: set-up and runs took {time.perf_counter() - started:.0f} s")
    print(machine())
    report(results, bare_result, args.rate, args.whole_rate)
    targets(results, bare_result, before(args.before))


def before(given: str) -> dict[str, float]:
    """`--before sqlite=0.0061,postgres=0.0072`: the whole stack's capacity ratio to bare aiogram
    measured on the commit before issue 17, in the same hour (ratios hold across the machine's drift
    where rates do not)."""
    ratios = {}
    for part in filter(None, given.split(",")):
        name, _, value = part.partition("=")
        ratios[name.strip().lower()] = float(value)
    return ratios


def targets(results: list[Result], bare_result: Result, before_ratios: dict[str, float]) -> None:
    """Issue 17's targets, each met or not met, from this run."""
    print("\ntargets (issue 17), from this run:")
    for result in results:
        ratio = result.capacity.rate / bare_result.capacity.rate
        database = result.label
        key = "sqlite" if database.startswith("SQLite") else "postgres"
        rows: list[tuple[str, bool | None, str]] = []
        if result.stack == "floor":
            rows.append(("floor at least 0.2 of bare aiogram", ratio >= 0.2, f"{ratio:.3f}"))
            rows.append(("floor p99 under 25 ms at 300/s", result.paced.p99 < 25, f"{result.paced.p99:.1f} ms"))
        else:
            rows.append(("whole stack at least 0.03 of bare aiogram", ratio >= 0.03, f"{ratio:.3f}"))
            if key in before_ratios:
                times = ratio / before_ratios[key]
                rows.append(("whole stack 5× the throughput before", times >= 5, f"{times:.1f}×"))
            else:
                rows.append(("whole stack 5× the throughput before", None, f"give --before {key}=RATIO"))
            rows.append(("whole stack p99 under 25 ms at 100/s", result.paced.p99 < 25, f"{result.paced.p99:.1f} ms"))
        passed = sum(ok for _name, ok, _detail in result.checks)
        rows.append(("the run's checks pass", passed == len(result.checks), f"{passed} of {len(result.checks)}"))
        for name, ok, detail in rows:
            verdict = "not measured" if ok is None else met(ok)
            print(f"  {database:<14}{name:<44}{detail:>24}  {verdict}")
    print(
        "  CPU per update of each kind at most 25× bare: --profile; two processes 1.5× one: not measured by this\n"
        "  script (one process); memory with 100 000 customers: bench/memory.py"
    )


if __name__ == "__main__":
    main()
