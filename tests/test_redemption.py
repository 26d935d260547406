"""Paying with points: the cashier asks, the customer confirms in their own chat; limits and
concurrency."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from bot.core.callbacks import FlowCB, OperationCB, RedeemAnswerCB, ScanCB, UndoCB
from bot.loyalty.service import Applied, LoyaltyService, Refused
from storage.models import Customer, EntryKind, LedgerEntry, Operation, OperationStatus
from tests.conftest import ANNA, CASHIER, EMMA, IVAN, Harness, entries, open_card, operations


async def _ask(h: Harness, amount: str, points: str | None, user=EMMA) -> Operation | None:
    customer_id = await open_card(h, user)
    await h.press(CASHIER, ScanCB(action="redeem", customer_id=customer_id))
    await h.send(CASHIER, amount)
    if points is None:
        await h.press(CASHIER, FlowCB(action="max"))
    else:
        await h.send(CASHIER, points)
    made = await operations(h)
    return made[-1] if made else None


async def _give(h: Harness, user, points: int) -> None:
    customer = await h.customer(user)
    await h.loyalty.adjust(customer.id, points, 1, "test", key=f"give:{user.id}:{points}")  # type: ignore[arg-type]


async def test_customer_confirms_and_both_see_the_outcome(shop: Harness) -> None:
    await _give(shop, EMMA, 100)  # 150 points
    customer_id = await open_card(shop, EMMA)
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=customer_id))
    assert shop.last(CASHIER.id) == (
        "Pay with points. Customer: Emma, balance: 150 points.\nType the receipt total, like 12.50:"
    )
    await shop.send(CASHIER, "250")
    assert shop.last(CASHIER.id) == (
        "Receipt total: 250.00 zł.\nMost points for this receipt: 75 points.\nType how many to use, or tap Max."
    )
    assert shop.button(CASHIER.id, "Max: 75 points") == FlowCB(action="max").pack()
    points_prompt = shop.session.carrying(CASHIER.id, FlowCB(action="max").pack())
    assert points_prompt is not None
    await shop.send(CASHIER, "60")
    operation = (await operations(shop))[-1]
    assert operation.status == OperationStatus.AWAITING_CUSTOMER
    assert shop.last(EMMA.id) == (
        "To pay: 190.00 zł\nPoints to use: 60 points on your 250.00 zł receipt at Acme Café\n\nPay with points?"
    )
    assert shop.button(EMMA.id, "Yes") == RedeemAnswerCB(op_id=operation.id, accept=True).pack()
    assert shop.last(CASHIER.id) == (
        "To pay, if the customer confirms: 190.00 zł\nPoints to use: 60 points\n"
        "Customer: Emma. Waiting for them to answer in their chat (60\u00a0s)…"
    )
    assert shop.session.buttons(CASHIER.id, points_prompt[0]) == [], "the points step is over: its Max goes"
    waiting = shop.session.carrying(CASHIER.id, OperationCB(action="cancel", op_id=operation.id).pack())
    assert waiting is not None

    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=True))
    assert shop.last(EMMA.id) == (
        "To pay: 190.00 zł\nPaid with points: 60 points for the receipt of 250.00 zł\nBalance: 90 points"
    )
    assert shop.last(CASHIER.id) == (
        "💰 To pay: 190.00 zł\nPaid with points: 60 points\nCustomer: Emma\nBalance: 90 points"
    )
    (redemption,) = await entries(shop, EntryKind.REDEMPTION)
    # The waiting message itself now says what to take, with Undo in place of Cancel.
    assert shop.session.buttons(CASHIER.id, waiting[0]) == [UndoCB(entry_id=redemption.id).pack()]
    assert redemption.points == -60 and redemption.amount == 25_000 and redemption.staff_telegram_id == CASHIER.id
    emma = await shop.customer(EMMA)
    assert emma.balance == 90 and await shop.loyalty.balance_is_consistent(emma.id)  # type: ignore[arg-type]

    # The cashier can undo it: the points come back.
    await shop.press(CASHIER, UndoCB(entry_id=redemption.id))
    assert "+60 points" in shop.last(EMMA.id)
    assert (await shop.customer(EMMA)).balance == 150


async def test_request_is_in_the_customers_language(shop: Harness) -> None:
    """The money to pay comes first, in the customer's language and their way of writing amounts."""
    await _give(shop, ANNA, 100)
    await _give(shop, IVAN, 100)
    await _ask(shop, "250", "20", user=ANNA)
    assert shop.last(ANNA.id) == (
        "Do zapłaty: 230,00\u00a0zł\nPunktami: 20 punktów (paragon na 250,00\u00a0zł, Acme Café)\n\nZapłacić punktami?"
    )
    await _ask(shop, "250", "22", user=IVAN)
    assert shop.last(IVAN.id) == (
        "К оплате: 228,00\u00a0zł\nБаллами: 22 балла (чек на 250,00\u00a0zł, Acme Café)\n\nОплатить баллами?"
    )


