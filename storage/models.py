"""Database tables. Amounts are integers in minor units; points are whole numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy import text as sql
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


def _ts(nullable: bool = True, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


def _store() -> Any:
    """The store a row happened in (the business file's store id; `main` for a one-shop business)."""
    return Field(default="main", sa_column=Column(String(16), nullable=False, server_default="main"))


class EntryKind(StrEnum):
    WELCOME = "welcome"
    PURCHASE = "purchase"
    REDEMPTION = "redemption"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"
    APOLOGY = "apology"  # a manager's apology bonus on an alert
    BIRTHDAY = "birthday"
    REFERRAL = "referral"  # "bring a friend": to both, on the newcomer's first purchase
    EXPIRY = "expiry"  # what was left of an earning when it expired (`lot_id` names it)
    FORFEIT = "forfeit"  # the balance given up when the customer erased their data


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

    # Given by the database on insert: every row the bot reads or passes on has it.
    id: int = Field(default=None, primary_key=True)
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
    birthday_day: int | None = None
    birthday_month: int | None = None
    birthday_set_at: datetime | None = Field(default=None, sa_column=_ts())
    birthday_greeted_at: datetime | None = Field(default=None, sa_column=_ts())  # greeting and bonus, once a year
    referral_code: str | None = Field(default=None, max_length=16, unique=True)
    referred_by_id: int | None = Field(default=None, sa_column=Column(ForeignKey("customers.id"), index=True))
    marketing_consent_at: datetime | None = Field(default=None, sa_column=_ts())  # None: no consent now
    last_purchase_at: datetime | None = Field(default=None, sa_column=_ts())
    win_back_at: datetime | None = Field(default=None, sa_column=_ts())  # the last "we miss you"
    points_expired_until: datetime | None = Field(default=None, sa_column=_ts())  # earnings due by then are done
    expiry_reminded_until: datetime | None = Field(default=None, sa_column=_ts())  # likewise for the reminder
    card_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # the live card in their chat
    deleted_at: datetime | None = Field(default=None, sa_column=_ts())  # erased on request (/deleteme)
    manager_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # their personal manager
    manager_name: str | None = Field(default=None, max_length=256)

    @property
    def is_member(self) -> bool:
        return self.joined_at is not None and self.card_number is not None and self.deleted_at is None

    @property
    def has_marketing_consent(self) -> bool:
        return self.marketing_consent_at is not None


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
    store: str = _store()
    invited_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts())


class StaffInvite(SQLModel, table=True):
    __tablename__ = "staff_invites"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    store: str = _store()
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    used_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    used_at: datetime | None = Field(default=None, sa_column=_ts())


class LedgerEntry(SQLModel, table=True):
    """One movement of points. Append-only: a correction is a new `reversal` entry."""

    __tablename__ = "ledger_entries"
    # Ids are never reused (idempotency keys are built from them), even on SQLite.
    __table_args__ = (
        # A customer's history in order; it also holds every column the owner's report sums, so
        # the report reads this index alone, in the customer's order, without sorting (0014).
        Index("ix_ledger_customer_created", "customer_id", "created_at", "kind", "points", "amount", "spend", "store"),
        Index("ix_ledger_entries_store_created_at", "store", "created_at"),
        {"sqlite_autoincrement": True},
    )

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
    store: str = _store()
    reason: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    # Set on an earning when the policy of its day made it expire; a later policy never changes it.
    expires_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    lot_id: int | None = Field(  # an expiry entry: the earning whose rest it expired
        default=None, sa_column=Column(ForeignKey("ledger_entries.id"), unique=True, nullable=True)
    )


