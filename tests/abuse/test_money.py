"""Issue 15: what a security probe did with points, and what stops it now. Nobody grants points to
their own card; apology bonuses and alerts cannot be farmed; a cashier cannot credit cards freely."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiogram.exceptions import TelegramNetworkError, TelegramServerError
from aiogram.methods import EditMessageText
from aiogram.types import User
from sqlalchemy import select

from bot.core.callbacks import AlertCB, CardCB, FlowCB, JoinCB, OperationCB, RedeemAnswerCB, ScanCB, SurveyCB
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
    """Kasia scans the customer's QR and adds a purchase."""
    customer_id = await open_card(h, user)
    await h.press(CASHIER, ScanCB(action="buy", customer_id=customer_id))
    await h.send(CASHIER, amount)
    await h.press(CASHIER, FlowCB(action="skip_receipt"))
    await h.press(CASHIER, OperationCB(action="confirm", op_id=(await operations(h))[-1].id))


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
    assert "cannot make operations on your own card" in shop.last(OWNER.id)
    assert await entries(shop, EntryKind.ADJUSTMENT) == []
    # A redemption on the owner's card, made by a cashier, then voided by the owner: a credit too.
    customer_id = await open_card(shop, OWNER)
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=customer_id))
    await shop.send(CASHIER, "100")
    await shop.send(CASHIER, "20")
    await shop.press(OWNER, RedeemAnswerCB(op_id=(await operations(shop))[-1].id, accept=True))
    (redemption,) = await entries(shop, EntryKind.REDEMPTION)
    await shop.send(OWNER, f"/void {redemption.id} my mistake")
    assert "cannot make operations on your own card" in shop.last(OWNER.id)
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
    stranger = await shop.customer(STRANGER)
    await shop.press(OWNER, ScanCB(action="buy", customer_id=stranger.id))  # type: ignore[arg-type]
    await shop.send(OWNER, "40")
    await shop.press(OWNER, FlowCB(action="skip_receipt"))
    await shop.press(OWNER, OperationCB(action="confirm", op_id=(await operations(shop))[-1].id))
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
    assert "already had an apology bonus lately" in shop.alerts()[-1] or "już" in shop.alerts()[-1]
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


async def test_a_forged_scan_button_for_a_card_not_opened_is_refused(shop: Harness) -> None:
    anna = await shop.customer(ANNA)
    await open_card(shop, EMMA)  # the cashier has Emma's card open
    for action in ("buy", "redeem"):
        await shop.press(CASHIER, ScanCB(action=action, customer_id=anna.id))  # type: ignore[arg-type]
        assert "This card is not open any more" in shop.alerts()[-1]
    await shop.send(CASHIER, "100")  # no step was started: nothing is asked or prepared
    assert await operations(shop) == []
    # And a card opened, used and closed cannot be credited again from its old keyboard.
    emma_id = (await shop.customer(EMMA)).id
    await purchase(shop, "100")
    await shop.press(CASHIER, ScanCB(action="buy", customer_id=emma_id))  # type: ignore[arg-type]
    assert "This card is not open any more" in shop.alerts()[-1]
    assert len(await operations(shop)) == 1


async def test_a_cashier_credits_at_most_the_daily_points_limit(shop: Harness) -> None:
    with_guards(shop, cashier_points_per_day=120)
    await purchase(shop, "1000", EMMA)  # 50 points
    await purchase(shop, "1000", ANNA)  # 100
    await purchase(shop, "1000", IVAN)  # 150: over the limit
    assert "over the 120 points a cashier may credit in a day" in shop.last(CASHIER.id)
    assert [e.points for e in await entries(shop, EntryKind.PURCHASE)] == [50, 50]
    shop.clock.advance(days=1)  # the next business day
    await purchase(shop, "1000", IVAN)
    assert len(await entries(shop, EntryKind.PURCHASE)) == 3


async def test_owners_are_told_when_a_cashier_credits_one_card_again_and_again(shop: Harness) -> None:
    for _ in range(4):
        await purchase(shop, "10")
    warnings = [t for t in shop.texts(OWNER.id) if "has credited the card of Emma" in t]
    assert len(warnings) == 1 and "3 times today" in warnings[0] and "Kasia" in warnings[0]


async def test_owners_are_told_when_a_cashier_opens_many_cards_by_number(shop: Harness) -> None:
    with_guards(shop, warn_cards_without_qr=3)
    numbers = [(await shop.customer(user)).card_number for user in (ANNA, IVAN, EMMA, ANNA)]
    for number in numbers:
        await shop.send(CASHIER, f"/scan {number}")
    warnings = [t for t in shop.texts(OWNER.id) if "without the customer's QR" in t]
    assert len(warnings) == 1 and "opened 3 cards today" in warnings[0]
    async with shop.db.reading() as session:
        opened = list(await session.scalars(select(CardOpening.method)))
    assert opened.count("number") == 4


# --- #3: a committed movement reaches both people, even when Telegram fails after the commit --------


async def test_a_telegram_fault_after_confirm_loses_neither_message(shop: Harness, caplog: Any) -> None:
    customer_id = await open_card(shop, EMMA)
    await shop.press(CASHIER, ScanCB(action="buy", customer_id=customer_id))
    await shop.send(CASHIER, "100")
    await shop.press(CASHIER, FlowCB(action="skip_receipt"))
    shop.clear()
    fault = EditMessageText(text="…", chat_id=CASHIER.id, message_id=1)
    shop.session.fail_next[EditMessageText] = [
        TelegramServerError(method=fault, message="Internal Server Error"),
        TelegramNetworkError(method=fault, message="Request timeout error"),
    ]
    await shop.press(CASHIER, OperationCB(action="confirm", op_id=(await operations(shop))[-1].id))
    told = [t for t in shop.texts(EMMA.id) if "for your purchase" in t]
    assert len(told) == 1  # the customer hears of their points at once, once
    assert not any("went wrong" in t for t in shop.texts(CASHIER.id))
    assert (await shop.customer(EMMA)).balance == 55
    for _ in range(3):  # the scheduler tries the cashier's "Done" again, after 10 s, then 1 min
        shop.clock.advance(minutes=1)
        await shop.tick()
    done = [t for t in shop.texts(CASHIER.id) if t.startswith("Done: +5 points for Emma")]
    assert len(done) == 1
    assert len([t for t in shop.texts(EMMA.id) if "for your purchase" in t]) == 1  # still once
    assert await shop.dp["notices"].pending() == []


async def test_a_repeated_confirm_after_a_lost_done_sends_nothing_twice(shop: Harness) -> None:
    customer_id = await open_card(shop, EMMA)
    await shop.press(CASHIER, ScanCB(action="buy", customer_id=customer_id))
    await shop.send(CASHIER, "100")
    await shop.press(CASHIER, FlowCB(action="skip_receipt"))
    op_id = (await operations(shop))[-1].id
    fault = EditMessageText(text="…", chat_id=CASHIER.id, message_id=1)
    shop.session.fail_next[EditMessageText] = [TelegramServerError(method=fault, message="Bad Gateway")]
    await shop.press(CASHIER, OperationCB(action="confirm", op_id=op_id))
    await shop.press(CASHIER, OperationCB(action="confirm", op_id=op_id))  # the cashier taps again
    assert "Already done" in shop.alerts()[-1]
    shop.clock.advance(minutes=1)
    await shop.tick()
    assert len([t for t in shop.texts(CASHIER.id) if t.startswith("Done:")]) == 1
    assert len([t for t in shop.texts(EMMA.id) if "for your purchase" in t]) == 1
    assert len(await entries(shop, EntryKind.PURCHASE)) == 1
