"""Cashiers: opening a card, purchases, limits, undo and void, through the real dispatcher."""

from __future__ import annotations

import pytest
from aiogram.methods import SendPhoto
from sqlalchemy import func, select

from bot.core.callbacks import OperationCB, ScanCB, UndoCB
from bot.loyalty.qr import qr_png
from storage.models import CardCode, EntryKind
from tests.conftest import (
    ANNA,
    CASHIER,
    CASHIER_2,
    EMMA,
    IVAN,
    OWNER,
    STRANGER,
    Harness,
    entries,
    open_card,
    operations,
)


async def _purchase(h: Harness, amount: str, user=EMMA, receipt: str | None = None) -> None:
    """A sale as the till makes it: the card opened, the amount typed (and the receipt number, where
    the business asks for it). The amount is the confirmation."""
    await open_card(h, user)
    await h.send(CASHIER, amount)
    if receipt is not None:
        await h.send(CASHIER, receipt)


@pytest.fixture
def receipts(shop: Harness, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """A business whose till asks for the receipt's number (till.ask_receipt_number)."""
    import dataclasses

    asking = dataclasses.replace(shop.business, ask_receipt_number=True)
    shop.dp["business"] = asking
    monkeypatch.setattr(shop.loyalty, "business", asking)
    return shop


async def test_scanning_the_qr_shows_the_card_with_actions(shop: Harness) -> None:
    customer_id = await open_card(shop)
    text = shop.last(CASHIER.id)
    assert "<b>Emma</b> · Base" in text and "Balance: 50 points" in text
    assert "Type the receipt total, like 12.50, to add points." in text
    assert shop.button(CASHIER.id, "Pay with points") == ScanCB(action="redeem", customer_id=customer_id).pack()
    assert shop.button(CASHIER.id, "Cancel")


async def test_a_code_works_once_and_not_after_it_expires_or_is_refreshed(shop: Harness) -> None:
    token = await shop.card_token(EMMA)
    await shop.send(CASHIER, f"/start c_{token}")
    assert "<b>Emma</b>" in shop.last(CASHIER.id)
    await shop.send(CASHIER, f"/start c_{token}")
    assert "already been used" in shop.last(CASHIER.id)

    token = await shop.card_token(EMMA)
    shop.clock.advance(minutes=10, seconds=1)
    await shop.send(CASHIER, f"/start c_{token}")
    assert "expired" in shop.last(CASHIER.id)

    old = await shop.card_token(EMMA)
    await shop.card_token(EMMA)  # opening /card again refreshes the code
    await shop.send(CASHIER, f"/start c_{old}")
    assert "already been used or replaced" in shop.last(CASHIER.id)

    await shop.send(CASHIER, "/start c_AAAAAAAAAAAAAAAAAAAAAA")
    assert "not valid" in shop.last(CASHIER.id)
    assert "Emma" not in shop.last(CASHIER.id)


async def test_two_cashiers_scanning_the_same_code_open_it_once(shop: Harness) -> None:
    await shop.make_cashier(CASHIER_2)
    token = await shop.card_token(EMMA)
    await shop.send(CASHIER, f"/start c_{token}")
    await shop.send(CASHIER_2, f"/start c_{token}")
    assert "<b>Emma</b>" in shop.last(CASHIER.id)
    assert "already been used" in shop.last(CASHIER_2.id)


async def test_a_stranger_opening_a_card_link_learns_nothing(shop: Harness) -> None:
    token = await shop.card_token(EMMA)
    await shop.send(STRANGER, f"/start c_{token}")
    text = shop.last(STRANGER.id)
    assert "for our cashiers" in text
    assert "Emma" not in text and "50" not in text
    async with shop.db.reading() as session:
        used = await session.scalar(select(func.count()).select_from(CardCode).where(CardCode.used_at.is_not(None)))
    assert used == 0, "a stranger must not burn the customer's code"
    await shop.send(CASHIER, f"/start c_{token}")
    assert "<b>Emma</b>" in shop.last(CASHIER.id)


async def test_the_amount_typed_into_an_open_card_is_the_sale(shop: Harness) -> None:
    await open_card(shop)
    card_view = shop.session.carrying(CASHIER.id, shop.button(CASHIER.id, "Cancel"))
    assert card_view is not None
    await shop.send(CASHIER, "250,00")
    assert shop.last(CASHIER.id) == "✅ Added: +12 points\nCustomer: Emma\nBalance: 62 points"
    assert "#" not in shop.last(CASHIER.id), "entry numbers are for the owners' tools, not the till"
    (purchase,) = await entries(shop, EntryKind.PURCHASE)
    assert shop.button(CASHIER.id, "Undo") == UndoCB(entry_id=purchase.id).pack()
    assert shop.session.buttons(CASHIER.id, card_view[0]) == [], "the card's buttons go when the sale is made"
    assert shop.last(EMMA.id) == "+12 points for your purchase of 250.00 zł. Balance: 62 points."
    emma = await shop.customer(EMMA)
    assert emma.balance == 62 and emma.lifetime_spend == 25_000
    (purchase,) = await entries(shop, EntryKind.PURCHASE)
    assert (purchase.points, purchase.amount, purchase.staff_telegram_id) == (12, 25_000, CASHIER.id)
    assert await shop.loyalty.balance_is_consistent(emma.id)


async def test_a_sales_notices_are_drawn_from_the_sale_not_read_again(
    shop: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.loyalty.service

    read: list[str] = []
    original = bot.loyalty.service.one_by

    async def counted(tx, model, column, value):  # type: ignore[no-untyped-def]
        if model.__name__ != "Staff":  # the cashier's rights, checked on every message
            read.append(model.__name__)
        return await original(tx, model, column, value)

    monkeypatch.setattr(bot.loyalty.service, "one_by", counted)
    await open_card(shop)
    read.clear()
    await shop.send(CASHIER, "250,00")
    assert shop.last(CASHIER.id) == "✅ Added: +12 points\nCustomer: Emma\nBalance: 62 points"
    assert shop.last(EMMA.id) == "+12 points for your purchase of 250.00 zł. Balance: 62 points."
    assert read == [], "the notices read again what the sale had just returned"

    shop.clear()  # a notice left to the scheduler reads its rows afresh
    (purchase,) = await entries(shop, EntryKind.PURCHASE)
    assert await shop.loyalty.entry(purchase.id) is not None and read == ["LedgerEntry"]


async def test_customer_is_told_in_their_own_language(shop: Harness) -> None:
    for user, expected in (
        (ANNA, "+12 punktów za zakup"),
        (IVAN, "+12 баллов"),
    ):
        await _purchase(shop, "250", user=user)
        assert expected in shop.last(user.id)
        assert "250,00" in shop.last(user.id)


@pytest.mark.parametrize("typed", ["12,50", "12.50", "1 234,50"])
async def test_receipt_amount_formats(shop: Harness, typed: str) -> None:
    await _purchase(shop, typed)
    (operation,) = await operations(shop)
    assert operation.amount == {"12,50": 1250, "12.50": 1250, "1 234,50": 123_450}[typed]


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("twelve", "I could not read this amount"),
        ("12,505", "Too many digits after the decimal point"),
        ("-4", "greater than zero"),
        ("0", "greater than zero"),
        ("6000", "over the limit of 5,000.00 zł"),
    ],
)
async def test_malformed_amounts_get_a_clear_error_and_the_card_stays_open(
    shop: Harness, typed: str, error: str
) -> None:
    await open_card(shop)
    await shop.send(CASHIER, typed)
    assert error in shop.last(CASHIER.id)
    assert await entries(shop, EntryKind.PURCHASE) == []
    # Still waiting for the amount: a good one now goes through.
    await shop.send(CASHIER, "100")
    assert "✅ Added: +5 points" in shop.last(CASHIER.id)


