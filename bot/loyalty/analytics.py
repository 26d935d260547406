"""The owner's loyalty report (/report): members, visits, churn, lifetime value, the points the
business owes, the programme's levers and the monthly cohorts. Every figure is counted by the
database (a handful of aggregations over the ledger and the members), never by loading the rows;
the words for each figure are in README ("The loyalty report"). A cold path: the ORM is fine here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, distinct, exists, func, literal, null, select, text, true
from sqlalchemy.orm import aliased
from sqlmodel import col

from bot.business import Business
from bot.lifecycle.rules import Movement, expiring_between, open_lots
from storage.database import Database
from storage.models import Customer, EntryKind, LedgerEntry, OwnerLetter, utcnow
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

EARNING_VALUES = [kind.value for kind in EARNING_KINDS]
FIGURES = 20  # the per-customer figures the report groups, before one a cohort month
PARTS = 2  # the customers are summed in this many parts at once, each on its own connection


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
    letters: dict[str, int] = field(default_factory=dict)  # letters to the owner written in the period, by status

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
    return case((column >= starts[0], _month_index(column, starts)), else_=None)


def _month_index(column: Any, starts: Sequence[datetime]) -> Any:
    """The index of the last start at or before the value, for a value at or after the first: a
    binary search in CASEs, four comparisons for twelve months where a flat CASE makes up to twelve."""

    def search(low: int, high: int) -> Any:
        if high - low == 1:
            return literal(low)
        middle = (low + high) // 2
        return case((column >= starts[middle], search(middle, high)), else_=search(low, middle))

    return search(0, len(starts))


def id_ranges(low: int, high: int, count: int) -> list[tuple[int, int]]:
    """[low, high] cut into `count` ranges [start, end) of ids, as even as the ids allow."""
    size = max(1, -(-(high - low + 1) // count))
    return [(start, min(start + size, high + 1)) for start in range(low, high + 1, size)] or [(low, high + 1)]


REVERSED = select(col(LedgerEntry.reverses_id)).where(col(LedgerEntry.reverses_id).is_not(None))


def standing_purchase(entry: Any, until: datetime) -> Any:
    """A purchase up to `until` that no reversal undid."""
    return and_(
        col(entry.kind) == EntryKind.PURCHASE.value, col(entry.created_at) <= until, col(entry.id).not_in(REVERSED)
    )


class LoyaltyAnalytics:
    def __init__(self, db: Database, business: Business, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.business = business
        self.clock = clock

    def _in_store(self, column: Any, store: str) -> Any:
        return in_store(column, store, self.business.first_store.id, self.business.store_ids)

    async def report(self, days: int, store: str = "") -> LoyaltyReport:
        """One pass over the ledger (of the store) sums, per customer, every figure of the periods
        and the months; a second aggregation over those per-customer rows groups them by member,
        level and join month (at most 78 rows come back). The members' own figures come from the
        members' table, and the few invite links from index lookups."""
        until = self.clock()
        length = timedelta(days=days)
        since, before, before_before = until - length, until - 2 * length, until - 3 * length
        months = month_starts(until, self.business.timezone, COHORT_MONTHS)
        labels = [m.astimezone(self.business.timezone).strftime("%Y-%m") for m in months]
        tiers = self.business.tiers
        member = and_(col(Customer.joined_at).is_not(None), col(Customer.deleted_at).is_(None))
        member_flag = case((member, 1), else_=0)
        tier_of = case(
            *((col(Customer.lifetime_spend) >= tier.min_spend, literal(tier.id)) for tier in reversed(tiers[1:])),
            else_=literal(tiers[0].id),
        )
        joined_month = _bucket(col(Customer.joined_at), months)

        def count_if(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        def plain(value: Any) -> Any:
            return func.coalesce(func.sum(value), 0)

        def grouped(part: tuple[int, int]) -> Any:
            """The figures of the customers whose ids are in [part), by member, level and join month."""
            per_customer = self._per_customer(store, until, since, before, before_before, months, part)
            c = per_customer.c
            figures = [
                count_if(c.n2 > 0),  # 0: active
                count_if(c.n2 >= 2),  # 1: came twice or more
                plain(c.n2),  # 2: visits
                plain(c.r2),  # 3: revenue
                count_if(c.n1 > 0),  # 4..7: the same, the period before
                count_if(c.n1 >= 2),
                plain(c.n1),
                plain(c.r1),
                count_if(and_(c.n1 > 0, c.n2 == 0)),  # 8: churned
                count_if(c.n0 > 0),  # 9: active two periods before
                count_if(and_(c.n0 > 0, c.n1 == 0)),  # 10: churned the period before
                count_if(c.spend > 0),  # 11: who spent in the store
                plain(case((c.spend > 0, c.spend), else_=0)),  # 12: …and what
                plain(c.earned),  # 13
                plain(c.redeemed),  # 14
                plain(c.expired),  # 15
                count_if(c.birthday_at.is_not(None)),  # 16
                came_after(c.customer_id, c.birthday_at),  # 17
                count_if(c.apology_at.is_not(None)),  # 18
                came_after(c.customer_id, c.apology_at),  # 19
                *(plain(c.months.op(">>")(i).op("&")(1)) for i in range(len(months))),  # 20…: bought in month i
            ]
            assert len(figures) == FIGURES + len(months)
            return (
                select(member_flag, tier_of, joined_month, *figures)
                .select_from(per_customer)
                .join(Customer, col(Customer.id) == c.customer_id)
                .group_by(member_flag, tier_of, joined_month)
            )

        def came_after(customer: Any, moment: Any) -> Any:
            """Customers with a bonus at `moment` who bought (in the store) after it: looked up in
            the customer's index for the few with such a bonus only."""
            later = aliased(LedgerEntry, name="later")
            bought = exists().where(
                col(later.customer_id) == customer,
                standing_purchase(later, until),
                col(later.created_at) > moment,
                self._in_store(col(later.store), store),
            )
            return plain(case((moment.is_not(None), case((bought, 1), else_=0)), else_=0))

        async def rows_of(part: tuple[int, int]) -> list[tuple[int, str, int | None, list[int]]]:
            async with self.db.reading(bulk=True) as session:
                if not self.db.is_sqlite:
                    # 100 000 customers' sums fit in memory: no spill to disk. The parts are the
                    # parallelism: PostgreSQL's own workers would each read the part's ledger again.
                    # No JIT: compiling this query's 85 expressions took 0.9 s of a 1.4 s part.
                    await session.execute(text("SET LOCAL work_mem = '64MB'"))
                    await session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
                    await session.execute(text("SET LOCAL jit = off"))
                return [
                    (int(r[0]), str(r[1]), r[2], [int(v or 0) for v in r[3:]])
                    for r in await session.execute(grouped(part))
                ]

        async def the_rest() -> tuple[Any, ...]:
            """The members' table's figures, the invite links, what expires soon and the letters."""
            async with self.db.reading(bulk=True) as session:
                members_row = (
                    await session.execute(
                        select(
                            count_if(col(Customer.joined_at) <= until),
                            count_if(col(Customer.joined_at) >= since),
                            func.coalesce(func.sum(col(Customer.balance)), 0),
                        ).where(member)
                    )
                ).one()
                # Lifetime value of all stores: every member's lifetime spend, from the members' table.
                everyone = {
                    (str(tier), month): (int(n), int(spend))
                    for tier, month, n, spend in await session.execute(
                        select(tier_of, joined_month, func.count(), plain(col(Customer.lifetime_spend)))
                        .where(member)
                        .group_by(tier_of, joined_month)
                    )
                }
                sizes = {
                    index: int(n)
                    for index, n in await session.execute(
                        select(joined_month, func.count())
                        .where(member, col(Customer.joined_at) >= months[0], col(Customer.joined_at) <= until)
                        .group_by(joined_month)
                    )
                    if index is not None
                }
                bought = exists().where(
                    col(LedgerEntry.customer_id) == col(Customer.id), standing_purchase(LedgerEntry, until)
                )
                referral_row = (
                    await session.execute(
                        select(func.count(), count_if(member), count_if(bought)).where(
                            col(Customer.referred_by_id).is_not(None),
                            col(Customer.created_at) >= since,
                            col(Customer.created_at) <= until,
                        )
                    )
                ).one()
                expiring = await self._expiring(session, until)
                letters = {
                    str(status): int(n)
                    for status, n in await session.execute(
                        select(col(OwnerLetter.status), func.count())
                        .where(
                            col(OwnerLetter.created_at) >= since,
                            col(OwnerLetter.created_at) <= until,
                            self._in_store(col(OwnerLetter.store), store),
                        )
                        .group_by(col(OwnerLetter.status))
                    )
                }
            return members_row, everyone, sizes, referral_row, expiring, letters

        async with self.db.reading(bulk=True) as session:
            low, high = (await session.execute(select(func.min(col(Customer.id)), func.max(col(Customer.id))))).one()
        # Each part of the customers on its own connection, at once (the ledger pass is most of the
        # report's time, and a database answers two connections on two cores): the grouped figures
        # are sums, so the parts' rows simply go together.
        ranges = id_ranges(low or 0, high or 0, PARTS)
        *parts, rest = await asyncio.gather(*(rows_of(part) for part in ranges), the_rest())
        rows = [row for part in parts for row in part]
        members_row, everyone, sizes, referral_row, expiring, letters = rest
        # Members' figures count members only (not who erased their data since); the points
        # earned, paid with and expired are the ledger's, whoever they were.
        ledger_wide = {13, 14, 15}
        sums = [
            sum(values[i] for flag, _t, _m, values in rows if flag or i in ledger_wide)
            for i in range(FIGURES + len(months))
        ]
        if store:  # what members spent in the store, of the members who bought there
            lifetime: dict[tuple[str, int | None], tuple[int, int]] = {}
            for flag, tier, month, values in rows:
                if flag:
                    n, spend = lifetime.get((tier, month), (0, 0))
                    lifetime[(tier, month)] = (n + values[11], spend + values[12])
        else:
            lifetime = everyone

        def segment(label: str, keep: Callable[[str, int | None], bool]) -> Segment:
            kept = [v for (tier, month), v in lifetime.items() if keep(tier, month)]
            return Segment(label, sum(n for n, _ in kept), sum(spend for _, spend in kept))

        count = len(months)
        return LoyaltyReport(
            since=since,
            until=until,
            days=days,
            store=store,
            members=int(members_row[0]),
            new_members=int(members_row[1]),
            now=Activity(*sums[0:4]),
            before=Activity(*sums[4:8]),
            churned=sums[8],
            churned_before=sums[10],
            active_before_before=sums[9],
            lifetime_members=sum(n for n, _ in lifetime.values()),
            lifetime_spend=sum(spend for _, spend in lifetime.values()),
            by_tier=[segment(t.id, lambda tier, _m, t=t: tier == t.id) for t in tiers],  # type: ignore[misc]
            by_join_month=[segment(labels[i], lambda _t, month, i=i: month == i) for i in range(count)],  # type: ignore[misc]
            outstanding=int(members_row[2]),
            point_value=self.business.point_value,
            expiring=expiring,
            earned=sums[13],
            redeemed=sums[14],
            expired=sums[15],
            referrals_opened=int(referral_row[0]),
            referrals_joined=int(referral_row[1]),
            referrals_bought=int(referral_row[2]),
            birthday_given=sums[16],
            birthday_came=sums[17],
            apology_given=sums[18],
            apology_came=sums[19],
            cohorts=[
                (
                    labels[j],
                    sizes.get(j, 0),
                    [
                        sum(values[20 + j + k] for flag, _t, month, values in rows if flag and month == j)
                        for k in range(count - j)
                    ],
                )
                for j in range(count)
            ],
            letters=letters,
        )

    def _per_customer(
        self,
        store: str,
        until: datetime,
        since: datetime,
        before: datetime,
        earlier: datetime,
        months: list[datetime],
        part: tuple[int, int],
    ) -> Any:
        """Per customer (of the store's ledger), every figure the report groups: purchases and
        revenue in this period and the two before, lifetime spend, points earned, paid with and
        expired, the first birthday and apology bonus of the period, and the months with a
        purchase as bits (month i: 1 << i).

        One pass reads the ledger in the order of its (customer, time) index, which holds every
        column read here, so nothing is sorted and no row is looked up; each figure is a filtered
        aggregate, the few conditions a row passes evaluated once. That pass does not look for
        reversals. The few customers with a reversed entry are summed again with each reversed
        entry left out, and their second figures are the ones kept."""
        e = LedgerEntry
        at, kind, points = col(e.created_at), col(e.kind), col(e.points)
        in_period = and_(at >= since, at <= until)
        reversal = REVERSED.subquery()

        def bits(bit: Any) -> Any:
            """The bits together: PostgreSQL's bit_or; SQLite has none, and the sum of the distinct
            bits is the same number."""
            return func.sum(distinct(bit)) if self.db.is_sqlite else func.bit_or(bit)

        def figures(standing: Any) -> list[Any]:
            def kept(*conditions: Any) -> Any:
                return and_(*conditions, standing)

            purchase = kept(kind == EntryKind.PURCHASE.value, at <= until)
            return [
                # Purchases since each of the three starts: the counts per period are differences.
                func.count().filter(and_(purchase, at >= earlier)).label("from0"),
                func.count().filter(and_(purchase, at >= before)).label("from1"),
                func.count().filter(and_(purchase, at >= since)).label("from2"),
                func.sum(col(e.amount)).filter(and_(purchase, at >= since)).label("r2"),
                func.sum(col(e.amount)).filter(and_(purchase, at >= before, at < since)).label("r1"),
                # A reversal's spend is negative: what it undid is counted and taken back.
                (func.sum(col(e.spend)).filter(at <= until) if store else literal(0)).label("spend"),
                func.sum(points).filter(kept(kind.in_(EARNING_VALUES), points > 0, in_period)).label("earned"),
                func.sum(-points).filter(kept(kind == EntryKind.REDEMPTION.value, in_period)).label("redeemed"),
                func.sum(-points).filter(and_(kind == EntryKind.EXPIRY.value, in_period)).label("expired"),
                func.min(at).filter(kept(kind == EntryKind.BIRTHDAY.value, in_period)).label("birthday_at"),
                func.min(at).filter(kept(kind == EntryKind.APOLOGY.value, in_period)).label("apology_at"),
                bits(literal(1).op("<<")(_month_index(at, months)))
                .filter(and_(purchase, at >= months[0]))
                .label("months"),
            ]

        customer = col(e.customer_id)
        here = and_(customer >= part[0], customer < part[1], self._in_store(col(e.store), store))
        fast = (
            select(customer.label("customer_id"), *figures(true()))
            .where(here)
            .group_by(customer)
            .with_hint(e, "INDEXED BY ix_ledger_customer_created", dialect_name="sqlite")
            .subquery("fast")
        )
        touched = select(col(e.customer_id)).where(col(e.reverses_id).is_not(None))
        careful = (
            select(customer.label("customer_id"), *figures(reversal.c.reverses_id.is_(None)))
            .outerjoin(reversal, reversal.c.reverses_id == col(e.id))
            .where(here, customer.in_(touched))
            .group_by(customer)
            .subquery("careful")
        )

        def pick(name: str) -> Any:
            return case((careful.c.customer_id.is_not(None), careful.c[name]), else_=fast.c[name])

        return (
            select(
                fast.c.customer_id,
                pick("from2").label("n2"),
                (pick("from1") - pick("from2")).label("n1"),
                (pick("from0") - pick("from1")).label("n0"),
                *(pick(name).label(name) for name in ("r2", "r1", "spend", "earned", "redeemed", "expired")),
                *(pick(name).label(name) for name in ("birthday_at", "apology_at", "months")),
            )
            .outerjoin(careful, careful.c.customer_id == fast.c.customer_id)
            .subquery("per_customer")
        )

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
