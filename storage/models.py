"""Database tables. Amounts are integers in minor units; points are whole numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, ForeignKey, Index, String, TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if getattr(dialect, "name", "") == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable, index=index)


class EntryKind(StrEnum):
    WELCOME = "welcome"
    PURCHASE = "purchase"
    REDEMPTION = "redemption"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"
    APOLOGY = "apology"  # a manager's apology bonus on an alert


class OperationStatus(StrEnum):
    DRAFT = "draft"  # shown to the cashier, waiting for Confirm
    AWAITING_CUSTOMER = "awaiting_customer"  # a redemption waiting for the customer's ✅
    DONE = "done"
    CANCELLED = "cancelled"
    DECLINED = "declined"  # the customer pressed ❌
    EXPIRED = "expired"
    FAILED = "failed"  # refused when applied (the balance changed meanwhile)


class Customer(SQLModel, table=True):
    """Everyone who wrote to the bot in private; a member once `joined_at` and `card_number` are set."""

    __tablename__ = "customers"
    __table_args__ = (CheckConstraint("balance >= 0", name="ck_customers_balance_not_negative"),)

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    first_name: str = Field(default="", max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    username: str | None = Field(default=None, max_length=64)
    telegram_language: str | None = Field(default=None, max_length=16)
    language: str | None = Field(default=None, max_length=8)
    card_number: str | None = Field(default=None, max_length=16, unique=True)
    balance: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    lifetime_spend: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    joined_at: datetime | None = Field(default=None, sa_column=_ts())
    blocked_at: datetime | None = Field(default=None, sa_column=_ts())  # the person blocked the bot
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))

    @property
    def is_member(self) -> bool:
        return self.joined_at is not None and self.card_number is not None


class CardCode(SQLModel, table=True):
    """A one-time code behind the card's QR; only its SHA-256 is stored."""

    __tablename__ = "card_codes"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False, index=True))
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=_ts())
    used_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts())


class Staff(SQLModel, table=True):
    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    name: str = Field(max_length=256)
    username: str | None = Field(default=None, max_length=64)
    role: str = Field(default="cashier", max_length=16)
    invited_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts())


class StaffInvite(SQLModel, table=True):
    __tablename__ = "staff_invites"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    used_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    used_at: datetime | None = Field(default=None, sa_column=_ts())


class LedgerEntry(SQLModel, table=True):
    """One movement of points. Append-only: a correction is a new `reversal` entry."""

    __tablename__ = "ledger_entries"
    # Ids are never reused (idempotency keys are built from them), even on SQLite.
    __table_args__ = (Index("ix_ledger_customer_created", "customer_id", "created_at"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False))
    kind: EntryKind = Field(sa_column=Column(String(16), nullable=False))
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    spend: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    amount: int | None = Field(default=None, sa_column=Column(BigInteger))
    receipt_no: str | None = Field(default=None, max_length=64, index=True)
    balance_after: int = Field(sa_column=Column(BigInteger, nullable=False))
    idempotency_key: str = Field(max_length=96, unique=True)
    reverses_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_entries.id"), unique=True, nullable=True)
    )
    staff_telegram_id: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    reason: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Operation(SQLModel, table=True):
    """A cashier's purchase or redemption between typing it and its confirmation."""

    __tablename__ = "operations"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused: keys are built from them

    id: int | None = Field(default=None, primary_key=True)
    kind: EntryKind = Field(sa_column=Column(String(16), nullable=False))
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False, index=True))
    cashier_telegram_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    receipt_no: str | None = Field(default=None, max_length=64)
    status: OperationStatus = Field(sa_column=Column(String(24), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=_ts())
    entry_id: int | None = Field(default=None, sa_column=Column(ForeignKey("ledger_entries.id")))
    cashier_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))


class SurveyStatus(StrEnum):
    PENDING = "pending"  # waiting for its time
    SENDING = "sending"  # claimed by one bot process, which is sending it now
    ASKED = "asked"  # the question is in the customer's chat
    ANSWERED = "answered"
    SKIPPED = "skipped"  # not sent: see `skip_reason`


class CommentStatus(StrEnum):
    ASKED = "asked"  # the follow-up question is waiting for the customer's words
    GIVEN = "given"
    SKIPPED = "skipped"


class Survey(SQLModel, table=True):
    """One question to one customer, from planning to answer. Exactly one row per trigger (`key`)."""

    __tablename__ = "surveys"
    __table_args__ = (
        Index("ix_surveys_due", "status", "due_at"),
        Index("ix_surveys_customer_asked", "customer_id", "asked_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=96, unique=True)  # "purchase:<entry id>", "alert:<id>", …
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False))
    kind: str | None = Field(default=None, max_length=16)  # chosen when sent, for "auto" purchases
    trigger: str = Field(max_length=16)
    entry_id: int | None = Field(default=None, sa_column=Column(ForeignKey("ledger_entries.id")))
    alert_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # a check-back's alert
    status: SurveyStatus = Field(sa_column=Column(String(16), nullable=False))
    skip_reason: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    due_at: datetime = Field(sa_column=_ts(nullable=False))
    claimed_at: datetime | None = Field(default=None, sa_column=_ts())
    asked_at: datetime | None = Field(default=None, sa_column=_ts())
    message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    score: int | None = None
    answered_at: datetime | None = Field(default=None, sa_column=_ts())
    comment: str | None = Field(default=None, max_length=1024)
    comment_status: CommentStatus | None = Field(default=None, sa_column=Column(String(16)))
    comment_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))


class AlertStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"  # the customer changed a bad score to a good one


class Alert(SQLModel, table=True):
    """An unhappy answer posted to the managers' group, and what the managers did about it."""

    __tablename__ = "alerts"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(sa_column=Column(ForeignKey("surveys.id"), nullable=False, unique=True))
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False, index=True))
    status: AlertStatus = Field(sa_column=Column(String(16), nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    contacted_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    contacted_by_name: str | None = Field(default=None, max_length=256)
    contacted_at: datetime | None = Field(default=None, sa_column=_ts())
    bonus_entry_id: int | None = Field(default=None, sa_column=Column(ForeignKey("ledger_entries.id"), unique=True))
    bonus_by_name: str | None = Field(default=None, max_length=256)
    resolved_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    resolved_by_name: str | None = Field(default=None, max_length=256)
    resolved_at: datetime | None = Field(default=None, sa_column=_ts())
    fixed: bool | None = None  # the customer's answer to "Did we fix it?"
    fixed_answered_at: datetime | None = Field(default=None, sa_column=_ts())


class ProcessedUpdate(SQLModel, table=True):
    """Update ids already handled, so a redelivered update does nothing."""

    __tablename__ = "processed_updates"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    processed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, index=True))
