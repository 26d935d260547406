"""Alembic migrations create the schema the models describe, and upgrading keeps the data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy.exc
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.database import Database, migrate
from tests.conftest import Harness


async def test_models_and_migrations_agree(db: Database) -> None:
    def diff(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    async with db.engine.connect() as connection:
        changes = await connection.run_sync(diff)
    assert changes == [], f"models changed without a migration: {changes}"


async def test_startup_upgrade_keeps_existing_data(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await migrate(url)
    db = Database(url)
    from bot.business import load_business
    from bot.core.config import DEFAULT_BUSINESS_FILE
    from bot.loyalty.service import LoyaltyService

    loyalty = LoyaltyService(db, load_business(DEFAULT_BUSINESS_FILE))
    customer = await loyalty.ensure_customer(7, "Zoe", None, None, "en")
    joined = await loyalty.join(customer.id)  # type: ignore[arg-type]
    await db.dispose()

    await migrate(url)  # as at every start
    db = Database(url)
    loyalty = LoyaltyService(db, load_business(DEFAULT_BUSINESS_FILE))
    again = await loyalty.customer(customer.id)  # type: ignore[arg-type]
    assert again is not None and again.card_number == joined.customer.card_number and again.balance == 50
    assert len(await loyalty.history(customer.id)) == 1  # type: ignore[arg-type]
    await db.dispose()


async def test_sqlite_runs_in_wal_mode(harness: Harness) -> None:
    if not harness.db.is_sqlite:
        return
    async with harness.db.reading() as session:
        mode = (await session.execute(text("PRAGMA journal_mode"))).scalar()
        timeout = (await session.execute(text("PRAGMA busy_timeout"))).scalar()
    assert mode == "wal" and timeout == 30_000


async def test_sqlite_writers_take_turns_in_one_process(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    async with db.writing() as session:
        await session.execute(text("CREATE TABLE turns (n INTEGER)"))
    order: list[str] = []

    async def write(n: int) -> None:
        async with db.writing() as session:
            order.append(f"in {n}")
            await session.execute(text("INSERT INTO turns (n) VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.01)  # a transaction that awaits: nobody else's write starts meanwhile
            order.append(f"out {n}")

    try:
        await asyncio.gather(*(write(n) for n in range(20)))
        assert order == [step for n in range(20) for step in (f"in {n}", f"out {n}")]  # first come, first served
        async with db.reading() as session:
            assert (await session.execute(text("SELECT count(*) FROM turns"))).scalar() == 20

        async with db.writing():
            with pytest.raises(RuntimeError, match="inside another"):  # instead of waiting for itself
                async with db.writing():
                    pass
        async with db.writing() as session:  # the turn was given back
            await session.execute(text("DELETE FROM turns"))

        held, release = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with db.writing():
                held.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await held.wait()
        db.write_wait = 0.05
        with pytest.raises(sqlalchemy.exc.TimeoutError, match="database is locked"):  # not forever
            async with db.writing():
                pass
        release.set()
        await holder
        async with db.writing() as session:
            await session.execute(text("INSERT INTO turns (n) VALUES (1)"))
    finally:
        await db.dispose()
