"""aiogram runs every sync filter or handler through `asyncio.to_thread` (about 0.2 ms a hop, a
dozen or more for one text message once). Every handler and filter the bot registers is async."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram import Router
from sqlalchemy import func, select
from sqlmodel import col

from handlers import get_routers
from storage.database import Direct
from storage.models import ProcessedUpdate
from tests.conftest import ANNA, EMMA, IVAN, Harness


def _all(router: Router) -> list[Router]:
    return [router, *(r for sub in router.sub_routers for r in _all(sub))]


def test_no_sync_filter_or_handler_is_registered() -> None:
    sync = []
    for top in get_routers():
        for router in _all(top):
            for name, observer in router.observers.items():
                for filter_object in observer._handler.filters or []:  # the router's own filters
                    if not filter_object.awaitable:
                        sync.append(f"{router.name}.{name} filter {filter_object.callback!r}")
                for handler in observer.handlers:
                    if not handler.awaitable:
                        sync.append(f"{router.name}.{name} handler {handler.callback!r}")
                    for filter_object in handler.filters or []:
                        if not filter_object.awaitable:
                            sync.append(f"{router.name}.{name} {handler.callback.__name__}: {filter_object.callback!r}")
    assert sync == []


async def test_people_writing_at_the_same_moment_share_the_inbox_commits_and_one_read(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path's statements are grouped (bot/core/inbox.py, storage.repositories.ReadTogether):
    three updates arriving together are taken in one commit, their people read in one statement,
    and each person still gets their own answer (the finishes group too when they come together,
    which depends on how long each handler takes)."""
    for user in (EMMA, ANNA, IVAN):
        await harness.join(user)
    harness.clear()
    statements: list[str] = []
    writes: list[bool] = []
    fetch, direct = Direct.fetch, harness.db.direct

    async def counted_fetch(self: Direct, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        statements.append(sql)
        return await fetch(self, sql, *args)

    def counted_direct(*args: Any, **kwargs: Any) -> Any:
        writes.append(kwargs.get("write", True))
        return direct(*args, **kwargs)

    monkeypatch.setattr(Direct, "fetch", counted_fetch)
    monkeypatch.setattr(harness.db, "direct", counted_direct)
    await asyncio.gather(*(harness.send(user, "/help") for user in (EMMA, ANNA, IVAN)))
    assert len([sql for sql in statements if sql.startswith("INSERT INTO processed_updates")]) == 1
    assert len([sql for sql in statements if "FROM customers WHERE telegram_id IN" in sql]) == 1
    assert writes[:2] == [True, False]  # the takes' commit, then the read
    assert all(harness.texts(user.id) for user in (EMMA, ANNA, IVAN))
    assert harness.last(ANNA.id) != harness.last(EMMA.id)  # Anna's in Polish, Emma's in English
    async with harness.db.reading() as session:
        unfinished = await session.scalar(
            select(func.count()).select_from(ProcessedUpdate).where(col(ProcessedUpdate.finished_at).is_(None))
        )
    assert unfinished == 0


async def test_a_question_reads_the_conversation_state_once_and_asks_no_feature_that_cannot_take_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Free text passes three routing filters (a survey's follow-up, a manager's alert, an open
    request) before the FAQ: one statement tells all three, and none reads its own table when the
    state says it cannot take the message (bot/loyalty/middleware.py, Routing)."""
    await harness.join(EMMA)
    asked: list[str] = []
    for service, name in (
        (harness.dp["support"], "continuing"),
        (harness.surveys, "awaiting_comment"),
        (harness.surveys, "contacted_recently"),
    ):
        original = getattr(service, name)

        async def recorded(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            asked.append(_name)
            return await _original(*args, **kwargs)

        monkeypatch.setattr(service, name, recorded)
    statements: list[str] = []
    fetchrow = Direct.fetchrow

    async def counted(self: Direct, sql: str, *args: Any) -> Any:
        statements.append(sql)
        return await fetchrow(self, sql, *args)

    monkeypatch.setattr(Direct, "fetchrow", counted)
    await harness.send(EMMA, "what's the wifi password?")
    assert "AcmeCafe_Guest" in harness.last(EMMA.id)
    assert asked == [] and len([sql for sql in statements if "FROM tickets" in sql]) == 1
    await harness.send(EMMA, "/support")  # now she has an open request: it takes her words
    await harness.send(EMMA, "my order is late")
    assert asked[-1] == "continuing"
