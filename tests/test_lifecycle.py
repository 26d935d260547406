"""Keeping customers coming back: birthdays, "bring a friend", expiring points, win-back, the
marketing consent and /profile. Rules as plain functions; the rest through the dispatcher."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram.methods import SendMessage
from sqlalchemy import select

from bot.core.callbacks import CardCB, ConsentCB, DeleteMeCB, JoinCB, ProfileCB, UnsubscribeCB
from bot.core.i18n import create_i18n
from bot.lifecycle.jobs import LifecycleJobs
from bot.lifecycle.rules import (
    BirthdayError,
    Movement,
    add_months,
    birthday_due,
    expired_lots,
    open_lots,
    parse_birthday,
    referral_code_from_args,
)
from bot.lifecycle.service import LifecycleService
from storage.models import ConsentEvent, Customer, EntryKind
from tests.conftest import ANNA, CASHIER, EMMA, IVAN, OWNER, STRANGER, Harness, entries, person
from tests.test_surveys import buy

WARSAW = ZoneInfo("Europe/Warsaw")


def at(h: Harness, year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> None:
    """Put the clock at a local time of the business (Europe/Warsaw)."""
    h.clock.now = datetime(year, month, day, hour, minute, tzinfo=WARSAW).astimezone(UTC)


def with_rules(h: Harness, **changes: object) -> None:
    """Change the programme's lifecycle rules, as an owner editing the business file would."""
    business = replace(h.business, lifecycle=replace(h.business.lifecycle, **changes))
    h.business = business
    h.loyalty.business = business
    h.dp["lifecycle"].business = business
    h.dp["business"] = business


async def customer_row(h: Harness, user_id: int) -> Customer:
    async with h.db.reading() as session:
        row = await session.scalar(select(Customer).where(Customer.telegram_id == user_id))
    assert row is not None
    return row


def sent_to(h: Harness, user_id: int) -> list[str]:
    return [r.text for r in h.session.requests if isinstance(r, SendMessage) and int(r.chat_id) == user_id]


# --- rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("15.03", (15, 3)), ("5/11", (5, 11)), ("29.02", (29, 2)), (" 1-1 ", (1, 1)), ("31 12", (31, 12))],
)
def test_birthdays_are_read_as_day_and_month(typed: str, expected: tuple[int, int]) -> None:
    assert parse_birthday(typed) == expected


@pytest.mark.parametrize("typed", ["31.04", "30.02", "0.1", "15", "15.13", "tomorrow", "15.03.1990x", ""])
def test_impossible_birthdays_are_refused(typed: str) -> None:
    with pytest.raises(BirthdayError):
        parse_birthday(typed)


def test_a_birthday_bonus_is_once_a_year_even_when_the_date_moves() -> None:
    assert birthday_due(15, 3, date(2027, 3, 15), None)
    assert not birthday_due(15, 3, date(2027, 3, 16), None)
    assert birthday_due(15, 3, date(2028, 3, 15), date(2027, 3, 15))  # a year later, to the day
    assert birthday_due(15, 3, date(2028, 3, 15), date(2027, 3, 15))
    # Moved from 30 December to 2 January: not three days later…
    assert not birthday_due(2, 1, date(2028, 1, 2), date(2027, 12, 30))
    # …but on 2 January of the year after.
    assert birthday_due(2, 1, date(2029, 1, 2), date(2027, 12, 30))
    # 29 February is kept on the 28th in other years.
    assert birthday_due(29, 2, date(2027, 2, 28), date(2026, 2, 28))
    assert birthday_due(29, 2, date(2028, 2, 29), date(2027, 2, 28))
    assert not birthday_due(29, 2, date(2028, 2, 28), date(2027, 2, 28))


def test_months_are_added_to_the_calendar() -> None:
    start = datetime(2026, 1, 31, 10, tzinfo=UTC)
    assert add_months(start, 1) == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert add_months(start, 12) == datetime(2027, 1, 31, 10, tzinfo=UTC)
    assert add_months(start, -2) == datetime(2025, 11, 30, 10, tzinfo=UTC)


