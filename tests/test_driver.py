"""The statements of an update, as the drivers run them. SQLite's run on the loop's thread while
an update is handled, but never wait there: a lock held by another process is waited for in a
thread, a bulk read (a report) runs in a thread, and the WAL is checkpointed in a thread.
PostgreSQL's direct reads are one statement each, with no transaction around them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import func, select, text
from sqlmodel import col

import storage.database
from storage.database import Database, on_the_loop
from storage.models import Customer, FaqQuery
from tests.conftest import Harness, person


@pytest.fixture
async def sqlite_db(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    path = tmp_path / "inline.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite+aiosqlite:///{path}")
    yield database, path
    await database.dispose()


async def _record(db: Database, update_id: int, *, one: bool = False) -> None:
    async with db.direct(one=one) as tx:
        await tx.execute(
            "INSERT INTO processed_updates (update_id, processed_at, attempts) VALUES ($1, CURRENT_TIMESTAMP, 1)",
            update_id,
        )


def _another_process_writing(path: Path) -> sqlite3.Connection:
    """A connection of its own holding the database's write lock, as another process would."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


async def _turns_until_it_commits(other: sqlite3.Connection, after: float = 0.5) -> int:
    """`other` commits from a thread `after` seconds from now: how many times the loop turned
    (a 10 ms sleep each) while it still held the lock. A loop stuck waiting for it turns once."""
    held = threading.Event()
    held.set()

    def commit() -> None:
        other.execute("COMMIT")
        held.clear()

    timer = threading.Timer(after, commit)
    timer.start()
    turns = 0
    while held.is_set():
        await asyncio.sleep(0.01)
        turns += 1
    timer.join()
    other.close()
    return turns


async def _recorded(db: Database) -> list[int]:
    async with db.direct(write=False) as tx:
        return [row[0] for row in await tx.fetch("SELECT update_id FROM processed_updates ORDER BY update_id")]


