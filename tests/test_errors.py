"""A failure inside a handler reaches the person as a plain, localised apology, and the inbox
replays the update instead of losing it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.core.callbacks import OperationCB
from bot.core.inbox import Inbox, UpdateNotRecorded
from bot.core.notices import Notices
from bot.core.owing import add
from storage.models import ProcessedUpdate
from tests.conftest import ANNA, CASHIER, EMMA, IVAN, Harness, open_card, operations

RETRY = "Sorry, something went wrong on our side. We will try again in a minute; no need to repeat it."
GAVE_UP = "Sorry, we could not finish what you asked because of a fault on our side. Please try again later."


async def test_a_crash_is_apologised_for_in_the_persons_language(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for user in (EMMA, ANNA, IVAN):
        await harness.join(user)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(harness.loyalty, "history", broken)
    await harness.send(EMMA, "/history")
    assert harness.last(EMMA.id) == RETRY
    await harness.send(ANNA, "/history")
    await harness.send(IVAN, "/history")
    assert harness.last(ANNA.id).startswith("Przepraszamy, coś poszło nie tak")
    assert harness.last(IVAN.id).startswith("Извините, у нас что-то пошло не так")
    for user in (EMMA, ANNA, IVAN):
        assert "Traceback" not in harness.last(user.id) and "disk on fire" not in harness.last(user.id)


async def inbox_row(harness: Harness, update_id: int) -> ProcessedUpdate:
    async with harness.db.reading() as session:
        rows = (await session.scalars(select(ProcessedUpdate).where(ProcessedUpdate.update_id == update_id))).all()
    assert len(rows) == 1
    return rows[0]


async def test_a_failed_update_is_replayed_and_a_redelivery_does_not_double_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.join(EMMA)
    calls = []
    original = harness.loyalty.history

    async def flaky(customer_id: int, limit: int = 10):  # type: ignore[no-untyped-def]
        calls.append(customer_id)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return await original(customer_id, limit)

    monkeypatch.setattr(harness.loyalty, "history", flaky)
    update = harness.message_update(EMMA, "/history")
    await harness.feed(update)
    assert harness.last(EMMA.id) == RETRY
    row = await inbox_row(harness, update.update_id)
    assert row.finished_at is None and row.payload and "database went away" in (row.error or "")

    sent = len(harness.session.requests)
    await harness.feed(update)  # Telegram delivers it again at once: the replay is already planned
    await harness.tick()  # too early for the replay
    assert len(harness.session.requests) == sent and len(calls) == 1

    harness.clock.advance(seconds=11)
    await harness.tick()
    assert len(calls) == 2
    assert "Welcome bonus" in harness.last(EMMA.id)
    row = await inbox_row(harness, update.update_id)
    assert row.finished_at is not None and row.payload is None and row.retry_at is None
    harness.clock.advance(minutes=10)
    await harness.tick()
    await harness.feed(update)
    assert len(calls) == 2  # handled once, whatever comes again


async def test_an_update_failing_every_try_is_given_up_and_the_person_told(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.join(EMMA)
    calls = []

    async def broken(*args: object, **kwargs: object) -> None:
        calls.append(1)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(harness.loyalty, "history", broken)
    update = harness.message_update(EMMA, "/history")
    await harness.feed(update)
    assert harness.texts(EMMA.id).count(RETRY) == 1
    for wait in (11, 61, 301):  # the tries after 10 s, 1 min and 5 min
        harness.clock.advance(seconds=wait)
        await harness.tick()
    assert len(calls) == 4
    assert harness.texts(EMMA.id).count(RETRY) == 1  # the replays stayed quiet until the last
    assert harness.last(EMMA.id) == GAVE_UP
    row = await inbox_row(harness, update.update_id)
    assert row.retry_at is None and row.finished_at is None and row.attempts == 4
    assert row.payload and "disk on fire" in (row.error or "")  # kept for the operator
    harness.clock.advance(hours=1)
    await harness.tick()
    assert len(calls) == 4


async def test_an_update_whose_process_died_is_replayed_after_its_lease(harness: Harness) -> None:
    await harness.join(EMMA)
    update = harness.message_update(EMMA, "/history")
    inbox: Inbox = harness.dp["inbox"]
    assert await inbox.take(update)  # taken by a process that then died
    harness.clear()
    await harness.feed(update)  # Telegram sends it again while the lease holds: skipped
    await harness.tick()
    assert harness.texts(EMMA.id) == []
    harness.clock.advance(minutes=2, seconds=1)
    await harness.tick()
    assert "Welcome bonus" in harness.last(EMMA.id)
    assert len(harness.texts(EMMA.id)) == 1
    assert (await inbox_row(harness, update.update_id)).finished_at is not None


async def test_an_update_whose_process_dies_on_every_try_is_given_up_and_the_person_told(harness: Harness) -> None:
    await harness.join(ANNA)
    update = harness.message_update(ANNA, "/history")
    inbox: Inbox = harness.dp["inbox"]
    assert await inbox.take(update)  # the process died handling it...
    for _try in range(3):  # ...and so did each one that took it over after the lease
        harness.clock.advance(minutes=2, seconds=1)
        (due,) = await inbox.claim_due()
        assert due.update_id == update.update_id and not due.interrupted
    harness.clear()
    harness.clock.advance(minutes=2, seconds=1)
    await harness.tick()  # the fifth would be one too many: given up, and she is told in Polish
    assert harness.texts(ANNA.id) == [
        "Przepraszamy, z powodu awarii po naszej stronie nie udało się wykonać Twojej prośby. Spróbuj ponownie później."
    ]
    row = await inbox_row(harness, update.update_id)
    assert row.finished_at is None and row.retry_at is None and row.error == "interrupted on every try"
    assert row.payload and row.attempts == 4  # kept for the operator; /history never ran again
    harness.clock.advance(hours=1)
    await harness.tick()
    await harness.feed(update)  # nor does a late redelivery run it
    assert len(harness.texts(ANNA.id)) == 1
    assert await inbox.given_up() == 1


async def test_an_update_the_inbox_cannot_record_is_refused_not_lost(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.join(EMMA)
    harness.clear()
    inbox: Inbox = harness.dp["inbox"]

    async def unreachable(update: object) -> bool:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(inbox, "take", unreachable)
    update = harness.message_update(EMMA, "/history")
    with pytest.raises(UpdateNotRecorded):  # a webhook answers 500, so Telegram sends it again
        await harness.feed(update)
    assert harness.texts(EMMA.id) == []
    monkeypatch.undo()
    await harness.feed(update)
    assert "Welcome bonus" in harness.last(EMMA.id)


async def test_a_crash_on_a_button_is_apologised_for_in_the_chat(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import CASHIER

    await harness.make_cashier(CASHIER)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(harness.loyalty, "confirm_purchase", broken)
    await harness.press(CASHIER, OperationCB(action="confirm", op_id=1))
    # The button was answered once (the spinner stops); the apology comes as a message.
    assert harness.last(CASHIER.id).startswith("Przepraszamy, coś poszło nie tak")
    assert "boom" not in harness.last(CASHIER.id)


async def test_pressing_the_same_language_twice_is_quietly_fine(harness: Harness) -> None:
    from bot.core.callbacks import LanguageCB

    message = None
    await harness.send(EMMA, "/language")
    from aiogram.methods import SendMessage

    sent = harness.sent(SendMessage, EMMA.id)[-1]
    message = harness.session._message(EMMA.id, text=sent.text)  # the menu as Telegram shows it
    await harness.press(EMMA, LanguageCB(code="pl"), message)
    await harness.press(EMMA, LanguageCB(code="pl"), message)  # Telegram: "message is not modified"
    assert not [t for t in harness.texts(EMMA.id) if "something went wrong" in t or "coś poszło nie tak" in t]


async def test_a_failed_step_is_not_replayed_once_the_person_has_moved_on(
    shop: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cashier's amount for Emma fails; they go on to Ivan. The replay must not take "500" as
    Ivan's amount: it is dropped and the cashier told."""
    await open_card(shop, EMMA)
    original = shop.loyalty.check_purchase_amount
    calls = []

    def flaky(amount: int) -> None:
        calls.append(amount)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        original(amount)

    monkeypatch.setattr(shop.loyalty, "check_purchase_amount", flaky)
    await shop.send(CASHIER, "500")
    assert shop.last(CASHIER.id) == RETRY
    ivan = await open_card(shop, IVAN)  # the next customer at the till: a card open, as Emma's was
    shop.clock.advance(seconds=11)
    await shop.tick()
    assert shop.last(CASHIER.id) == GAVE_UP
    assert len(calls) == 1  # "500" was not read again, and above all not sold on Ivan's card
    await shop.send(CASHIER, "120")
    assert shop.last(CASHIER.id).startswith("✅ Added: +6 points\nCustomer: Иван")
    assert [(o.customer_id, o.amount) for o in await operations(shop)] == [(ivan, 12_000)]