async def test_a_business_that_asks_for_receipt_numbers_gets_them(receipts: Harness) -> None:
    shop = receipts
    await open_card(shop)
    await shop.send(CASHIER, "100")
    assert shop.last(CASHIER.id) == "Receipt total: 100.00 zł. Type the receipt number:"
    assert await entries(shop, EntryKind.PURCHASE) == []
    await shop.send(CASHIER, "A-17")
    assert "✅ Added: +5 points" in shop.last(CASHIER.id)
    (purchase,) = await entries(shop, EntryKind.PURCHASE)
    assert purchase.receipt_no == "A-17"


async def test_a_photo_instead_of_an_amount_is_read_as_the_next_card(shop: Harness) -> None:
    await open_card(shop)
    await shop.send_photo(CASHIER, qr_png("hello"))
    assert "could not find a loyalty card QR code" in shop.last(CASHIER.id)
    token = await shop.card_token(ANNA)
    await shop.send_photo(CASHIER, qr_png(f"https://t.me/acme_cafe_bot?start=c_{token}"))
    assert "<b>Anna</b>" in shop.last(CASHIER.id)


async def test_the_next_customers_card_opens_over_an_open_one(shop: Harness) -> None:
    await open_card(shop)
    anna = await shop.customer(ANNA)
    await shop.send(CASHIER, anna.card_number or "")
    assert "<b>Anna</b>" in shop.last(CASHIER.id)
    await shop.send(CASHIER, "100")
    (purchase,) = await entries(shop, EntryKind.PURCHASE)
    assert purchase.customer_id == anna.id


