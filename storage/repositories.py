"""Small query helpers, one group per aggregate. They take a session and never commit:
the service that calls them owns the transaction."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Boolean, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlmodel import SQLModel, col

from storage.database import Database, Direct, changed, ids, moment, placeholders
from storage.models import (
    Alert,
    AlertStatus,
    CardCode,
    Customer,
    EntryKind,
    LedgerEntry,
    Notice,
    Operation,
    OperationStatus,
    Staff,
    StaffInvite,
    Survey,
    SurveyStatus,
    UTCDateTime,
)


class InsufficientBalance(Exception):
    """The conditional balance update matched no row: the balance would go below zero."""


class IdempotencyConflict(Exception):
    """The same idempotency key was used before for a different movement."""


class Customers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_telegram_id(self, telegram_id: int) -> Customer | None:
        return await self.session.scalar(select(Customer).where(col(Customer.telegram_id) == telegram_id))

    async def by_id(self, customer_id: int) -> Customer | None:
        return await self.session.get(Customer, customer_id, populate_existing=True)

    async def locked(self, customer_id: int) -> Customer | None:
        """The customer, fresh, with the row held until the transaction ends (FOR UPDATE is a no-op
        on SQLite, whose writers already run one at a time)."""
        return await self.session.scalar(
            select(Customer)
            .where(col(Customer.id) == customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def by_card_number(self, number: str) -> Customer | None:
        return await self.session.scalar(select(Customer).where(col(Customer.card_number) == number))

    async def claim_card_number(self, customer_id: int, number: str, now: datetime) -> bool:
        """Make the customer a member; False when they already were one."""
        result = await self.session.execute(
            update(Customer)
            .where(col(Customer.id) == customer_id, col(Customer.joined_at).is_(None))
            .values(joined_at=now, card_number=number)
        )
        return changed(result) == 1

    async def mark_blocked(self, customer_id: int, now: datetime) -> None:
        """The customer blocked the bot (a 403 when writing to them); the first time is kept."""
        await self.session.execute(
            update(Customer)
            .where(col(Customer.id) == customer_id, col(Customer.blocked_at).is_(None))
            .values(blocked_at=now)
        )

    async def purchased(self, customer_id: int, now: datetime) -> None:
        await self.session.execute(update(Customer).where(col(Customer.id) == customer_id).values(last_purchase_at=now))


class CardCodes:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def revoke_active(self, customer_id: int, now: datetime) -> None:
        await self.session.execute(
            update(CardCode)
            .where(
                col(CardCode.customer_id) == customer_id,
                col(CardCode.used_at).is_(None),
                col(CardCode.revoked_at).is_(None),
            )
            .values(revoked_at=now)
        )

    async def by_hash(self, token_hash: str) -> CardCode | None:
        return await self.session.scalar(select(CardCode).where(col(CardCode.token_hash) == token_hash))

    async def use(self, code_id: int, used_by: int, now: datetime) -> bool:
        """Mark a live code used; only one caller can ever succeed."""
        result = await self.session.execute(
            update(CardCode)
            .where(
                col(CardCode.id) == code_id,
                col(CardCode.used_at).is_(None),
                col(CardCode.revoked_at).is_(None),
                col(CardCode.expires_at) > now,
            )
            .values(used_at=now, used_by=used_by)
        )
        return changed(result) == 1


class StaffRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_by_telegram_id(self, telegram_id: int) -> Staff | None:
        return await self.session.scalar(
            select(Staff).where(col(Staff.telegram_id) == telegram_id, col(Staff.revoked_at).is_(None))
        )

    async def by_telegram_id(self, telegram_id: int) -> Staff | None:
        return await self.session.scalar(select(Staff).where(col(Staff.telegram_id) == telegram_id))

    async def store_of(self, telegram_id: int) -> str | None:
        """The store a cashier works in (None: not a cashier, an owner acting at the till)."""
        return await self.session.scalar(
            select(col(Staff.store)).where(col(Staff.telegram_id) == telegram_id, col(Staff.revoked_at).is_(None))
        )

    async def active(self) -> list[Staff]:
        rows = await self.session.scalars(
            select(Staff).where(col(Staff.revoked_at).is_(None)).order_by(col(Staff.created_at))
        )
        return list(rows)

    async def invite_by_hash(self, token_hash: str) -> StaffInvite | None:
        return await self.session.scalar(select(StaffInvite).where(col(StaffInvite.token_hash) == token_hash))

    async def use_invite(self, invite_id: int, used_by: int, now: datetime) -> bool:
        result = await self.session.execute(
            update(StaffInvite)
            .where(
                col(StaffInvite.id) == invite_id,
                col(StaffInvite.used_at).is_(None),
                col(StaffInvite.expires_at) > now,
            )
            .values(used_at=now, used_by=used_by)
        )
        return changed(result) == 1


class Ledger:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_key(self, key: str) -> LedgerEntry | None:
        return await self.session.scalar(select(LedgerEntry).where(col(LedgerEntry.idempotency_key) == key))

    async def by_id(self, entry_id: int) -> LedgerEntry | None:
        return await self.session.get(LedgerEntry, entry_id)

    async def reversal_of(self, entry_id: int) -> LedgerEntry | None:
        return await self.session.scalar(select(LedgerEntry).where(col(LedgerEntry.reverses_id) == entry_id))

    async def expiry_of(self, entry_id: int) -> LedgerEntry | None:
        """The expiry entry of what was left of an earning, if it has expired."""
        return await self.session.scalar(select(LedgerEntry).where(col(LedgerEntry.lot_id) == entry_id))

    async def recent(self, customer_id: int, limit: int) -> list[LedgerEntry]:
        rows = await self.session.scalars(
            select(LedgerEntry)
            .where(col(LedgerEntry.customer_id) == customer_id)
            .order_by(col(LedgerEntry.id).desc())
            .limit(limit)
        )
        return list(rows)

    async def sum_points(self, customer_id: int) -> int:
        total = await self.session.scalar(
            select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                col(LedgerEntry.customer_id) == customer_id
            )
        )
        return int(total or 0)

    async def operations_since(self, customer_id: int, since: datetime) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(
                col(LedgerEntry.customer_id) == customer_id,
                col(LedgerEntry.kind).in_([EntryKind.PURCHASE.value, EntryKind.REDEMPTION.value]),
                col(LedgerEntry.created_at) >= since,
            )
        )
        return int(count or 0)

    async def purchase_with_receipt(self, receipt_no: str) -> LedgerEntry | None:
        """A purchase that earned on this receipt and was not reversed."""
        reversed_ids = select(col(LedgerEntry.reverses_id)).where(col(LedgerEntry.reverses_id).is_not(None))
        return await self.session.scalar(
            select(LedgerEntry).where(
                col(LedgerEntry.receipt_no) == receipt_no,
                col(LedgerEntry.kind) == EntryKind.PURCHASE.value,
                col(LedgerEntry.id).not_in(reversed_ids),
            )
        )

    async def last_by_staff(self, staff_telegram_id: int) -> LedgerEntry | None:
        return await self.session.scalar(
            select(LedgerEntry)
            .where(
                col(LedgerEntry.staff_telegram_id) == staff_telegram_id,
                col(LedgerEntry.kind).in_([EntryKind.PURCHASE.value, EntryKind.REDEMPTION.value]),
            )
            .order_by(col(LedgerEntry.id).desc())
            .limit(1)
        )

    async def append(
        self,
        *,
        customer_id: int,
        kind: EntryKind,
        points: int,
        key: str,
        now: datetime,
        spend: int = 0,
        amount: int | None = None,
        receipt_no: str | None = None,
        staff_telegram_id: int | None = None,
        reverses_id: int | None = None,
        reason: str | None = None,
        expires_at: datetime | None = None,
        lot_id: int | None = None,
        store: str = "main",
    ) -> tuple[LedgerEntry, bool]:
        """Append one movement and move the balance with it, atomically.

        Returns the entry and whether it was created now; a key seen before returns the first
        entry (and refuses a different movement under the same key). The balance moves through
        one conditional UPDATE, so it can never go below zero however many run at once.
        """
        existing = await self.by_key(key)
        if existing is not None:
            if (existing.customer_id, existing.kind, existing.points) != (customer_id, kind, points):
                raise IdempotencyConflict(key)
            return existing, False
        result = await self.session.execute(
            update(Customer)
            .where(col(Customer.id) == customer_id, col(Customer.balance) + points >= 0)
            .values(balance=col(Customer.balance) + points, lifetime_spend=col(Customer.lifetime_spend) + spend)
            .returning(col(Customer.balance))
        )
        row = result.first()
        if row is None:
            raise InsufficientBalance(key)
        entry = LedgerEntry(
            customer_id=customer_id,
            kind=kind,
            points=points,
            spend=spend,
            amount=amount,
            receipt_no=receipt_no,
            balance_after=row[0],
            idempotency_key=key,
            reverses_id=reverses_id,
            staff_telegram_id=staff_telegram_id,
            reason=reason,
            created_at=now,
            expires_at=expires_at,
            lot_id=lot_id,
            store=store,
        )
        self.session.add(entry)
        await self.session.flush()
        return entry, True


class Operations:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, operation: Operation) -> Operation:
        self.session.add(operation)
        await self.session.flush()
        return operation

    async def locked(self, operation_id: int) -> Operation | None:
        """The operation, row-locked on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises)."""
        return await self.session.scalar(select(Operation).where(col(Operation.id) == operation_id).with_for_update())

    async def by_id(self, operation_id: int) -> Operation | None:
        return await self.session.get(Operation, operation_id)

    async def by_key(self, key: str) -> Operation | None:
        return await self.session.scalar(select(Operation).where(col(Operation.idempotency_key) == key))

    async def cancel_open(self, cashier_telegram_id: int) -> None:
        await self.session.execute(
            update(Operation)
            .where(
                col(Operation.cashier_telegram_id) == cashier_telegram_id,
                col(Operation.status).in_([OperationStatus.DRAFT.value, OperationStatus.AWAITING_CUSTOMER.value]),
            )
            .values(status=OperationStatus.CANCELLED.value)
        )


class Surveys:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_key(self, key: str) -> Survey | None:
        return await self.session.scalar(select(Survey).where(col(Survey.key) == key))

    async def by_id(self, survey_id: int) -> Survey | None:
        return await self.session.get(Survey, survey_id, populate_existing=True)

    async def locked(self, survey_id: int) -> Survey | None:
        return await self.session.scalar(
            select(Survey)
            .where(col(Survey.id) == survey_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def plan(self, survey: Survey) -> tuple[Survey, bool]:
        """Add a survey unless its key is taken; returns the row and whether it is new."""
        existing = await self.by_key(survey.key)
        if existing is not None:
            return existing, False
        self.session.add(survey)
        await self.session.flush()
        return survey, True

    async def pending_for(self, customer_id: int, trigger: str) -> Survey | None:
        return await self.session.scalar(
            select(Survey)
            .where(
                col(Survey.customer_id) == customer_id,
                col(Survey.trigger) == trigger,
                col(Survey.status) == SurveyStatus.PENDING.value,
            )
            .limit(1)
        )

    async def due_ids(self, now: datetime, limit: int) -> list[int]:
        rows = await self.session.scalars(
            select(col(Survey.id))
            .where(col(Survey.status) == SurveyStatus.PENDING.value, col(Survey.due_at) <= now)
            .order_by(col(Survey.due_at))
            .limit(limit)
        )
        return ids(rows)

    async def claim(self, survey_id: int, now: datetime) -> bool:
        """Move a due survey from pending to sending; exactly one caller, in any process, wins."""
        result = await self.session.execute(
            update(Survey)
            .where(
                col(Survey.id) == survey_id, col(Survey.status) == SurveyStatus.PENDING.value, col(Survey.due_at) <= now
            )
            .values(status=SurveyStatus.SENDING.value, claimed_at=now)
        )
        return changed(result) == 1

    async def stale_claims(self, before: datetime) -> list[Survey]:
        rows = await self.session.scalars(
            select(Survey).where(col(Survey.status) == SurveyStatus.SENDING.value, col(Survey.claimed_at) < before)
        )
        return list(rows)

    async def last_asked(self, customer_id: int, triggers: list[str], exclude_id: int) -> datetime | None:
        return await self.session.scalar(
            select(func.max(col(Survey.asked_at))).where(
                col(Survey.customer_id) == customer_id, col(Survey.trigger).in_(triggers), col(Survey.id) != exclude_id
            )
        )

    async def last_answered(self, customer_id: int, kind: str) -> datetime | None:
        return await self.session.scalar(
            select(func.max(col(Survey.answered_at))).where(
                col(Survey.customer_id) == customer_id, col(Survey.kind) == kind
            )
        )

    async def awaiting_comment(self, customer_id: int, since: datetime) -> Survey | None:
        return await self.session.scalar(
            select(Survey)
            .where(
                col(Survey.customer_id) == customer_id,
                col(Survey.comment_status) == "asked",
                col(Survey.answered_at) >= since,
            )
            .order_by(col(Survey.answered_at).desc())
            .limit(1)
        )

    async def asked_between(self, since: datetime, until: datetime, kinds: list[str]) -> list[Survey]:
        rows = await self.session.scalars(
            select(Survey)
            .where(col(Survey.asked_at) >= since, col(Survey.asked_at) <= until, col(Survey.kind).in_(kinds))
            .order_by(col(Survey.asked_at))
        )
        return list(rows)


class Alerts:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_id(self, alert_id: int) -> Alert | None:
        return await self.session.get(Alert, alert_id, populate_existing=True)

    async def locked(self, alert_id: int) -> Alert | None:
        return await self.session.scalar(
            select(Alert).where(col(Alert.id) == alert_id).with_for_update().execution_options(populate_existing=True)
        )

    async def for_survey(self, survey_id: int) -> Alert | None:
        return await self.session.scalar(select(Alert).where(col(Alert.survey_id) == survey_id))

    async def open_for_customer(self, customer_id: int, store: Any) -> Alert | None:
        """The customer's alert still open (not resolved) about the same store (`store`: a
        condition on the alert's store, `in_store`), locked: a new unhappy answer folds into it;
        one about another store is that store's own alert."""
        return await self.session.scalar(
            select(Alert)
            .where(
                col(Alert.customer_id) == customer_id,
                col(Alert.status) == AlertStatus.OPEN.value,
                store,
            )
            .order_by(col(Alert.id).desc())
            .limit(1)
            .with_for_update()
        )

    async def folding(self, survey_id: int) -> Alert | None:
        """The alert a survey's unhappy answer was folded into."""
        return await self.session.scalar(select(Alert).where(col(Alert.last_survey_id) == survey_id))

    async def open(self) -> list[Alert]:
        rows = await self.session.scalars(
            select(Alert).where(col(Alert.status) == AlertStatus.OPEN.value).order_by(col(Alert.created_at))
        )
        return list(rows)

    async def latest_contacted(self, customer_id: int, since: datetime) -> Alert | None:
        return await self.session.scalar(
            select(Alert)
            .where(col(Alert.customer_id) == customer_id, col(Alert.contacted_at) >= since)
            .order_by(col(Alert.contacted_at).desc())
            .limit(1)
        )


