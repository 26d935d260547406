"""Issue 15: what a security probe did with points, and what stops it now. Nobody grants points to
their own card; apology bonuses and alerts cannot be farmed; a cashier cannot credit cards freely."""

from __future__ import annotations

from aiogram.types import User
from sqlalchemy import select

from bot.callbacks import AlertCB, CardCB, FlowCB, JoinCB, OperationCB, RedeemAnswerCB, ScanCB, SurveyCB
from storage.models import Alert, EntryKind, Survey, SurveyStatus
from tests.conftest import (
    CASHIER,
    EMMA,
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