async def test_an_earlier_prompts_buttons_go_and_do_not_act(shop: Harness) -> None:
    """An old Cancel must not stop the step in progress: when a step moves on, the earlier prompt
    loses its buttons, and a press on it (Telegram may still show it) changes nothing."""
    emma_id = await open_card(shop)
    first_cancel = shop.button(CASHIER.id, "Cancel")
    first_view = shop.session.carrying(CASHIER.id, first_cancel)
    assert first_view is not None
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=emma_id))
    assert "Type the receipt total" in shop.last(CASHIER.id)
    assert shop.session.buttons(CASHIER.id, first_view[0]) == []
    old_message = shop.callback_update(CASHIER, first_cancel).callback_query.message
    assert old_message is not None
    await shop.press(
        CASHIER,
        ScanCB(action="cancel", customer_id=emma_id),
        message=old_message.model_copy(update={"message_id": first_view[0]}),
    )
    assert "is from an earlier step" in shop.alerts()[-1]
    # The step in progress goes on.
    await shop.send(CASHIER, "30")
    assert "Most points for this receipt: 9 points." in shop.last(CASHIER.id)


async def test_a_purchase_prepared_before_the_upgrade_confirms_once(shop: Harness) -> None:
    """Confirm buttons of the old four-step sale may still be in cashiers' chats after an upgrade."""
    emma = await shop.customer(EMMA)
    operation, _ = await shop.loyalty.prepare_purchase(emma.id, CASHIER.id, 25_000, None)  # type: ignore[arg-type]
    confirm = OperationCB(action="confirm", op_id=operation.id)
    await shop.press(CASHIER, confirm)
    await shop.press(CASHIER, confirm)
    assert shop.alerts()[-1] == "Already done: the points were added once."
    update = shop.callback_update(CASHIER, confirm)
    await shop.feed(update)
    await shop.feed(update)
    assert len(await entries(shop, EntryKind.PURCHASE)) == 1
    assert (await shop.customer(EMMA)).balance == 62
    assert sum("for your purchase" in t for t in shop.texts(EMMA.id)) == 1


async def test_the_same_amount_message_fed_twice_sells_once(shop: Harness) -> None:
    await open_card(shop)
    update = shop.message_update(CASHIER, "250")
    await shop.feed(update)
    before = len(shop.session.requests)
    await shop.feed(update)
    assert len(shop.session.requests) == before
    assert len(await entries(shop, EntryKind.PURCHASE)) == 1


async def test_an_amount_message_handled_again_after_a_crash_sells_once(shop: Harness) -> None:
    """The inbox replays an update whose handling died; the sale's key is the cashier's message."""
    emma = await shop.customer(EMMA)
    first = await shop.loyalty.sell(emma.id, CASHIER.id, 25_000, None, key="sale:1:7")  # type: ignore[arg-type]
    again = await shop.loyalty.sell(emma.id, CASHIER.id, 25_000, None, key="sale:1:7")  # type: ignore[arg-type]
    assert first.created and not again.created and again.entry.id == first.entry.id
    assert len(await entries(shop, EntryKind.PURCHASE)) == 1 and len(await operations(shop)) == 1
    assert (await shop.customer(EMMA)).balance == 62