def test_spending_takes_the_oldest_points_first() -> None:
    jan, feb, mar = (datetime(2027, m, 1, tzinfo=UTC) for m in (1, 2, 3))
    lots = open_lots(
        [
            Movement(1, "purchase", 100, expires_at=jan),
            Movement(2, "purchase", 50, expires_at=feb),
            Movement(3, "redemption", -120),  # all of the first, 20 of the second
            Movement(4, "purchase", 70, expires_at=mar),
        ]
    )
    assert [(lot.entry_id, lot.remaining) for lot in lots] == [(2, 30), (4, 70)]
    assert [(lot.entry_id, lot.remaining) for lot in expired_lots(lots, feb)] == [(2, 30)]
    assert sum(lot.remaining for lot in lots) == 100  # the balance


def test_a_reversal_takes_back_its_own_earning_and_an_expiry_its_own_lot() -> None:
    jan, feb = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)
    lots = open_lots(
        [
            Movement(1, "purchase", 100, expires_at=jan),
            Movement(2, "purchase", 50, expires_at=feb),
            Movement(3, "reversal", -50, reverses_id=2),
            Movement(4, "expiry", -100, lot_id=1),
        ]
    )
    assert lots == []


def test_points_earned_while_expiry_was_off_never_expire() -> None:
    lots = open_lots(
        [Movement(1, "welcome", 50), Movement(2, "purchase", 10, expires_at=datetime(2027, 1, 1, tzinfo=UTC))]
    )
    assert [lot.entry_id for lot in expired_lots(lots, datetime(2099, 1, 1, tzinfo=UTC))] == [2]


def test_referral_links_are_recognised() -> None:
    assert referral_code_from_args("ref_abcd2345") == "abcd2345"
    assert referral_code_from_args("ref_ABCD2345") is None
    assert referral_code_from_args("ref_short") is None
    assert referral_code_from_args("c_abcd2345") is None


# --- consent and /profile ----------------------------------------------------------------------