async def test_a_slow_handler_keeps_its_update_past_the_lease(harness: Harness) -> None:
    """Real time, about a second: the lease is renewed while the handler works, so no replay
    starts beside it."""
    inbox = Inbox(harness.db, lease=timedelta(seconds=0.3))
    update = harness.message_update(EMMA, "/history")
    assert await inbox.take(update)
    async with inbox.leased(update.update_id):
        for _n in range(4):
            await asyncio.sleep(0.25)
            assert await inbox.claim_due() == []  # still ours
    await asyncio.sleep(0.4)
    (due,) = await inbox.claim_due()  # now it counts as interrupted
    assert due.update_id == update.update_id and due.context is None and not due.interrupted


# --- group commit: the inbox's writes asked for at once share one transaction ---------------------


async def test_updates_taken_at_once_share_one_commit_and_a_twin_is_taken_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox(harness.db)
    transactions = []
    direct = harness.db.direct

    def counted(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        transactions.append(kwargs.get("write", True))
        return direct(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(harness.db, "direct", counted)
    updates = [harness.message_update(user, "/help") for user in (EMMA, ANNA, IVAN)]
    twin = updates[0]  # delivered twice at the same moment
    taken = await asyncio.gather(*(inbox.take(update) for update in [*updates, twin]))
    assert sorted(taken) == [False, True, True, True] and taken[0] != taken[3]
    assert transactions == [True]  # one write transaction for the four takes
    assert await asyncio.gather(*(inbox.take(update) for update in updates)) == [False, False, False]
    await asyncio.gather(*(inbox.finished(update.update_id) for update in updates))
    assert transactions == [True, True, True]
    for update in updates:
        row = await inbox_row(harness, update.update_id)
        assert row.finished_at is not None and row.payload is None and row.attempts == 1


async def test_a_group_that_fails_is_tried_write_by_write_so_one_bad_write_fails_only_itself(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox(harness.db)
    good, bad = harness.message_update(EMMA, "/help"), harness.message_update(ANNA, "/help")
    commit = inbox._commit

    async def poisoned(group):  # type: ignore[no-untyped-def]
        if any(write.update_id == bad.update_id for write, _future in group):
            raise OperationalError("INSERT", {}, ValueError("a row the database refuses"))
        await commit(group)

    monkeypatch.setattr(inbox, "_commit", poisoned)
    results = await asyncio.gather(inbox.take(good), inbox.take(bad), return_exceptions=True)
    assert results[0] is True and isinstance(results[1], OperationalError)
    assert (await inbox_row(harness, good.update_id)).payload
    async with harness.db.reading() as session:
        assert await session.get(ProcessedUpdate, bad.update_id) is None  # not recorded: refused, sent again


async def test_the_leases_of_updates_in_flight_are_renewed_by_one_task(harness: Harness) -> None:
    """Real time, about two seconds: two updates in flight, one renewing task between them; when the
    last one is done, the task stops."""
    inbox = Inbox(harness.db, lease=timedelta(seconds=1.5))
    first, second = harness.message_update(EMMA, "/help"), harness.message_update(ANNA, "/help")
    assert await asyncio.gather(inbox.take(first), inbox.take(second)) == [True, True]
    before = {task for task in asyncio.all_tasks() if "lease" in task.get_name()}
    async with inbox.leased(first.update_id), inbox.leased(second.update_id):
        renewers = {task for task in asyncio.all_tasks() if "lease" in task.get_name()} - before
        assert len(renewers) == 1
        for _n in range(4):
            await asyncio.sleep(0.6)
            assert await inbox.claim_due() == []  # past the first lease: renewed
    await asyncio.sleep(0)
    assert all(task.done() for task in renewers)


async def test_notices_delivered_twice_at_once_are_sent_once_each_in_the_order_asked(harness: Harness) -> None:
    """The handler's delivery claims its notices in one conditional UPDATE through the driver: two
    deliveries racing (a redelivered update beside the first) send each notice once, in order."""
    notices = Notices(harness.db, clock=harness.clock)
    sent: list[tuple[int, str]] = []

    async def drawer(bot: object, chat_id: int, payload: dict[str, str]) -> None:
        await asyncio.sleep(0)
        sent.append((chat_id, payload["text"]))

    notices.register("test", drawer)
    async with harness.db.writing() as session:
        for n in (2, 1, 3):
            await add(session, f"test:{n}", "test", EMMA.id, harness.clock(), text=f"notice {n}")
    keys = ["test:1", "test:2", "test:3"]
    await asyncio.gather(notices.deliver(harness.bot, keys), notices.deliver(harness.bot, keys))
    assert sent == [(EMMA.id, "notice 1"), (EMMA.id, "notice 2"), (EMMA.id, "notice 3")]
    assert await notices.pending() == []  # each marked sent
    await notices.deliver(harness.bot, keys)
    assert len(sent) == 3