async def test_forged_callbacks_are_refused_and_change_nothing(shop: Harness) -> None:
    emma = await shop.customer(EMMA)
    operation, _ = await shop.loyalty.prepare_purchase(emma.id, CASHIER.id, 25_000, None)  # type: ignore[arg-type]
    confirm = OperationCB(action="confirm", op_id=operation.id)

    # A customer, a stranger, another cashier, and an unknown id.
    await shop.press(EMMA, confirm)
    assert shop.alerts()[-1] == "This button no longer works."
    await shop.press(STRANGER, ScanCB(action="redeem", customer_id=emma.id))
    assert shop.alerts()[-1] == "This button no longer works."
    await shop.press(STRANGER, "op:confirm:not-a-number")
    assert shop.alerts()[-1] == "This button no longer works."
    await shop.make_cashier(CASHIER_2)
    await shop.press(CASHIER_2, confirm)
    assert shop.alerts()[-1] == "This is not yours to change."
    await shop.press(CASHIER, OperationCB(action="confirm", op_id=999_999))
    assert shop.alerts()[-1] == "Nothing found under this number."
    await shop.press(CASHIER_2, UndoCB(entry_id=1))
    assert shop.alerts()[-1] == "This is not yours to change."

    # A revoked cashier.
    (staff,) = [s for s in await shop.loyalty.list_staff() if s.telegram_id == CASHIER.id]
    await shop.loyalty.revoke_staff(staff.id)  # type: ignore[arg-type]
    await shop.press(CASHIER, confirm)
    assert shop.alerts()[-1] == "This button no longer works."

    assert await entries(shop, EntryKind.PURCHASE) == []
    assert (await shop.customer(EMMA)).balance == 50


async def test_typed_card_number_opens_the_card(shop: Harness) -> None:
    emma = await shop.customer(EMMA)
    number = emma.card_number or ""
    await shop.send(CASHIER, f"/scan {number[:4]} {number[4:]}")
    assert "<b>Emma</b>" in shop.last(CASHIER.id)

    await shop.send(CASHIER, "/scan")
    assert "card number (8 digits) or a photo" in shop.last(CASHIER.id)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    await shop.send(CASHIER, wrong)
    assert "a digit is wrong" in shop.last(CASHIER.id)
    await shop.send(CASHIER, "12")
    assert "A card number has 8 digits" in shop.last(CASHIER.id)
    await shop.send(CASHIER, "12345674")
    assert "No card with this number" in shop.last(CASHIER.id)
    await shop.send(CASHIER, number)
    assert "<b>Emma</b>" in shop.last(CASHIER.id)


async def test_a_photo_of_the_qr_opens_the_card(shop: Harness) -> None:
    token = await shop.card_token(EMMA)
    await shop.send(CASHIER, "/scan")
    await shop.send_photo(CASHIER, qr_png("https://example.com/not-a-card"))
    assert "could not find a loyalty card QR code" in shop.last(CASHIER.id)
    await shop.send_photo(CASHIER, b"not an image at all")
    assert "could not find a loyalty card QR code" in shop.last(CASHIER.id)
    await shop.send_photo(CASHIER, qr_png(f"https://t.me/acme_cafe_bot?start=c_{token}"))
    assert "<b>Emma</b>" in shop.last(CASHIER.id)


async def test_no_operations_on_ones_own_card(shop: Harness) -> None:
    await shop.join(CASHIER)
    token = await shop.card_token(CASHIER)
    await shop.send(CASHIER, f"/start c_{token}")
    assert "cannot add or redeem points on your own card" in shop.last(CASHIER.id)


async def test_daily_operation_limit_per_card(shop: Harness) -> None:
    emma = await shop.customer(EMMA)
    for _ in range(shop.business.max_operations_per_day):
        operation, _ = await shop.loyalty.prepare_purchase(emma.id, CASHIER.id, 1000, None)  # type: ignore[arg-type]
        await shop.loyalty.confirm_purchase(operation.id, CASHIER.id)  # type: ignore[arg-type]
    await open_card(shop)
    assert "has been used 10 times today, which is the daily limit" in shop.last(CASHIER.id)


async def test_a_receipt_number_earns_once(receipts: Harness) -> None:
    shop = receipts
    await _purchase(shop, "100", receipt="R-1")
    await _purchase(shop, "100", user=ANNA, receipt="R-1")
    assert "Receipt R-1 has already earned points." in shop.last(CASHIER.id)
    await shop.send(CASHIER, "R-2")  # the number had a typo: typed again
    assert "✅ Added: +5 points\nCustomer: Anna" in shop.last(CASHIER.id)


