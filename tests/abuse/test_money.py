"""Issue 15: what a security probe did with points, and what stops it now. Nobody grants points to
their own card; apology bonuses and alerts cannot be farmed; a cashier cannot credit cards freely."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiogram.exceptions import TelegramNetworkError, TelegramServerError
from aiogram.methods import SendMessage
from aiogram.types import User
from sqlalchemy import select

from bot.core.callbacks import AlertCB, CardCB, JoinCB, RedeemAnswerCB, ScanCB, SurveyCB, UndoCB
from storage.models import Alert, CardOpening, EntryKind, Survey, SurveyStatus
from tests.conftest import (
    ANNA,
    CASHIER,
    EMMA,
    IVAN,
    MANAGER,
    OWNER,
    STRANGER,
    Harness,
    entries,
    open_card,
    operations,
)


async def all_alerts(h: Harness) -> list[Alert]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(Alert).order_by(Alert.id)))


async def feedback(h: Harness, user: User, score: int) -> Survey:
    """The customer's own /feedback, answered with `score`."""
    await h.send(user, "/feedback")
    customer = await h.customer(user)
    async with h.db.reading() as session:
        survey = await session.scalar(
            select(Survey)
            .where(Survey.customer_id == customer.id, Survey.status == SurveyStatus.ASKED)
            .order_by(Survey.id.desc())
            .limit(1)
        )
    assert survey is not None
    await h.press(user, SurveyCB(survey_id=survey.id, score=score))
    return survey


async def purchase(h: Harness, amount: str, user: User = EMMA) -> None:
    """Kasia scans the customer's QR and types the receipt total: that is the sale."""
    await open_card(h, user)
    await h.send(CASHIER, amount)


def fail_sends_to(h: Harness, chat_id: int, *errors: Exception) -> None:
    """Telegram fails the next messages sent to `chat_id` with `errors`, in order (nobody reads them)."""
    planned = list(errors)

    def fault(method: Any) -> None:
        if isinstance(method, SendMessage) and int(method.chat_id) == chat_id and planned:
            h.session.refused.append(method)
            raise planned.pop(0)

    h.session.on_request = fault


# --- nobody grants points to their own card -----------------------------------------------------


async def test_a_manager_cannot_give_an_apology_bonus_on_their_own_alert(shop: Harness) -> None:
    await shop.join(MANAGER)
    await feedback(shop, MANAGER, 0)
    (alert,) = await all_alerts(shop)
    before = (await shop.customer(MANAGER)).balance
    await shop.press_group(MANAGER, AlertCB(action="bonus", alert_id=alert.id))  # type: ignore[arg-type]
    assert "własna karta" in shop.alerts()[-1]  # Marta reads Polish
    assert await entries(shop, EntryKind.APOLOGY) == []
    assert (await shop.customer(MANAGER)).balance == before


async def test_an_owner_cannot_adjust_or_void_points_onto_their_own_card(shop: Harness) -> None:
    await shop.join(OWNER)
    owner = await shop.customer(OWNER)
    await shop.send(OWNER, f"/adjust {owner.card_number} +500 bonus")
    assert "cannot add or redeem points on your own card" in shop.last(OWNER.id)
    assert await entries(shop, EntryKind.ADJUSTMENT) == []
    # A redemption on the owner's card, made by a cashier, then voided by the owner: a credit too.
    customer_id = await open_card(shop, OWNER)
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=customer_id))
    await shop.send(CASHIER, "100")
    await shop.send(CASHIER, "20")
    await shop.press(OWNER, RedeemAnswerCB(op_id=(await operations(shop))[-1].id, accept=True))
    (redemption,) = await entries(shop, EntryKind.REDEMPTION)
    await shop.send(OWNER, f"/void {redemption.id} my mistake")
    assert "cannot add or redeem points on your own card" in shop.last(OWNER.id)
    assert await entries(shop, EntryKind.REVERSAL) == []
    # Taking points off one's own card, and crediting someone else's, still work.
    await shop.send(OWNER, f"/adjust {owner.card_number} -5 correction")
    emma = await shop.customer(EMMA)
    await shop.send(OWNER, f"/adjust {emma.card_number} +5 apology for the wait")
    assert [e.points for e in await entries(shop, EntryKind.ADJUSTMENT)] == [-5, 5]


