"""Numbers, money and dates as the current person's locale writes them (Babel), for every feature's
texts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _
from babel.dates import format_date, format_time
from babel.numbers import format_decimal, format_percent

from bot.core.money import AmountError, AmountProblem, format_money


class Place(Protocol):
    """What formatting needs of the business (`bot.business.Business` is one)."""

    @property
    def currency(self) -> str: ...
    @property
    def exponent(self) -> int: ...
    @property
    def timezone(self) -> ZoneInfo: ...
    @property
    def country(self) -> str: ...


def locale() -> str:
    return get_i18n().current_locale


def number(value: int) -> str:
    return format_decimal(value, locale=locale())


def percent(basis_points: int) -> str:
    """`7%`, `7 %`, `7,5%`: a share as the locale writes it."""
    return format_percent(Decimal(basis_points) / 10_000, format="#,##0.##%", locale=locale())


def decimal_tenths(tenths: int) -> str:
    """An average kept in tenths, as the locale writes it: 43 → `4.3`, `4,3`."""
    return format_decimal(Decimal(tenths) / 10, format="#,##0.0", locale=locale())


def money(minor: int, business: Place) -> str:
    return format_money(minor, business.currency, locale(), business.country)


def when(moment: datetime, business: Place) -> str:
    local = moment.astimezone(business.timezone)
    day = format_date(local.date(), format="medium", locale=locale())
    return f"{day}, {format_time(local.time(), format='short', locale=locale())}"


def opening(moment: datetime, now: datetime, business: Place) -> str:
    """When the team is back, as a phrase that follows a verb: "today at 09:00", "tomorrow at
    09:00", "on Monday at 09:00". Each weekday has its own phrase, because languages decline it
    ("в понедельник", "во вторник", "w poniedziałek", "we wtorek")."""
    local, today = moment.astimezone(business.timezone), now.astimezone(business.timezone).date()
    clock = format_time(local.time(), format="short", locale=locale())
    if local.date() == today:
        return _("today at {time}").format(time=clock)
    if (local.date() - today).days == 1:
        return _("tomorrow at {time}").format(time=clock)
    phrases = (
        _("on Monday at {time}"),
        _("on Tuesday at {time}"),
        _("on Wednesday at {time}"),
        _("on Thursday at {time}"),
        _("on Friday at {time}"),
        _("on Saturday at {time}"),
        _("on Sunday at {time}"),
    )
    return phrases[local.weekday()].format(time=clock)


def amount_error(error: AmountError, business: Place) -> str:
    match error.problem:
        case AmountProblem.TOO_MANY_DECIMALS:
            return _("Too many digits after the decimal point. Type the total like {example}.").format(
                example=amount_example(business)
            )
        case AmountProblem.NOT_POSITIVE:
            return _("The amount must be greater than zero.")
    return _("I could not read this amount. Type the receipt total like {example}.").format(
        example=amount_example(business)
    )


def amount_example(business: Place) -> str:
    """`12,50` or `12.50`: a total as a cashier types it in this locale, without a currency sign."""
    value = Decimal(1250).scaleb(-business.exponent)
    return format_decimal(value, format="0." + "0" * business.exponent if business.exponent else "0", locale=locale())