async def test_cashier_undoes_their_own_operation_within_ten_minutes(shop: Harness) -> None:
    await _purchase(shop, "250")
    (purchase,) = await entries(shop, EntryKind.PURCHASE)
    assert shop.button(CASHIER.id, "Undo") == UndoCB(entry_id=purchase.id).pack()
    shop.clock.advance(minutes=9)
    await shop.press(CASHIER, UndoCB(entry_id=purchase.id))
    assert shop.last(CASHIER.id) == "↩️ Undone: −12 points\nCustomer: Emma\nBalance: 50 points"
    assert "−12 points: Cancellation. Balance: 50 points." in shop.last(EMMA.id)
    (reversal,) = await entries(shop, EntryKind.REVERSAL)
    assert reversal.reverses_id == purchase.id and reversal.points == -12 and reversal.spend == -25_000
    emma = await shop.customer(EMMA)
    assert emma.balance == 50 and emma.lifetime_spend == 0
    await shop.press(CASHIER, UndoCB(entry_id=purchase.id))
    assert shop.alerts()[-1] == "This operation has already been cancelled."
    assert len(await entries(shop, EntryKind.REVERSAL)) == 1


async def test_undo_is_refused_after_ten_minutes(shop: Harness) -> None:
    await _purchase(shop, "250")
    shop.clock.advance(minutes=10, seconds=1)
    await shop.send(CASHIER, "/undo")
    assert "Too late to undo: a cashier can undo within 10 minutes" in shop.last(CASHIER.id)
    assert await entries(shop, EntryKind.REVERSAL) == []


async def test_undo_command_and_nothing_to_undo(shop: Harness) -> None:
    await shop.send(CASHIER, "/undo")
    assert "You have nothing to undo." in shop.last(CASHIER.id)
    await _purchase(shop, "250")
    await shop.send(CASHIER, "/undo")
    assert "Undone" in shop.last(CASHIER.id)


async def test_admin_voids_any_entry_with_a_reason(shop: Harness) -> None:
    await _purchase(shop, "250")
    (purchase,) = await entries(shop, EntryKind.PURCHASE)
    shop.clock.advance(days=3)
    await shop.send(OWNER, f"/void {purchase.id}")
    assert "Write it as /void ENTRY REASON" in shop.last(OWNER.id)
    await shop.send(OWNER, f"/void {purchase.id} receipt was refunded")
    assert f"Entry #{purchase.id} cancelled: −12 points." in shop.last(OWNER.id)
    assert "Cancellation: receipt was refunded" in shop.last(EMMA.id)
    (reversal,) = await entries(shop, EntryKind.REVERSAL)
    assert reversal.reason == "receipt was refunded" and reversal.staff_telegram_id == OWNER.id
    await shop.send(OWNER, f"/void {reversal.id} oops")
    assert "A cancellation cannot itself be cancelled" in shop.last(OWNER.id)
    await shop.send(CASHIER, f"/void {purchase.id} again")
    assert "Send /help" in shop.last(CASHIER.id)
    assert len(await entries(shop, EntryKind.REVERSAL)) == 1


async def test_reversal_never_takes_the_balance_below_zero(shop: Harness) -> None:
    emma = await shop.customer(EMMA)
    welcome = (await entries(shop, EntryKind.WELCOME))[-1]
    assert welcome.customer_id != emma.id or True
    await shop.send(OWNER, f"/adjust {emma.card_number} -40 used at the old till")
    assert "Done: −40 points" in shop.last(OWNER.id)
    emma_welcome = next(e for e in await entries(shop, EntryKind.WELCOME) if e.customer_id == emma.id)
    await shop.send(OWNER, f"/void {emma_welcome.id} joined twice")
    assert "the customer has already used these points" in shop.last(OWNER.id)
    assert (await shop.customer(EMMA)).balance == 10


async def test_admin_adjusts_points_with_a_reason(shop: Harness) -> None:
    emma = await shop.customer(EMMA)
    number = emma.card_number or ""
    await shop.send(OWNER, f"/adjust {number[:4]} {number[4:]} +20 sorry for the wait")
    assert "Done: +20 points" in shop.last(OWNER.id) and "Balance: 70 points" in shop.last(OWNER.id)
    assert "+20 points: Adjustment: sorry for the wait. Balance: 70 points." == shop.last(EMMA.id)
    await shop.send(OWNER, f"/adjust {number} -500 mistake")
    assert "Not enough points" in shop.last(OWNER.id)
    await shop.send(OWNER, "/adjust 1234 +5")
    assert "Write it as /adjust" in shop.last(OWNER.id)
    assert (await shop.customer(EMMA)).balance == 70