# --- read through the driver directly (`Database.direct`): the person of every update --------------

T = TypeVar("T", bound=SQLModel)


class _Shape:
    """How to read one table's row through the driver: its columns, and which of them need turning
    back into Python values (SQLite hands datetimes back as text, and booleans as 0 and 1)."""

    def __init__(self, model: type[SQLModel]) -> None:
        columns = list(model.__table__.columns)  # type: ignore[attr-defined]
        self.model = model
        self.names = tuple(column.name for column in columns)
        self.moments = frozenset(c.name for c in columns if isinstance(c.type, UTCDateTime))
        self.flags = frozenset(c.name for c in columns if isinstance(c.type, Boolean))
        self.select = f"SELECT {', '.join(self.names)} FROM {model.__tablename__}"
        self.manager = manager_of_class(model)

    def build(self, row: tuple[Any, ...]) -> Any:
        """The row as the ORM builds one it loads: a new instance, without `__init__` (pydantic's
        checks and SQLAlchemy's events on every field made 59 us of a Customer's 61), its values
        set straight into it."""
        values = dict(zip(self.names, row, strict=True))
        for name in self.moments:
            values[name] = moment(values[name])
        for name in self.flags:
            if values[name] is not None:
                values[name] = bool(values[name])
        instance = self.manager.new_instance()
        instance.__dict__.update(values)
        return instance