async def test_marketing_is_asked_apart_after_joining_and_recorded(harness: Harness) -> None:
    await harness.join(EMMA)
    question = harness.texts(EMMA.id)[-1]
    assert "offers and news" in question
    emma = await customer_row(harness, EMMA.id)
    assert emma.is_member and emma.marketing_consent_at is None  # never pre-ticked
    await harness.press(EMMA, harness.button(EMMA.id, "Yes, send me offers"))
    emma = await customer_row(harness, EMMA.id)
    assert emma.marketing_consent_at == harness.clock.now
    harness.clock.advance(days=3)
    await harness.send(EMMA, "/unsubscribe")
    assert "will not get offers" in harness.last(EMMA.id)
    assert (await customer_row(harness, EMMA.id)).marketing_consent_at is None
    await harness.send(EMMA, "/unsubscribe")
    assert "not subscribed" in harness.last(EMMA.id)
    async with harness.db.reading() as session:
        events = list(await session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
    assert [(e.purpose, e.granted, e.source) for e in events] == [
        ("programme", True, "join"),
        ("marketing", True, "after_join"),
        ("marketing", False, "unsubscribe"),
    ]
    assert events[2].created_at - events[1].created_at == timedelta(days=3)


async def test_no_thanks_leaves_marketing_off(harness: Harness) -> None:
    await harness.join(IVAN)
    await harness.press(IVAN, ConsentCB(granted=False))
    assert (await customer_row(harness, IVAN.id)).marketing_consent_at is None
    assert "/profile" in harness.last(IVAN.id)


async def test_profile_sets_the_birthday_and_the_consent(shop: Harness) -> None:
    h = shop
    await h.send(ANNA, "/profile")
    assert "Urodziny" in h.last(ANNA.id)  # Polish: Anna's Telegram language
    await h.press(ANNA, ProfileCB(action="birthday"))
    await h.send(ANNA, "31.04")
    assert "15.03" in h.last(ANNA.id)  # the error shows an example and she stays in the step
    await h.send(ANNA, "15.03")
    anna = await customer_row(h, ANNA.id)
    assert (anna.birthday_day, anna.birthday_month) == (15, 3)
    assert any("15 marca" in text for text in h.texts(ANNA.id)[-2:])
    await h.press(ANNA, ProfileCB(action="marketing_on"))
    assert (await customer_row(h, ANNA.id)).marketing_consent_at is not None
    await h.press(ANNA, ProfileCB(action="marketing_off"))
    assert (await customer_row(h, ANNA.id)).marketing_consent_at is None
    await h.press(ANNA, ProfileCB(action="clear_birthday"))
    assert (await customer_row(h, ANNA.id)).birthday_day is None


async def test_the_unsubscribe_button_withdraws_in_one_tap(shop: Harness) -> None:
    await shop.press(EMMA, ConsentCB(granted=True))
    await shop.press(EMMA, UnsubscribeCB())
    assert (await customer_row(shop, EMMA.id)).marketing_consent_at is None
    assert any("will not get offers" in alert for alert in shop.alerts())


# --- birthdays ---------------------------------------------------------------------------------


async def set_birthday(h: Harness, user, typed: str) -> None:
    await h.press(user, ProfileCB(action="birthday"))
    await h.send(user, typed)


async def test_the_birthday_greeting_and_bonus_come_in_the_morning_once_a_year(shop: Harness) -> None:
    h = shop
    await set_birthday(h, IVAN, "15.03")
    at(h, 2027, 3, 15, 8, 0)  # quiet hours end at 9, the greeting is due at 10
    h.clear()
    await h.tick()
    assert sent_to(h, IVAN.id) == []
    at(h, 2027, 3, 15, 10, 5)
    await h.tick()
    greeting = h.last(IVAN.id)
    assert "С днём рождения" in greeting and "+100" in greeting
    await h.tick()
    at(h, 2027, 3, 15, 18, 0)
    await h.tick()
    # A restart: a new process with its own jobs finds nothing left to do.
    again = LifecycleJobs(LifecycleService(h.db, h.business, clock=h.clock), h.business, create_i18n("en"))
    await again.run(h.bot)
    assert len([t for t in sent_to(h, IVAN.id) if "С днём рождения" in t]) == 1
    assert [e.points for e in await entries(h, EntryKind.BIRTHDAY)] == [100]
    # Moving the birthday to tomorrow earns nothing more this year…
    await set_birthday(h, IVAN, "16.03")
    at(h, 2027, 3, 16, 11, 0)
    await h.tick()
    assert len(await entries(h, EntryKind.BIRTHDAY)) == 1
    # …and the next year it comes on the new day.
    at(h, 2028, 3, 16, 11, 0)
    await h.tick()
    assert [e.points for e in await entries(h, EntryKind.BIRTHDAY)] == [100, 100]
    assert await h.loyalty.balance_is_consistent((await h.customer(IVAN)).id)  # type: ignore[arg-type]


async def test_nobody_is_greeted_on_another_day_or_after_leaving(shop: Harness) -> None:
    h = shop
    await set_birthday(h, EMMA, "20.06")
    await set_birthday(h, ANNA, "20.06")
    await h.send(ANNA, "/deleteme")
    await h.press(ANNA, DeleteMeCB(confirm=True))
    at(h, 2027, 6, 19, 12)
    await h.tick()
    at(h, 2027, 6, 20, 12)
    h.clear()
    await h.tick()
    assert [e.customer_id for e in await entries(h, EntryKind.BIRTHDAY)] == [(await h.customer(EMMA)).id]


# --- bring a friend ----------------------------------------------------------------------------


async def invite_link(h: Harness, user) -> str:
    await h.press(user, CardCB(action="invite"))
    text = h.last(user.id)
    return text.split("start=")[1].split()[0]


async def test_a_friend_who_joins_and_buys_brings_both_a_bonus_once(shop: Harness) -> None:
    h = shop
    args = await invite_link(h, EMMA)
    assert args.startswith("ref_")
    await h.send(STRANGER, f"/start {args}")
    assert "Emma invited you" in h.last(STRANGER.id)
    await h.press(STRANGER, JoinCB())
    newcomer = await customer_row(h, STRANGER.id)
    emma = await customer_row(h, EMMA.id)
    assert newcomer.referred_by_id == emma.id
    assert await entries(h, EntryKind.REFERRAL) == []  # not before the first purchase
    await buy(h, STRANGER)
    bonuses = await entries(h, EntryKind.REFERRAL)
    assert sorted((e.customer_id, e.points) for e in bonuses) == sorted([(newcomer.id, 50), (emma.id, 50)])
    assert any("Bonus for inviting a friend" in t for t in sent_to(h, EMMA.id))
    assert any("Bonus for inviting a friend" in t for t in sent_to(h, STRANGER.id))
    await buy(h, STRANGER)  # the second purchase earns no more
    assert len(await entries(h, EntryKind.REFERRAL)) == 2
    await h.press(EMMA, CardCB(action="invite"))
    assert "1 friend" in h.last(EMMA.id)


async def test_members_and_oneself_earn_nothing_from_a_link(shop: Harness) -> None:
    h = shop
    args = await invite_link(h, EMMA)
    await h.send(EMMA, f"/start {args}")  # her own link
    assert "already a member" in h.last(EMMA.id)
    await h.send(IVAN, f"/start {args}")  # an existing member
    assert (await customer_row(h, IVAN.id)).referred_by_id is None
    await buy(h, IVAN)
    await buy(h, EMMA)
    assert await entries(h, EntryKind.REFERRAL) == []
    newcomer = person(3002, "Zoe", "en")
    await h.send(newcomer, "/start ref_zzzzzzzz")  # nobody's code: an ordinary welcome
    assert "no longer works" in h.last(newcomer.id)
    assert (await customer_row(h, newcomer.id)).referred_by_id is None


# --- expiring points ---------------------------------------------------------------------------


async def test_points_expire_oldest_first_after_a_reminder_and_never_retroactively(shop: Harness) -> None:
    h = shop
    at(h, 2027, 1, 10, 12)
    await buy(h, EMMA, "200")  # 10 points earned while expiry is off: they never expire
    with_rules(h, expiry_months=6, expiry_remind=timedelta(days=14))
    await buy(h, EMMA, "400")  # 20 points, expiring on 10 July
    at(h, 2027, 2, 10, 12)
    await buy(h, EMMA, "600")  # 30 points, expiring on 10 August
    with_rules(h, expiry_months=1)  # a stricter policy later changes nothing earned before
    at(h, 2027, 6, 20, 12)
    h.clear()
    await h.tick()
    assert sent_to(h, EMMA.id) == []
    at(h, 2027, 6, 27, 12)  # 13 days before
    await h.tick()
    reminder = h.last(EMMA.id)
    assert "20 points" in reminder and "expire on" in reminder and "July 10, 2027" in reminder
    await h.tick()
    assert len([t for t in sent_to(h, EMMA.id) if "expire on" in t]) == 1
    at(h, 2027, 7, 11, 12)
    await h.tick()
    expired = await entries(h, EntryKind.EXPIRY)
    assert [e.points for e in expired] == [-20]
    await h.send(EMMA, "/history")
    assert "Points expired" in h.last(EMMA.id)
    await h.tick()  # nothing twice
    assert len(await entries(h, EntryKind.EXPIRY)) == 1
    emma = await h.customer(EMMA)
    assert emma.balance == 50 + 10 + 30  # welcome and the first purchase never expire; August's not yet
    assert await h.loyalty.balance_is_consistent(emma.id)  # type: ignore[arg-type]


# --- win-back ----------------------------------------------------------------------------------


async def test_one_we_miss_you_per_quiet_spell_and_only_with_consent(shop: Harness) -> None:
    h = shop
    at(h, 2027, 1, 10, 12)
    await h.press(EMMA, ConsentCB(granted=True))
    await buy(h, EMMA)
    await buy(h, IVAN)  # no marketing consent: never written to
    at(h, 2027, 3, 10, 12)  # 59 days
    h.clear()
    await h.tick()
    assert sent_to(h, EMMA.id) == []
    at(h, 2027, 3, 12, 12)
    await h.tick()
    assert "We miss you, Emma" in h.last(EMMA.id)
    assert h.button(EMMA.id, "Unsubscribe") == UnsubscribeCB().pack()
    await h.tick()
    at(h, 2027, 4, 30, 12)
    await h.tick()
    assert len([t for t in sent_to(h, EMMA.id) if "We miss you" in t]) == 1
    assert sent_to(h, IVAN.id) == []
    await buy(h, EMMA)  # she came back; a new quiet spell may bring a new message
    at(h, 2027, 7, 1, 12)
    h.clear()
    await h.tick()
    assert any("We miss you" in t for t in sent_to(h, EMMA.id))


async def test_no_win_back_at_night(shop: Harness) -> None:
    h = shop
    at(h, 2027, 1, 10, 12)
    await h.press(EMMA, ConsentCB(granted=True))
    at(h, 2027, 4, 10, 22)
    h.clear()
    await h.tick()
    assert sent_to(h, EMMA.id) == []
    at(h, 2027, 4, 11, 9, 30)
    await h.tick()
    assert any("We miss you" in t for t in sent_to(h, EMMA.id))


async def test_a_changed_referral_bonus_never_breaks_later_purchases(shop: Harness) -> None:
    h = shop
    args = await invite_link(h, EMMA)
    await h.send(STRANGER, f"/start {args}")
    await h.press(STRANGER, JoinCB())
    await buy(h, STRANGER)
    with_rules(h, referral_bonus=100)
    await buy(h, STRANGER)  # the key of the first bonus is not applied again with a new amount
    assert len(await entries(h, EntryKind.PURCHASE)) == 2
    assert [e.points for e in await entries(h, EntryKind.REFERRAL)] == [50, 50]


async def test_undoing_the_first_purchase_takes_the_referral_bonuses_back(shop: Harness) -> None:
    h = shop
    args = await invite_link(h, EMMA)
    await h.send(STRANGER, f"/start {args}")
    await h.press(STRANGER, JoinCB())
    await buy(h, STRANGER)
    await h.send(CASHIER, "/undo")
    reversed_ids = {e.reverses_id for e in await entries(h, EntryKind.REVERSAL)}
    assert {e.id for e in await entries(h, EntryKind.REFERRAL)} <= reversed_ids
    for user in (EMMA, STRANGER):
        customer = await h.customer(user)
        assert await h.loyalty.balance_is_consistent(customer.id)  # type: ignore[arg-type]
    assert (await h.customer(EMMA)).balance == 50  # the welcome bonus alone
    await buy(h, STRANGER)  # once per newcomer: an undone first purchase used it up
    assert len(await entries(h, EntryKind.REFERRAL)) == 2


async def test_an_earning_that_expired_cannot_be_voided_a_second_time(shop: Harness) -> None:
    h = shop
    at(h, 2027, 1, 10, 12)
    with_rules(h, expiry_months=1)
    await buy(h, EMMA, "400")
    (purchase,) = await entries(h, EntryKind.PURCHASE)
    at(h, 2027, 2, 11, 12)
    await h.tick()
    assert [e.lot_id for e in await entries(h, EntryKind.EXPIRY)] == [purchase.id]
    await h.send(OWNER, f"/void {purchase.id} wrong card")
    assert await entries(h, EntryKind.REVERSAL) == []
    emma = await h.customer(EMMA)
    assert emma.balance == 50 and await h.loyalty.balance_is_consistent(emma.id)  # type: ignore[arg-type]


async def test_every_birthday_of_the_day_is_greeted_however_many(
    shop: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = shop
    monkeypatch.setattr("bot.lifecycle.service.BATCH", 2)  # three birthdays, batches of two
    for user in (ANNA, IVAN, EMMA):
        await set_birthday(h, user, "20.06")
    at(h, 2027, 6, 20, 11)
    for _ in range(3):
        await h.tick()
    assert len(await entries(h, EntryKind.BIRTHDAY)) == 3