async def test_max_takes_the_largest_allowed(shop: Harness) -> None:
    operation = await _ask(shop, "100", None)  # 30% of 100,00 = 30 points; balance 50
    assert operation.points == 30
    operation = await _ask(shop, "1000", "max")  # cap 300, balance 50
    assert operation.points == 50


async def test_each_refusal_has_its_own_reason(shop: Harness) -> None:
    await _ask(shop, "1000", "80")
    assert shop.last(CASHIER.id) == "Not enough points: the card has 50 points."
    # Asked again, with Max still at hand.
    assert shop.button(CASHIER.id, "Max: 50 points") == FlowCB(action="max").pack()
    await shop.send(CASHIER, "40")  # still asking for points: a valid number now goes through
    assert shop.last(CASHIER.id).startswith(
        "To pay, if the customer confirms: 960.00 zł\nPoints to use: 40 points\nCustomer: Emma."
    )

    await _ask(shop, "100", "45")
    assert shop.last(CASHIER.id) == "Points can pay at most 30% of a receipt. Most for this one: 30 points."
    await _ask(shop, "100", "0")
    assert "greater than zero" in shop.last(CASHIER.id)
    await _ask(shop, "100", "ten")
    assert "whole number" in shop.last(CASHIER.id)


async def test_confirmation_expires_after_sixty_seconds(shop: Harness) -> None:
    operation = await _ask(shop, "100", "20")
    shop.clock.advance(seconds=60.5)  # past the window, before the closing timer runs
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=True))
    assert "This request has expired. Nothing was redeemed." in shop.last(EMMA.id)
    assert "did not confirm in time" in shop.last(CASHIER.id)
    assert await entries(shop, EntryKind.REDEMPTION) == []
    assert (await shop.customer(EMMA)).balance == 50


async def test_unanswered_request_is_closed_by_the_timer(shop: Harness) -> None:
    operation = await _ask(shop, "100", "20")
    shop.clock.advance(seconds=30)
    await asyncio.sleep(0.05)
    assert "did not confirm" not in shop.last(CASHIER.id)
    shop.clock.advance(seconds=32)
    await shop.eventually(lambda: "did not confirm in time" in shop.last(CASHIER.id))
    await shop.eventually(lambda: shop.last(EMMA.id) == "This request has expired.")
    (closed,) = [o for o in await operations(shop) if o.id == operation.id]
    assert closed.status == OperationStatus.EXPIRED
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=True))
    assert "This request has expired." in shop.alerts()[-1]
    assert await entries(shop, EntryKind.REDEMPTION) == []


async def test_customer_declines(shop: Harness) -> None:
    operation = await _ask(shop, "100", "20")
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=False))
    assert shop.last(EMMA.id) == "OK, no points were redeemed."
    assert shop.last(CASHIER.id) == "The customer declined. Nothing was redeemed. To pay: 100.00 zł."
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=True))
    assert "declined" in shop.alerts()[-1]
    assert await entries(shop, EntryKind.REDEMPTION) == []