_SHAPES: dict[type[SQLModel], _Shape] = {}


def _shape_of(model: type[SQLModel]) -> _Shape:
    return _SHAPES.get(model) or _SHAPES.setdefault(model, _Shape(model))


def in_store(column: Any, store: str, first: str, named: Sequence[str]) -> Any:
    """A condition keeping one store's rows ("" : every store). The first store also holds the rows
    of ids the business file does not name: `main` (from before stores) and removed stores."""
    if not store:
        return true()
    if store == first:
        others = [other for other in named if other != first]
        return column.not_in(others) if others else true()
    return column == store


async def last_visit_store(session: AsyncSession, customer_id: int) -> str:
    """The store of the customer's latest purchase (`main` before any): where a request or a
    survey not tied to one visit belongs."""
    store = await session.scalar(
        select(col(LedgerEntry.store))
        .where(col(LedgerEntry.customer_id) == customer_id, col(LedgerEntry.kind) == EntryKind.PURCHASE.value)
        .order_by(col(LedgerEntry.id).desc())
        .limit(1)
    )
    return store or "main"


async def one_by(tx: Direct, model: type[T], column: str, value: object) -> T | None:
    """The row of `model` whose `column` is `value` (a key or a unique column), in one statement
    without SQLAlchemy's async layer; detached, as the ORM's would be after its session."""
    shape = _shape_of(model)
    assert column in shape.names
    row = await tx.fetchrow(f"{shape.select} WHERE {column} = $1", value)
    return None if row is None else shape.build(row)


