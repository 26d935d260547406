"""The engine and the two kinds of transaction the bot uses.

SQLite has one writer at a time, and a transaction that reads and then writes can fail at once
with "database is locked". So every writing transaction starts with `BEGIN IMMEDIATE` (taking the
write lock up front, waiting for it under `busy_timeout`), while reads start a plain deferred
`BEGIN` and never block in WAL mode. No transaction is held open across a Telegram call: services
open one, do their work and commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import sqlalchemy.exc
from sqlalchemy import event, text
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; we emit BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            options["pool_size"] = 5
            options["max_overflow"] = 10
            options["pool_timeout"] = 60
        else:
            # No ping before every checkout (a round trip each: 13-24% of a FAQ question's or a
            # Confirm's time): connections are recycled after 5 minutes instead, and a connection
            # the server dropped fails its statement once, invalidating the pool, and the inbox
            # replays that update.
            options["pool_recycle"] = 300
        self.engine = create_async_engine(url, **options)
        if self.is_sqlite:
            _prepare_sqlite(self.engine)
        self._write_turn = asyncio.Lock() if self.is_sqlite else None
        self._write_owner: asyncio.Task[Any] | None = None
        self.write_wait = SQLITE_BUSY_TIMEOUT_MS / 1000  # seconds a writer waits for its turn
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(self.engine.execution_options(write=True), expire_on_commit=False)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session, session.begin():
            yield session

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A transaction that writes: committed on success, rolled back on any exception.

        SQLite lets one transaction write at a time. Left to the file lock, the others poll it
        with SQLite's busy handler, sleeping 1, 2, 5 … up to 100 ms between tries, so under load
        writers queue for hundreds of milliseconds while the lock sits free. In one process they
        wait their turn on an asyncio lock instead, first come first served, and the file lock
        (with its busy timeout) is left to arbitrate between processes. A writer waits for its
        turn no longer than the busy timeout, as before. Nothing inside may wait for another task
        that writes: it would wait for this one."""
        async with self._turn_to_write(), self._writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _turn_to_write(self) -> AsyncIterator[None]:
        """SQLite: this process's turn to write (see `writing`); PostgreSQL: nothing to wait for."""
        if self._write_turn is None:
            yield
            return
        task = asyncio.current_task()
        if task is not None and task is self._write_owner:  # it would wait for itself
            raise RuntimeError("a write transaction opened inside another one on SQLite")
        try:
            async with asyncio.timeout(self.write_wait):
                await self._write_turn.acquire()
        except TimeoutError:
            raise sqlalchemy.exc.TimeoutError("waited too long for SQLite's write turn (database is locked)") from None
        self._write_owner = task
        try:
            yield
        finally:
            self._write_owner = None
            self._write_turn.release()

    async def ping(self) -> None:
        """Raises unless the database answers (for /healthz)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade_sync(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


async def migrate(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations; runs in a thread because Alembic drives its own event loop."""
    await asyncio.to_thread(upgrade_sync, url, revision)


def changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed. `execute` is typed to return a `Result`; for such
    a statement it is a `CursorResult`, which carries the count."""
    return cast("CursorResult[Any]", result).rowcount


def ids(values: Iterable[int | None]) -> list[int]:
    """Primary keys read from the database. SQLModel types a table's `id` as `int | None` (a row not
    yet flushed has none); read back, every one is set."""
    out = []
    for value in values:
        assert value is not None, "a stored row without its id"
        out.append(value)
    return out