class Operation(SQLModel, table=True):
    """A cashier's purchase or redemption between typing it and its confirmation."""

    __tablename__ = "operations"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused: keys are built from them

    # Given by the database on insert: every row the bot reads or passes on has it.
    id: int = Field(default=None, primary_key=True)
    kind: EntryKind = Field(sa_column=Column(String(16), nullable=False))
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False, index=True))
    cashier_telegram_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    store: str = _store()
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    receipt_no: str | None = Field(default=None, max_length=64)
    status: OperationStatus = Field(sa_column=Column(String(24), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=_ts())
    entry_id: int | None = Field(default=None, sa_column=Column(ForeignKey("ledger_entries.id")))
    cashier_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    # A sale typed into an open card: the cashier's message, so a redelivered one sells once.
    idempotency_key: str | None = Field(default=None, sa_column=Column(String(64), unique=True))


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
        Index("ix_surveys_store_answered_at", "store", "answered_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=96, unique=True)  # "purchase:<entry id>", "alert:<id>", …
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False))
    kind: str | None = Field(default=None, max_length=16)  # chosen when sent, for "auto" purchases
    trigger: str = Field(max_length=16)
    store: str = _store()
    entry_id: int | None = Field(default=None, sa_column=Column(ForeignKey("ledger_entries.id")))
    alert_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # a check-back's alert
    staff_telegram_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # the visit's cashier
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
    store: str = _store()
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    store_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # its copy in the store's group
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
    # Unhappy answers the same customer gave while this alert was open: folded into it, not posted
    # again (the group's send limit and the managers' attention are for other customers).
    repeats: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    last_survey_id: int | None = Field(default=None, sa_column=Column(ForeignKey("surveys.id")))


class ProcessedUpdate(SQLModel, table=True):
    """The inbox: every update the bot took, so a redelivered one does nothing and a failed one is
    replayed (`bot/core/inbox.py`).

    While an update is being handled, `retry_at` is the end of its lease and `payload` its JSON;
    after a failure `retry_at` is when it is tried again. A handled update keeps only its id and
    times (for 24 hours); one that failed every try keeps its payload and `error`, `retry_at` empty.
    """

    __tablename__ = "processed_updates"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    processed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, index=True))  # received
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    retry_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts())
    error: str | None = Field(default=None, max_length=1024)
    context: str | None = Field(default=None, max_length=160)  # the person's step when it failed


class TicketStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class SupportThread(SQLModel, table=True):
    """A customer's one place in the managers' group: their forum topic and its pinned header.

    The row is inserted before the topic is created, so two quick first messages (even on two bot
    processes) create one topic: the second waits for the first to fill `topic_id` in.
    """

    __tablename__ = "support_threads"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False, unique=True))
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    topic_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    header_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    title: str | None = Field(default=None, max_length=128)  # as last set, so it is not set again
    header: str | None = Field(default=None, max_length=4096)  # likewise
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))  # creation began
    created_at: datetime | None = Field(default=None, sa_column=_ts())  # the topic exists


class Ticket(SQLModel, table=True):
    """A customer's request to talk to a person, from opening to closing (and reopening)."""

    __tablename__ = "tickets"
    __table_args__ = (
        # At most one open ticket per customer, whatever races between two processes.
        Index(
            "uq_tickets_open_customer",
            "customer_id",
            unique=True,
            sqlite_where=sql("status = 'open'"),
            postgresql_where=sql("status = 'open'"),
        ),
        Index("ix_tickets_status_waiting", "status", "waiting_since"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False, index=True))
    status: TicketStatus = Field(sa_column=Column(String(16), nullable=False))
    source: str = Field(max_length=16)  # "support", "menu", "faq", "alert"
    store: str = _store()
    opened_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    assignee_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    assignee_name: str | None = Field(default=None, max_length=256)
    waiting_since: datetime | None = Field(default=None, sa_column=_ts())  # the customer waits for a reply
    reminded_at: datetime | None = Field(default=None, sa_column=_ts())  # the reminder of this wait went out
    last_customer_at: datetime | None = Field(default=None, sa_column=_ts())
    last_manager_at: datetime | None = Field(default=None, sa_column=_ts())
    closed_at: datetime | None = Field(default=None, sa_column=_ts())
    closed_by_name: str | None = Field(default=None, max_length=256)
    reopened_count: int = Field(default=0)
    # Messages in the topic, besides the header, that carry Take / Close (space-separated ids):
    # their buttons go once the request is taken or closed.
    buttons_on: str | None = Field(default=None, sa_column=Column(Text))