async def latest_by(tx: Direct, model: type[T], column: str, value: object) -> T | None:
    """The newest row (highest id) of `model` whose `column` is `value`, in one statement."""
    shape = _shape_of(model)
    assert column in shape.names
    row = await tx.fetchrow(f"{shape.select} WHERE {column} = $1 ORDER BY id DESC LIMIT 1", value)
    return None if row is None else shape.build(row)


async def all_by(tx: Direct, model: type[T], column: str, values: Sequence[object]) -> list[T]:
    """The rows of `model` whose unique `column` is one of `values`, in one statement."""
    shape = _shape_of(model)
    assert column in shape.names
    if not values:
        return []
    rows = await tx.fetch(f"{shape.select} WHERE {column} IN ({placeholders(1, len(values))})", *values)
    return [shape.build(row) for row in rows]


async def operations_since(tx: Direct, customer_id: int, since: datetime) -> int:
    """How many purchases and redemptions a card had since `since` (`Ledger.operations_since`,
    through the driver)."""
    row = await tx.fetchrow(
        "SELECT count(*) FROM ledger_entries WHERE customer_id = $1 AND kind IN ($2, $3) AND created_at >= $4",
        customer_id,
        EntryKind.PURCHASE.value,
        EntryKind.REDEMPTION.value,
        since,
    )
    return int(row[0]) if row is not None else 0


