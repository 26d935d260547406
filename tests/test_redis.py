"""Several instances with REDIS_URL: a person's half-done step and the order of their messages are
shared through Redis, whichever instance an update reaches."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from redis.asyncio import Redis

from bot.business import Business
from bot.core.callbacks import LanguageCB, ScanCB
from bot.core.limiter import RateLimiter, SharedLimits
from bot.dispatcher import create_storage
from storage.database import Database
from storage.models import EntryKind
from tests.conftest import (
    CASHIER,
    EMMA,
    GROUP_ID,
    IN_CI,
    REDIS_PREFIX,
    Clock,
    Harness,
    build_harness,
    drop_redis_keys,
    entries,
    hold_history,
    make_settings,
    virtual_bot,
)
from tests.fake_telegram import RecordingSession

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")  # keys under this run's prefix only


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as error:
        reason = f"Redis is not reachable at 127.0.0.1:6379 ({error}); start redis-server to run these tests"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return REDIS_URL


@pytest.fixture
async def two(db: Database, business: Business, redis_url: str) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two bot instances on one database and one Redis, talking to one Telegram."""
    settings = make_settings(manager_chat_id=str(GROUP_ID), redis_url=redis_url, redis_prefix=REDIS_PREFIX)
    session = RecordingSession()
    bot = virtual_bot(settings, session)
    clock = Clock()
    instances = [
        build_harness(db, business, settings, bot, session, clock, storage=create_storage(settings)) for _ in range(2)
    ]
    for instance in instances:
        assert isinstance(instance.dp.fsm.storage, RedisStorage)
        assert isinstance(instance.dp.fsm.events_isolation, RedisEventIsolation)
    await drop_redis_keys(instances[0].dp.fsm.storage.redis)  # type: ignore[attr-defined]
    first = instances[0]
    # One Telegram numbers the updates and messages, whichever instance gets them.
    second = replace(instances[1], _update_ids=first._update_ids, _message_ids=first._message_ids)
    yield first, second
    await drop_redis_keys(first.dp.fsm.storage.redis)  # type: ignore[attr-defined]
    for instance in (first, second):
        await instance.dp.emit_shutdown(bot=bot)


async def english_cashier(h: Harness) -> None:
    await h.make_cashier(CASHIER)
    await h.send(CASHIER, "/language")
    await h.press(CASHIER, LanguageCB(code="en"))


async def test_a_purchase_started_on_one_instance_is_finished_on_the_other(two: tuple[Harness, Harness]) -> None:
    a, b = two
    await english_cashier(a)
    await b.join(EMMA)
    token = await a.card_token(EMMA)
    await b.send(CASHIER, f"/start c_{token}")  # the card opens on b
    card_view = a.session.carrying(CASHIER.id, a.button(CASHIER.id, "Cancel"))
    assert card_view is not None
    amount = a.message_update(CASHIER, "25,00")
    await a.feed(amount)  # the amount reaches a, which knows the card is open through Redis: the sale
    (purchase,) = await entries(a, EntryKind.PURCHASE)
    assert purchase.amount == 2500 and purchase.points == 1
    added = "✅ Added: +1 point\nCustomer: Emma\nBalance: 51 points"
    assert a.last(CASHIER.id) == added
    assert a.session.buttons(CASHIER.id, card_view[0]) == [], "b's card view lost its buttons"
    await asyncio.gather(a.feed(amount), b.feed(amount))  # Telegram delivers it again, to both instances
    assert len(await entries(a, EntryKind.PURCHASE)) == 1
    assert (await a.customer(EMMA)).balance == 51
    assert a.texts(CASHIER.id).count(added) == 1
    assert [t for t in a.texts(EMMA.id) if "for your purchase" in t] == [
        "+1 point for your purchase of 25.00 zł. Balance: 51 points."
    ]


async def test_a_step_shown_by_one_instance_takes_its_buttons_on_the_other(two: tuple[Harness, Harness]) -> None:
    """The current prompt is FSM data in Redis: b's prompt is current on a, and a's new prompt
    makes b's old one stale."""
    a, b = two
    await english_cashier(a)
    await b.join(EMMA)
    token = await a.card_token(EMMA)
    await b.send(CASHIER, f"/start c_{token}")
    customer_id = (await a.customer(EMMA)).id
    redeem = ScanCB(action="redeem", customer_id=customer_id)  # type: ignore[arg-type]
    card_view = a.callback_update(CASHIER, redeem).callback_query.message  # type: ignore[union-attr]
    await a.press(CASHIER, redeem, message=card_view)  # b's card view, pressed on a
    assert a.last(CASHIER.id).startswith("Pay with points. Customer: Emma, balance: 50 points.")
    await b.press(CASHIER, ScanCB(action="cancel", customer_id=customer_id), message=card_view)  # type: ignore[arg-type]
    assert a.alerts()[-1] == "This button is from an earlier step. Use the latest message."
    await b.send(CASHIER, "30")  # the step a showed goes on, on b
    assert "Most points for this receipt: 9 points." in b.last(CASHIER.id)


async def test_one_persons_messages_are_handled_in_order_across_instances(
    two: tuple[Harness, Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    await a.join(EMMA)
    a.clear()
    entered, release = hold_history(a, monkeypatch)
    first = asyncio.create_task(a.send(EMMA, "/history"))  # reaches instance a, which is slow
    await asyncio.wait_for(entered.wait(), 5)
    second = asyncio.create_task(b.send(EMMA, "/help"))  # the next message reaches instance b
    await asyncio.sleep(0.3)
    assert not second.done() and a.texts(EMMA.id) == []  # b waits for a to finish with Emma
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 10)
    replies = a.texts(EMMA.id)
    assert len(replies) == 2 and "Welcome bonus" in replies[0] and "/card" in replies[1]


async def test_two_instances_share_the_send_limits_through_redis(redis_url: str) -> None:
    """Telegram counts per bot: two instances together stay within one limit (real time, ~2 s)."""
    redis = Redis.from_url(redis_url)
    prefix = f"{{{REDIS_PREFIX}:send}}:{uuid.uuid4().hex}"
    try:
        limiters = [RateLimiter(per_second=10, shared=SharedLimits(redis, prefix=prefix)) for _ in range(2)]
        granted: list[float] = []
        person: list[float] = []

        async def instance(limiter: RateLimiter, first_chat: int) -> None:
            for chat in range(first_chat, first_chat + 15):
                await limiter.acquire(chat)
                granted.append(time.monotonic())
            for _n in range(3):  # the same person from both instances
                await limiter.acquire(77)
                person.append(time.monotonic())

        await asyncio.gather(instance(limiters[0], 1000), instance(limiters[1], 2000))
        granted.sort()
        assert len(granted) == 30
        for first, later in zip(granted, granted[10:], strict=False):
            assert later - first >= 1.0, "11 messages within a second from the two instances together"
        person.sort()
        assert len(person) == 6 and person[5] - person[0] >= 4.9  # at most 5 in 5 s to one person

        await limiters[0].pause_everywhere(0.5)  # a 429 seen by one instance holds the other too
        paused_at = time.monotonic()
        await limiters[1].acquire(3000)
        assert time.monotonic() - paused_at >= 0.45
    finally:
        await redis.aclose()
