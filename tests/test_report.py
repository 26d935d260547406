"""The owner's loyalty report (issue 19): every figure, exactly, on a small history built by hand
(four members over four months), on SQLite and PostgreSQL; then /report as an owner reads it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiogram.methods import SendDocument, SendPhoto
from sqlalchemy import select

from bot.business import Business
from bot.core.callbacks import ReportCB
from bot.loyalty.analytics import LoyaltyAnalytics, Segment
from storage.database import Database
from storage.models import Customer, EntryKind, LedgerEntry
from storage.repositories import Ledger
from tests.conftest import CASHIER, GROUP_ID, MANAGER, OWNER, STRANGER, Harness
from tests.test_stores import chain_business

UNTIL = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


async def build_history(db: Database) -> dict[str, int]:
    """A joined in March and comes often; B joined in April and stopped; C came through A's link in
    May (one of her two purchases was undone); D joined in June and had a birthday."""
    people = {"A": at(3, 1), "B": at(4, 10), "C": at(5, 20), "D": at(6, 1)}
    ids: dict[str, int] = {}
    async with db.writing() as session:
        for n, (name, joined) in enumerate(people.items()):
            customer = Customer(
                telegram_id=5000 + n, first_name=name, card_number=f"1000000{n}", joined_at=joined, created_at=joined
            )
            session.add(customer)
            await session.flush()
            assert customer.id is not None
            ids[name] = customer.id
        (await session.get(Customer, ids["C"])).referred_by_id = ids["A"]  # type: ignore[union-attr]
        ledger = Ledger(session)
        key = iter(range(1, 1000))

        async def move(who: str, kind: EntryKind, points: int, when: datetime, amount: int = 0, **extra: object):  # type: ignore[no-untyped-def]
            spend = amount if kind == EntryKind.PURCHASE else 0
            entry, _ = await ledger.append(
                customer_id=ids[who],
                kind=kind,
                points=points,
                spend=extra.pop("spend", spend),  # type: ignore[arg-type]
                amount=amount or None,
                key=f"k{next(key)}",
                now=when,
                **extra,  # type: ignore[arg-type]
            )
            return entry

        for who, joined in people.items():
            await move(who, EntryKind.WELCOME, 50, joined)
        await move("A", EntryKind.PURCHASE, 500, at(4, 1), 10_000)
        await move("A", EntryKind.PURCHASE, 250, at(4, 20), 5_000)
        await move("A", EntryKind.PURCHASE, 100, at(6, 1), 2_000)
        await move("A", EntryKind.APOLOGY, 50, at(6, 3))
        await move("A", EntryKind.PURCHASE, 150, at(6, 10), 3_000, store="old_town")
        await move("A", EntryKind.REDEMPTION, -30, at(6, 10, 11), 3_000, store="old_town")
        await move("B", EntryKind.PURCHASE, 200, at(4, 25), 4_000)
        await move("C", EntryKind.PURCHASE, 300, at(6, 5), 6_000, store="old_town")
        undone = await move("C", EntryKind.PURCHASE, 50, at(6, 6), 1_000, store="old_town")
        await move(
            "C", EntryKind.REVERSAL, -50, at(6, 6, 11), 1_000, spend=-1_000, reverses_id=undone.id, store="old_town"
        )
        await move("D", EntryKind.BIRTHDAY, 100, at(6, 2))
    return ids


def analytics(db: Database, business: Business) -> LoyaltyAnalytics:
    return LoyaltyAnalytics(db, business, clock=lambda: UNTIL)


async def test_every_figure_of_30_days_on_a_history_built_by_hand(db: Database, business: Business) -> None:
    await build_history(db)
    report = await analytics(db, business).report(30)
    assert report.since == UNTIL - timedelta(days=30)
    assert (report.members, report.new_members) == (4, 2)  # C and D joined in the period
    # This period: A twice (1 June, 10 June), C once (her undone purchase does not count).
    assert dataclasses.astuple(report.now) == (2, 1, 3, 11_000)
    # The period before: A on 20 April, B on 25 April.
    assert dataclasses.astuple(report.before) == (2, 0, 2, 9_000)
    assert report.churn == (1, 2)  # B bought before and not now
    assert report.churn_before == (0, 1)  # A bought on 1 April and again in the next period
    assert (report.lifetime_members, report.lifetime_spend) == (4, 30_000)  # A 200, B 40, C 60, D 0 zł
    assert report.by_tier == [Segment("base", 4, 30_000), Segment("silver", 0, 0), Segment("gold", 0, 0)]
    months = {s.label: (s.members, s.spend) for s in report.by_join_month}
    assert list(months)[-4:] == ["2026-03", "2026-04", "2026-05", "2026-06"] and len(months) == 12
    assert months["2026-03"] == (1, 20_000) and months["2026-04"] == (1, 4_000)
    assert months["2026-05"] == (1, 6_000) and months["2026-06"] == (1, 0) and months["2026-02"] == (0, 0)
    assert report.outstanding == 1_070 + 250 + 350 + 150 and report.liability == 182_000  # 1 point = 1.00 zł
    assert report.expiring == 0  # the example programme's points never expire
    # Credited in the period: A 100 + 50 + 150, C 50 + 300 (the undone 50 left out), D 50 + 100.
    assert (report.earned, report.redeemed, report.expired) == (800, 30, 0)
    assert (report.referrals_opened, report.referrals_joined, report.referrals_bought) == (1, 1, 1)
    assert (report.birthday_given, report.birthday_came) == (1, 0)
    assert (report.apology_given, report.apology_came) == (1, 1)  # A came back on 10 June
    cohorts = {month: (size, active) for month, size, active in report.cohorts}
    assert cohorts["2026-03"] == (1, [0, 1, 0, 1])  # A: not in March, in April, not in May, in June
    assert cohorts["2026-04"] == (1, [1, 0, 0])
    assert cohorts["2026-05"] == (1, [0, 1])
    assert cohorts["2026-06"] == (1, [0])
    assert cohorts["2025-07"] == (0, [0] * 12)


async def test_a_store_counts_what_happened_there(db: Database, tmp_path: Path) -> None:
    chain = chain_business(tmp_path)
    await build_history(db)
    old_town = await analytics(db, chain).report(30, "old_town")
    assert dataclasses.astuple(old_town.now) == (2, 0, 2, 9_000)  # A on 10 June, C on 5 June
    assert old_town.before.active == 0 and old_town.churn is None
    assert (old_town.lifetime_members, old_town.lifetime_spend) == (2, 9_000)  # who bought there, and what
    assert (old_town.earned, old_town.redeemed) == (450, 30)
    centre = await analytics(db, chain).report(30, "centre")  # the first store holds the rows from before
    assert dataclasses.astuple(centre.now) == (1, 0, 1, 2_000)
    assert centre.churn == (1, 2)
    assert (centre.lifetime_members, centre.lifetime_spend) == (2, 21_000)  # A 170 zł there, B 40 zł
    assert (centre.earned, centre.redeemed) == (350, 0)


async def test_longer_periods_and_expiring_points(db: Database, business: Business) -> None:
    ids = await build_history(db)
    expiring = dataclasses.replace(business, lifecycle=dataclasses.replace(business.lifecycle, expiry_months=12))
    async with db.writing() as session:  # 40 points of B's expire in 20 days, 60 of D's in 40
        await Ledger(session).append(
            customer_id=ids["B"],
            kind=EntryKind.ADJUSTMENT,
            points=40,
            key="due",
            now=at(5, 1),
            expires_at=UNTIL + timedelta(days=20),
        )
        await Ledger(session).append(
            customer_id=ids["D"],
            kind=EntryKind.ADJUSTMENT,
            points=60,
            key="later",
            now=at(5, 1),
            expires_at=UNTIL + timedelta(days=40),
        )
    report = await analytics(db, expiring).report(90)
    assert report.expiring == 40  # not D's 60, due in 40 days
    # 90 days: 17 March to 15 June; everyone who bought did so in it.
    assert dataclasses.astuple(report.now) == (3, 1, 6, 30_000)
    assert report.new_members == 3 and report.churn is None  # nobody bought in the 90 days before


async def test_an_owner_reads_the_report_and_its_buttons(harness: Harness) -> None:
    await harness.send(OWNER, "/report")
    text = harness.last(OWNER.id)
    assert text.startswith("📈 <b>Loyalty programme, last 30 days</b>")
    assert "Members: 0" in text and "What each figure means: README, “The loyalty report”." in text
    labels = [b.text for row in harness.last_markup(OWNER.id).inline_keyboard for b in row]
    assert labels[:3] == ["✓ 30 days", "90 days", "365 days"] and "📊 Cohorts" in labels and "📄 CSV" in labels
    await harness.press(OWNER, ReportCB(action="show", days=365))
    assert harness.last(OWNER.id).startswith("📈 <b>Loyalty programme, last 365 days</b>")
    await harness.press(OWNER, ReportCB(action="chart", days=90))
    assert harness.sent(SendPhoto, OWNER.id)
    await harness.press(OWNER, ReportCB(action="csv", days=90))
    (document,) = harness.sent(SendDocument, OWNER.id)
    assert document.document.filename.startswith("loyalty-90d-")
    await harness.send(OWNER, "/export report")
    assert len(harness.sent(SendDocument, OWNER.id)) == 2


async def test_the_report_is_for_owners_and_the_managers_group(harness: Harness) -> None:
    await harness.send_group(MANAGER, "/report")
    assert harness.last(GROUP_ID).startswith("📈 <b>Loyalty programme")
    harness.clear()
    for person in (STRANGER, CASHIER):
        await harness.send(person, "/report")
        assert not any("Loyalty programme" in t for t in harness.texts(person.id))
        await harness.press(person, ReportCB(action="csv", days=30))  # forged: nothing is sent
        assert harness.sent(SendDocument, person.id) == []


async def test_who_erased_their_data_is_no_member_and_a_voided_bonus_no_bonus(db: Database, business: Business) -> None:
    ids = await build_history(db)
    async with db.writing() as session:
        (await session.get(Customer, ids["C"])).deleted_at = at(6, 12)  # type: ignore[union-attr]
        birthday = await session.scalar(select(LedgerEntry).where(LedgerEntry.kind == EntryKind.BIRTHDAY.value))
        assert birthday is not None
        await Ledger(session).append(
            customer_id=ids["D"],
            kind=EntryKind.REVERSAL,
            points=-100,
            key="void",
            now=at(6, 13),
            reverses_id=birthday.id,
        )
    report = await analytics(db, business).report(30)
    assert report.members == 3 and dataclasses.astuple(report.now) == (1, 1, 2, 5_000)  # A only, not C
    cohorts = {month: (size, active) for month, size, active in report.cohorts}
    assert cohorts["2026-05"] == (0, [0, 0])
    assert (report.birthday_given, report.referrals_joined) == (0, 0)