class MessageDirection(StrEnum):
    IN = "in"  # the customer's message, copied into the group
    OUT = "out"  # a manager's message, delivered to the customer
    NOTE = "note"  # a manager's `//` note, kept in the group


class TicketMessage(SQLModel, table=True):
    """One message of a ticket, with where it sits in the managers' group (replies and FAQ drafts
    find their ticket through it)."""

    __tablename__ = "ticket_messages"
    __table_args__ = (
        Index("ix_ticket_messages_group", "group_chat_id", "group_message_id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(sa_column=Column(ForeignKey("tickets.id"), nullable=False, index=True))
    direction: MessageDirection = Field(sa_column=Column(String(8), nullable=False))
    content_type: str = Field(max_length=24)
    text: str | None = Field(default=None, max_length=4096)  # the text or caption
    group_chat_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    group_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    manager_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    manager_name: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class FaqQuery(SQLModel, table=True):
    """A customer's question to the FAQ and how it went: what matched, and 👍 or 👎."""

    __tablename__ = "faq_queries"
    __table_args__ = (Index("ix_faq_queries_customer", "customer_id", "id"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False))
    language: str = Field(max_length=8)
    text: str | None = Field(default=None, max_length=1024)  # None when picked from the /faq menu
    outcome: str = Field(max_length=16)  # "answer", "choice", "none", "picked", "browsed", "handoff"
    entry_id: str | None = Field(default=None, max_length=40, index=True)
    score: int | None = None  # the matcher's score in thousandths
    helpful: bool | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class DraftStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    REJECTED = "rejected"


class FaqDraft(SQLModel, table=True):
    """A manager's answer in a topic, proposed as an FAQ entry; approved ones are live entries."""

    __tablename__ = "faq_drafts"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    source_message_id: int = Field(sa_column=Column(ForeignKey("ticket_messages.id"), nullable=False, unique=True))
    language: str = Field(max_length=8)
    question: str = Field(max_length=1024)  # the customer's words: matched on, never shown; erasable
    answer: str = Field(max_length=4096)
    # The question as customers see it on the FAQ button: the reviewer's own wording, set on approval.
    title: str | None = Field(default=None, max_length=120)
    status: DraftStatus = Field(sa_column=Column(String(16), nullable=False, index=True))
    category: str | None = Field(default=None, max_length=40)
    created_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_by_name: str = Field(max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    reviewed_by_name: str | None = Field(default=None, max_length=256)
    reviewed_at: datetime | None = Field(default=None, sa_column=_ts())


class ConsentEvent(SQLModel, table=True):
    """Each time a customer gave or withdrew a consent: the record a data protection officer asks for."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_customer", "customer_id", "id"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False))
    purpose: str = Field(max_length=16)  # "programme", "marketing"
    granted: bool
    source: str = Field(max_length=24)  # "join", "after_join", "profile", "unsubscribe", "deleteme"
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class BroadcastStatus(StrEnum):
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class Broadcast(SQLModel, table=True):
    """An admin's message to a segment of the customers who agreed to marketing."""

    __tablename__ = "broadcasts"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    created_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_by_name: str = Field(max_length=256)
    text: str | None = Field(default=None, max_length=4096)  # HTML; the caption when there is a photo
    photo_file_id: str | None = Field(default=None, max_length=256)
    segment: str = Field(max_length=16)  # "all", "tier", "language", "inactive", "birthday"
    segment_value: str | None = Field(default=None, max_length=32)
    status: BroadcastStatus = Field(sa_column=Column(String(16), nullable=False, index=True))
    total: int = 0
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # where its progress is shown
    thread_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    progress_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    lease_until: datetime | None = Field(default=None, sa_column=_ts())  # a process is sending it until then
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=_ts())


class RecipientStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed; if the process died now, nobody knows whether it arrived
    SENT = "sent"
    BLOCKED = "blocked"  # the customer blocked the bot (or deleted the account)
    FAILED = "failed"
    UNKNOWN = "unknown"  # a claim the process never finished: not sent again, to never send twice
    SKIPPED = "skipped"  # withdrew consent or erased their data after the broadcast was confirmed


class BroadcastRecipient(SQLModel, table=True):
    """One customer of a broadcast, chosen when it was confirmed; the row makes the sending resumable."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        Index("uq_broadcast_recipient", "broadcast_id", "customer_id", unique=True),
        Index("ix_broadcast_recipients_status", "broadcast_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int = Field(sa_column=Column(ForeignKey("broadcasts.id"), nullable=False))
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False, index=True))
    status: RecipientStatus = Field(sa_column=Column(String(16), nullable=False))
    claimed_at: datetime | None = Field(default=None, sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts())
    error: str | None = Field(default=None, max_length=128)


class Notice(SQLModel, table=True):
    """A message owed to someone, committed in the same transaction as what it tells (a movement on
    a card, a cashier's result, an owner's warning): it is sent once the transaction is done, and
    again until it gets through, so a Telegram fault after the commit never swallows it
    (`bot/core/notices.py`). `key` makes each one once; `kind` names what draws it, from `payload`."""

    __tablename__ = "notices"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(160), nullable=False, unique=True))
    kind: str = Field(max_length=32)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    next_try_at: datetime | None = Field(default=None, sa_column=_ts(index=True))  # None: sent or given up
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    sent_at: datetime | None = Field(default=None, sa_column=_ts())
    error: str | None = Field(default=None, max_length=256)


class CardOpening(SQLModel, table=True):
    """A staff member opened a customer's card: by its QR (the customer shows their phone), a photo
    of a QR, or a typed number. Typed numbers and photos need no customer at the till, so owners
    are told when someone opens many (`limits` in the business file)."""

    __tablename__ = "card_openings"
    __table_args__ = (
        Index("ix_card_openings_staff", "staff_telegram_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    staff_telegram_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False))
    method: str = Field(max_length=16)  # "qr", "photo", "number"
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class LetterStatus(StrEnum):
    OPEN = "open"  # nobody answered yet
    ANSWERED = "answered"  # an owner answered; the customer may write again
    CLOSED = "closed"  # an owner closed it


class OwnerLetter(SQLModel, table=True):
    """What a customer wrote straight to the owners ("✉️ Write to the owner"), past the staff."""

    __tablename__ = "owner_letters"
    __table_args__ = (Index("ix_owner_letters_customer", "customer_id", "created_at"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)  # the customer's message: a redelivery writes once
    customer_id: int = Field(sa_column=Column(ForeignKey("customers.id"), nullable=False))
    store: str = _store()
    status: LetterStatus = Field(sa_column=Column(String(16), nullable=False, index=True))
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=_ts())
    answered_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    answered_by_name: str | None = Field(default=None, max_length=256)
    closed_at: datetime | None = Field(default=None, sa_column=_ts())
    closed_by_name: str | None = Field(default=None, max_length=256)


class OwnerLetterPost(SQLModel, table=True):
    """Where a letter was shown to an owner: their reply to that message answers it."""

    __tablename__ = "owner_letter_posts"
    __table_args__ = (Index("uq_owner_letter_posts_message", "chat_id", "message_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    letter_id: int = Field(sa_column=Column(ForeignKey("owner_letters.id"), nullable=False, index=True))
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    message_id: int = Field(sa_column=Column(BigInteger, nullable=False))
