"""The test harness: the production dispatcher, a recording Bot session, a controllable clock,
and one database per test on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot, Dispatcher
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
    SendPhoto,
)
from aiogram.types import CallbackQuery, Chat, Message, PhotoSize, Update, User
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url

from bot.business import Business, load_business
from bot.core.callbacks import JoinCB, LanguageCB
from bot.core.config import DEFAULT_BUSINESS_FILE, DEFAULT_FAQ_FILE, Settings
from bot.core.i18n import create_i18n
from bot.core.inbox import Inbox
from bot.core.limiter import RateLimiter
from bot.core.notices import Notices
from bot.core.scheduler import Scheduler
from bot.core.throttle import PersonThrottle
from bot.core.timers import Timers
from bot.dispatcher import create_bot, create_dispatcher
from bot.faq.service import FaqService
from bot.lifecycle.service import LifecycleService
from bot.loyalty.analytics import LoyaltyAnalytics
from bot.loyalty.service import LoyaltyService
from bot.support.service import OwnerLetters, SupportService
from bot.surveys.service import SurveyService
from storage.database import Database, Direct, upgrade_sync
from storage.models import Customer, EntryKind, LedgerEntry, Operation
from tests.fake_telegram import RecordingSession

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
ADMIN_ID = 900_001
# A test plays a whole shift in a few virtual seconds: the per-person limit of the business file
# would drop it. The flood tests set the real one (tests/abuse/test_flood.py).
TEST_THROTTLE = 10_000
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# One name for this run (and this xdist worker): its PostgreSQL database and its Redis keys, so two
# runs on one machine never touch each other's data. TEST_POSTGRES_URL names the server and the
# prefix of the database names; the run's database is created at its start and dropped at its end.
RUN_ID = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}_{secrets.token_hex(3)}"
_POSTGRES_SERVER = make_url(os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
POSTGRES_URL = _POSTGRES_SERVER.set(database=f"{_POSTGRES_SERVER.database or 'test'}_{RUN_ID}").render_as_string(
    hide_password=False
)
REDIS_PREFIX = f"test_{RUN_ID}"


async def drop_redis_keys(redis: Any, prefix: str = REDIS_PREFIX) -> None:
    """Delete this run's keys (the FSM's `prefix:…`, the send limits' `{prefix:send}:…`) and no others."""
    for pattern in (f"{prefix}:*", f"{{{prefix}:*"):
        keys = [key async for key in redis.scan_iter(match=pattern, count=500)]
        if keys:
            await redis.delete(*keys)


def postgres_database(suffix: str) -> str:
    """Another database of this run's own (dropped with the run's), for a test that needs one."""
    return (
        make_url(POSTGRES_URL)
        .set(database=f"{make_url(POSTGRES_URL).database}_{suffix}")
        .render_as_string(hide_password=False)
    )


# The tests' clock never reads the wall clock: every run starts at the same instant, a Wednesday
# in the business's time zone at TEST_CLOCK (HH:MM, default 11:00). Run the suite with
# TEST_CLOCK=03:00 and TEST_CLOCK=14:00 to see that no test depends on the time of day; a test
# about quiet or working hours sets the hour it needs (`Clock.set_local`).
BUSINESS_TZ = ZoneInfo("Europe/Warsaw")


def clock_start() -> datetime:
    hour, minute = (int(part) for part in os.environ.get("TEST_CLOCK", "11:00").split(":"))
    return datetime(2026, 3, 11, hour, minute, tzinfo=BUSINESS_TZ).astimezone(UTC)


class Clock:
    """The service's clock, moved by tests instead of sleeping."""

    def __init__(self) -> None:
        self.now = clock_start()
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def set_local(self, hour: int, minute: int = 0) -> None:
        """Move the clock forward to the next HH:MM in the business's time zone."""
        local = self.now.astimezone(BUSINESS_TZ)
        target = local.replace(hour=hour, minute=minute, second=0)
        if target <= local:
            target += timedelta(days=1)
        self.advance(seconds=(target.astimezone(UTC) - self.now).total_seconds())

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
        for deadline, waiter in list(self._sleepers):
            if deadline <= self.now:
                self._sleepers.remove((deadline, waiter))
                if not waiter.done():
                    waiter.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Sleeps until the test advances the clock past the deadline."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + timedelta(seconds=seconds), waiter))
        await waiter


class VirtualTime:
    """Monotonic seconds that pass only when someone sleeps: the send limiter's clock in tests, so
    its waits cost no real time while its order and limits still hold."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


# --- databases -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    in_thread(upgrade_sync, f"sqlite+aiosqlite:///{path}")
    return path


def in_thread(function: Any, *args: Any) -> Any:
    """Run blocking set-up that drives its own event loop (Alembic) off the test's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


