"""The owner's loyalty report (/report): members, visits, churn, lifetime value, the points the
business owes, the programme's levers and the monthly cohorts. Every figure is counted by the
database (a handful of aggregations over the ledger and the members), never by loading the rows;
the words for each figure are in README ("The loyalty report"). A cold path: the ORM is fine here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, null, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from bot.business import Business
from bot.lifecycle.rules import Movement, expiring_between, open_lots
from storage.database import Database
from storage.models import Customer, EntryKind, LedgerEntry, utcnow
from storage.repositories import in_store

REPORT_PERIODS = (30, 90, 365)
EXPIRY_HORIZON = timedelta(days=30)  # "expires in the next 30 days"
COHORT_MONTHS = 12  # join months shown in the cohort table, and months since joining
EARNING_KINDS = (
    EntryKind.PURCHASE,
    EntryKind.WELCOME,
    EntryKind.BIRTHDAY,
    EntryKind.REFERRAL,
    EntryKind.APOLOGY,
    EntryKind.ADJUSTMENT,
)

COUNTED_KINDS = [kind.value for kind in (*EARNING_KINDS, EntryKind.REDEMPTION, EntryKind.EXPIRY)]


@dataclass(frozen=True)
class Activity:
    """Members' purchases in one period (reversed purchases left out)."""

    active: int = 0  # members with a purchase
    repeat: int = 0  # …with two or more
    visits: int = 0
    revenue: int = 0  # minor units