async def test_cancel_works_in_every_step(shop: Harness) -> None:
    await open_card(shop)
    await shop.send(CASHIER, "/cancel")
    assert shop.last(CASHIER.id) == "Cancelled."
    await shop.send(CASHIER, "250")
    assert shop.last(CASHIER.id).startswith("No card is open, so nothing was added.")
    await open_card(shop)
    await shop.press(CASHIER, shop.button(CASHIER.id, "Cancel"))
    assert "Cancelled." in shop.last(CASHIER.id)
    await shop.send(CASHIER, "250")
    assert shop.last(CASHIER.id).startswith("No card is open, so nothing was added.")
    assert await entries(shop, EntryKind.PURCHASE) == []


async def test_customer_who_blocked_the_bot_does_not_stop_the_purchase(shop: Harness) -> None:
    await open_card(shop)
    shop.session.blocked.add(EMMA.id)
    await shop.send(CASHIER, "250")
    assert "✅ Added: +12 points" in shop.last(CASHIER.id)
    assert (await shop.customer(EMMA)).balance == 62


async def test_reaching_a_new_tier_is_celebrated_and_changes_the_rate(shop: Harness) -> None:
    await _purchase(shop, "1000")
    assert "+50 points for your purchase of 1,000.00 zł" in shop.last(EMMA.id)
    assert "Congratulations! You have reached the Silver tier: you now earn 7% in points." in shop.last(EMMA.id)
    await _purchase(shop, "100")
    assert "✅ Added: +7 points" in shop.last(CASHIER.id)
    await shop.send(EMMA, "/card")
    caption = shop.sent(SendPhoto, EMMA.id)[-1].caption
    assert "Tier: Silver" in caption and "Spend 3,900.00 zł more to reach Gold." in caption


async def test_concurrent_confirms_keep_the_receipt_and_daily_rules(shop: Harness) -> None:
    """Races that only PostgreSQL's concurrency could expose: locks keep both rules."""
    import asyncio

    from bot.loyalty.service import Refused

    anna, emma = await shop.customer(ANNA), await shop.customer(EMMA)
    first, _ = await shop.loyalty.prepare_purchase(anna.id, CASHIER.id, 10_000, "R-42")  # type: ignore[arg-type]
    second, _ = await shop.loyalty.prepare_purchase(emma.id, CASHIER.id, 10_000, "R-42")  # type: ignore[arg-type]
    results = await asyncio.gather(
        shop.loyalty.confirm_purchase(first.id, CASHIER.id),  # type: ignore[arg-type]
        shop.loyalty.confirm_purchase(second.id, CASHIER.id),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Applied", "Refused"]
    assert len([e for e in await entries(shop, EntryKind.PURCHASE) if e.receipt_no == "R-42"]) == 1

    already = len([e for e in await entries(shop, EntryKind.PURCHASE) if e.customer_id == emma.id])
    drafts = [
        (await shop.loyalty.prepare_purchase(emma.id, CASHIER.id, 10_000, None))[0]  # type: ignore[arg-type]
        for _ in range(15)
    ]
    results = await asyncio.gather(
        *(shop.loyalty.confirm_purchase(d.id, CASHIER.id) for d in drafts),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Refused)]
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, Refused)]
    done_today = [e for e in await entries(shop, EntryKind.PURCHASE) if e.customer_id == emma.id]
    assert len(done_today) == shop.business.max_operations_per_day == 10
    assert len(refused) == 15 - (10 - already)


async def test_concurrent_undo_reverses_once(shop: Harness) -> None:
    import asyncio

    from bot.loyalty.service import Applied

    emma = await shop.customer(EMMA)
    draft, _ = await shop.loyalty.prepare_purchase(emma.id, CASHIER.id, 25_000, None)  # type: ignore[arg-type]
    applied = await shop.loyalty.confirm_purchase(draft.id, CASHIER.id)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(shop.loyalty.undo(applied.entry.id, CASHIER.id) for _ in range(3)),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert len([r for r in results if isinstance(r, Applied)]) == 1
    assert all(isinstance(r, Applied) or getattr(r, "reason", None) == "already_reversed" for r in results)
    assert len(await entries(shop, EntryKind.REVERSAL)) == 1
    assert (await shop.customer(EMMA)).balance == 50