async def claim_fresh_notices(tx: Direct, keys: Sequence[str], until: datetime) -> list[Notice]:
    """Claim, in one conditional UPDATE, the notices of these keys that nobody tried yet, leased
    `until`: each is returned to exactly one caller, however many claim at the same time."""
    shape = _shape_of(Notice)
    rows = await tx.fetch(
        f"UPDATE notices SET attempts = 1, next_try_at = $1 WHERE key IN ({placeholders(2, len(keys))})"
        f" AND attempts = 0 AND next_try_at IS NOT NULL AND sent_at IS NULL RETURNING {', '.join(shape.names)}",
        until,
        *keys,
    )
    return [shape.build(row) for row in rows]


async def conversation_state(tx: Direct, customer_id: int) -> tuple[Any, ...]:
    """What routes a customer's free text, in one statement: their latest request (id, status,
    closed at), when they last answered a survey whose follow-up question waits for words, and
    when a manager last wrote to them through an alert."""
    latest_ticket = "FROM tickets WHERE customer_id = $1 ORDER BY id DESC LIMIT 1"
    row = await tx.fetchrow(
        f"SELECT (SELECT id {latest_ticket}), (SELECT status {latest_ticket}), (SELECT closed_at {latest_ticket}),"
        " (SELECT MAX(answered_at) FROM surveys WHERE customer_id = $1 AND comment_status = 'asked'),"
        " (SELECT MAX(contacted_at) FROM alerts WHERE customer_id = $1)",
        customer_id,
    )
    assert row is not None  # a SELECT of scalars always has its one row
    ticket_id, status, closed_at, asked_at, contacted_at = row
    return ticket_id, status, moment(closed_at), moment(asked_at), moment(contacted_at)


class ReadTogether(Generic[T]):
    """Reads of one table's rows by a unique column, asked for at the same time by different
    updates, made as one statement: the first waits one turn of the loop for the others, and those
    asked while a read is under way go together in the next. Each waiter gets its own row (or
    None) as of a moment after it asked."""

    GROUP = 200

    def __init__(self, db: Database, model: type[T], column: str) -> None:
        self.db = db
        self.model = model
        self.column = column
        self._pending: dict[Any, list[asyncio.Future[T | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    def get(self, key: Any) -> asyncio.Future[T | None]:
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append(future)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_pending(), name=f"reading {self.model.__tablename__}")
        return future

    async def _read_pending(self) -> None:
        try:
            while self._pending:
                keys = list(itertools.islice(self._pending, self.GROUP))
                waiting = {key: self._pending.pop(key) for key in keys}
                try:
                    async with self.db.direct(write=False) as tx:
                        rows = await all_by(tx, self.model, self.column, keys)
                except Exception as error:  # noqa: BLE001 - each waiter hears it
                    for futures in waiting.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(error)
                    continue
                found = {getattr(row, self.column): row for row in rows}
                for key, futures in waiting.items():
                    for future in futures:
                        if not future.done():
                            future.set_result(found.get(key))
        finally:
            self._reader = None