async def test_balance_spent_meanwhile_is_refused_when_confirming(shop: Harness) -> None:
    operation = await _ask(shop, "200", "50")
    emma = await shop.customer(EMMA)
    await shop.loyalty.adjust(emma.id, -10, 1, "meanwhile", key="meanwhile")  # type: ignore[arg-type]
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=True))
    assert "Not enough points on your card" in shop.last(EMMA.id)
    assert "Not enough points on the card any more" in shop.last(CASHIER.id)
    assert (await shop.customer(EMMA)).balance == 40


async def test_another_customer_cannot_answer(shop: Harness) -> None:
    operation = await _ask(shop, "100", "20")
    await shop.press(ANNA, RedeemAnswerCB(op_id=operation.id, accept=True))
    assert shop.alerts()[-1] == "Ten przycisk już nie działa."
    await shop.press(ANNA, RedeemAnswerCB(op_id=999, accept=True))
    assert shop.alerts()[-1] == "Ten przycisk już nie działa."
    assert await entries(shop, EntryKind.REDEMPTION) == []
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=True))
    assert len(await entries(shop, EntryKind.REDEMPTION)) == 1


async def test_double_tap_on_yes_redeems_once(shop: Harness) -> None:
    operation = await _ask(shop, "100", "20")
    yes = RedeemAnswerCB(op_id=operation.id, accept=True)
    await asyncio.gather(shop.press(EMMA, yes), shop.press(EMMA, yes))
    await shop.press(EMMA, yes)
    assert len(await entries(shop, EntryKind.REDEMPTION)) == 1
    assert (await shop.customer(EMMA)).balance == 30


async def test_cashier_cancels_a_waiting_request(shop: Harness) -> None:
    operation = await _ask(shop, "100", "20")
    await shop.press(CASHIER, OperationCB(action="cancel", op_id=operation.id))
    assert "cancelled the request" in shop.last(EMMA.id)
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=True))
    assert "cancelled" in shop.alerts()[-1]
    assert await entries(shop, EntryKind.REDEMPTION) == []


async def test_customer_unreachable_means_nothing_is_asked(shop: Harness) -> None:
    shop.session.blocked.add(EMMA.id)
    operation = await _ask(shop, "100", "20")
    assert operation.status == OperationStatus.CANCELLED
    assert "could not reach the customer" in shop.last(CASHIER.id)


async def test_fifty_concurrent_redemptions_never_overspend(harness: Harness) -> None:
    """50 redemptions of 10 points race for a balance of 100: exactly 10 succeed."""
    loyalty: LoyaltyService = harness.loyalty
    await harness.make_cashier(harness_cashier := CASHIER)
    await harness.join(EMMA)
    emma = await harness.customer(EMMA)
    await loyalty.adjust(emma.id, 50, 1, "top up", key="top-up")  # type: ignore[arg-type]
    assert (await harness.customer(EMMA)).balance == 100
    operations = []
    for _ in range(50):
        operation, _customer = await loyalty.prepare_redemption(emma.id, harness_cashier.id, 10_000, 10)  # type: ignore[arg-type]
        operations.append(operation)

    started = time.perf_counter()
    results = await asyncio.gather(
        *(loyalty.answer_redemption(op.id, EMMA.id, True) for op in operations),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == [], errors  # no "database is locked", no deadlocks
    applied = [r for r in results if isinstance(r, Applied)]
    failed = [r for r in results if isinstance(r, Operation) and r.status == OperationStatus.FAILED]
    assert len(applied) == 10 and len(failed) == 40
    emma = await harness.customer(EMMA)
    assert emma.balance == 0
    assert await loyalty.balance_is_consistent(emma.id)  # type: ignore[arg-type]
    async with harness.db.reading() as session:
        redemptions = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == EntryKind.REDEMPTION.value)
        )
        negative = await session.scalar(select(func.count()).select_from(Customer).where(Customer.balance < 0))
    assert redemptions == 10 and negative == 0
    print(
        f"\n50 concurrent redemptions on {'SQLite' if harness.db.is_sqlite else 'PostgreSQL'}: {elapsed * 1000:.0f} ms"
    )


