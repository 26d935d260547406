"""The rules of a broadcast as plain functions: who a segment reaches, how a segment travels in a
button and in the database, and the progress figures (what is left, how long it will take).
No aiogram, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.business import Business
from bot.core.languages import LANGUAGES, pick_language
from bot.core.money import whole_number
from bot.loyalty.rules import tier_for


class Person(Protocol):
    """What a segment looks at in a customer (`storage.models.Customer` is one)."""

    lifetime_spend: int
    language: str | None
    telegram_language: str | None
    last_purchase_at: datetime | None
    joined_at: datetime | None
    birthday_month: int | None
    card_number: str | None
    deleted_at: datetime | None
    marketing_consent_at: datetime | None
    blocked_at: datetime | None


MAX_INACTIVE_DAYS = 3650


class SegmentKind(StrEnum):
    ALL = "all"  # everyone who agreed to offers
    TIER = "tier"
    LANGUAGE = "language"
    INACTIVE = "inactive"  # no purchase for N days
    BIRTHDAY = "birthday"  # birthday in the current month


class SegmentError(ValueError):
    """A segment that does not exist (a forged button, a tier removed from the business file)."""


@dataclass(frozen=True, slots=True)
class Segment:
    kind: SegmentKind
    value: str | None = None  # the tier id, the language code, or the number of days

    @property
    def days(self) -> int:
        assert self.kind == SegmentKind.INACTIVE and self.value is not None
        return int(self.value)


def parse_days(text: str) -> int | None:
    """`30` → 30; None unless a whole number of days from 1 to MAX_INACTIVE_DAYS."""
    text = text.strip()
    days = whole_number(text)
    if days is None:
        return None
    return days if 1 <= days <= MAX_INACTIVE_DAYS else None


def parse_segment(value: str, business: Business, days: int | None = None) -> Segment:
    """The value of a segment button (`all`, `tier=silver`, `lang=pl`, `inactive`, `birthday`);
    `inactive` needs the days the admin typed. Raises SegmentError for anything else."""
    kind, _, rest = value.partition("=")
    if value == "all":
        return Segment(SegmentKind.ALL)
    if value == "birthday":
        return Segment(SegmentKind.BIRTHDAY)
    if value == "inactive":
        if days is None or not 1 <= days <= MAX_INACTIVE_DAYS:
            raise SegmentError(value)
        return Segment(SegmentKind.INACTIVE, str(days))
    if kind == "tier" and any(tier.id == rest for tier in business.tiers):
        return Segment(SegmentKind.TIER, rest)
    if kind == "lang" and rest in LANGUAGES:
        return Segment(SegmentKind.LANGUAGE, rest)
    raise SegmentError(value)


def stored_segment(kind: str, value: str | None) -> Segment:
    """A segment as the broadcasts table keeps it."""
    return Segment(SegmentKind(kind), value)


def matches(segment: Segment, customer: Person, business: Business, now: datetime) -> bool:
    """Whether the segment's own condition holds for the customer (consent and membership are
    checked by whoever picks the candidates)."""
    if segment.kind == SegmentKind.ALL:
        return True
    if segment.kind == SegmentKind.TIER:
        return tier_for(business, customer.lifetime_spend).id == segment.value
    if segment.kind == SegmentKind.LANGUAGE:
        language = pick_language(customer.language, customer.telegram_language, business.default_language)
        return language == segment.value
    if segment.kind == SegmentKind.INACTIVE:
        last = customer.last_purchase_at or customer.joined_at
        return last is not None and last < now - timedelta(days=segment.days)
    if segment.kind == SegmentKind.BIRTHDAY:
        return customer.birthday_month == now.astimezone(business.timezone).month
    raise SegmentError(segment.kind)


def reachable(customer: Person) -> bool:
    """A member who agreed to offers, has not erased their data and has not blocked the bot."""
    return (
        customer.joined_at is not None
        and customer.card_number is not None
        and customer.deleted_at is None
        and customer.marketing_consent_at is not None
        and customer.blocked_at is None
    )


# --- progress ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    unknown: int = 0  # interrupted mid-send: may have arrived, never sent again
    skipped: int = 0  # withdrew consent or erased their data after the broadcast was confirmed
    pending: int = 0  # not tried yet
    sending: int = 0  # in a sender's hands now

    @classmethod
    def from_counts(cls, total: int, counts: dict[str, int]) -> Progress:
        return cls(
            total=total,
            sent=counts.get("sent", 0),
            blocked=counts.get("blocked", 0),
            failed=counts.get("failed", 0),
            unknown=counts.get("unknown", 0),
            skipped=counts.get("skipped", 0),
            pending=counts.get("pending", 0),
            sending=counts.get("sending", 0),
        )

    @property
    def remaining(self) -> int:
        return self.pending + self.sending

    @property
    def not_delivered(self) -> int:
        """Tried and not delivered, as far as anyone knows."""
        return self.blocked + self.failed + self.unknown

    @property
    def finished(self) -> bool:
        return self.remaining == 0


def seconds_left(remaining: int, done: int, elapsed: float, per_second: float) -> float:
    """How long the rest will take: at the pace so far, never faster than the rate limit allows.

    `done` and `elapsed` count only this run (a resumed broadcast starts its pace afresh).
    """
    if remaining <= 0:
        return 0.0
    at_limit = remaining / per_second
    if done <= 0 or elapsed <= 0:
        return at_limit
    return max(at_limit, remaining * elapsed / done)


def minutes_left(seconds: float) -> int:
    """Whole minutes to show, rounded up; 0 means "less than a minute"."""
    if seconds < 60:
        return 0
    return int(-(-seconds // 60))
