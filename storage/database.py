"""The engine and the two kinds of transaction the bot uses.

SQLite has one writer at a time, and a transaction that reads and then writes can fail at once
with "database is locked". So every writing transaction starts with `BEGIN IMMEDIATE` (taking the
write lock up front, waiting for it under `busy_timeout`), while reads start a plain deferred
`BEGIN` and never block in WAL mode. No transaction is held open across a Telegram call: services
open one, do their work and commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite
import sqlalchemy.exc
from sqlalchemy import event, text
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_EVERY = 200  # commits between two checkpoints of the WAL (a few pages each)
_WAITS = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}  # another connection holds the lock: wait for it

R = TypeVar("R")

_ON_THE_LOOP: ContextVar[bool] = ContextVar("sqlite_on_the_loop", default=False)


@contextmanager
def on_the_loop(allowed: bool = True) -> Iterator[None]:
    """SQLite: while an update is handled (`InboxMiddleware` says so), the ORM's statements run on
    the loop's own thread (`LoopAiosqlite`); outside, in scheduled jobs, and in a transaction
    opened with `bulk=True` (a report, an export, an audience), in aiosqlite's thread, so that a
    long one never holds the loop. PostgreSQL: nothing changes."""
    token = _ON_THE_LOOP.set(allowed)
    try:
        yield
    finally:
        _ON_THE_LOOP.reset(token)


def _waits(error: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused a statement because another connection holds a lock (it did nothing)."""
    return getattr(error, "sqlite_errorcode", 0) & 0xFF in _WAITS


