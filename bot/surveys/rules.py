"""Survey rules with no bot and no database in them: which survey to ask, when it may be asked,
what an answer means, and the NPS and rating maths behind the reports."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

NPS_SCORES = range(0, 11)
RATING_SCORES = range(1, 6)
Z_95 = 1.96  # the normal quantile for a 95% confidence interval


class SurveyKind(StrEnum):
    NPS = "nps"  # 0–10: how likely to recommend
    RATING = "rating"  # 1–5 emoticons (CSAT)
    CHECK_BACK = "check_back"  # "Did we fix it?" after a resolved alert: 1 yes, 0 no


def kind_of(value: str | None) -> SurveyKind:
    """The kind of a survey that was asked (one still planned may have none yet)."""
    if value is None:
        raise ValueError("this survey was never asked, so it has no kind yet")
    return SurveyKind(value)


class Trigger(StrEnum):
    PURCHASE = "purchase"  # a confirmed purchase, some time later
    FEEDBACK = "feedback"  # the customer's own /feedback
    SUPPORT = "support"  # a closed support conversation
    ALERT = "alert"  # the check-back after a resolved alert


class AfterPurchase(StrEnum):
    OFF = "off"
    NPS = "nps"
    RATING = "rating"
    AUTO = "auto"  # NPS unless one was answered within the recontact period; a rating then


class Category(StrEnum):
    DETRACTOR = "detractor"
    PASSIVE = "passive"
    PROMOTER = "promoter"


def scores_of(kind: SurveyKind) -> range:
    return {SurveyKind.NPS: NPS_SCORES, SurveyKind.RATING: RATING_SCORES, SurveyKind.CHECK_BACK: range(0, 2)}[kind]


def nps_category(score: int) -> Category:
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is 0–10, not {score}")
    if score >= 9:
        return Category.PROMOTER
    if score >= 7:
        return Category.PASSIVE
    return Category.DETRACTOR


def rating_category(score: int) -> Category:
    """1–2 unhappy, 3–4 could be better, 5 delighted: picks the follow-up question."""
    if not 1 <= score <= 5:
        raise ValueError(f"a rating is 1–5, not {score}")
    if score == 5:
        return Category.PROMOTER
    if score >= 3:
        return Category.PASSIVE
    return Category.DETRACTOR


def category(kind: SurveyKind, score: int) -> Category | None:
    if kind == SurveyKind.NPS:
        return nps_category(score)
    if kind == SurveyKind.RATING:
        return rating_category(score)
    return None


def needs_alert(kind: SurveyKind, score: int) -> bool:
    """An answer a manager must act on: an NPS detractor (0–6) or a rating of 1–2."""
    return kind in (SurveyKind.NPS, SurveyKind.RATING) and category(kind, score) == Category.DETRACTOR


def round_half_away(value: float) -> int:
    """Round 12.5 to 13 and -12.5 to -13 (Python's round() would give 12 and -12)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


@dataclass(frozen=True, slots=True)
class NpsSummary:
    promoters: int
    passives: int
    detractors: int

    @property
    def total(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def score(self) -> int | None:
        """% promoters − % detractors, rounded half away from zero; None with no answers."""
        if self.total == 0:
            return None
        return round_half_away(100 * (self.promoters - self.detractors) / self.total)

    @property
    def margin(self) -> int | None:
        """The 95% margin of error in NPS points (±), rounded up; None with fewer than two answers.

        Each answer is +1, 0 or −1; the NPS is their mean times 100, so its standard error is
        sqrt((p + d − (p − d)²) / n) · 100 with p and d the promoter and detractor shares.
        """
        n = self.total
        if n < 2:
            return None
        p, d = self.promoters / n, self.detractors / n
        variance = p + d - (p - d) ** 2
        return math.ceil(round(Z_95 * math.sqrt(max(variance, 0.0) / n) * 100, 6))


def nps_summary(scores: Iterable[int]) -> NpsSummary:
    return nps_of_counts(Counter(scores))


@dataclass(frozen=True, slots=True)
class RatingSummary:
    count: int
    satisfied: int  # ratings of 4 or 5
    total_score: int

    @property
    def csat(self) -> int | None:
        """% of ratings that are 4 or 5, rounded half away from zero."""
        return None if self.count == 0 else round_half_away(100 * self.satisfied / self.count)

    @property
    def average_tenths(self) -> int | None:
        """The average rating in tenths (4.25 → 43), so it is shown without float noise."""
        return None if self.count == 0 else round_half_away(10 * self.total_score / self.count)


def nps_of_counts(counts: Mapping[int, int]) -> NpsSummary:
    """The summary of answers counted by score (as a report's SQL aggregation gives them)."""
    found = {Category.PROMOTER: 0, Category.PASSIVE: 0, Category.DETRACTOR: 0}
    for score, count in counts.items():
        found[nps_category(score)] += count
    return NpsSummary(found[Category.PROMOTER], found[Category.PASSIVE], found[Category.DETRACTOR])


def rating_of_counts(counts: Mapping[int, int]) -> RatingSummary:
    for score in counts:
        rating_category(score)  # validates
    return RatingSummary(
        sum(counts.values()), sum(n for s, n in counts.items() if s >= 4), sum(s * n for s, n in counts.items())
    )


def rating_summary(scores: Iterable[int]) -> RatingSummary:
    return rating_of_counts(Counter(scores))


# --- when a survey may be sent --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours when nobody is written to; `start > end` spans midnight (21:00–09:00)."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """`moment` itself when it is outside quiet hours, else the end of this quiet period."""
        local = moment.astimezone(zone)
        if not self.contains(local.time()):
            return moment
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)  # evening: quiet until tomorrow morning
        # Built in local wall time, so a DST change in the night still gives the morning hour.
        morning = datetime.combine(day, self.end, tzinfo=zone)
        return morning.astimezone(moment.tzinfo)


def asked_recently(last_asked: datetime | None, now: datetime, recontact: timedelta) -> bool:
    """Whether the customer was asked a survey within the recontact period."""
    return last_asked is not None and now - last_asked < recontact


def choose_after_purchase(rule: AfterPurchase, nps_answered_recently: bool) -> SurveyKind | None:
    if rule == AfterPurchase.OFF:
        return None
    if rule == AfterPurchase.NPS:
        return SurveyKind.NPS
    if rule == AfterPurchase.RATING:
        return SurveyKind.RATING
    return SurveyKind.RATING if nps_answered_recently else SurveyKind.NPS


class AnswerWindow(StrEnum):
    OPEN = "open"  # first answer, or a change within the change window
    LOCKED = "locked"  # answered, and the change window has passed
    CLOSED = "closed"  # the survey is too old to answer


def answer_window(
    asked_at: datetime,
    answered_at: datetime | None,
    now: datetime,
    change_window: timedelta,
    lifetime: timedelta,
) -> AnswerWindow:
    if now - asked_at > lifetime:
        return AnswerWindow.CLOSED
    if answered_at is not None and now - answered_at > change_window:
        return AnswerWindow.LOCKED
    return AnswerWindow.OPEN
