"""Webhook mode: the secret, handling before answering, redeliveries, /healthz, a graceful stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram.methods import SendMessage, SetWebhook
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.core.config import Settings
from bot.core.webhook import create_app, serve
from storage.models import ProcessedUpdate
from tests.conftest import EMMA, Harness, free_port, hold_history, make_settings

SECRET = "s3cret-token_for-tests"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_settings(**overrides: Any) -> Settings:
    return make_settings(webhook_url="https://bot.example.com/telegram/hook", webhook_secret=SECRET, **overrides)


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[TestClient]:
    app = create_app(harness.dp, harness.bot, webhook_settings(), harness.db)
    async with TestClient(TestServer(app)) as client:
        yield client


def body(harness: Harness, text: str = "/history") -> tuple[int, dict[str, Any]]:
    update = harness.message_update(EMMA, text)
    return update.update_id, update.model_dump(mode="json", exclude_none=True)


async def inbox_rows(harness: Harness, update_id: int) -> list[ProcessedUpdate]:
    async with harness.db.reading() as session:
        return list(
            (await session.scalars(select(ProcessedUpdate).where(ProcessedUpdate.update_id == update_id))).all()
        )


async def test_a_request_without_the_secret_is_refused_and_not_handled(harness: Harness, client: TestClient) -> None:
    await harness.join(EMMA)
    harness.clear()
    update_id, payload = body(harness)
    for headers in ({}, {HEADER: "wrong"}, {HEADER: SECRET + "x"}):
        response = await client.post("/telegram/hook", json=payload, headers=headers)
        assert response.status == 401
    assert harness.texts(EMMA.id) == [] and await inbox_rows(harness, update_id) == []


async def test_an_update_is_handled_before_the_answer_and_a_redelivery_does_nothing(
    harness: Harness, client: TestClient
) -> None:
    await harness.join(EMMA)
    harness.clear()
    update_id, payload = body(harness)
    response = await client.post("/telegram/hook", json=payload, headers={HEADER: SECRET})
    assert response.status == 200
    assert "Welcome bonus" in harness.last(EMMA.id)  # already sent when Telegram got its answer
    again = await client.post("/telegram/hook", json=payload, headers={HEADER: SECRET})
    assert again.status == 200
    assert len(harness.texts(EMMA.id)) == 1
    (row,) = await inbox_rows(harness, update_id)
    assert row.finished_at is not None and row.payload is None


async def test_a_failing_update_is_answered_200_and_kept_for_replay(
    harness: Harness, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.join(EMMA)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(harness.loyalty, "history", broken)
    update_id, payload = body(harness)
    response = await client.post("/telegram/hook", json=payload, headers={HEADER: SECRET})
    assert response.status == 200  # Telegram need not send it again: the bot replays it itself
    (row,) = await inbox_rows(harness, update_id)
    assert row.retry_at is not None and row.payload is not None
    assert "try again in a minute" in harness.last(EMMA.id)


async def test_an_update_the_inbox_cannot_record_gets_a_500_so_telegram_sends_it_again(
    harness: Harness, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.join(EMMA)
    harness.clear()

    async def unreachable(update: object) -> bool:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(harness.dp["inbox"], "take", unreachable)
    update_id, payload = body(harness)
    response = await client.post("/telegram/hook", json=payload, headers={HEADER: SECRET})
    assert response.status == 500
    assert harness.texts(EMMA.id) == []
    monkeypatch.undo()
    response = await client.post("/telegram/hook", json=payload, headers={HEADER: SECRET})  # the redelivery
    assert response.status == 200 and "Welcome bonus" in harness.last(EMMA.id)


async def test_healthz_reports_the_database(
    harness: Harness, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    report = await response.json()
    assert report["database"] == "ok" and "redis" not in report and report["updates_given_up"] == 0

    async def down() -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(harness.db, "ping", down)
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["database"] == "error: OSError"


async def test_a_stop_lets_the_update_in_flight_finish_then_refuses_new_ones(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.join(EMMA)
    harness.clear()
    port = free_port()
    settings = webhook_settings(webhook_host="127.0.0.1", port=port)
    entered, release = hold_history(harness, monkeypatch)
    closed: list[bool] = []

    async def close() -> None:  # the Bot's connection to Telegram; main.py closes it after serve()
        closed.append(True)

    monkeypatch.setattr(harness.session, "close", close)
    stop = asyncio.Event()
    server = asyncio.create_task(serve(harness.dp, harness.bot, settings, harness.db, stop=stop))
    url = f"http://127.0.0.1:{port}/telegram/hook"
    async with aiohttp.ClientSession() as http:
        for _ in range(200):  # until it listens
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        (hook,) = [r for r in harness.session.requests if isinstance(r, SetWebhook)]
        assert hook.url == settings.webhook_url and hook.secret_token == SECRET

        _update_id, payload = body(harness)
        in_flight = asyncio.create_task(http.post(url, json=payload, headers={HEADER: SECRET}))
        await asyncio.wait_for(entered.wait(), 5)
        stop.set()  # SIGTERM
        await asyncio.sleep(0.1)
        assert not server.done()  # it waits for the update in flight
        release.set()
        response = await asyncio.wait_for(in_flight, 5)
        assert response.status == 200
        await asyncio.wait_for(server, 10)
        assert "Welcome bonus" in harness.last(EMMA.id)
        assert closed == []  # the update in flight kept its connection to Telegram to the end
        _second_id, second = body(harness)
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.post(url, json=second, headers={HEADER: SECRET})
    assert harness.dp["scheduler"]._task is None  # the scheduler stopped with it
    assert [r for r in harness.session.requests if isinstance(r, SendMessage)][-1].chat_id == EMMA.id


async def test_redis_down_while_the_step_loads_is_recorded_first_and_replayed(
    harness: Harness, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis down while aiogram loads the person's step: the update was recorded before (the
    inbox comes before the person's lock), so it is answered 200 and the bot replays it itself
    once Redis is back, instead of relying on Telegram to send it again."""
    await harness.join(EMMA)
    harness.clear()

    async def redis_down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Connection refused by Redis")

    monkeypatch.setattr(harness.dp.fsm.storage, "get_state", redis_down)
    update_id, payload = body(harness)
    response = await client.post("/telegram/hook", json=payload, headers={HEADER: SECRET})
    assert response.status == 200
    (row,) = await inbox_rows(harness, update_id)
    assert row.finished_at is None and row.retry_at is not None and "Redis" in (row.error or "")
    monkeypatch.undo()
    harness.clock.advance(seconds=11)
    await harness.tick()
    assert "Welcome bonus" in harness.last(EMMA.id)
    response = await client.post("/telegram/hook", json=payload, headers={HEADER: SECRET})  # a late resend
    assert response.status == 200 and len([t for t in harness.texts(EMMA.id) if "Welcome bonus" in t]) == 1