async def test_a_write_waits_for_another_process_in_a_thread_while_the_loop_goes_on(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    await _record(db, 1)  # the connections are open
    other = _another_process_writing(path)
    other.execute("INSERT INTO processed_updates (update_id, processed_at, attempts) VALUES (2, CURRENT_TIMESTAMP, 1)")

    turns = asyncio.create_task(_turns_until_it_commits(other))  # counting before the write starts
    writing = asyncio.create_task(_record(db, 3))
    await asyncio.sleep(0.05)
    assert not writing.done()
    assert await _recorded(db) == [1]  # a read does not wait for the writer (WAL)
    assert await turns >= 10, "the loop stood still while the write waited"
    await asyncio.wait_for(writing, 5)
    assert await _recorded(db) == [1, 2, 3]


async def test_a_direct_write_that_fails_rolls_back_and_the_connection_goes_on(db: Database) -> None:
    await _record(db, 1)
    with pytest.raises(Exception, match="(?i)unique|duplicate") as failure:
        async with db.direct() as tx:
            await tx.execute(
                "INSERT INTO processed_updates (update_id, processed_at, attempts) VALUES (5, CURRENT_TIMESTAMP, 1)"
            )
            await _insert_again(tx)
    assert not isinstance(failure.value, AssertionError)
    await _record(db, 6)
    assert await _recorded(db) == [1, 6]


async def test_a_direct_read_on_postgresql_is_one_statement_outside_a_transaction(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's pool")
    await _record(db, 1)
    async with db.direct(write=False) as tx:
        assert not tx.connection.is_in_transaction()  # no BEGIN and COMMIT around it
        assert await tx.fetch("SELECT update_id FROM processed_updates") == [(1,)]
    async with db.direct() as tx:
        assert tx.connection.is_in_transaction()


async def _insert_again(tx: storage.database.Direct) -> None:
    await tx.execute(
        "INSERT INTO processed_updates (update_id, processed_at, attempts) VALUES (1, CURRENT_TIMESTAMP, 1)"
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_the_wal_is_checkpointed_in_a_thread_every_so_many_commits(
    sqlite_db: tuple[Database, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, path = sqlite_db
    monkeypatch.setattr(storage.database, "CHECKPOINT_EVERY", 5)
    assert await _recorded(db) == []  # the file is in WAL mode from here on
    before = _digest(path)
    for update_id in range(1, 5):  # 4 commits: the loop's connection never checkpoints
        await _record(db, update_id)
        await asyncio.sleep(0.01)
    assert _digest(path) == before, "the database file was written by a commit on the loop"

    await _record(db, 5)  # the 5th: a thread checkpoints
    for _ in range(500):
        if _digest(path) != before:
            break
        await asyncio.sleep(0.01)
    assert _digest(path) != before, "the WAL was not checkpointed"
    assert await _recorded(db) == [1, 2, 3, 4, 5]


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls handed to aiosqlite's thread (the ORM's connections)."""
    handed: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object, **kwargs: object) -> object:
        handed.append(repr(args[0] if args else fn))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return handed


async def test_an_update_is_handled_without_a_hand_off_to_a_thread(harness: Harness, hand_offs: list[str]) -> None:
    if not harness.db.is_sqlite:
        pytest.skip("SQLite's connections only")
    emma = person(8101, "Emma")
    await harness.send(emma, "hello")  # the connections are open
    hand_offs.clear()
    await harness.send(emma, "what's the wifi password?")  # the FAQ's statements go through the ORM
    assert "Wi-Fi" in harness.last(emma.id) or "Wi‑Fi" in harness.last(emma.id)
    assert hand_offs == []
    async with harness.db.reading() as session:
        asked = await session.scalar(select(func.count()).select_from(FaqQuery))
    assert asked == 1


async def test_a_job_and_a_bulk_read_run_in_the_thread(harness: Harness, hand_offs: list[str]) -> None:
    if not harness.db.is_sqlite:
        pytest.skip("SQLite's connections only")
    db = harness.db
    async with db.reading() as session:  # no update is handled: a job's read
        await session.scalar(select(func.count()).select_from(Customer))
    assert hand_offs, "a job's statements ran on the loop"
    hand_offs.clear()
    with on_the_loop():
        async with db.reading() as session:
            await session.scalar(select(func.count()).select_from(Customer))
        assert hand_offs == []
        async with db.reading(bulk=True) as session:  # a report, inside an update
            await session.scalar(select(func.count()).select_from(Customer).where(col(Customer.id) > 0))
        assert hand_offs, "a bulk read ran on the loop"


RECORD = text("INSERT INTO processed_updates (update_id, processed_at, attempts) VALUES (:u, CURRENT_TIMESTAMP, 1)")


async def _record_on_the_loop(db: Database, update_id: int) -> None:
    """An update's write through the ORM, as a handler makes it."""
    with on_the_loop():
        async with db.writing() as session:
            await session.execute(RECORD, {"u": update_id})


async def test_the_orm_on_the_loop_waits_for_another_process_in_the_thread(
    sqlite_db: tuple[Database, Path], hand_offs: list[str]
) -> None:
    db, path = sqlite_db

    await _record_on_the_loop(db, 1)
    assert hand_offs == []
    other = _another_process_writing(path)
    turns = asyncio.create_task(_turns_until_it_commits(other))  # counting before the write starts
    writing = asyncio.create_task(_record_on_the_loop(db, 2))
    await asyncio.sleep(0.05)
    assert not writing.done() and hand_offs, "the write did not wait in the thread"
    assert await turns >= 10, "the loop stood still while the write waited"
    await asyncio.wait_for(writing, 5)
    hand_offs.clear()
    await _record_on_the_loop(db, 3)  # back on the loop, with no busy timeout there
    assert hand_offs == []
    assert await _recorded(db) == [1, 2, 3]


async def test_a_write_of_one_statement_commits_by_itself_and_refuses_a_second(db: Database) -> None:
    async with db.direct(one=True) as tx:
        if not db.is_sqlite:
            assert not tx.connection.is_in_transaction()
        await tx.execute(
            "INSERT INTO processed_updates (update_id, processed_at, attempts) VALUES (7, CURRENT_TIMESTAMP, 1)"
        )
    assert await _recorded(db) == [7]
    with pytest.raises(RuntimeError, match="second statement"):
        async with db.direct(one=True) as tx:
            await tx.execute("UPDATE processed_updates SET attempts = 2 WHERE update_id = 7")
            await tx.execute("UPDATE processed_updates SET attempts = 3 WHERE update_id = 7")
    async with db.direct(write=False) as tx:
        assert await tx.fetchrow("SELECT attempts FROM processed_updates WHERE update_id = 7") == (2,)


async def test_a_row_read_through_the_driver_has_python_values(harness: Harness) -> None:
    """SQLite hands back datetimes as text and booleans as 0 and 1; the row read through the
    driver has datetimes and booleans, as the ORM's would."""
    from datetime import datetime

    from storage.repositories import one_by

    emma = person(8102, "Emma")
    await harness.send(emma, "what's the wifi password?")
    async with harness.db.reading() as session:
        query = await session.scalar(select(FaqQuery))
    assert query is not None and query.id is not None
    faq = harness.dp["faq"]
    await faq.rate(query.id, query.customer_id, helpful=False)
    async with harness.db.direct(write=False) as tx:
        read = await one_by(tx, FaqQuery, "id", query.id)
    assert read is not None and read.helpful is False and isinstance(read.created_at, datetime)
    assert read.created_at.tzinfo is not None
    async with harness.db.reading() as session:
        loaded = await session.scalar(select(FaqQuery))
    assert read == loaded and read.model_dump() == loaded.model_dump()  # as the ORM loads it


async def test_a_direct_write_cancelled_while_it_waits_for_the_lock_leaves_nothing_open(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    await _record(db, 1)
    other = _another_process_writing(path)
    waiting = asyncio.create_task(_record(db, 2))
    await asyncio.sleep(0.2)
    waiting.cancel()  # a shutdown, say, while its BEGIN waits in a thread
    await asyncio.sleep(0.05)
    other.execute("COMMIT")
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await _record(db, 3)  # the writer is free again, and what it writes is committed
    await _record(db, 4, one=True)
    plain = sqlite3.connect(path)
    assert [row[0] for row in plain.execute("SELECT update_id FROM processed_updates ORDER BY 1")] == [1, 3, 4]
    plain.close()


async def test_an_orm_call_cancelled_in_the_thread_does_not_hold_up_the_loop(sqlite_db: tuple[Database, Path]) -> None:
    db, path = sqlite_db

    await _record_on_the_loop(db, 1)
    other = _another_process_writing(path)
    waiting = asyncio.create_task(_record_on_the_loop(db, 2))
    await asyncio.sleep(0.2)
    waiting.cancel()  # SQLAlchemy then closes the connection, while its thread still waits
    assert await _turns_until_it_commits(other) >= 10, "the loop stood still while the lock was held"
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 10)
    await _record_on_the_loop(db, 3)
    assert await _recorded(db) == [1, 3]
