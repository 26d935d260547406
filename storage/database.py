"""The engine and the two kinds of transaction the bot uses.

SQLite has one writer at a time, and a transaction that reads and then writes can fail at once
with "database is locked". So every writing transaction starts with `BEGIN IMMEDIATE` (taking the
write lock up front, waiting for it under `busy_timeout`), while reads start a plain deferred
`BEGIN` and never block in WAL mode. No transaction is held open across a Telegram call: services
open one, do their work and commit.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
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


_PLACEHOLDER = re.compile(r"\$(\d+)")


def placeholders(first: int, count: int) -> str:
    """`$first, …, $(first + count - 1)`: the placeholders of an IN list or of a row of VALUES."""
    return ", ".join(f"${n}" for n in range(first, first + count))


def stamp(moment: datetime) -> str:
    """A moment as SQLite's columns hold it (UTCDateTime: naive UTC, with microseconds always)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def moment(value: Any) -> datetime | None:
    """A moment as the driver reads it back: SQLite's text (naive UTC), PostgreSQL's aware value."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Direct:
    """A transaction on the driver's own connection: `execute` (rows changed), `fetchrow` and
    `fetch` (every row)."""

    def __init__(self, connection: Any, *, sqlite: bool) -> None:
        self.connection = connection
        self.sqlite = sqlite

    def _bind(self, sql: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        if not self.sqlite:
            return sql, args
        order = [int(n) - 1 for n in _PLACEHOLDER.findall(sql)]
        values = tuple(stamp(value) if isinstance(value, datetime) else value for value in args)
        return _PLACEHOLDER.sub("?", sql), tuple(values[i] for i in order)

    async def execute(self, sql: str, *args: Any) -> int:
        sql, values = self._bind(sql, args)
        if self.sqlite:
            cursor = await self.connection.execute(sql, values)
            changed_rows = int(cursor.rowcount)
            await cursor.close()
            return changed_rows
        status: str = await self.connection.execute(sql, *values)
        return int(status.rsplit(" ", 1)[-1]) if status.split(" ", 1)[0] in {"INSERT", "UPDATE", "DELETE"} else 0

    async def fetchrow(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        sql, values = self._bind(sql, args)
        if self.sqlite:
            cursor = await self.connection.execute(sql, values)
            row = await cursor.fetchone()
            await cursor.close()
            return tuple(row) if row is not None else None
        record = await self.connection.fetchrow(sql, *values)
        return tuple(record) if record is not None else None

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        sql, values = self._bind(sql, args)
        if self.sqlite:
            cursor = await self.connection.execute(sql, values)
            rows = await cursor.fetchall()
            await cursor.close()
            return [tuple(row) for row in rows]
        return [tuple(record) for record in await self.connection.fetch(sql, *values)]


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
        self._direct_connection: Any = None  # asyncpg's pool
        self._direct_sqlite_connections: list[Any] = [None, None]  # aiosqlite: the writer, the reader
        self._direct_write_lock = asyncio.Lock()
        self._direct_read_lock = asyncio.Lock()
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

    # --- the driver directly: the hot path's few statements --------------------------------------

    @asynccontextmanager
    async def direct(self, *, write: bool = True) -> AsyncIterator[Direct]:
        """One transaction through the driver itself (aiosqlite or asyncpg), for the statements every
        update runs (the inbox's). SQLAlchemy's async layer costs a greenlet switch and a thread hop
        per statement, about 1-2 ms of CPU a transaction here, against a tenth of that through the
        driver. SQL is written with `$1, $2 …` placeholders; on SQLite they become `?`. On SQLite
        a write takes this process's write turn, as `writing` does, on the one direct writing
        connection; a read is one statement on a reading connection of its own."""
        if self.is_sqlite:
            if write:
                async with self._turn_to_write(), self._direct_write_lock:
                    connection = await self._direct_sqlite(0)
                    await connection.execute("BEGIN IMMEDIATE")
                    try:
                        yield Direct(connection, sqlite=True)
                    except BaseException:
                        await connection.execute("ROLLBACK")
                        raise
                    await connection.execute("COMMIT")
                return
            # A read: one statement on a connection of its own, atomic without a BEGIN.
            async with self._direct_read_lock:
                yield Direct(await self._direct_sqlite(1), sqlite=True)
            return
        pool = await self._direct_pool()
        async with pool.acquire() as connection, connection.transaction(readonly=not write):
            yield Direct(connection, sqlite=False)

    async def _direct_sqlite(self, which: int) -> Any:
        """SQLite's direct connections: 0 writes, 1 reads."""
        if self._direct_sqlite_connections[which] is None:
            import aiosqlite

            path = make_url(self.url).database or ":memory:"
            connection = await aiosqlite.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            for pragma in (
                "PRAGMA journal_mode=WAL",
                f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
                "PRAGMA foreign_keys=ON",
                "PRAGMA synchronous=NORMAL",
            ):
                await connection.execute(pragma)
            self._direct_sqlite_connections[which] = connection
        return self._direct_sqlite_connections[which]

    async def _direct_pool(self) -> Any:
        if self._direct_connection is None:
            import asyncpg

            dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
            self._direct_connection = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        return self._direct_connection

    async def ping(self) -> None:
        """Raises unless the database answers (for /healthz)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        for connection in (self._direct_connection, *self._direct_sqlite_connections):
            if connection is not None:
                await connection.close()
        self._direct_connection, self._direct_sqlite_connections = None, [None, None]
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
