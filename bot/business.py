"""The programme's rules, read from the business YAML file and validated key by key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import Locale, UnknownLocaleError
from babel.numbers import list_currencies
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.core.config import load_yaml_model
from bot.core.languages import LANGUAGES
from bot.core.money import AmountError, country_of, currency_exponent, to_minor
from bot.support.rules import DAYS, WorkingHours, parse_span
from bot.surveys.rules import AfterPurchase, QuietHours


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalizedName(_Strict):
    ru: str = Field(min_length=1, max_length=40)
    pl: str = Field(min_length=1, max_length=40)
    en: str = Field(min_length=1, max_length=40)

    def get(self, language: str) -> str:
        return getattr(self, language, self.en)


MAIN_STORE = "main"  # the one store of a business whose file names none; rows from before stores are in it


class StoreRule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")
    name: LocalizedName
    address: str | None = Field(default=None, max_length=200)
    managers_group_id: int | None = None  # this store's own managers' group: its alerts go there too


class TierRule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")
    name: LocalizedName
    min_spend: Decimal = Field(ge=0)
    earn_percent: Decimal = Field(ge=0, le=100, decimal_places=2)


class CardRules(_Strict):
    code_ttl_minutes: int = Field(default=10, ge=1, le=24 * 60)


class TillRules(_Strict):
    # Off: a sale is the amount typed into an open card. On: the cashier is also asked for the
    # receipt's number (one receipt then earns once), for a business whose accounts need it.
    ask_receipt_number: bool = False


class Limits(_Strict):
    max_receipt: Decimal = Field(gt=0)
    max_operations_per_day: int = Field(default=10, ge=1)
    redeem_max_share_percent: int = Field(default=30, ge=1, le=100)
    redeem_confirm_seconds: int = Field(default=60, ge=10, le=600)
    undo_minutes: int = Field(default=10, ge=1, le=24 * 60)
    # What one person can do, so a mistake or an abuse stays small (README: security notes).
    cashier_points_per_day: int = Field(default=2000, ge=1)  # points one cashier may credit in a day
    warn_credits_per_card: int = Field(default=3, ge=2)  # one cashier crediting one card this often a day: owners told
    warn_cards_without_qr: int = Field(default=10, ge=2)  # cards opened by typed number or photo a day: owners told
    messages_per_minute: int = Field(default=60, ge=5, le=600)  # a person's messages and presses; the rest dropped
    questions_per_day: int = Field(default=30, ge=1)  # FAQ questions stored per customer a day
    support_messages_per_day: int = Field(default=100, ge=1)  # messages to the managers per customer a day
    feedback_per_day: int = Field(default=3, ge=1)  # /feedback surveys per customer a day
    owner_letters_per_day: int = Field(default=3, ge=1, le=50)  # letters to the owner per customer in 24 hours


def _quoted_time(value: object) -> object:
    # YAML reads an unquoted 21:00 as the number 1260 (base 60), which would be 00:21.
    if isinstance(value, int):
        raise ValueError('write the time in quotes, like "21:00"')
    return value


class QuietHoursRule(_Strict):
    start: time = time(21, 0)
    end: time = time(9, 0)

    _quoted = field_validator("start", "end", mode="before")(_quoted_time)


class SurveyFile(_Strict):
    after_purchase: AfterPurchase = AfterPurchase.AUTO
    delay_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    recontact_days: int = Field(default=30, ge=0, le=365)
    quiet_hours: QuietHoursRule = QuietHoursRule()
    rating_emoji: list[str] = Field(default=["😠", "🙁", "😐", "🙂", "😄"], min_length=5, max_length=5)
    change_minutes: int = Field(default=5, ge=0, le=24 * 60)
    close_days: int = Field(default=7, ge=1, le=90)
    apology_bonus: int = Field(default=50, ge=0, le=1_000_000)
    check_back_days: int = Field(default=3, ge=0, le=90)

    @field_validator("rating_emoji")
    @classmethod
    def _emoji(cls, value: list[str]) -> list[str]:
        cleaned = [item.strip() for item in value]
        if any(not item or len(item) > 8 for item in cleaned):
            raise ValueError("each of the five rating buttons needs a short label, like 🙂")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("the five rating buttons must differ")
        return cleaned


class LocalizedText(_Strict):
    ru: str = Field(min_length=1, max_length=3500)
    pl: str = Field(min_length=1, max_length=3500)
    en: str = Field(min_length=1, max_length=3500)

    def get(self, language: str) -> str:
        return getattr(self, language, self.en)


class SupportFile(_Strict):
    working_hours: dict[str, str] | None = None  # mon..sun: "09:00-18:00" or "closed"; absent: always
    reminder_minutes: int = Field(default=15, ge=1, le=24 * 60)
    reopen_hours: int = Field(default=24, ge=0, le=30 * 24)
    canned_replies: dict[str, LocalizedText] = Field(default_factory=dict)
    owners_topic_id: int | None = Field(
        default=None, ge=1
    )  # letters to the owner go to this topic of the managers' group

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        unknown = sorted(set(value) - set(DAYS))
        if unknown:
            raise ValueError(f"unknown day {unknown[0]!r}; expected {', '.join(DAYS)}")
        for day, span in value.items():
            if not isinstance(span, str):
                raise ValueError(f'{day}: write the hours in quotes, like "09:00-18:00", or "closed"')
            if span.strip().lower() != "closed":
                parse_span(span)
        if all(value.get(day, "closed").strip().lower() == "closed" for day in DAYS):
            raise ValueError("at least one day must have working hours (or leave working_hours out: always open)")
        return value

    @field_validator("canned_replies")
    @classmethod
    def _keys(cls, value: dict[str, LocalizedText]) -> dict[str, LocalizedText]:
        for key in value:
            if not re.fullmatch(r"[a-z0-9_]{1,24}", key):
                raise ValueError(
                    f"canned reply key {key!r}: use lower-case letters, digits and _ (it is typed after /t)"
                )
        return value


@dataclass(frozen=True, slots=True)
class SupportRules:
    hours: WorkingHours
    reminder: timedelta
    reopen_window: timedelta
    canned: dict[str, LocalizedText]
    owners_topic_id: int | None = None  # letters to the owner: this topic of the managers' group, not private chats

    @classmethod
    def from_file_model(cls, data: SupportFile) -> SupportRules:
        hours = WorkingHours.always()
        if data.working_hours is not None:
            spans = []
            for day in DAYS:
                span = data.working_hours.get(day, "closed").strip()
                spans.append(None if span.lower() == "closed" else parse_span(span))
            hours = WorkingHours(tuple(spans))
        return cls(
            hours=hours,
            reminder=timedelta(minutes=data.reminder_minutes),
            reopen_window=timedelta(hours=data.reopen_hours),
            canned=dict(data.canned_replies),
            owners_topic_id=data.owners_topic_id,
        )


class BirthdayFile(_Strict):
    bonus: int = Field(default=0, ge=0, le=1_000_000)  # 0: a greeting without points
    send_at: time = time(10, 0)  # business time zone

    _quoted = field_validator("send_at", mode="before")(_quoted_time)


class ReferralFile(_Strict):
    bonus: int = Field(default=0, ge=0, le=1_000_000)  # to each of the two; 0 turns referrals off


class PointsExpiryFile(_Strict):
    months: int = Field(default=0, ge=0, le=120)  # 0: points never expire
    remind_days: int = Field(default=14, ge=0, le=90)  # 0: no reminder


class WinBackFile(_Strict):
    days: int = Field(default=0, ge=0, le=3650)  # 0: no "we miss you"


class RetentionFile(_Strict):
    support_messages_months: int = Field(default=24, ge=0, le=240)  # 0: kept until the customer erases them


@dataclass(frozen=True, slots=True)
class LifecycleRules:
    birthday_bonus: int
    birthday_at: time
    referral_bonus: int
    expiry_months: int  # 0: off
    expiry_remind: timedelta
    win_back: timedelta | None
    retention_months: int  # 0: off


@dataclass(frozen=True, slots=True)
class SurveyRules:
    after_purchase: AfterPurchase
    delay: timedelta
    recontact: timedelta
    quiet_hours: QuietHours
    rating_emoji: tuple[str, ...]  # the buttons for ratings 1..5, in that order
    change_window: timedelta
    lifetime: timedelta
    apology_bonus: int
    check_back_delay: timedelta

    @classmethod
    def from_file_model(cls, data: SurveyFile) -> SurveyRules:
        return cls(
            after_purchase=data.after_purchase,
            delay=timedelta(minutes=data.delay_minutes),
            recontact=timedelta(days=data.recontact_days),
            quiet_hours=QuietHours(data.quiet_hours.start, data.quiet_hours.end),
            rating_emoji=tuple(data.rating_emoji),
            change_window=timedelta(minutes=data.change_minutes),
            lifetime=timedelta(days=data.close_days),
            apology_bonus=data.apology_bonus,
            check_back_delay=timedelta(days=data.check_back_days),
        )


class BusinessFile(_Strict):
    name: str = Field(min_length=1, max_length=64)
    currency: str
    timezone: str
    country: str | None = None  # a locale (pl_PL); by default the time zone's country
    default_language: str = "en"
    managers_language: str | None = None
    point_value: Decimal = Field(default=Decimal("1"), gt=0)
    welcome_bonus: int = Field(default=0, ge=0, le=1_000_000)
    card: CardRules = CardRules()
    till: TillRules = TillRules()
    tiers: list[TierRule] = Field(min_length=1)
    stores: list[StoreRule] = Field(default_factory=list, max_length=50)
    limits: Limits
    surveys: SurveyFile = SurveyFile()
    support: SupportFile = SupportFile()
    birthday: BirthdayFile = BirthdayFile()
    referral: ReferralFile = ReferralFile()
    points_expiry: PointsExpiryFile = PointsExpiryFile()
    win_back: WinBackFile = WinBackFile()
    retention: RetentionFile = RetentionFile()

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in list_currencies():
            raise ValueError(f"unknown ISO 4217 currency code {value!r}; expected one like PLN")
        return code

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected one like Europe/Warsaw") from None
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            place = Locale.parse(value)
        except (UnknownLocaleError, ValueError):
            raise ValueError(f"unknown locale {value!r}; expected one like pl_PL") from None
        if place.territory is None:
            raise ValueError(f"{value!r} names no country; expected a language and a country, like pl_PL")
        return str(place)

    @field_validator("default_language", "managers_language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and value not in LANGUAGES:
            raise ValueError(f"expected one of {', '.join(LANGUAGES)}")
        return value

    @model_validator(mode="after")
    def _tiers_ordered(self) -> BusinessFile:
        if self.tiers[0].min_spend != 0:
            raise ValueError("tiers: the first tier must start at min_spend 0")
        spends = [tier.min_spend for tier in self.tiers]
        if spends != sorted(spends) or len(set(spends)) != len(spends):
            raise ValueError("tiers: min_spend must grow strictly from one tier to the next")
        ids = [tier.id for tier in self.tiers]
        if len(set(ids)) != len(ids):
            raise ValueError("tiers: every tier needs its own id")
        store_ids = [store.id for store in self.stores]
        if len(set(store_ids)) != len(store_ids):
            raise ValueError("stores: every store needs its own id")
        exponent = currency_exponent(self.currency)
        for where, value in [("point_value", self.point_value), ("limits.max_receipt", self.limits.max_receipt)] + [
            (f"tiers.{i}.min_spend", tier.min_spend) for i, tier in enumerate(self.tiers)
        ]:
            try:
                to_minor(value, exponent)
            except AmountError:
                raise ValueError(f"{where}: {self.currency} has {exponent} decimal places") from None
        return self


@dataclass(frozen=True, slots=True)
class Tier:
    id: str
    name: LocalizedName
    min_spend: int  # minor units of lifetime spend
    earn_basis_points: int  # 5% = 500


@dataclass(frozen=True, slots=True)
class Guards:
    """Per-person limits against mistakes and abuse (the business file's `limits`)."""

    cashier_points_per_day: int = 2000
    warn_credits_per_card: int = 3
    warn_cards_without_qr: int = 10
    messages_per_minute: int = 60
    questions_per_day: int = 30
    support_messages_per_day: int = 100
    feedback_per_day: int = 3
    owner_letters_per_day: int = 3


@dataclass(frozen=True, slots=True)
class Store:
    id: str
    name: LocalizedName
    address: str | None = None
    managers_group_id: int | None = None


@dataclass(frozen=True, slots=True)
class Business:
    """The validated programme, with every amount in minor units."""

    name: str
    currency: str
    exponent: int
    timezone: ZoneInfo
    country: str  # a locale such as pl_PL: how money is written, in every language
    default_language: str
    managers_language: str  # alerts posted to the managers' group
    point_value: int
    welcome_bonus: int
    code_ttl_seconds: int
    ask_receipt_number: bool
    tiers: tuple[Tier, ...]
    max_receipt: int
    max_operations_per_day: int
    redeem_max_share_percent: int
    redeem_confirm_seconds: int
    undo_seconds: int
    guards: Guards
    surveys: SurveyRules
    support: SupportRules
    lifecycle: LifecycleRules
    stores: tuple[Store, ...] = ()  # at least one: a file naming none has the implicit MAIN_STORE

    @property
    def chain(self) -> bool:
        """More than one store: screens name the store and ask which one."""
        return len(self.stores) > 1

    @property
    def first_store(self) -> Store:
        return (
            self.stores[0]
            if self.stores
            else Store(MAIN_STORE, LocalizedName(ru=self.name, pl=self.name, en=self.name))
        )

    def store(self, store_id: str | None) -> Store:
        """The store of that id; rows from before the file named stores (`main`), and any id the
        file no longer names, belong to the first store."""
        for store in self.stores:
            if store.id == store_id:
                return store
        return self.first_store

    def holds(self, store_id: str, row_store: str | None) -> bool:
        """Whether a row recorded in `row_store` is one of that store's ("" : every store)."""
        return not store_id or self.store(row_store).id == store_id

    @property
    def store_ids(self) -> tuple[str, ...]:
        return tuple(store.id for store in self.stores)

    def offers(self) -> frozenset[str]:
        """What of the programme this business offers, by the names FAQ entries need
        (`bot.faq.rules.FEATURES`): an answer about a bonus that is off is never shown."""
        offered = {"marketing"}  # news and offers with consent, and unsubscribing, always exist
        if self.welcome_bonus > 0:
            offered.add("welcome_bonus")
        if self.lifecycle.birthday_bonus > 0:
            offered.add("birthday_bonus")
        if self.lifecycle.referral_bonus > 0:
            offered.add("referral")
        offered.add("points_expire" if self.lifecycle.expiry_months > 0 else "points_never_expire")
        return frozenset(offered)

    @classmethod
    def from_file_model(cls, data: BusinessFile) -> Business:
        exponent = currency_exponent(data.currency)
        return cls(
            name=data.name,
            currency=data.currency,
            exponent=exponent,
            timezone=ZoneInfo(data.timezone),
            country=data.country or country_of(data.timezone, data.default_language),
            default_language=data.default_language,
            managers_language=data.managers_language or data.default_language,
            point_value=to_minor(data.point_value, exponent),
            welcome_bonus=data.welcome_bonus,
            code_ttl_seconds=data.card.code_ttl_minutes * 60,
            ask_receipt_number=data.till.ask_receipt_number,
            tiers=tuple(
                Tier(
                    id=t.id,
                    name=t.name,
                    min_spend=to_minor(t.min_spend, exponent),
                    earn_basis_points=int(t.earn_percent * 100),
                )
                for t in data.tiers
            ),
            max_receipt=to_minor(data.limits.max_receipt, exponent),
            max_operations_per_day=data.limits.max_operations_per_day,
            redeem_max_share_percent=data.limits.redeem_max_share_percent,
            redeem_confirm_seconds=data.limits.redeem_confirm_seconds,
            undo_seconds=data.limits.undo_minutes * 60,
            guards=Guards(
                cashier_points_per_day=data.limits.cashier_points_per_day,
                warn_credits_per_card=data.limits.warn_credits_per_card,
                warn_cards_without_qr=data.limits.warn_cards_without_qr,
                messages_per_minute=data.limits.messages_per_minute,
                questions_per_day=data.limits.questions_per_day,
                support_messages_per_day=data.limits.support_messages_per_day,
                feedback_per_day=data.limits.feedback_per_day,
                owner_letters_per_day=data.limits.owner_letters_per_day,
            ),
            surveys=SurveyRules.from_file_model(data.surveys),
            support=SupportRules.from_file_model(data.support),
            stores=tuple(Store(s.id, s.name, s.address, s.managers_group_id) for s in data.stores)
            or (Store(MAIN_STORE, LocalizedName(ru=data.name[:40], pl=data.name[:40], en=data.name[:40])),),
            lifecycle=LifecycleRules(
                birthday_bonus=data.birthday.bonus,
                birthday_at=data.birthday.send_at,
                referral_bonus=data.referral.bonus,
                expiry_months=data.points_expiry.months,
                expiry_remind=timedelta(days=data.points_expiry.remind_days),
                win_back=timedelta(days=data.win_back.days) if data.win_back.days else None,
                retention_months=data.retention.support_messages_months,
            ),
        )


def load_business(path: Path) -> Business:
    """Read and validate the business file; every problem names its key."""
    return Business.from_file_model(load_yaml_model(path, "BUSINESS_FILE", BusinessFile, "a mapping of keys to values"))
