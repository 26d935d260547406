"""The rules of the hand-off to a person, free of Telegram: working hours, when a waiting
customer's request earns a reminder, when a customer's new message reopens a closed request,
and how a customer's topic in the managers' group is titled."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.entities import MAX_TOPIC_NAME, cut_to_length

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FLAGS = {"ru": "🇷🇺", "pl": "🇵🇱", "en": "🇬🇧"}
INTERNAL_PREFIX = "//"  # a manager's message starting with this stays in the group

_SPAN = re.compile(r"^\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*$")


def parse_span(value: str) -> tuple[time, time]:
    """`"09:00-18:00"` → (09:00, 18:00); `24:00` may close a day. Raises ValueError."""
    found = _SPAN.match(value)
    if not found:
        raise ValueError(f'expected hours like "09:00-18:00" or "closed", got {value!r}')
    h1, m1, h2, m2 = (int(part) for part in found.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"not a time of day in {value!r}")
    start, end = time(h1, m1), time.max if h2 == 24 else time(h2, m2)
    if start >= end:
        raise ValueError(f"{value!r}: the day must close after it opens (hours past midnight are not supported)")
    return start, end


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """When managers answer, per weekday in the business's time zone. None means always."""

    days: tuple[tuple[time, time] | None, ...] | None  # Monday first; None for a closed day

    @classmethod
    def always(cls) -> WorkingHours:
        return cls(None)

    def is_open(self, moment: datetime, zone: ZoneInfo) -> bool:
        return self.next_opening(moment, zone) is None

    def next_opening(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """None while open; otherwise when the next working period begins (aware, in `zone`)."""
        if self.days is None:
            return None
        local = moment.astimezone(zone)
        for offset in range(8):
            day: date = local.date() + timedelta(days=offset)
            span = self.days[day.weekday()]
            if span is None:
                continue
            opens = datetime.combine(day, span[0], zone)
            closes = datetime.combine(day, span[1], zone)
            if offset == 0 and opens <= local < closes:
                return None
            if local < opens:
                return opens
        return None  # validation guarantees an open day, so this is not reached

    def answer_from(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first moment from `moment` on when someone is at work."""
        return self.next_opening(moment, zone) or moment


def reminder_due(
    waiting_since: datetime | None,
    reminded_at: datetime | None,
    now: datetime,
    hours: WorkingHours,
    zone: ZoneInfo,
    after: timedelta,
) -> bool:
    """A waiting customer earns one reminder once `after` of working time has passed (counted
    from the opening, when they wrote while closed), and only while someone is at work."""
    if waiting_since is None or reminded_at is not None:
        return False
    if not hours.is_open(now, zone):
        return False
    return now >= hours.answer_from(waiting_since, zone) + after


def reopens(closed_at: datetime | None, now: datetime, window: timedelta) -> bool:
    """A customer writing this soon after their request was closed continues it."""
    return closed_at is not None and now - closed_at <= window


def topic_title(
    language: str, first_name: str, last_name: str | None, card_number: str | None, tier: str, assignee: str | None
) -> str:
    """`🇵🇱 Anna N. · #1234-5678 · Silver · → Marta`: who it is, at a glance in the topic list."""
    initial = f" {last_name.strip()[0]}." if last_name and last_name.strip() else ""
    name = (first_name.strip() or "?")[:40] + initial
    parts = [f"{FLAGS.get(language, '🏳')} {name}", f"#{card_number}" if card_number else "", tier]
    if assignee:
        parts.append(f"→ {assignee.split()[0][:24]}")
    title = " · ".join(part for part in parts if part)
    return cut_to_length(title, MAX_TOPIC_NAME)


def is_internal(text: str | None) -> bool:
    return text is not None and text.lstrip().startswith(INTERNAL_PREFIX)