def _postgres_reachable() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return None
    except OSError as error:
        return f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error}); set TEST_POSTGRES_URL or start it"


async def empty_postgres(url: str) -> None:
    """A PostgreSQL database of our own (tests, benchmarks), created when missing, with its public
    schema dropped and made again: never point it at a database you need."""
    import asyncpg

    target = make_url(url)
    server = target.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target.database):
            await connection.execute(f'CREATE DATABASE "{target.database}"')
    finally:
        await connection.close()
    db = Database(url)
    async with db.engine.begin() as transaction:
        await transaction.execute(text("DROP SCHEMA public CASCADE"))
        await transaction.execute(text("CREATE SCHEMA public"))
    await db.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    problem = _postgres_reachable()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)

    in_thread(asyncio.run, empty_postgres(POSTGRES_URL))
    in_thread(upgrade_sync, POSTGRES_URL)
    yield POSTGRES_URL
    in_thread(asyncio.run, drop_postgres_databases(POSTGRES_URL))


async def drop_postgres_databases(url: str) -> None:
    """Drop the run's database and every database named after it (`postgres_database`)."""
    import asyncpg

    target = make_url(url)
    server = target.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        names = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2",
            target.database,
            f"{target.database}\\_%",
        )
        for (name,) in names:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


TABLES = (
    "owner_letter_posts, owner_letters, notices, card_openings, broadcast_recipients, broadcasts, consent_events, "
    "faq_drafts, ticket_messages, tickets, support_threads, faq_queries, processed_updates, "
    "alerts, surveys, operations, ledger_entries, card_codes, staff_invites, staff, customers"
)


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "bot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = Database(f"sqlite+aiosqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("postgres_url"))
        async with database.engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    yield database
    await database.dispose()


# --- people --------------------------------------------------------------------------------


def person(user_id: int, first_name: str, language: str | None = "en", last_name: str | None = None) -> User:
    return User(id=user_id, is_bot=False, first_name=first_name, last_name=last_name, language_code=language)


ANNA = person(1001, "Anna", "pl", "Nowak")
IVAN = person(1002, "Иван", "ru", "Петров")
EMMA = person(1003, "Emma", "en", "Stone")
CUSTOMERS = {"pl": ANNA, "ru": IVAN, "en": EMMA}
OWNER = person(ADMIN_ID, "Olga", "en", "Owner")
CASHIER = person(2001, "Kasia", "pl", "Kowalska")
CASHIER_2 = person(2002, "Piotr", "en", "Zielinski")
STRANGER = person(3001, "Eve", "en")
MANAGER = person(4001, "Marta", "pl", "Manager")
MANAGER_2 = person(4002, "Oleg", "ru", "Manager")
GROUP_ID = -1001000000001  # the managers' group


# --- the harness ---------------------------------------------------------------------------