@dataclass(frozen=True)
class Segment:
    label: str  # a tier's id, or a join month as YYYY-MM
    members: int
    spend: int  # lifetime spend of those members, minor units

    @property
    def average(self) -> int | None:
        return (self.spend + self.members // 2) // self.members if self.members else None


@dataclass(frozen=True)
class LoyaltyReport:
    since: datetime
    until: datetime
    days: int
    store: str  # "" for all stores
    members: int
    new_members: int
    now: Activity
    before: Activity  # the previous period, as long as this one
    churned: int  # active in the previous period, no purchase in this one
    churned_before: int  # the same one period earlier
    active_before_before: int
    lifetime_members: int  # members whose lifetime spend is counted (in the store: who bought there)
    lifetime_spend: int
    by_tier: list[Segment]
    by_join_month: list[Segment]
    outstanding: int  # points on members' cards now
    point_value: int  # minor units a point pays for
    expiring: int  # points that expire in the next 30 days
    earned: int  # points credited in the period (not reversed)
    redeemed: int  # points paid with in the period (not reversed)
    expired: int  # points expired in the period
    referrals_opened: int
    referrals_joined: int
    referrals_bought: int
    birthday_given: int
    birthday_came: int  # …of those customers, bought after the bonus (in the period)
    apology_given: int
    apology_came: int
    cohorts: list[tuple[str, int, list[int]]] = field(default_factory=list)  # month, size, active in month k

    @property
    def churn(self) -> tuple[int, int] | None:
        return (self.churned, self.before.active) if self.before.active else None

    @property
    def churn_before(self) -> tuple[int, int] | None:
        return (self.churned_before, self.active_before_before) if self.active_before_before else None

    @property
    def average_lifetime_spend(self) -> int:
        """Minor units, rounded half up; 0 with nobody counted."""
        members = self.lifetime_members
        return (self.lifetime_spend + members // 2) // members if members else 0

    @property
    def liability(self) -> int:
        return self.outstanding * self.point_value


def month_starts(until: datetime, zone: Any, count: int) -> list[datetime]:
    """The first instants of the last `count` calendar months (business time), oldest first."""
    local = until.astimezone(zone)
    year, month = local.year, local.month
    starts = []
    for _ in range(count):
        starts.append(datetime(year, month, 1, tzinfo=zone).astimezone(UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def _bucket(column: Any, starts: Sequence[datetime]) -> Any:
    """The index of the last start at or before the value (None before the first)."""
    if not starts:
        return null()
    return case(*((column >= start, index) for index, start in reversed(list(enumerate(starts)))), else_=None)


class LoyaltyAnalytics:
    def __init__(self, db: Database, business: Business, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.business = business
        self.clock = clock

    def _in_store(self, column: Any, store: str) -> Any:
        return in_store(column, store, self.business.first_store.id, self.business.store_ids)

    def _purchases(self, store: str) -> Any:
        """Purchases that stand (no reversal), as a subquery of customer, time, amount, store."""
        reversal = aliased(LedgerEntry)
        return (
            select(
                col(LedgerEntry.customer_id).label("customer_id"),
                col(LedgerEntry.created_at).label("at"),
                func.coalesce(col(LedgerEntry.amount), 0).label("amount"),
            )
            .outerjoin(reversal, col(reversal.reverses_id) == col(LedgerEntry.id))
            .where(
                col(LedgerEntry.kind) == EntryKind.PURCHASE.value,
                col(reversal.id).is_(None),
                self._in_store(col(LedgerEntry.store), store),
            )
            .subquery()
        )

    async def report(self, days: int, store: str = "") -> LoyaltyReport:
        until = self.clock()
        length = timedelta(days=days)
        since, before, before_before = until - length, until - 2 * length, until - 3 * length
        purchases = self._purchases(store)
        async with self.db.reading() as session:
            # Activity in this period and the two before it, and churn between them: one pass.
            period = case(
                (purchases.c.at >= since, 2), (purchases.c.at >= before, 1), (purchases.c.at >= before_before, 0)
            )
            per_customer = (
                select(
                    purchases.c.customer_id,
                    func.sum(case((period == 2, 1), else_=0)).label("n2"),
                    func.sum(case((period == 1, 1), else_=0)).label("n1"),
                    func.sum(case((period == 0, 1), else_=0)).label("n0"),
                    func.sum(case((period == 2, purchases.c.amount), else_=0)).label("r2"),
                    func.sum(case((period == 1, purchases.c.amount), else_=0)).label("r1"),
                )
                .where(purchases.c.at >= before_before, purchases.c.at < until)
                .group_by(purchases.c.customer_id)
                .subquery()
            )
            c = per_customer.c

            def count_if(condition: Any) -> Any:
                return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

            row = (
                await session.execute(
                    select(
                        count_if(c.n2 > 0),
                        count_if(c.n2 >= 2),
                        func.coalesce(func.sum(c.n2), 0),
                        func.coalesce(func.sum(c.r2), 0),
                        count_if(c.n1 > 0),
                        count_if(c.n1 >= 2),
                        func.coalesce(func.sum(c.n1), 0),
                        func.coalesce(func.sum(c.r1), 0),
                        count_if(and_(c.n1 > 0, c.n2 == 0)),
                        count_if(c.n0 > 0),
                        count_if(and_(c.n0 > 0, c.n1 == 0)),
                    )
                )
            ).one()
            now = Activity(int(row[0]), int(row[1]), int(row[2]), int(row[3]))
            earlier = Activity(int(row[4]), int(row[5]), int(row[6]), int(row[7]))
            churned, active_before_before, churned_before = int(row[8]), int(row[9]), int(row[10])

            member = and_(col(Customer.joined_at).is_not(None), col(Customer.deleted_at).is_(None))
            members_row = (
                await session.execute(
                    select(
                        count_if(col(Customer.joined_at) < until),
                        count_if(col(Customer.joined_at) >= since),
                        func.coalesce(func.sum(col(Customer.balance)), 0),
                    ).where(member)
                )
            ).one()

            # Lifetime value: every member's lifetime spend (in a store: what they spent there).
            if store:
                spend_of = (
                    select(
                        col(LedgerEntry.customer_id).label("customer_id"),
                        func.sum(col(LedgerEntry.spend)).label("spend"),
                    )
                    .where(self._in_store(col(LedgerEntry.store), store))
                    .group_by(col(LedgerEntry.customer_id))
                    .subquery()
                )
                joined = (
                    select(
                        col(Customer.lifetime_spend).label("tier_spend"),
                        col(Customer.joined_at).label("joined_at"),
                        spend_of.c.spend.label("spend"),
                    )
                    .select_from(Customer)
                    .join(spend_of, spend_of.c.customer_id == col(Customer.id))
                    .where(member, spend_of.c.spend > 0)
                    .subquery()
                )
            else:
                joined = (
                    select(
                        col(Customer.lifetime_spend).label("tier_spend"),
                        col(Customer.joined_at).label("joined_at"),
                        col(Customer.lifetime_spend).label("spend"),
                    )
                    .where(member)
                    .subquery()
                )
            tiers = self.business.tiers
            tier_of = case(
                *((joined.c.tier_spend >= tier.min_spend, literal(tier.id)) for tier in reversed(tiers[1:])),
                else_=literal(tiers[0].id),
            )
            by_tier_rows = dict(
                (tier, (int(n), int(s)))
                for tier, n, s in await session.execute(
                    select(tier_of, func.count(), func.coalesce(func.sum(joined.c.spend), 0)).group_by(tier_of)
                )
            )
            by_tier = [Segment(t.id, *by_tier_rows.get(t.id, (0, 0))) for t in tiers]
            months = month_starts(until, self.business.timezone, COHORT_MONTHS)
            month_of = _bucket(joined.c.joined_at, months)
            by_month_rows = {
                index: (int(n), int(s))
                for index, n, s in await session.execute(
                    select(month_of, func.count(), func.coalesce(func.sum(joined.c.spend), 0))
                    .where(joined.c.joined_at >= months[0])
                    .group_by(month_of)
                )
                if index is not None
            }
            labels = [m.astimezone(self.business.timezone).strftime("%Y-%m") for m in months]
            by_join_month = [Segment(labels[i], *by_month_rows.get(i, (0, 0))) for i in range(len(months))]
            lifetime = (await session.execute(select(func.count(), func.coalesce(func.sum(joined.c.spend), 0)))).one()

            # Points: what the period earned, paid with and lost, counted where they happened.
            reversal = aliased(LedgerEntry)
            standing = (
                select(
                    col(LedgerEntry.kind),
                    func.coalesce(func.sum(case((col(LedgerEntry.points) > 0, col(LedgerEntry.points)), else_=0)), 0),
                    func.coalesce(func.sum(case((col(LedgerEntry.points) < 0, -col(LedgerEntry.points)), else_=0)), 0),
                )
                .outerjoin(reversal, col(reversal.reverses_id) == col(LedgerEntry.id))
                .where(
                    col(LedgerEntry.created_at) >= since,
                    col(LedgerEntry.created_at) < until,
                    self._in_store(col(LedgerEntry.store), store),
                    col(reversal.id).is_(None),
                    col(LedgerEntry.kind).in_(COUNTED_KINDS),
                )
                .group_by(col(LedgerEntry.kind))
            )
            moved = {str(kind): (int(plus), int(minus)) for kind, plus, minus in await session.execute(standing)}
            earned = sum(moved.get(k.value, (0, 0))[0] for k in EARNING_KINDS)
            redeemed = moved.get(EntryKind.REDEMPTION.value, (0, 0))[1]
            expired = moved.get(EntryKind.EXPIRY.value, (0, 0))[1]
            expiring = await self._expiring(session, until)

            # The programme's levers, programme-wide: links, birthdays, apologies.
            referred = and_(
                col(Customer.referred_by_id).is_not(None),
                col(Customer.created_at) >= since,
                col(Customer.created_at) < until,
            )
            bought = (
                select(literal(1))
                .select_from(purchases)
                .where(purchases.c.customer_id == col(Customer.id), purchases.c.at < until)
                .exists()
            )
            referral_row = (
                await session.execute(
                    select(
                        func.count(),
                        count_if(col(Customer.joined_at).is_not(None)),
                        count_if(bought),
                    ).where(referred)
                )
            ).one()
            birthday = await self._came_back(session, EntryKind.BIRTHDAY, since, until, purchases)
            apology = await self._came_back(session, EntryKind.APOLOGY, since, until, purchases)
            cohorts = await self._cohorts(session, months, labels, purchases, until)
        return LoyaltyReport(
            since=since,
            until=until,
            days=days,
            store=store,
            members=int(members_row[0]),
            new_members=int(members_row[1]),
            now=now,
            before=earlier,
            churned=churned,
            churned_before=churned_before,
            active_before_before=active_before_before,
            lifetime_members=int(lifetime[0]),
            lifetime_spend=int(lifetime[1]),
            by_tier=by_tier,
            by_join_month=by_join_month,
            outstanding=int(members_row[2]),
            point_value=self.business.point_value,
            expiring=expiring,
            earned=earned,
            redeemed=redeemed,
            expired=expired,
            referrals_opened=int(referral_row[0]),
            referrals_joined=int(referral_row[1]),
            referrals_bought=int(referral_row[2]),
            birthday_given=birthday[0],
            birthday_came=birthday[1],
            apology_given=apology[0],
            apology_came=apology[1],
            cohorts=cohorts,
        )

    async def _came_back(
        self, session: Any, kind: EntryKind, since: datetime, until: datetime, purchases: Any
    ) -> tuple[int, int]:
        """Bonuses of a kind given in the period, and how many of those customers bought after it."""
        after = (
            select(literal(1))
            .select_from(purchases)
            .where(
                purchases.c.customer_id == col(LedgerEntry.customer_id),
                purchases.c.at > col(LedgerEntry.created_at),
                purchases.c.at < until,
            )
            .exists()
        )
        row = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(case((after, 1), else_=0)), 0)).where(
                    col(LedgerEntry.kind) == kind.value,
                    col(LedgerEntry.created_at) >= since,
                    col(LedgerEntry.created_at) < until,
                )
            )
        ).one()
        return int(row[0]), int(row[1])

    async def _expiring(self, session: Any, until: datetime) -> int:
        """Points that expire in the next 30 days. The database finds the few members with an
        earning due then; their lots are worked out as the expiry job does (oldest spent first)."""
        if self.business.lifecycle.expiry_months <= 0:
            return 0
        horizon = until + EXPIRY_HORIZON
        due = select(col(LedgerEntry.customer_id)).where(
            col(LedgerEntry.points) > 0,
            col(LedgerEntry.expires_at) > until,
            col(LedgerEntry.expires_at) <= horizon,
        )
        total = 0
        for (customer_id,) in await session.execute(due.distinct()):
            movements = [
                Movement(e.id or 0, e.kind, e.points, e.expires_at, e.reverses_id, e.lot_id)
                for e in await session.scalars(select(LedgerEntry).where(col(LedgerEntry.customer_id) == customer_id))
            ]
            total += sum(lot.remaining for lot in expiring_between(open_lots(movements), until, horizon))
        return total

    async def _cohorts(
        self, session: Any, months: list[datetime], labels: list[str], purchases: Any, until: datetime
    ) -> list[tuple[str, int, list[int]]]:
        """Members by join month (the last twelve), and how many of each bought in their join month,
        the month after, and so on."""
        joined_month = _bucket(col(Customer.joined_at), months)
        sizes = {
            index: int(n)
            for index, n in await session.execute(
                select(joined_month, func.count())
                .where(col(Customer.joined_at) >= months[0], col(Customer.joined_at) < until)
                .group_by(joined_month)
            )
            if index is not None
        }
        bought_month = _bucket(purchases.c.at, months)
        active = {
            (int(j), int(b)): int(n)
            for j, b, n in await session.execute(
                select(joined_month, bought_month, func.count(func.distinct(col(Customer.id))))
                .select_from(Customer)
                .join(purchases, purchases.c.customer_id == col(Customer.id))
                .where(col(Customer.joined_at) >= months[0], purchases.c.at >= months[0], purchases.c.at < until)
                .group_by(joined_month, bought_month)
            )
            if j is not None and b is not None
        }
        return [
            (labels[j], sizes.get(j, 0), [active.get((j, j + k), 0) for k in range(len(months) - j)])
            for j in range(len(months))
        ]