async def test_a_cashier_does_not_credit_their_own_bring_a_friend_bonus(shop: Harness) -> None:
    await shop.join(CASHIER)
    await shop.press(CASHIER, CardCB(action="invite"))
    link = shop.last(CASHIER.id).split("start=")[1].split()[0]
    await shop.send(STRANGER, f"/start {link}")
    await shop.press(STRANGER, JoinCB())
    await purchase(shop, "40", STRANGER)
    assert await entries(shop, EntryKind.REFERRAL) == []  # the cashier invited this newcomer
    # The owner at the till (a typed number, as when the customer's phone is flat).
    await shop.send(OWNER, "/scan " + ((await shop.customer(STRANGER)).card_number or ""))
    assert "<b>Eve</b>" in shop.last(OWNER.id)
    await shop.send(OWNER, "40")
    assert shop.last(OWNER.id).startswith("✅ Added: +2 points\nCustomer: Eve\n")
    assert len(await entries(shop, EntryKind.REFERRAL)) == 2  # both bonuses, once someone else confirmed


async def test_an_apology_bonus_is_given_once_per_customer_per_recontact_period(shop: Harness) -> None:
    shop.clock.set_local(12)
    first = await feedback(shop, EMMA, 0)
    alerts_now = await all_alerts(shop)
    await shop.press_group(MANAGER, AlertCB(action="bonus", alert_id=alerts_now[-1].id))  # type: ignore[arg-type]
    assert len(await entries(shop, EntryKind.APOLOGY)) == 1
    await shop.press_group(MANAGER, AlertCB(action="resolve", alert_id=alerts_now[-1].id))  # type: ignore[arg-type]
    shop.clock.advance(days=1)
    await feedback(shop, EMMA, 0)  # unhappy again the next day: a new alert
    latest = (await all_alerts(shop))[-1]
    assert latest.survey_id != first.id
    await shop.press_group(MANAGER, AlertCB(action="bonus", alert_id=latest.id))  # type: ignore[arg-type]
    assert "niedawno bonus na przeprosiny" in shop.alerts()[-1]
    assert len(await entries(shop, EntryKind.APOLOGY)) == 1
    shop.clock.advance(days=31)  # after the recontact period, an apology is possible again
    await feedback(shop, EMMA, 0)
    later = (await all_alerts(shop))[-1]
    await shop.press_group(MANAGER, AlertCB(action="bonus", alert_id=later.id))  # type: ignore[arg-type]
    assert len(await entries(shop, EntryKind.APOLOGY)) == 2


# --- #2: a cashier cannot credit cards freely ----------------------------------------------------


def with_guards(h: Harness, **limits: int) -> None:
    """The business file's per-person limits, set lower for a test."""
    h.loyalty.business = replace(h.business, guards=replace(h.business.guards, **limits))


STALE = "This button is from an earlier step. Use the latest message."


async def test_a_forged_scan_button_for_a_card_not_opened_is_refused(shop: Harness) -> None:
    anna = await shop.customer(ANNA)
    emma_id = await open_card(shop, EMMA)  # the cashier has Emma's card open
    card_view = shop.callback_update(CASHIER, ScanCB(action="cancel", customer_id=emma_id)).callback_query.message
    assert card_view is not None and "Emma" in (card_view.text or "")
    for action in ("buy", "redeem", "cancel"):
        # Forged callback data no message carries: pressed on a message of its own, a step that is over.
        await shop.press(CASHIER, ScanCB(action=action, customer_id=anna.id))  # type: ignore[arg-type]
        assert shop.alerts()[-1] == STALE
    # Forged onto the card view itself, the current prompt: Anna's card was never opened here.
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=anna.id), message=card_view)  # type: ignore[arg-type]
    assert "This card is not open any more" in shop.alerts()[-1]
    assert await operations(shop) == []
    assert shop.session.buttons(CASHIER.id, card_view.message_id) != [], "Emma's card is still open"
    assert "Pay with points. Customer" not in shop.last(CASHIER.id)
    # The amount typed now is a sale on the card that is open, Emma's, never on Anna's.
    await shop.send(CASHIER, "100")
    (operation,) = await operations(shop)
    assert operation.customer_id == emma_id
    assert (await shop.customer(ANNA)).balance == 50
    # And a card opened, used and closed cannot be acted on again from its old keyboard.
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=emma_id), message=card_view)
    assert shop.alerts()[-1] == STALE
    await shop.send(CASHIER, "100")  # no card is open: no second sale
    assert len(await operations(shop)) == 1
    assert (await shop.customer(EMMA)).balance == 55