@dataclass
class Harness:
    bot: Bot
    dp: Dispatcher
    session: RecordingSession
    db: Database
    loyalty: LoyaltyService
    business: Business
    clock: Clock
    surveys: SurveyService
    _update_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _message_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # building updates

    def message_update(self, user: User, text: str | None = None, **fields: Any) -> Update:
        message = Message(
            message_id=next(self._message_ids),
            date=self.clock(),
            chat=Chat(id=user.id, type="private", first_name=user.first_name),
            from_user=user,
            text=text,
            **fields,
        )
        return Update(update_id=next(self._update_ids), message=message)

    def group_update(self, user: User, text: str | None = None, **fields: Any) -> Update:
        message = Message(
            message_id=next(self._message_ids),
            date=self.clock(),
            chat=Chat(id=GROUP_ID, type="supergroup", title="Managers"),
            from_user=user,
            text=text,
            **fields,
        )
        return Update(update_id=next(self._update_ids), message=message)

    def callback_update(
        self, user: User, data: CallbackData | str, message: Message | None = None, chat_id: int | None = None
    ) -> Update:
        packed = data.pack() if isinstance(data, CallbackData) else data
        if message is None:
            # Pressed where Telegram shows it: on the newest message carrying this button; a
            # button no message shows (forged, or from before the test) on a message of its own.
            chat_id = chat_id or user.id
            carrier = self.session.carrying(chat_id, packed)
            message_id, text = carrier if carrier is not None else (next(self._message_ids), "…")
            message = Message(
                message_id=message_id,
                date=self.clock(),
                chat=Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup"),
                text=text or "…",
            )
        query = CallbackQuery(
            id=str(next(self._update_ids)), from_user=user, chat_instance="ci", data=packed, message=message
        )
        return Update(update_id=next(self._update_ids), callback_query=query)

    async def feed(self, update: Update) -> None:
        await self.dp.feed_update(self.bot, update)

    async def send(self, user: User, text: str) -> None:
        await self.feed(self.message_update(user, text))

    async def send_photo(self, user: User, image: bytes) -> None:
        file_id = f"photo{next(self._message_ids)}"
        self.session.files[f"{file_id}"] = image
        photo = [PhotoSize(file_id=file_id, file_unique_id=file_id, width=600, height=600, file_size=len(image))]
        await self.feed(self.message_update(user, None, photo=photo))

    async def press(self, user: User, data: CallbackData | str, message: Message | None = None) -> None:
        await self.feed(self.callback_update(user, data, message))

    async def send_group(self, user: User, text: str | None = None, **fields: Any) -> None:
        await self.feed(self.group_update(user, text, **fields))

    async def press_group(self, user: User, data: CallbackData | str) -> None:
        """A button pressed under a message in the managers' group."""
        await self.feed(self.callback_update(user, data, chat_id=GROUP_ID))

    async def tick(self) -> None:
        """One round of the background scheduler (due surveys), as the running bot does it."""
        await self.dp["scheduler"].run_once(self.bot)

    # reading what the bot did

    def texts(self, chat_id: int) -> list[str]:
        """Every text or caption the bot sent to, or edited in, a chat, in order."""
        out = []
        refused = {id(request) for request in self.session.refused}
        for request in self.session.requests:
            if id(request) in refused:  # Telegram failed it: nobody read it
                continue
            if isinstance(request, (SendMessage, EditMessageText)) and int(request.chat_id or 0) == chat_id:
                out.append(request.text)
            elif isinstance(request, SendPhoto) and int(request.chat_id) == chat_id:
                out.append(request.caption or "")
            elif isinstance(request, EditMessageMedia) and int(request.chat_id or 0) == chat_id:
                out.append(request.media.caption or "")
        return out

    def last(self, chat_id: int) -> str:
        texts = self.texts(chat_id)
        assert texts, f"the bot sent nothing to {chat_id}"
        return texts[-1]

    def alerts(self) -> list[str]:
        return [r.text or "" for r in self.session.requests if isinstance(r, AnswerCallbackQuery)]

    def sent(self, kind: type, chat_id: int) -> list[Any]:
        return [
            r for r in self.session.requests if isinstance(r, kind) and int(getattr(r, "chat_id", 0) or 0) == chat_id
        ]

    def last_markup(self, chat_id: int) -> Any:
        for request in reversed(self.session.requests):
            if isinstance(request, (SendMessage, SendPhoto, EditMessageText, EditMessageReplyMarkup, EditMessageMedia)):
                if int(getattr(request, "chat_id", 0) or 0) == chat_id and request.reply_markup is not None:
                    return request.reply_markup
        raise AssertionError(f"no keyboard was sent to {chat_id}")

    def button(self, chat_id: int, label_part: str) -> str:
        """The callback data of the button whose label contains `label_part` in the last keyboard."""
        markup = self.last_markup(chat_id)
        for row in markup.inline_keyboard:
            for button in row:
                if label_part in button.text:
                    return button.callback_data
        labels = [b.text for row in markup.inline_keyboard for b in row]
        raise AssertionError(f"no button with {label_part!r} in {labels}")

    async def eventually(self, condition: Any, attempts: int = 200) -> None:
        """Let background jobs run until `condition()` holds (bounded, never a timing assertion)."""
        for _ in range(attempts):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the expected effect never happened")

    def clear(self) -> None:
        self.session.requests.clear()

    # shortcuts for common states

    async def customer(self, user: User) -> Customer:
        async with self.db.reading() as session:
            customer = await session.scalar(select(Customer).where(Customer.telegram_id == user.id))
        assert customer is not None, f"{user.first_name} has no record"
        return customer

    async def join(self, user: User) -> None:
        await self.send(user, "/start")
        await self.press(user, JoinCB())

    async def make_cashier(self, user: User) -> None:
        await self.send(OWNER, "/invite")
        link = self.last(OWNER.id).split("start=")[1].split()[0]
        await self.send(user, f"/start {link}")

    async def card_token(self, user: User) -> str:
        """Have the customer open /card and read the code in the QR image the bot drew."""
        from bot.loyalty.qr import read_qr
        from bot.loyalty.rules import token_from_card_link

        await self.send(user, "/card")
        photo = self.sent(SendPhoto, user.id)[-1]
        token = token_from_card_link(read_qr(photo.photo.data)[0])
        assert token is not None
        return token


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def stop_process(process: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM, as a service manager stops the bot; SIGKILL if it is still there after `grace` s."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextmanager
def recorded_sql(db: Database) -> Iterator[list[str]]:
    """The SQL statements the database runs inside the block, the ORM's and the driver's
    (`Database.direct`), each rollback of the ORM's as "ROLLBACK"."""
    statements: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def rolled_back(_conn: Any) -> None:
        statements.append("ROLLBACK")

    bind = Direct._bind

    def bound(direct: Direct, sql: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        statements.append(sql)
        return bind(direct, sql, args)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", executed)
    event.listen(engine, "rollback", rolled_back)
    Direct._bind = bound  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        Direct._bind = bind  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", executed)
        event.remove(engine, "rollback", rolled_back)


def hold_history(h: Harness, monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """Make /history slow: once a handler is inside it (`entered` set) it waits until the test sets
    `release`, then answers as usual."""
    entered, release = asyncio.Event(), asyncio.Event()
    original = h.loyalty.history

    async def slow(customer_id: int, limit: int = 10):  # type: ignore[no-untyped-def]
        entered.set()
        await release.wait()
        return await original(customer_id, limit)

    monkeypatch.setattr(h.loyalty, "history", slow)
    return entered, release


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "admin_ids": str(ADMIN_ID),
        "business_file": DEFAULT_BUSINESS_FILE,
        "database_url": "sqlite+aiosqlite:///unused.db",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def business() -> Business:
    return load_business(DEFAULT_BUSINESS_FILE)


def build_harness(
    db: Database,
    business: Business,
    settings: Settings,
    bot: Bot,
    session: RecordingSession,
    clock: Clock,
    **extra: Any,
) -> Harness:
    """The production dispatcher with every service on the test's clock (one bot instance)."""
    loyalty = LoyaltyService(db, business, clock=clock, admin_ids=settings.admin_ids)
    surveys = SurveyService(db, business, clock=clock)
    dp = create_dispatcher(
        settings,
        business,
        db,
        create_i18n(business.default_language),
        loyalty=loyalty,
        surveys=surveys,
        support=SupportService(db, business, clock=clock),
        faq=FaqService(db, DEFAULT_FAQ_FILE, clock=clock, features=business.offers()),
        lifecycle=LifecycleService(db, business, clock=clock),
        timers=Timers(clock.sleep),
        scheduler=Scheduler(sleep=clock.sleep),
        inbox=Inbox(db, clock=clock),
        notices=Notices(db, clock=clock),
        analytics=LoyaltyAnalytics(db, business, clock=clock),
        letters=OwnerLetters(db, business, clock=clock),
        **{"throttle": PersonThrottle(TEST_THROTTLE, now=lambda: clock().timestamp()), **extra},
    )
    return Harness(
        bot=bot, dp=dp, session=session, db=db, loyalty=loyalty, business=business, clock=clock, surveys=surveys
    )


def virtual_bot(settings: Settings, session: RecordingSession) -> Bot:
    """The production Bot whose send limiter runs on virtual time (its waits cost nothing)."""
    time = VirtualTime()
    return create_bot(settings, session=session, limiter=RateLimiter(now=time, sleep=time.sleep))


@pytest.fixture
async def harness(db: Database, business: Business) -> AsyncIterator[Harness]:
    settings = make_settings(manager_chat_id=str(GROUP_ID))
    session = RecordingSession()
    session.group_members.update({MANAGER.id, MANAGER_2.id})
    bot = virtual_bot(settings, session)
    harness = build_harness(db, business, settings, bot, session, Clock())
    yield harness
    await harness.dp.emit_shutdown(bot=bot)


# --- a café with a cashier and three members -------------------------------------------


async def entries(h: Harness, kind: EntryKind | None = None) -> list[LedgerEntry]:
    async with h.db.reading() as session:
        query = select(LedgerEntry).order_by(LedgerEntry.id)
        if kind is not None:
            query = query.where(LedgerEntry.kind == kind.value)
        return list(await session.scalars(query))


@pytest.fixture
async def shop(harness: Harness) -> Harness:
    """A café with a cashier (Kasia, Polish) and three members; the cashier uses English."""
    await harness.make_cashier(CASHIER)
    await harness.send(CASHIER, "/language")
    await harness.press(CASHIER, LanguageCB(code="en"))
    for user in (ANNA, IVAN, EMMA):
        await harness.join(user)
    harness.clear()
    return harness


async def open_card(h: Harness, user: User = EMMA) -> int:
    token = await h.card_token(user)
    await h.send(CASHIER, f"/start c_{token}")
    return (await h.customer(user)).id  # type: ignore[return-value]


async def operations(h: Harness) -> list[Operation]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(Operation).order_by(Operation.id)))