class LoopAiosqlite(aiosqlite.Connection):
    """aiosqlite's connection, for the ORM's engine, whose calls run on the loop's thread where
    `on_the_loop` allows it: a short statement takes microseconds, and aiosqlite's hand-off to its
    thread and back cost 40-50 us of CPU a call (four calls a statement through SQLAlchemy). On
    the loop the busy timeout is 0: a call that finds the database locked by another process runs
    again in the thread, which waits for the lock with the full busy timeout, as does every call
    made off the loop. While a call is in the thread (its waiter may have been cancelled), the
    next ones queue behind it there: the connection is never used by two threads at once, and the
    loop never waits for the connection's own lock."""

    _patient = True  # the busy timeout the connection was opened with (the full one)
    _thread_done: Sequence[bool] = (True,)  # the last call handed to the thread: a list it sets when it ends

    async def _execute(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if _ON_THE_LOOP.get() and self._thread_done[0]:
            if self._patient:
                self._connection.execute("PRAGMA busy_timeout=0")
                self._patient = False
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                if not _waits(error):
                    raise
        done = [False]
        self._thread_done = done  # the thread runs calls in order: the last one handed over ends last
        result: R = await super()._execute(self._patiently, done, fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        return result

    def _patiently(self, done: list[bool], fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """In aiosqlite's thread: the call, with the full busy timeout."""
        try:
            if not self._patient:
                self._conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                self._patient = True
            return fn(*args, **kwargs)
        finally:
            done[0] = True


async def _connect_sqlite(path: str) -> LoopAiosqlite:
    connector = partial(sqlite3.connect, path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    connection = LoopAiosqlite(connector, 64)
    connection._thread.daemon = True  # as SQLAlchemy makes its own: an engine left open does not hold up the exit
    return cast("LoopAiosqlite", await connection)


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; we emit BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # the busy timeout is the connection's (`LoopAiosqlite`)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # a checkpoint syncs the file: `Database` has a thread do it
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


class InlineSQLite:
    """One of the hot path's SQLite connections, whose statements run on the event loop's own
    thread. A short statement in WAL mode takes a few microseconds; handed to aiosqlite's thread
    and back it cost 40-50 us of CPU a hop, and a fetched row made three hops (measured here:
    125 us against 3 us a statement). A statement runs on the loop only while it cannot wait: the
    connection's busy timeout is 0, and one that finds the database locked (another process
    writes, or the WAL is being recovered) is run again in a thread, with the full busy timeout,
    so the loop never waits for a lock. This connection never checkpoints the WAL itself (a
    checkpoint writes the database file and syncs it): `Database` has it done in a thread."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)

    @classmethod
    async def open(cls, path: str) -> InlineSQLite:
        inline = cls(path)
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA wal_autocheckpoint=0",
        ):
            await inline.run(inline.connection.execute, pragma)
        return inline

    async def run(self, work: Callable[..., R], *args: Any) -> R:
        """`work(*args)` on the loop's thread; in a thread, waiting for the lock, if it found the
        database locked. A statement refused as locked did nothing, so running it again is safe."""
        try:
            return work(*args)
        except sqlite3.OperationalError as error:
            if not _waits(error):
                raise
        return await _to_thread_to_the_end(self._waiting, work, *args)

    def _waiting(self, work: Callable[..., R], *args: Any) -> R:
        self.connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        try:
            return work(*args)
        finally:
            self.connection.execute("PRAGMA busy_timeout=0")

    async def close(self) -> None:
        self.connection.close()


async def _to_thread_to_the_end(work: Callable[..., R], *args: Any) -> R:
    """`work` in a thread; if the caller is cancelled meanwhile (once or more), it still waits for
    the thread to end before it goes (the connection must not be used by two threads at once)."""
    running = asyncio.ensure_future(asyncio.to_thread(work, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        while not running.done():
            with contextlib.suppress(BaseException):
                await asyncio.shield(running)
        raise


def _all(connection: sqlite3.Connection, sql: str, values: tuple[Any, ...]) -> list[Any]:
    return connection.execute(sql, values).fetchall()


def _count(connection: sqlite3.Connection, sql: str, values: tuple[Any, ...]) -> int:
    return connection.execute(sql, values).rowcount


class Direct:
    """A transaction on the driver's own connection: `execute` (rows changed), `fetchrow` and
    `fetch` (every row). On SQLite the connection is an `InlineSQLite`. With `one`, the block runs
    one statement, which commits by itself: a second is a mistake, refused."""

    def __init__(self, connection: Any, *, sqlite: bool, one: bool = False) -> None:
        self.connection = connection
        self.sqlite = sqlite
        self.one = one
        self._ran = 0

    def _bind(self, sql: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        self._ran += 1
        if self.one and self._ran > 1:
            raise RuntimeError("a second statement in a block of one: it would not be atomic with the first")
        if not self.sqlite:
            return sql, args
        order = [int(n) - 1 for n in _PLACEHOLDER.findall(sql)]
        values = tuple(stamp(value) if isinstance(value, datetime) else value for value in args)
        return _PLACEHOLDER.sub("?", sql), tuple(values[i] for i in order)

    async def execute(self, sql: str, *args: Any) -> int:
        sql, values = self._bind(sql, args)
        if self.sqlite:
            changed_rows: int = await self.connection.run(_count, self.connection.connection, sql, values)
            return changed_rows
        status: str = await self.connection.execute(sql, *values)
        return int(status.rsplit(" ", 1)[-1]) if status.split(" ", 1)[0] in {"INSERT", "UPDATE", "DELETE"} else 0

    async def fetchrow(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        sql, values = self._bind(sql, args)
        if self.sqlite:
            rows = await self.connection.run(_all, self.connection.connection, sql, values)
            return tuple(rows[0]) if rows else None
        record = await self.connection.fetchrow(sql, *values)
        return tuple(record) if record is not None else None

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        sql, values = self._bind(sql, args)
        if self.sqlite:
            return [tuple(row) for row in await self.connection.run(_all, self.connection.connection, sql, values)]
        return [tuple(record) for record in await self.connection.fetch(sql, *values)]


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._sqlite_path = parsed.database or ":memory:"  # SQLite's file, for its own connections
        if self.is_sqlite and self._sqlite_path != ":memory:":
            Path(self._sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            options["async_creator"] = partial(_connect_sqlite, self._sqlite_path)
            options["pool_size"] = 5
            options["max_overflow"] = 10
            options["pool_timeout"] = 60
        else:
            # No ping before every checkout (a round trip each: 13-24% of a FAQ question's or a
            # Confirm's time): connections are recycled after 5 minutes instead, and a connection
            # the server dropped fails its statement once, invalidating the pool, and the inbox
            # replays that update.
            options["pool_recycle"] = 300
            # Connections kept for the updates handled at once: with SQLAlchemy's 5, a burst's
            # sixth and later opened a connection and closed it again (181-199 in a bench run at
            # 100 updates/s, each a server process and the driver's type set-up on the loop),
            # and updates waited up to 270 ms to start; with 20, 26-29 in a run and 7 ms.
            options["pool_size"] = 20
        self.engine = create_async_engine(url, **options)
        if self.is_sqlite:
            _prepare_sqlite(self.engine)
            event.listen(self.engine.sync_engine, "commit", lambda _connection: self._committed())
        self._write_turn = asyncio.Lock() if self.is_sqlite else None
        self._write_owner: asyncio.Task[Any] | None = None
        self.write_wait = SQLITE_BUSY_TIMEOUT_MS / 1000  # seconds a writer waits for its turn
        self._direct_connection: Any = None  # asyncpg's pool
        self._direct_sqlite_connections: list[InlineSQLite | None] = [None, None]  # the writer, the reader
        self._commits = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._direct_write_lock = asyncio.Lock()
        self._direct_read_lock = asyncio.Lock()
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(self.engine.execution_options(write=True), expire_on_commit=False)

    @asynccontextmanager
    async def reading(self, *, bulk: bool = False) -> AsyncIterator[AsyncSession]:
        """A transaction that reads. `bulk`: it may read many rows (a report, an export), so on
        SQLite its statements run off the loop (`on_the_loop`)."""
        with on_the_loop(False) if bulk else contextlib.nullcontext():
            async with self._reader() as session, session.begin():
                yield session

    @asynccontextmanager
    async def writing(self, *, bulk: bool = False) -> AsyncIterator[AsyncSession]:
        """A transaction that writes: committed on success, rolled back on any exception. `bulk`:
        as for `reading`.

        SQLite lets one transaction write at a time. Left to the file lock, the others poll it
        with SQLite's busy handler, sleeping 1, 2, 5 … up to 100 ms between tries, so under load
        writers queue for hundreds of milliseconds while the lock sits free. In one process they
        wait their turn on an asyncio lock instead, first come first served, and the file lock
        (with its busy timeout) is left to arbitrate between processes. A writer waits for its
        turn no longer than the busy timeout, as before. Nothing inside may wait for another task
        that writes: it would wait for this one."""
        with on_the_loop(False) if bulk else contextlib.nullcontext():
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
    async def direct(self, *, write: bool = True, one: bool = False) -> AsyncIterator[Direct]:
        """One transaction through the driver itself, for the statements every update runs (the
        inbox's, the person's). SQLAlchemy's async layer costs a greenlet switch and a thread hop
        per statement, about 1-2 ms of CPU a transaction here, against a tenth of that through the
        driver. SQL is written with `$1, $2 …` placeholders; on SQLite they become `?`.

        A read is one statement, and so is a write with `one`: atomic as it is, it runs outside
        a transaction, with no BEGIN and COMMIT (on PostgreSQL two round trips of three).
        PostgreSQL: asyncpg's pool. SQLite: `InlineSQLite` connections, whose statements run on
        the loop's thread; a write takes this process's write turn, as `writing` does, on the one
        direct writing connection, and every `CHECKPOINT_EVERY` commits a thread checkpoints the
        WAL; a read runs on a reading connection of its own."""
        one = one or not write
        if self.is_sqlite:
            if not write:
                async with self._direct_read_lock:  # a read waiting in a thread for a lock keeps the connection
                    yield Direct(await self._direct_sqlite(1), sqlite=True, one=True)
                return
            async with self._turn_to_write(), self._direct_write_lock:
                inline = await self._direct_sqlite(0)
                if one:
                    yield Direct(inline, sqlite=True, one=True)
                else:
                    try:
                        await inline.run(inline.connection.execute, "BEGIN IMMEDIATE")
                        yield Direct(inline, sqlite=True)
                        await inline.run(inline.connection.execute, "COMMIT")
                    except BaseException:  # cancelled while the BEGIN waited, or a failed COMMIT too
                        if inline.connection.in_transaction:
                            inline.connection.execute("ROLLBACK")
                        raise
            self._committed()
            return
        pool = await self._direct_pool()
        async with pool.acquire() as connection:
            if one:
                yield Direct(connection, sqlite=False, one=True)
                return
            async with connection.transaction():
                yield Direct(connection, sqlite=False)

    async def _direct_sqlite(self, which: int) -> InlineSQLite:
        """SQLite's direct connections: 0 writes, 1 reads."""
        if self._direct_sqlite_connections[which] is None:
            self._direct_sqlite_connections[which] = await InlineSQLite.open(self._sqlite_path)
        inline = self._direct_sqlite_connections[which]
        assert inline is not None
        return inline

    def _committed(self) -> None:
        """Count SQLite's commits (the driver's and the ORM's); every `CHECKPOINT_EVERY`,
        checkpoint the WAL in a thread (PASSIVE: it waits for nobody and holds up no writer)."""
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and self._checkpointing is None:
            try:  # called inside the ORM's commit: nothing here may fail it
                self._checkpointing = asyncio.create_task(self._checkpoint(), name="checkpointing the WAL")
            except RuntimeError:  # no loop running (a synchronous caller): the next one will do
                logger.debug("no event loop to checkpoint the WAL from")

    async def _checkpoint(self) -> None:
        try:
            await _to_thread_to_the_end(self._checkpoint_now)
        except Exception:  # noqa: BLE001 - the next one tries again; the WAL only grows meanwhile
            logger.warning("could not checkpoint the WAL", exc_info=True)
        finally:
            self._checkpointing = None

    def _checkpoint_now(self) -> None:
        """In a thread, on a connection of its own."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(
                self._sqlite_path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    async def _direct_pool(self) -> Any:
        if self._direct_connection is None:
            import asyncpg

            dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
            self._direct_connection = await asyncpg.create_pool(dsn, min_size=1, max_size=10, reset=_keep_session)
        return self._direct_connection

    async def ping(self) -> None:
        """Raises unless the database answers (for /healthz)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing
        if self._direct_connection is not None:
            await self._direct_connection.close()
        for inline in self._direct_sqlite_connections:
            if inline is not None:
                await inline.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._direct_connection, self._direct_sqlite_connections = None, [None, None]
        self._checkpointer = None
        await self.engine.dispose()


async def _keep_session(_connection: Any) -> None:
    """A direct connection going back to asyncpg's pool keeps its session: the hot path sets
    nothing that outlives a transaction (no SET, LISTEN or session advisory lock), and asyncpg's
    default reset cost a round trip each time. An open transaction is still rolled back."""


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
