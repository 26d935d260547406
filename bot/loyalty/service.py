"""The loyalty programme's operations. Each method is one short transaction; none holds a
transaction across a Telegram call. Results are plain values; refusals carry a reason the
handlers turn into words."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.business import Business
from bot.core import owing
from bot.core.languages import pick_language
from bot.lifecycle.rules import earning_expires_at
from bot.loyalty.rules import (
    RedeemProblem,
    check_redemption,
    hash_token,
    max_redeemable,
    new_card_number,
    new_token,
    points_for_purchase,
    redeem_cap,
)
from bot.surveys.rules import AfterPurchase, Trigger
from storage.database import Database, moment
from storage.models import (
    CardOpening,
    ConsentEvent,
    Customer,
    EntryKind,
    LedgerEntry,
    Operation,
    OperationStatus,
    Staff,
    StaffInvite,
    Survey,
    SurveyStatus,
    utcnow,
)
from storage.repositories import (
    CardCodes,
    Customers,
    IdempotencyConflict,
    InsufficientBalance,
    Ledger,
    Operations,
    ReadTogether,
    StaffRepo,
    Surveys,
    conversation_state,
    one_by,
    operations_since,
)

logger = logging.getLogger(__name__)

INVITE_TTL = timedelta(hours=24)
HISTORY_SIZE = 10


class Refusal(StrEnum):
    """Why an operation did not happen; each has its own message for the person."""

    NOT_A_MEMBER = "not_a_member"
    CODE_UNKNOWN = "code_unknown"
    CODE_EXPIRED = "code_expired"
    CODE_USED = "code_used"
    INVITE_INVALID = "invite_invalid"
    OWN_CARD = "own_card"
    OVER_MAX_RECEIPT = "over_max_receipt"
    DAILY_LIMIT = "daily_limit"
    RECEIPT_USED = "receipt_used"
    NOT_ENOUGH_POINTS = "not_enough_points"
    OVER_CAP = "over_cap"
    NOT_POSITIVE = "not_positive"
    OPERATION_UNKNOWN = "operation_unknown"
    NOT_YOURS = "not_yours"
    ALREADY_DONE = "already_done"
    CANCELLED = "cancelled"
    DECLINED = "declined"
    EXPIRED = "expired"
    UNDO_TOO_LATE = "undo_too_late"
    ALREADY_REVERSED = "already_reversed"
    POINTS_ALREADY_SPENT = "points_already_spent"
    NOTHING_TO_UNDO = "nothing_to_undo"
    ENTRY_UNKNOWN = "entry_unknown"
    NOT_REVERSIBLE = "not_reversible"
    CASHIER_LIMIT = "cashier_limit"  # the cashier's points for the day are used up


class Refused(Exception):
    def __init__(self, reason: Refusal, **details: object) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.details = details

    def number(self, key: str, default: int = 0) -> int:
        """A whole-number detail (a limit, a balance), or `default`."""
        return detail_number(self.details, key, default)


def detail_number(details: dict[str, object], key: str, default: int = 0) -> int:
    value = details.get(key, default)
    return value if isinstance(value, int) else default


_REDEEM_REFUSALS = {
    RedeemProblem.NOT_POSITIVE: Refusal.NOT_POSITIVE,
    RedeemProblem.NOT_ENOUGH_POINTS: Refusal.NOT_ENOUGH_POINTS,
    RedeemProblem.OVER_CAP: Refusal.OVER_CAP,
}


@dataclass(frozen=True)
class Applied:
    """A movement on a customer's card, and whether this call made it (False: a repeat)."""

    entry: LedgerEntry
    customer: Customer
    created: bool
    operation: Operation | None = None
    bonuses: tuple[Applied, ...] = ()  # credited with it (the referral bonus of a first purchase)
    notices: tuple[str, ...] = ()  # what the people concerned are owed: deliver after the commit


# The rows a movement just committed, while its notices are sent at once (`LoyaltyService.holding`).
_HELD: ContextVar[dict[tuple[str, int], object] | None] = ContextVar("loyalty_held_rows", default=None)


def cashier_notice(operation_id: int) -> str:
    """The key of the cashier's notice of an operation's outcome (`bot/core/notices.py`)."""
    return f"op:{operation_id}:cashier"


def movement_notice(entry_id: int) -> str:
    """The key of the customer's notice of a movement on their card."""
    return f"entry:{entry_id}:customer"


async def _tell_customer(session: AsyncSession, entry: LedgerEntry, customer: Customer, now: datetime) -> str:
    """Owe the customer a word on a movement on their card, in the movement's transaction."""
    assert entry.id is not None
    return await owing.add(
        session,
        movement_notice(entry.id),
        "movement",
        customer.telegram_id,
        now,
        entry_id=entry.id,
        spend_before=customer.lifetime_spend - entry.spend,
    )


@dataclass(frozen=True)
class Opened:
    """A card a staff member opened, and the owners' warnings that opening brought, if any."""

    customer: Customer
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Joined:
    customer: Customer
    created: bool
    bonus: LedgerEntry | None


@dataclass(frozen=True, slots=True)
class ConversationState:
    """What routes a customer's free text (`LoyaltyService.conversation_state`): read once per
    message, so the routing filters ask the database only when one of them may take it."""

    ticket_id: int | None  # their latest request
    ticket_status: str | None
    ticket_closed_at: datetime | None
    comment_asked_at: datetime | None  # the latest answer whose follow-up question waits for words
    contacted_at: datetime | None  # when a manager last wrote to them through an alert