async def test_fifty_customers_confirm_at_once_through_the_dispatcher(harness: Harness) -> None:
    """The same race fed as 50 button presses through the production dispatcher."""
    await harness.make_cashier(CASHIER)
    await harness.join(EMMA)
    emma = await harness.customer(EMMA)
    await harness.loyalty.adjust(emma.id, 50, 1, "top up", key="top-up")  # type: ignore[arg-type]
    operations = [
        (await harness.loyalty.prepare_redemption(emma.id, CASHIER.id, 10_000, 10))[0]  # type: ignore[arg-type]
        for _ in range(50)
    ]
    await asyncio.gather(
        *(harness.press(EMMA, RedeemAnswerCB(op_id=op.id, accept=True)) for op in operations)  # type: ignore[arg-type]
    )
    emma = await harness.customer(EMMA)
    assert emma.balance == 0 and await harness.loyalty.balance_is_consistent(emma.id)  # type: ignore[arg-type]
    assert len(await entries(harness, EntryKind.REDEMPTION)) == 10
    paid = [t for t in harness.texts(EMMA.id) if t.startswith("To pay: 90.00 zł\nPaid with points: 10 points for")]
    refused = [t for t in harness.texts(EMMA.id) if "Not enough points on your card" in t]
    assert len(paid) == 10 and len(refused) == 40
    assert not [t for t in harness.texts(EMMA.id) if "something went wrong" in t]


@pytest.mark.parametrize("kind", ["purchase"])
async def test_idempotency_key_reused_for_a_different_movement_is_an_error(harness: Harness, kind: str) -> None:
    from storage.repositories import IdempotencyConflict

    await harness.join(EMMA)
    emma = await harness.customer(EMMA)
    await harness.loyalty.adjust(emma.id, 5, 1, "a", key="same-key")  # type: ignore[arg-type]
    again = await harness.loyalty.adjust(emma.id, 5, 1, "a", key="same-key")  # type: ignore[arg-type]
    assert again.created is False
    with pytest.raises(IdempotencyConflict):
        await harness.loyalty.adjust(emma.id, 7, 1, "b", key="same-key")  # type: ignore[arg-type]
    assert (await harness.customer(EMMA)).balance == 55
    with pytest.raises(Refused):
        await harness.loyalty.adjust(emma.id, -100, 1, "too much", key="k2")  # type: ignore[arg-type]


async def test_a_revoked_cashiers_waiting_request_is_not_applied(shop: Harness) -> None:
    operation = await _ask(shop, "100", "20")
    (staff,) = [s for s in await shop.loyalty.list_staff() if s.telegram_id == CASHIER.id]
    await shop.loyalty.revoke_staff(staff.id)  # type: ignore[arg-type]
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=True))  # type: ignore[union-attr]
    assert await entries(shop, EntryKind.REDEMPTION) == []
    assert (await shop.customer(EMMA)).balance == 50
    assert "cancelled" in (shop.alerts()[-1] + shop.last(EMMA.id))


async def test_forged_huge_ids_fall_through_harmlessly(shop: Harness) -> None:
    for data in (f"ra:{10**23}:1", f"op:confirm:{2**40}", f"undo:{10**30}", f"scan:redeem:{2**63}"):
        await shop.press(EMMA if data.startswith("ra") else CASHIER, data)
        assert shop.alerts()[-1] in ("This button no longer works.", "Ten przycisk już nie działa.")
    assert not [t for t in shop.texts(CASHIER.id) + shop.texts(EMMA.id) if "something went wrong" in t]