async def test_a_cashier_credits_at_most_the_daily_points_limit(shop: Harness) -> None:
    with_guards(shop, cashier_points_per_day=120)
    await purchase(shop, "1000", EMMA)  # 50 points
    await purchase(shop, "1000", ANNA)  # 100
    await purchase(shop, "1000", IVAN)  # 150: over the limit
    assert "over the 120 points a cashier may add in a day" in shop.last(CASHIER.id)
    assert [e.points for e in await entries(shop, EntryKind.PURCHASE)] == [50, 50]
    shop.clock.advance(days=1)  # the next business day
    await purchase(shop, "1000", IVAN)
    assert len(await entries(shop, EntryKind.PURCHASE)) == 3


async def test_owners_are_told_when_a_cashier_credits_one_card_again_and_again(shop: Harness) -> None:
    for _ in range(4):
        await purchase(shop, "10")
    warnings = [t for t in shop.texts(OWNER.id) if "has added points to Emma's card" in t]
    assert len(warnings) == 1 and "3 times today" in warnings[0] and "Kasia" in warnings[0]


async def test_owners_are_told_when_a_cashier_opens_many_cards_by_number(shop: Harness) -> None:
    with_guards(shop, warn_cards_without_qr=3)
    numbers = [(await shop.customer(user)).card_number for user in (ANNA, IVAN, EMMA, ANNA)]
    for number in numbers:
        await shop.send(CASHIER, f"/scan {number}")
    warnings = [t for t in shop.texts(OWNER.id) if "instead of scanning the customer's QR code" in t]
    assert len(warnings) == 1 and "opened 3 cards today" in warnings[0]
    async with shop.db.reading() as session:
        opened = list(await session.scalars(select(CardOpening.method)))
    assert opened.count("number") == 4


# --- #3: a committed movement reaches both people, even when Telegram fails after the commit --------


SEND = SendMessage(chat_id=CASHIER.id, text="…")  # the call Telegram fails
ADDED = "✅ Added: +5 points\nCustomer: Emma\nBalance: 55 points"
TOLD = "+5 points for your purchase of 100.00 zł. Balance: 55 points."


async def test_a_telegram_fault_after_the_sale_loses_neither_message(shop: Harness, caplog: Any) -> None:
    await open_card(shop, EMMA)
    shop.clear()
    fail_sends_to(shop, CASHIER.id, TelegramServerError(method=SEND, message="Internal Server Error"))
    await shop.send(CASHIER, "100")  # the sale: its "Added" fails in Telegram after the commit
    assert shop.texts(EMMA.id).count(TOLD) == 1  # the customer hears of their points at once, once
    assert ADDED not in shop.texts(CASHIER.id)
    assert not any("went wrong" in t for t in shop.texts(CASHIER.id))
    assert (await shop.customer(EMMA)).balance == 55
    fail_sends_to(shop, CASHIER.id, TelegramNetworkError(method=SEND, message="Request timeout error"))
    for _ in range(3):  # the scheduler tries the cashier's "Added" again, after 10 s, then 1 min
        shop.clock.advance(minutes=1)
        await shop.tick()
    assert shop.texts(CASHIER.id).count(ADDED) == 1
    (purchase,) = await entries(shop, EntryKind.PURCHASE)
    assert shop.last_markup(CASHIER.id).inline_keyboard[0][0].callback_data == UndoCB(entry_id=purchase.id).pack()
    assert shop.texts(EMMA.id).count(TOLD) == 1  # still once
    assert await shop.dp["notices"].pending() == []


async def test_an_amount_sent_again_after_a_lost_added_sends_nothing_twice(shop: Harness) -> None:
    await open_card(shop, EMMA)
    fail_sends_to(shop, CASHIER.id, TelegramServerError(method=SEND, message="Bad Gateway"))
    update = shop.message_update(CASHIER, "100")
    await shop.feed(update)
    assert ADDED not in shop.texts(CASHIER.id)  # the cashier saw nothing, and types the amount again
    await shop.send(CASHIER, "100")
    await shop.feed(update)  # and Telegram delivers the first message once more
    assert len(await entries(shop, EntryKind.PURCHASE)) == 1
    shop.clock.advance(minutes=1)
    await shop.tick()
    assert shop.texts(CASHIER.id).count(ADDED) == 1
    assert shop.texts(EMMA.id).count(TOLD) == 1
    assert len(await entries(shop, EntryKind.PURCHASE)) == 1
    assert (await shop.customer(EMMA)).balance == 55
    assert await shop.dp["notices"].pending() == []
