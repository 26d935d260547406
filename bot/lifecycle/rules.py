"""The rules of a customer's life in the programme, as plain functions: birthdays, expiring
points (earnings as lots, spent oldest first), referral codes. No aiogram, no database."""

from __future__ import annotations

import calendar
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

EXPIRY = "expiry"  # the ledger's kind of an expiry (storage.models.EntryKind.EXPIRY)


REFERRAL_PREFIX = "ref_"
REFERRAL_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read aloud or typed safely
REFERRAL_LENGTH = 8

# --- birthdays ---------------------------------------------------------------------------------


class BirthdayError(ValueError):
    """The text is not a day and a month."""


_BIRTHDAY = re.compile(r"^\s*([0-9]{1,2})\s*[./\-\s]\s*([0-9]{1,2})\s*[./\-]?\s*$")


def parse_birthday(text: str) -> tuple[int, int]:
    """`15.03`, `15/3`, `5-11`, `15 03` → (day, month); 29.02 is a real birthday."""
    match = _BIRTHDAY.match(text)
    if match is None:
        raise BirthdayError(text)
    day, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2024, month)[1]:  # 2024: a leap year
        raise BirthdayError(text)
    return day, month


def celebrated_on(day: int, month: int, year: int) -> date:
    """The date of the birthday in `year`; 29 February is kept on the 28th in other years."""
    if (day, month) == (29, 2) and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a year without one
        return day.replace(year=day.year + years, day=28)


def birthday_due(day: int, month: int, today: date, last_greeted: date | None) -> bool:
    """Today is the birthday, and the last greeting (with its bonus) was at least a year ago.

    The year is counted from the last greeting, not from the calendar: moving the birthday from
    30 December to 2 January cannot earn a second bonus three days later.
    """
    if celebrated_on(day, month, today.year) != today:
        return False
    return last_greeted is None or add_years(last_greeted, 1) <= today


# --- expiring points ---------------------------------------------------------------------------


def add_months(moment: datetime, months: int) -> datetime:
    """The same time `months` later; the 31st becomes the month's last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def earning_expires_at(expiry_months: int, points: int, now: datetime) -> datetime | None:
    """When points earned now expire under today's policy (None: never). Stored on the entry, so a
    later change of the policy never touches what was earned before it."""
    if expiry_months <= 0 or points <= 0:
        return None
    return add_months(now, expiry_months)


@dataclass(frozen=True, slots=True)
class Movement:
    """What the lot arithmetic needs from a ledger entry."""

    id: int
    kind: str
    points: int
    expires_at: datetime | None = None
    reverses_id: int | None = None
    lot_id: int | None = None


@dataclass(slots=True)
class Lot:
    """An earning and how much of it is still on the card."""

    entry_id: int
    expires_at: datetime | None
    remaining: int


def open_lots(movements: Iterable[Movement]) -> list[Lot]:
    """The earnings still on the card, oldest first, after every spending took the oldest first.

    An earning is any entry adding points. A spending (a redemption, a forfeit) takes from the
    oldest lots; a reversal of an earning takes that earning back first; an expiry takes exactly
    its own lot. The remaining amounts always add up to the balance.
    """
    lots: list[Lot] = []
    by_id: dict[int, Lot] = {}
    for movement in sorted(movements, key=lambda m: m.id):
        if movement.points > 0:
            lot = Lot(movement.id, movement.expires_at, movement.points)
            lots.append(lot)
            by_id[movement.id] = lot
            continue
        owed = -movement.points
        first = movement.lot_id if movement.kind == EXPIRY else movement.reverses_id
        if first is not None and first in by_id:
            owed = _take(by_id[first], owed)
        for lot in lots:
            if owed == 0:
                break
            owed = _take(lot, owed)
        lots = [lot for lot in lots if lot.remaining > 0]
    return lots


def _take(lot: Lot, owed: int) -> int:
    taken = min(lot.remaining, owed)
    lot.remaining -= taken
    return owed - taken


def expired_lots(lots: list[Lot], now: datetime) -> list[Lot]:
    return [lot for lot in lots if lot.expires_at is not None and lot.expires_at <= now and lot.remaining > 0]


def expiring_between(lots: list[Lot], after: datetime, until: datetime) -> list[Lot]:
    return [lot for lot in lots if lot.expires_at is not None and after < lot.expires_at <= until and lot.remaining > 0]


# --- referrals ---------------------------------------------------------------------------------


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_LENGTH))


def referral_code_from_args(args: str | None) -> str | None:
    """The code in `/start ref_<code>`, if it looks like one."""
    if not args or not args.startswith(REFERRAL_PREFIX):
        return None
    code = args.removeprefix(REFERRAL_PREFIX)
    if len(code) != REFERRAL_LENGTH or any(c not in REFERRAL_ALPHABET for c in code):
        return None
    return code