class LoyaltyService:
    def __init__(
        self,
        db: Database,
        business: Business,
        clock: Callable[[], datetime] = utcnow,
        admin_ids: frozenset[int] = frozenset(),
    ) -> None:
        self.db = db
        self.business = business
        self.clock = clock
        self.admin_ids = admin_ids
        self._people = ReadTogether(db, Customer, "telegram_id")  # the person of every update

    # --- customers ---------------------------------------------------------------------------

    async def ensure_customer(
        self,
        telegram_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
        telegram_language: str | None,
    ) -> Customer:
        """The person's record, created on first contact and kept in step with their profile. Read
        on every private update, so through the driver directly, in one statement with the other
        updates' readings of the moment; written only when it changed."""
        customer = await self._people.get(telegram_id)
        fresh = (first_name[:128], (last_name or None) and last_name[:128], username, telegram_language)
        if (
            customer is not None
            and (
                customer.first_name,
                customer.last_name,
                customer.username,
                customer.telegram_language,
            )
            == fresh
        ):
            return customer
        try:
            async with self.db.writing() as session:
                customer = await Customers(session).by_telegram_id(telegram_id)
                if customer is None:
                    customer = Customer(telegram_id=telegram_id, created_at=self.clock())
                    session.add(customer)
                (
                    customer.first_name,
                    customer.last_name,
                    customer.username,
                    customer.telegram_language,
                ) = fresh
            return customer
        except IntegrityError:  # created by a concurrent update of the same person
            async with self.db.reading() as session:
                customer = await Customers(session).by_telegram_id(telegram_id)
            assert customer is not None
            return customer

    async def set_language(self, customer_id: int, language: str) -> None:
        async with self.db.writing() as session:
            customer = await Customers(session).by_id(customer_id)
            if customer is not None:
                customer.language = language

    async def language_of(self, telegram_id: int) -> str:
        """The language to write to someone in who is not the sender of the current update."""
        customer = await self._people.get(telegram_id)
        if customer is None:
            return self.business.default_language
        return pick_language(customer.language, customer.telegram_language, self.business.default_language)

    async def chosen_language(self, telegram_id: int) -> str | None:
        """The language a person picked with /language, if they ever did (asked on every message a
        manager writes in the group, so through the driver directly)."""
        customer = await self._people.get(telegram_id)
        return customer.language if customer is not None else None

    async def conversation_state(self, customer_id: int) -> ConversationState:
        async with self.db.direct(write=False) as tx:
            return ConversationState(*await conversation_state(tx, customer_id))

    @contextlib.contextmanager
    def holding(self, applied: Applied) -> Iterator[None]:
        """While a movement's notices are sent right after its commit (`Notices.deliver`), the
        entries, customers and operation it returned are what the drawers read, not the database
        again (five reads a sale). A notice sent later, by the scheduler, reads them afresh."""
        held: dict[tuple[str, int], object] = {}
        for movement in (applied, *applied.bonuses):
            for name, row in (("entry", movement.entry), ("customer", movement.customer)):
                if row.id is not None:
                    held[name, row.id] = row
        if applied.operation is not None and applied.operation.id is not None:
            held["operation", applied.operation.id] = applied.operation
        token = _HELD.set(held)
        try:
            yield
        finally:
            _HELD.reset(token)

    @staticmethod
    def _held(name: str, row_id: int) -> object | None:
        held = _HELD.get()
        return held.get((name, row_id)) if held is not None else None

    async def customer(self, customer_id: int) -> Customer | None:
        held = self._held("customer", customer_id)
        if isinstance(held, Customer):
            return held
        async with self.db.direct(write=False) as tx:  # every notice reads it: through the driver
            return await one_by(tx, Customer, "id", customer_id)

    async def customer_by_card_number(self, number: str) -> Customer | None:
        async with self.db.reading() as session:
            return await Customers(session).by_card_number(number)

    async def join(self, customer_id: int) -> Joined:
        """Issue the card and credit the welcome bonus, once, however often it is asked."""
        now = self.clock()
        for _attempt in range(5):
            try:
                async with self.db.writing() as session:
                    customers = Customers(session)
                    created = await customers.claim_card_number(customer_id, new_card_number(), now)
                    bonus = None
                    if created:  # joining is the programme's own consent; marketing is asked apart
                        session.add(
                            ConsentEvent(
                                customer_id=customer_id,
                                purpose="programme",
                                granted=True,
                                source="join",
                                created_at=now,
                            )
                        )
                    if created and self.business.welcome_bonus > 0:
                        bonus, _ = await Ledger(session).append(
                            customer_id=customer_id,
                            kind=EntryKind.WELCOME,
                            points=self.business.welcome_bonus,
                            key=f"welcome:{customer_id}",
                            now=now,
                            expires_at=self._expires(self.business.welcome_bonus, now),
                        )
                    customer = await customers.by_id(customer_id)
                    assert customer is not None
                    return Joined(customer=customer, created=created, bonus=bonus)
            except IntegrityError:
                continue  # a card number collided with an existing one: draw another
        raise RuntimeError("could not draw a free card number")

    async def history(self, customer_id: int, limit: int = HISTORY_SIZE) -> list[LedgerEntry]:
        async with self.db.reading() as session:
            return await Ledger(session).recent(customer_id, limit)

    # --- card codes ---------------------------------------------------------------------------

    async def issue_card_code(self, customer_id: int) -> tuple[str, datetime]:
        """A fresh one-time code for the card's QR; every earlier code stops working."""
        now = self.clock()
        token = new_token()
        expires_at = now + timedelta(seconds=self.business.code_ttl_seconds)
        # Every /card runs this: one transaction through the driver (issue 17), not the ORM's three.
        async with self.db.direct() as tx:
            if not self.db.is_sqlite:  # a double tap on Refresh leaves one live code (SQLite: one writer)
                await tx.fetchrow("SELECT id FROM customers WHERE id = $1 FOR UPDATE", customer_id)
            await tx.execute(
                "UPDATE card_codes SET revoked_at = $2"
                " WHERE customer_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
                customer_id,
                now,
            )
            await tx.execute(
                "INSERT INTO card_codes (customer_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                customer_id,
                hash_token(token),
                now,
                expires_at,
            )
        return token, expires_at

    async def card_code_spent(self, customer_id: int) -> bool:
        """Whether the customer's newest card code no longer works (used, replaced or expired)."""
        async with self.db.direct(write=False) as tx:
            row = await tx.fetchrow(
                "SELECT used_at, revoked_at, expires_at FROM card_codes"
                " WHERE customer_id = $1 ORDER BY id DESC LIMIT 1",
                customer_id,
            )
        if row is None:
            return True
        used, revoked, expires = (moment(value) for value in row)
        return used is not None or revoked is not None or (expires is not None and expires <= self.clock())

    async def remember_card_message(self, customer_id: int, message_id: int) -> None:
        """The card message now in the customer's chat: kept current after each use (`notices.py`)."""
        async with self.db.direct(one=True) as tx:
            await tx.execute("UPDATE customers SET card_message_id = $1 WHERE id = $2", message_id, customer_id)

    async def use_card_code(self, token: str, staff_telegram_id: int, method: str = "qr") -> Opened:
        """The card behind a scanned code (`method`: "qr", the customer's phone scanned at the till;
        "photo", a picture of a code sent to the bot); the code works once, before it expires."""
        now = self.clock()
        async with self.db.writing() as session:
            codes = CardCodes(session)
            code = await codes.by_hash(hash_token(token))
            if code is None or code.id is None:
                raise Refused(Refusal.CODE_UNKNOWN)
            if not await codes.use(code.id, staff_telegram_id, now):
                if code.used_at is not None or code.revoked_at is not None:
                    raise Refused(Refusal.CODE_USED)
                raise Refused(Refusal.CODE_EXPIRED)
            customer = await Customers(session).by_id(code.customer_id)
            assert customer is not None
            owed = await self._opened(session, staff_telegram_id, customer, method, now)
            return Opened(customer, tuple(owed))

    async def open_by_card_number(self, number: str, staff_telegram_id: int) -> Opened | None:
        """A card found by its typed number (the customer's phone is flat, say), recorded as opened."""
        now = self.clock()
        async with self.db.writing() as session:
            customer = await Customers(session).by_card_number(number)
            if customer is None:
                return None
            owed = await self._opened(session, staff_telegram_id, customer, "number", now)
            return Opened(customer, tuple(owed))

    async def _opened(
        self, session: AsyncSession, staff_telegram_id: int, customer: Customer, method: str, now: datetime
    ) -> list[str]:
        """Record a card opened by staff. A typed number or a photo needs nobody at the till: when
        one person opens many cards so in a day, the owners are told (once that day)."""
        assert customer.id is not None
        session.add(
            CardOpening(staff_telegram_id=staff_telegram_id, customer_id=customer.id, method=method, created_at=now)
        )
        if method == "qr":
            return []
        day_start = self._start_of_business_day(now)
        await session.flush()
        count = await session.scalar(
            select(func.count())
            .select_from(CardOpening)
            .where(
                col(CardOpening.staff_telegram_id) == staff_telegram_id,
                col(CardOpening.method).in_(["number", "photo"]),
                col(CardOpening.created_at) >= day_start,
            )
        )
        if int(count or 0) < self.business.guards.warn_cards_without_qr:
            return []
        return await self._warn_owners(
            session,
            f"flag:no_qr:{staff_telegram_id}:{day_start.date()}",
            now,
            reason="cards_without_qr",
            staff=staff_telegram_id,
            count=int(count or 0),
        )

    async def _warn_owners(self, session: AsyncSession, key: str, now: datetime, **payload: object) -> list[str]:
        """Owe every owner a warning about a staff member, once per `key`."""
        return [
            await owing.add(session, f"{key}:{owner}", "staff_warning", owner, now, **payload)
            for owner in sorted(self.admin_ids)
            if owner != payload.get("staff")  # an owner's own doings are not reported to them
        ]

    async def _check_cashier_limit(self, session: AsyncSession, cashier: int, points: int, now: datetime) -> None:
        """One cashier credits at most `cashier_points_per_day` points in a business day."""
        limit = self.business.guards.cashier_points_per_day
        credited = await session.scalar(
            select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                col(LedgerEntry.staff_telegram_id) == cashier,
                col(LedgerEntry.kind) == EntryKind.PURCHASE.value,
                col(LedgerEntry.created_at) >= self._start_of_business_day(now),
            )
        )
        if int(credited or 0) + points > limit:
            raise Refused(Refusal.CASHIER_LIMIT, limit=limit)

    async def _watch_cashier(self, session: AsyncSession, operation: Operation, now: datetime) -> list[str]:
        """One cashier crediting one card again and again in a day: the owners are told."""
        day_start = self._start_of_business_day(now)
        count = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(
                col(LedgerEntry.staff_telegram_id) == operation.cashier_telegram_id,
                col(LedgerEntry.customer_id) == operation.customer_id,
                col(LedgerEntry.kind) == EntryKind.PURCHASE.value,
                col(LedgerEntry.created_at) >= day_start,
            )
        )
        if int(count or 0) < self.business.guards.warn_credits_per_card:
            return []
        return await self._warn_owners(
            session,
            f"flag:credits:{operation.cashier_telegram_id}:{operation.customer_id}:{day_start.date()}",
            now,
            reason="credits_per_card",
            staff=operation.cashier_telegram_id,
            customer_id=operation.customer_id,
            count=int(count or 0),
        )

    async def entry(self, entry_id: int) -> LedgerEntry | None:
        held = self._held("entry", entry_id)
        if isinstance(held, LedgerEntry):
            return held
        async with self.db.direct(write=False) as tx:
            return await one_by(tx, LedgerEntry, "id", entry_id)

    async def operation(self, operation_id: int) -> Operation | None:
        held = self._held("operation", operation_id)
        if isinstance(held, Operation):
            return held
        async with self.db.direct(write=False) as tx:
            return await one_by(tx, Operation, "id", operation_id)

    # --- staff -------------------------------------------------------------------------------

    async def active_staff(self, telegram_id: int) -> Staff | None:
        """The staff record of someone not revoked (every cashier's message and press asks: one
        statement through the driver; `telegram_id` is unique)."""
        async with self.db.direct(write=False) as tx:
            staff = await one_by(tx, Staff, "telegram_id", telegram_id)
        return staff if staff is not None and staff.revoked_at is None else None

    async def list_staff(self) -> list[Staff]:
        async with self.db.reading() as session:
            return await StaffRepo(session).active()

    async def create_invite(self, admin_telegram_id: int, store: str | None = None) -> tuple[str, datetime]:
        """A one-time link that makes whoever opens it a cashier of `store` (the first by default)."""
        now = self.clock()
        token = new_token()
        async with self.db.writing() as session:
            session.add(
                StaffInvite(
                    token_hash=hash_token(token),
                    created_by=admin_telegram_id,
                    store=self.business.store(store).id,
                    created_at=now,
                    expires_at=now + INVITE_TTL,
                )
            )
        return token, now + INVITE_TTL

    async def accept_invite(self, token: str, telegram_id: int, name: str, username: str | None) -> tuple[Staff, int]:
        """Make the person a cashier; returns them and who invited them."""
        now = self.clock()
        async with self.db.writing() as session:
            repo = StaffRepo(session)
            invite = await repo.invite_by_hash(hash_token(token))
            if invite is None or invite.id is None or not await repo.use_invite(invite.id, telegram_id, now):
                raise Refused(Refusal.INVITE_INVALID)
            staff = await repo.by_telegram_id(telegram_id)
            if staff is None:
                staff = Staff(telegram_id=telegram_id, name=name[:256], created_at=now)
                session.add(staff)
            staff.name, staff.username, staff.invited_by, staff.revoked_at, staff.store = (
                name[:256],
                username,
                invite.created_by,
                None,
                invite.store,
            )
            await session.flush()
            return staff, invite.created_by

    @staticmethod
    async def _owns_card(session: AsyncSession, customer_id: int, telegram_id: int) -> bool:
        """Whether the card is the acting staff member's own: nobody credits their own card."""
        customer = await Customers(session).by_id(customer_id)
        return customer is not None and customer.telegram_id == telegram_id

    async def _store_of(self, session: AsyncSession, telegram_id: int) -> str:
        """Where a person at the till works: a cashier's store; an owner's, the first store."""
        store = await StaffRepo(session).store_of(telegram_id)
        return self.business.store(store).id if store is not None else self.business.first_store.id

    async def _still_staff(self, session: AsyncSession, telegram_id: int) -> bool:
        return telegram_id in self.admin_ids or await StaffRepo(session).active_by_telegram_id(telegram_id) is not None

    async def move_staff(self, staff_id: int, store: str) -> Staff | None:
        """Move a cashier to another store; their next sale is recorded there, their past ones stay."""
        if store not in self.business.store_ids:
            return None
        async with self.db.writing() as session:
            staff = await session.get(Staff, staff_id)
            if staff is None or staff.revoked_at is not None:
                return None
            staff.store = store
            return staff

    async def revoke_staff(self, staff_id: int) -> Staff | None:
        """Take a cashier's access away at once, with the operations they left open."""
        async with self.db.writing() as session:
            staff = await session.get(Staff, staff_id)
            if staff is None or staff.revoked_at is not None:
                return None
            staff.revoked_at = self.clock()
            await Operations(session).cancel_open(staff.telegram_id)
            return staff

    # --- cashier operations ------------------------------------------------------------------

    def _start_of_business_day(self, now: datetime) -> datetime:
        local = now.astimezone(self.business.timezone)
        return datetime.combine(local.date(), time.min, tzinfo=self.business.timezone)

    async def _card_for_operation(
        self, session: AsyncSession, customer_id: int, cashier_telegram_id: int, now: datetime
    ) -> Customer:
        """The card a cashier may act on now: a member's, not their own, under the daily limit.

        The card's row is held until the transaction ends, so concurrent operations on one card
        queue here and the daily limit holds on PostgreSQL too (SQLite's BEGIN IMMEDIATE already
        runs writers one at a time).
        """
        customer = self._actable(await Customers(session).locked(customer_id), cashier_telegram_id)
        self._under_daily_limit(await Ledger(session).operations_since(customer_id, self._start_of_business_day(now)))
        return customer

    @staticmethod
    def _actable(customer: Customer | None, cashier_telegram_id: int) -> Customer:
        """The card, if a cashier may act on it: a member's, and not their own."""
        if customer is None or not customer.is_member:
            raise Refused(Refusal.NOT_A_MEMBER)
        if customer.telegram_id == cashier_telegram_id:
            raise Refused(Refusal.OWN_CARD)
        return customer

    def _under_daily_limit(self, done_today: int) -> None:
        if done_today >= self.business.max_operations_per_day:
            raise Refused(Refusal.DAILY_LIMIT, limit=self.business.max_operations_per_day)

    async def _receipt_used(self, session: AsyncSession, receipt_no: str) -> bool:
        """Whether a receipt already earned; two cashiers with one receipt queue on a lock."""
        if not self.db.is_sqlite:
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": "receipt:" + receipt_no})
        return await Ledger(session).purchase_with_receipt(receipt_no) is not None

    def _check_amount(self, amount: int) -> None:
        if amount <= 0:
            raise Refused(Refusal.NOT_POSITIVE)
        if amount > self.business.max_receipt:
            raise Refused(Refusal.OVER_MAX_RECEIPT, limit=self.business.max_receipt)

    async def check_card(self, customer_id: int, cashier_telegram_id: int) -> Customer:
        """The card as a cashier may act on it now (a member, not their own, under the daily
        limit). Every card opened at the till asks: two statements through the driver."""
        async with self.db.direct(write=False) as tx:
            customer = self._actable(await one_by(tx, Customer, "id", customer_id), cashier_telegram_id)
        async with self.db.direct(write=False) as tx:
            done_today = await operations_since(tx, customer_id, self._start_of_business_day(self.clock()))
        self._under_daily_limit(done_today)
        return customer

    def check_purchase_amount(self, amount: int) -> None:
        self._check_amount(amount)

    async def prepare_purchase(
        self, customer_id: int, cashier_telegram_id: int, amount: int, receipt_no: str | None
    ) -> tuple[Operation, Customer]:
        """A purchase waiting for the cashier's Confirm, with the points it will add."""
        self._check_amount(amount)
        now = self.clock()
        async with self.db.writing() as session:
            return await self._draft_purchase(session, customer_id, cashier_telegram_id, amount, receipt_no, now)

    async def _draft_purchase(
        self,
        session: AsyncSession,
        customer_id: int,
        cashier_telegram_id: int,
        amount: int,
        receipt_no: str | None,
        now: datetime,
        key: str | None = None,
    ) -> tuple[Operation, Customer]:
        """A purchase's operation, every rule checked, with the points it will add."""
        customer = await self._card_for_operation(session, customer_id, cashier_telegram_id, now)
        if receipt_no and await self._receipt_used(session, receipt_no):
            raise Refused(Refusal.RECEIPT_USED, receipt_no=receipt_no)
        # A small receipt may earn no points yet still counts towards the next tier.
        points = points_for_purchase(self.business, amount, customer.lifetime_spend)
        await self._check_cashier_limit(session, cashier_telegram_id, points, now)
        operation = await Operations(session).add(
            Operation(
                kind=EntryKind.PURCHASE,
                customer_id=customer_id,
                cashier_telegram_id=cashier_telegram_id,
                store=await self._store_of(session, cashier_telegram_id),
                amount=amount,
                points=points,
                receipt_no=receipt_no,
                status=OperationStatus.DRAFT,
                created_at=now,
                idempotency_key=key,
            )
        )
        return operation, customer

    async def confirm_purchase(
        self, operation_id: int, cashier_telegram_id: int, message_id: int | None = None
    ) -> Applied:
        """Apply a purchase; a second Confirm (or a redelivered one) returns the first result.

        The cashier's "Done" (an edit of `message_id`, their prompt) and the customer's word on
        their points are notices committed with the purchase: `Applied.notices`."""
        now = self.clock()
        try:
            async with self.db.writing() as session:
                operation = await self._own_operation(session, operation_id, cashier_telegram_id)
                if operation.kind != EntryKind.PURCHASE:
                    raise Refused(Refusal.OPERATION_UNKNOWN)
                repeated = await self._repeat(session, operation)
                if repeated is not None:
                    return repeated
                await self._card_for_operation(session, operation.customer_id, cashier_telegram_id, now)
                if operation.receipt_no and await self._receipt_used(session, operation.receipt_no):
                    raise Refused(Refusal.RECEIPT_USED, receipt_no=operation.receipt_no)
                await self._check_cashier_limit(session, cashier_telegram_id, operation.points, now)
                return await self._apply_purchase(session, operation, cashier_telegram_id, message_id, now)
        except IntegrityError:
            return await self._repeat_after_race(operation_id)

    async def sell(
        self,
        customer_id: int,
        cashier_telegram_id: int,
        amount: int,
        receipt_no: str | None,
        key: str,
        message_id: int | None = None,
    ) -> Applied:
        """A purchase in one step: the amount the cashier typed into an open card is its
        confirmation (Undo stays open for the undo window). `key` names the cashier's message, so
        a redelivered message, or the same one handled again after a crash, sells once."""
        self._check_amount(amount)
        now = self.clock()
        try:
            async with self.db.writing() as session:
                earlier = await Operations(session).by_key(key)
                if earlier is not None:
                    if (earlier.customer_id, earlier.cashier_telegram_id) != (customer_id, cashier_telegram_id):
                        raise Refused(Refusal.OPERATION_UNKNOWN)
                    repeated = await self._repeat(session, earlier)
                    if repeated is None:
                        raise Refused(Refusal.ALREADY_DONE)
                    return repeated
                operation, _customer = await self._draft_purchase(
                    session, customer_id, cashier_telegram_id, amount, receipt_no, now, key
                )
                return await self._apply_purchase(session, operation, cashier_telegram_id, message_id, now)
        except IntegrityError:  # the same message, handled at once elsewhere (PostgreSQL): its result
            async with self.db.reading() as session:
                earlier = await Operations(session).by_key(key)
                repeated = await self._repeat(session, earlier) if earlier is not None else None
            if repeated is None:
                raise Refused(Refusal.ALREADY_DONE) from None
            return repeated

    async def _apply_purchase(
        self,
        session: AsyncSession,
        operation: Operation,
        cashier_telegram_id: int,
        message_id: int | None,
        now: datetime,
    ) -> Applied:
        """The purchase's ledger entry, its effects and the notices it owes, in the caller's transaction."""
        entry, _ = await Ledger(session).append(
            customer_id=operation.customer_id,
            kind=EntryKind.PURCHASE,
            points=operation.points,
            spend=operation.amount,
            amount=operation.amount,
            receipt_no=operation.receipt_no,
            staff_telegram_id=cashier_telegram_id,
            key=f"op:{operation.id}",
            now=now,
            expires_at=self._expires(operation.points, now),
            store=operation.store,
        )
        operation.status, operation.entry_id = OperationStatus.DONE, entry.id
        await self._plan_survey_after(session, entry, now)
        await Customers(session).purchased(operation.customer_id, now)
        customer = await Customers(session).by_id(operation.customer_id)
        assert customer is not None and operation.id is not None
        bonuses = await self._reward_referral(session, customer, cashier_telegram_id, now, entry.store)
        if bonuses:  # the newcomer's bonus moved their balance again
            customer = await Customers(session).by_id(operation.customer_id)
            assert customer is not None
        owed = [
            await owing.add(
                session,
                cashier_notice(operation.id),
                "cashier_result",
                cashier_telegram_id,
                now,
                operation_id=operation.id,
                message_id=message_id,
            ),
            await _tell_customer(session, entry, customer, now),
        ]
        for bonus in bonuses:
            owed.append(await _tell_customer(session, bonus.entry, bonus.customer, now))
        owed += await self._watch_cashier(session, operation, now)
        return Applied(
            entry=entry, customer=customer, created=True, operation=operation, bonuses=bonuses, notices=tuple(owed)
        )

    def _expires(self, points: int, now: datetime) -> datetime | None:
        return earning_expires_at(self.business.lifecycle.expiry_months, points, now)

    async def _reward_referral(
        self, session: AsyncSession, customer: Customer, cashier_telegram_id: int, now: datetime, store: str
    ) -> tuple[Applied, ...]:
        """Bring a friend: the newcomer's first confirmed purchase credits both, once (the keys are
        the newcomer's). A referrer who erased their data meanwhile gets nothing. A cashier who
        invited the newcomer does not credit their own bonus: both wait for a purchase someone
        else confirms."""
        bonus = self.business.lifecycle.referral_bonus
        customer_id = customer.id
        if bonus <= 0 or customer_id is None or customer.referred_by_id is None:
            return ()
        if await Ledger(session).by_key(f"referral:{customer_id}:newcomer") is not None:
            return ()  # once per newcomer, whatever the bonus is set to now
        referrer = await Customers(session).by_id(customer.referred_by_id)
        if referrer is not None and referrer.telegram_id == cashier_telegram_id:
            return ()
        rewarded = []
        for who, role in ((customer, "newcomer"), (referrer, "referrer")):
            if who is None or not who.is_member or who.id is None:
                continue
            entry, created = await Ledger(session).append(
                customer_id=who.id,
                kind=EntryKind.REFERRAL,
                points=bonus,
                key=f"referral:{customer_id}:{role}",
                now=now,
                expires_at=self._expires(bonus, now),
                store=store,
            )
            if created:
                fresh = await Customers(session).by_id(who.id)
                assert fresh is not None
                rewarded.append(Applied(entry=entry, customer=fresh, created=True))
        return tuple(rewarded)

    async def _plan_survey_after(self, session: AsyncSession, entry: LedgerEntry, now: datetime) -> None:
        """A survey some time after the purchase, in the purchase's own transaction. One is
        enough: a second purchase before the first survey went out plans nothing more."""
        if self.business.surveys.after_purchase == AfterPurchase.OFF:
            return
        surveys = Surveys(session)
        pending = await surveys.pending_for(entry.customer_id, Trigger.PURCHASE.value)
        if pending is not None:
            pending.entry_id = entry.id  # about the latest visit (and it survives undoing the first)
            pending.store, pending.staff_telegram_id = entry.store, entry.staff_telegram_id
            return
        await surveys.plan(
            Survey(
                key=f"purchase:{entry.id}",
                customer_id=entry.customer_id,
                trigger=Trigger.PURCHASE.value,
                entry_id=entry.id,
                store=entry.store,
                staff_telegram_id=entry.staff_telegram_id,
                status=SurveyStatus.PENDING,
                created_at=now,
                due_at=now + self.business.surveys.delay,
            )
        )

    async def cancel_operation(self, operation_id: int, cashier_telegram_id: int) -> Operation:
        async with self.db.writing() as session:
            operation = await self._own_operation(session, operation_id, cashier_telegram_id)
            if operation.status in (OperationStatus.DRAFT, OperationStatus.AWAITING_CUSTOMER):
                operation.status = OperationStatus.CANCELLED
                return operation
            raise Refused(_closed_refusal(operation.status))

    async def prepare_redemption(
        self, customer_id: int, cashier_telegram_id: int, amount: int, points: int | None
    ) -> tuple[Operation, Customer]:
        """A redemption waiting for the customer's own confirmation. `points=None` means max."""
        self._check_amount(amount)
        now = self.clock()
        async with self.db.writing() as session:
            customer = await self._card_for_operation(session, customer_id, cashier_telegram_id, now)
            if points is None:
                points = max_redeemable(self.business, amount, customer.balance)
                if points <= 0:
                    raise Refused(Refusal.NOT_ENOUGH_POINTS, balance=customer.balance, points=0)
            problem = check_redemption(self.business, amount, points, customer.balance)
            if problem is not None:
                raise Refused(
                    _REDEEM_REFUSALS[problem],
                    balance=customer.balance,
                    points=points,
                    cap=redeem_cap(self.business, amount),
                )
            operation = await Operations(session).add(
                Operation(
                    kind=EntryKind.REDEMPTION,
                    customer_id=customer_id,
                    cashier_telegram_id=cashier_telegram_id,
                    store=await self._store_of(session, cashier_telegram_id),
                    amount=amount,
                    points=points,
                    status=OperationStatus.AWAITING_CUSTOMER,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.business.redeem_confirm_seconds),
                )
            )
            return operation, customer

    async def remember_cashier_message(self, operation_id: int, message_id: int) -> None:
        async with self.db.writing() as session:
            operation = await Operations(session).by_id(operation_id)
            if operation is not None:
                operation.cashier_message_id = message_id

    async def answer_redemption(
        self, operation_id: int, customer_telegram_id: int, accept: bool
    ) -> Applied | Operation:
        """The customer's ✅ or ❌. Returns the applied movement, or the declined operation. The
        cashier's word on the outcome is a notice committed with it (`cashier_notice`)."""
        now = self.clock()
        try:
            async with self.db.writing() as session:
                operation = await Operations(session).locked(operation_id)
                if operation is None or operation.kind != EntryKind.REDEMPTION:
                    raise Refused(Refusal.OPERATION_UNKNOWN)
                customer = await Customers(session).by_id(operation.customer_id)
                assert customer is not None
                if customer.telegram_id != customer_telegram_id:
                    raise Refused(Refusal.NOT_YOURS)
                repeated = await self._repeat(session, operation)
                if repeated is not None:
                    return repeated
                if operation.status != OperationStatus.AWAITING_CUSTOMER:
                    raise Refused(_closed_refusal(operation.status), operation=operation)
                outcome = await self._redemption_outcome(session, operation, accept, now)
                await owing.add(
                    session,
                    cashier_notice(operation.id or 0),
                    "cashier_result",
                    operation.cashier_telegram_id,
                    now,
                    operation_id=operation.id,
                    message_id=operation.cashier_message_id,
                )
                return outcome
        except IntegrityError:
            return await self._repeat_after_race(operation_id)

    async def _redemption_outcome(
        self, session: AsyncSession, operation: Operation, accept: bool, now: datetime
    ) -> Applied | Operation:
        if operation.expires_at is not None and now >= operation.expires_at:
            operation.status = OperationStatus.EXPIRED
            return operation
        if not accept:
            operation.status = OperationStatus.DECLINED
            return operation
        if not await self._still_staff(session, operation.cashier_telegram_id):
            operation.status = OperationStatus.CANCELLED
            return operation
        try:
            await self._card_for_operation(session, operation.customer_id, operation.cashier_telegram_id, now)
        except Refused:
            operation.status = OperationStatus.FAILED
            return operation
        try:
            async with session.begin_nested():
                entry, _ = await Ledger(session).append(
                    customer_id=operation.customer_id,
                    kind=EntryKind.REDEMPTION,
                    points=-operation.points,
                    amount=operation.amount,
                    staff_telegram_id=operation.cashier_telegram_id,
                    key=f"op:{operation.id}",
                    now=now,
                    store=operation.store,
                )
        except InsufficientBalance:
            operation.status = OperationStatus.FAILED
            return operation
        operation.status, operation.entry_id = OperationStatus.DONE, entry.id
        customer = await Customers(session).by_id(operation.customer_id)
        assert customer is not None and operation.id is not None
        return Applied(
            entry=entry,
            customer=customer,
            created=True,
            operation=operation,
            notices=(cashier_notice(operation.id),),
        )

    async def expire_redemption(self, operation_id: int) -> Operation | None:
        """Close a redemption the customer left unanswered; None if it was answered meanwhile."""
        now = self.clock()
        async with self.db.writing() as session:
            operation = await Operations(session).locked(operation_id)
            if operation is None or operation.status != OperationStatus.AWAITING_CUSTOMER:
                return None
            if operation.expires_at is not None and now < operation.expires_at:
                return None
            operation.status = OperationStatus.EXPIRED
            return operation

    async def _own_operation(self, session: AsyncSession, operation_id: int, cashier_telegram_id: int) -> Operation:
        operation = await Operations(session).locked(operation_id)
        if operation is None:
            raise Refused(Refusal.OPERATION_UNKNOWN)
        if operation.cashier_telegram_id != cashier_telegram_id:
            raise Refused(Refusal.NOT_YOURS)
        return operation

    async def _repeat(self, session: AsyncSession, operation: Operation) -> Applied | None:
        """The first result of an operation already applied; None while it is still open."""
        if operation.status == OperationStatus.DONE and operation.entry_id is not None:
            entry = await Ledger(session).by_id(operation.entry_id)
            customer = await Customers(session).by_id(operation.customer_id)
            assert entry is not None and customer is not None and operation.id is not None
            # A repeat (a double tap, a replay) still delivers what the first one could not.
            owed = (cashier_notice(operation.id), movement_notice(entry.id or 0))
            return Applied(entry=entry, customer=customer, created=False, operation=operation, notices=owed)
        if operation.status not in (OperationStatus.DRAFT, OperationStatus.AWAITING_CUSTOMER):
            raise Refused(_closed_refusal(operation.status), operation=operation)
        return None

    async def _repeat_after_race(self, operation_id: int) -> Applied:
        """Another transaction applied the same operation first (PostgreSQL): report its result."""
        async with self.db.reading() as session:
            operation = await Operations(session).by_id(operation_id)
            assert operation is not None
            repeated = await self._repeat(session, operation)
            if repeated is None:
                raise Refused(Refusal.ALREADY_DONE)
            return repeated

    # --- corrections -------------------------------------------------------------------------

    async def undo(self, entry_id: int, cashier_telegram_id: int) -> Applied:
        """A cashier's own purchase or redemption, reversed within the undo window."""
        try:
            return await self._undo(entry_id, cashier_telegram_id)
        except IntegrityError:  # a concurrent reversal of the same entry won (PostgreSQL)
            raise Refused(Refusal.ALREADY_REVERSED) from None

    async def _undo(self, entry_id: int, cashier_telegram_id: int) -> Applied:
        now = self.clock()
        async with self.db.writing() as session:
            entry = await Ledger(session).by_id(entry_id)
            if entry is None:
                raise Refused(Refusal.ENTRY_UNKNOWN)
            if entry.staff_telegram_id != cashier_telegram_id or entry.kind not in (
                EntryKind.PURCHASE,
                EntryKind.REDEMPTION,
            ):
                raise Refused(Refusal.NOT_YOURS)
            if now - entry.created_at > timedelta(seconds=self.business.undo_seconds):
                raise Refused(Refusal.UNDO_TOO_LATE, minutes=self.business.undo_seconds // 60)
            return await self._reverse(session, entry, cashier_telegram_id, None, now)

    async def undo_last(self, cashier_telegram_id: int) -> Applied:
        async with self.db.reading() as session:
            entry = await Ledger(session).last_by_staff(cashier_telegram_id)
        if entry is None or entry.id is None:
            raise Refused(Refusal.NOTHING_TO_UNDO)
        return await self.undo(entry.id, cashier_telegram_id)

    async def void(self, entry_id: int, admin_telegram_id: int, reason: str) -> Applied:
        """An admin's correction of any entry but a reversal, at any time, with a reason."""
        try:
            return await self._void(entry_id, admin_telegram_id, reason)
        except IntegrityError:  # a concurrent reversal of the same entry won (PostgreSQL)
            raise Refused(Refusal.ALREADY_REVERSED) from None

    async def _void(self, entry_id: int, admin_telegram_id: int, reason: str) -> Applied:
        now = self.clock()
        async with self.db.writing() as session:
            entry = await Ledger(session).by_id(entry_id)
            if entry is None:
                raise Refused(Refusal.ENTRY_UNKNOWN)
            if entry.kind == EntryKind.REVERSAL:
                raise Refused(Refusal.NOT_REVERSIBLE)
            return await self._reverse(session, entry, admin_telegram_id, reason, now)

    async def _reverse(
        self, session: AsyncSession, entry: LedgerEntry, actor: int, reason: str | None, now: datetime
    ) -> Applied:
        assert entry.id is not None
        ledger = Ledger(session)
        existing = await ledger.reversal_of(entry.id)
        if existing is not None:
            raise Refused(Refusal.ALREADY_REVERSED, entry=existing)
        if entry.points < 0 and await self._owns_card(session, entry.customer_id, actor):
            raise Refused(Refusal.OWN_CARD)  # reversing a redemption on one's own card credits it
        if entry.points > 0 and await ledger.expiry_of(entry.id) is not None:
            # What was left of it has expired already: reversing it would take those points twice.
            raise Refused(Refusal.POINTS_ALREADY_SPENT, points=entry.points)
        try:
            async with session.begin_nested():
                reversal, created = await ledger.append(
                    customer_id=entry.customer_id,
                    kind=EntryKind.REVERSAL,
                    points=-entry.points,
                    spend=-entry.spend,
                    amount=entry.amount,
                    receipt_no=entry.receipt_no,
                    staff_telegram_id=actor,
                    reverses_id=entry.id,
                    reason=reason,
                    key=f"rev:{entry.id}",
                    now=now,
                    expires_at=self._expires(-entry.points, now),  # points given back expire afresh
                    store=entry.store,  # a correction belongs where the movement it corrects happened
                )
        except InsufficientBalance:
            raise Refused(Refusal.POINTS_ALREADY_SPENT, points=entry.points) from None
        if not created:  # a concurrent reversal committed between our check and our insert
            raise Refused(Refusal.ALREADY_REVERSED, entry=reversal)
        bonuses = await self._reverse_referral(session, entry, actor, now) if entry.kind == EntryKind.PURCHASE else ()
        customer = await Customers(session).by_id(entry.customer_id)
        assert customer is not None
        owed = [await _tell_customer(session, reversal, customer, now)]
        owed += [await _tell_customer(session, bonus.entry, bonus.customer, now) for bonus in bonuses]
        return Applied(entry=reversal, customer=customer, created=True, bonuses=bonuses, notices=tuple(owed))

    async def _reverse_referral(
        self, session: AsyncSession, purchase: LedgerEntry, actor: int, now: datetime
    ) -> tuple[Applied, ...]:
        """An undone first purchase takes back the "bring a friend" bonuses it brought (those
        credited in its own transaction); the newcomer does not earn them again."""
        ledger, undone = Ledger(session), []
        for role in ("newcomer", "referrer"):
            bonus = await ledger.by_key(f"referral:{purchase.customer_id}:{role}")
            if bonus is None or bonus.created_at != purchase.created_at or await ledger.reversal_of(bonus.id or 0):
                continue
            try:
                async with session.begin_nested():
                    reversal, _created = await ledger.append(
                        customer_id=bonus.customer_id,
                        kind=EntryKind.REVERSAL,
                        points=-bonus.points,
                        reverses_id=bonus.id,
                        staff_telegram_id=actor,
                        key=f"rev:{bonus.id}",
                        now=now,
                        store=bonus.store,
                    )
            except InsufficientBalance:
                logger.warning("referral bonus %s was spent already; it stays", bonus.id)
                continue
            customer = await Customers(session).by_id(bonus.customer_id)
            assert customer is not None
            undone.append(Applied(entry=reversal, customer=customer, created=True))
        return tuple(undone)

    async def adjust(self, customer_id: int, points: int, admin_telegram_id: int, reason: str, key: str) -> Applied:
        """An admin's goodwill or correction in points, with a reason; never below zero."""
        now = self.clock()
        try:
            async with self.db.writing() as session:
                if points > 0 and await self._owns_card(session, customer_id, admin_telegram_id):
                    raise Refused(Refusal.OWN_CARD)
                entry, created = await Ledger(session).append(
                    customer_id=customer_id,
                    kind=EntryKind.ADJUSTMENT,
                    points=points,
                    staff_telegram_id=admin_telegram_id,
                    reason=reason,
                    key=key,
                    now=now,
                    expires_at=self._expires(points, now),
                    store=await self._store_of(session, admin_telegram_id),
                )
                customer = await Customers(session).by_id(customer_id)
                assert customer is not None
                owed = (await _tell_customer(session, entry, customer, now),) if created else ()
                return Applied(entry=entry, customer=customer, created=created, notices=owed)
        except InsufficientBalance:
            raise Refused(Refusal.NOT_ENOUGH_POINTS, points=-points) from None
        except IntegrityError:  # the same key applied concurrently (PostgreSQL): report the first
            async with self.db.reading() as session:
                first = await Ledger(session).by_key(key)
                customer = await Customers(session).by_id(customer_id)
            if first is None or customer is None or first.points != points:
                raise
            return Applied(entry=first, customer=customer, created=False)

    async def balance_is_consistent(self, customer_id: int) -> bool:
        async with self.db.reading() as session:
            customer = await Customers(session).by_id(customer_id)
            total = await Ledger(session).sum_points(customer_id)
            return customer is not None and customer.balance == total


def _closed_refusal(status: OperationStatus) -> Refusal:
    return {
        OperationStatus.DONE: Refusal.ALREADY_DONE,
        OperationStatus.CANCELLED: Refusal.CANCELLED,
        OperationStatus.DECLINED: Refusal.DECLINED,
        OperationStatus.EXPIRED: Refusal.EXPIRED,
        OperationStatus.FAILED: Refusal.NOT_ENOUGH_POINTS,
    }.get(status, Refusal.OPERATION_UNKNOWN)


__all__ = [
    "Applied",
    "IdempotencyConflict",
    "Joined",
    "LoyaltyService",
    "Refusal",
    "Refused",
]
