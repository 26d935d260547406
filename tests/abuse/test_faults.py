"""Issue 15: faults. An update cut off by a process death replays only in its person's step; under
polling, an update the database could not record is not confirmed to Telegram, and comes again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.core.inbox import Inbox
from bot.core.polling import Poller
from storage.models import ProcessedUpdate
from tests.conftest import ANNA, CASHIER, EMMA, IVAN, Harness, open_card, operations

GAVE_UP = "Sorry, we could not finish what you asked because of a fault on our side. Please try again later."


async def die_inside(h: Harness, monkeypatch: pytest.MonkeyPatch, target: Any, name: str, text: str) -> int:
    """The cashier sends `text`; the process dies while a handler is inside `target.name` (the
    update stays taken, its lease running, as after a SIGKILL). Returns the update's id."""
    entered = asyncio.Event()
    original = getattr(target, name)

    async def hang(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()  # never returns: the process is gone

    def hang_sync(*args: Any, **kwargs: Any) -> Any:
        raise _Dead

    monkeypatch.setattr(target, name, hang if asyncio.iscoroutinefunction(original) else hang_sync)
    update = h.message_update(CASHIER, text)
    task = asyncio.create_task(h.feed(update))
    if asyncio.iscoroutinefunction(original):
        await asyncio.wait_for(entered.wait(), 5)
        task.cancel()  # a dead process runs no `finally` that matters: its row stays as it was
    with pytest.raises((asyncio.CancelledError, _Dead)):
        await task
    monkeypatch.setattr(target, name, original)
    return update.update_id


class _Dead(BaseException):
    """The process died here (a BaseException: nothing on the way out records it as a failure)."""


async def lost_memory(h: Harness) -> None:
    """The FSM lived in memory (no REDIS_URL): the new process knows nobody's step."""
    storage = h.dp.fsm.storage
    storage.storage.clear()  # type: ignore[attr-defined]


async def test_an_interrupted_amount_is_not_offered_for_the_next_customer(
    shop: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await open_card(shop, EMMA)  # the amount typed into an open card is the sale
    update_id = await die_inside(shop, monkeypatch, shop.loyalty, "check_purchase_amount", "480,00")
    async with shop.db.reading() as session:
        row = await session.get(ProcessedUpdate, update_id)
    assert row is not None and row.finished_at is None and row.context is not None  # its step, recorded
    assert row.context.startswith("Scan:card_open|")
    # The cashier goes on to Ivan: the same step, but another card.
    await open_card(shop, IVAN)
    shop.clock.advance(minutes=3)
    await shop.tick()  # the lease ran out: the update comes back, and must not be Ivan's amount
    assert shop.last(CASHIER.id) == GAVE_UP
    assert await operations(shop) == []
    assert (await shop.customer(IVAN)).balance == 50
    # Ivan's card is still open: his own amount is his sale.
    await shop.send(CASHIER, "120")
    assert shop.last(CASHIER.id) == "✅ Added: +6 points\nCustomer: Иван\nBalance: 56 points"
    (operation,) = await operations(shop)
    assert operation.amount == 12_000 and operation.customer_id == (await shop.customer(IVAN)).id


async def test_an_interrupted_amount_is_not_read_as_a_question_after_a_restart(
    shop: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.faq.service import FaqService

    await open_card(shop, EMMA)
    update_id = await die_inside(shop, monkeypatch, shop.loyalty, "check_purchase_amount", "5")
    await lost_memory(shop)  # restarted: the step is gone with the old process
    asked: list[str] = []
    original = FaqService.ask

    async def spy(self: FaqService, customer_id: int, language: str, text: str) -> Any:
        asked.append(text)
        return await original(self, customer_id, language, text)

    monkeypatch.setattr(FaqService, "ask", spy)
    shop.clock.advance(minutes=3)
    await shop.tick()
    assert asked == [] and shop.last(CASHIER.id) == GAVE_UP  # "5" was not taken as an FAQ question
    async with shop.db.reading() as session:
        row = await session.get(ProcessedUpdate, update_id)
    assert row is not None and row.retry_at is None and "moved on" in (row.error or "")


async def test_an_update_outside_any_step_replays_after_a_crash(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.join(EMMA)
    harness.clear()
    original = harness.loyalty.history
    entered = asyncio.Event()

    async def hang(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(harness.loyalty, "history", hang)
    task = asyncio.create_task(harness.send(EMMA, "/history"))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.setattr(harness.loyalty, "history", original)
    harness.clock.advance(minutes=3)
    await harness.tick()
    assert "Welcome bonus" in harness.last(EMMA.id)  # no step then, none now: it goes ahead


# --- #10: polling never confirms an update it could not record ----------------------------------


async def test_polling_does_not_confirm_updates_while_the_database_is_down(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.join(EMMA)
    await harness.join(ANNA)
    harness.clear()
    inbox: Inbox = harness.dp["inbox"]
    original = inbox.take
    down = {"on": True}

    async def take(update: Any) -> bool:
        if down["on"]:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("the database is down"))
        return await original(update)

    monkeypatch.setattr(inbox, "take", take)
    first, second = harness.message_update(EMMA, "/history"), harness.message_update(ANNA, "/help")
    harness.session.updates += [first, second]
    poller = Poller(harness.dp, harness.bot, backoff=(0.01,))
    stop = asyncio.Event()
    polling = asyncio.create_task(poller.run(stop))
    try:
        for _ in range(200):  # a while with the database down: several rounds of getUpdates
            if len(harness.session.offsets) >= 5:
                break
            await asyncio.sleep(0.01)
        assert len(harness.session.offsets) >= 5
        # Not one offset confirmed them: Telegram still holds both.
        assert harness.session.confirmed_below <= first.update_id
        assert [u.update_id for u in harness.session.updates] == [first.update_id, second.update_id]
        assert harness.texts(EMMA.id) == [] and harness.texts(ANNA.id) == []
        down["on"] = False  # the database is back
        await harness.eventually(lambda: harness.texts(EMMA.id) and harness.texts(ANNA.id), attempts=500)
        await harness.eventually(lambda: harness.session.updates == [], attempts=500)  # now confirmed
    finally:
        stop.set()
        await polling
        await poller.wait_in_flight()
    assert len([t for t in harness.texts(EMMA.id) if "Welcome bonus" in t]) == 1  # each answered once
    assert len(harness.texts(ANNA.id)) == 1
    async with harness.db.reading() as session:
        rows = list(
            await session.scalars(select(ProcessedUpdate.update_id).where(ProcessedUpdate.finished_at.is_not(None)))
        )
    assert {first.update_id, second.update_id} <= set(rows)
