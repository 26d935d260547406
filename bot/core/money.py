"""Money as integers in minor units: parsing what a cashier types, formatting with Babel."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum

from babel.core import Locale, UnknownLocaleError, get_global
from babel.numbers import format_currency, get_currency_precision, get_currency_symbol

_SPACES = re.compile(r"[\s\u00a0\u202f\u2009']")
_DIGITS = re.compile(r"[0-9]+")


def whole_number(text: str) -> int | None:
    """A whole number written in ASCII digits (`42`, `007`); None for anything else.

    Not `str.isdigit()`: it also takes "²", "①" and "٣", and then int() fails on the first two and
    reads the third as 3. People type numbers in ASCII; anything else is wrong input.
    """
    return int(text) if _DIGITS.fullmatch(text) else None


class AmountProblem(StrEnum):
    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    TOO_MANY_DECIMALS = "too_many_decimals"
    NOT_POSITIVE = "not_positive"


class AmountError(ValueError):
    def __init__(self, problem: AmountProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def currency_exponent(currency: str) -> int:
    return get_currency_precision(currency)


def to_minor(value: Decimal, exponent: int) -> int:
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise AmountError(AmountProblem.TOO_MANY_DECIMALS)
    return int(scaled)


def parse_amount(text: str, exponent: int) -> int:
    """Parse `12,50`, `12.50`, `1 234,50` or `1.234,50` into minor units.

    The rightmost separator followed by at most `exponent` digits is the decimal one; the other
    separator may only group thousands. Anything else is refused rather than guessed.
    """
    cleaned = _SPACES.sub("", text or "")
    if not cleaned:
        raise AmountError(AmountProblem.EMPTY)
    if cleaned.startswith("-"):
        raise AmountError(AmountProblem.NOT_POSITIVE)
    if not re.fullmatch(r"[0-9.,]+", cleaned) or not re.search(r"[0-9]", cleaned):
        raise AmountError(AmountProblem.NOT_A_NUMBER)
    last_sep = max(cleaned.rfind(","), cleaned.rfind("."))
    whole, fraction = cleaned, ""
    if last_sep >= 0:
        tail = cleaned[last_sep + 1 :]
        head = cleaned[:last_sep]
        other = "." if cleaned[last_sep] == "," else ","
        only_grouping = cleaned[last_sep] not in head and other not in head and len(tail) == 3
        if only_grouping and exponent < 3 and head and not head.startswith("0"):
            # "1,234" with a currency of 2 decimals: a typo for 1234 or for 1.23? Ask again.
            raise AmountError(AmountProblem.TOO_MANY_DECIMALS)
        if cleaned[last_sep] in head:
            raise AmountError(AmountProblem.NOT_A_NUMBER)
        groups = head.split(other) if other in head else [head]
        if len(groups) > 1 and (not groups[0] or len(groups[0]) > 3 or any(len(g) != 3 for g in groups[1:])):
            raise AmountError(AmountProblem.NOT_A_NUMBER)
        whole, fraction = "".join(groups), tail
        if not whole:
            whole = "0"
        if not fraction:
            raise AmountError(AmountProblem.NOT_A_NUMBER)
    if whole_number(whole) is None or (fraction and whole_number(fraction) is None):
        raise AmountError(AmountProblem.NOT_A_NUMBER)
    if len(fraction) > exponent:
        raise AmountError(AmountProblem.TOO_MANY_DECIMALS)
    minor: int = int(whole) * 10**exponent + int((fraction or "0").ljust(exponent, "0") or "0")
    if minor <= 0:
        raise AmountError(AmountProblem.NOT_POSITIVE)
    return minor


def format_money(minor: int, currency: str, locale: str, country: str | None = None) -> str:
    """The amount as people of the business's `country` (a locale such as `pl_PL`) write money:
    its symbol and where it goes; the reader's `locale` gives the digits' separators. A Warsaw
    café: `12,50 zł` in Polish and Russian, `12.50 zł` in English (never `PLN12.50`). Without a
    country, everything as the reader's locale writes it."""
    value = Decimal(minor).scaleb(-currency_exponent(currency))
    if country is None:
        return format_currency(value, currency, locale=locale)
    place = Locale.parse(country)
    pattern = place.currency_formats["standard"].pattern
    symbol = get_currency_symbol(currency, locale=place).replace("'", "''")
    return format_currency(
        value, currency, format=pattern.replace("¤", f"'{symbol}'"), locale=locale, currency_digits=True
    )


def country_of(timezone: str, language: str) -> str:
    """The business's country as a locale (`Europe/Warsaw` → `pl_PL`), from its time zone; the
    default language's own when the zone names no country (`UTC`)."""
    territory = get_global("zone_territories").get(timezone)
    try:
        return (
            str(Locale.parse(f"und_{territory}"))
            if territory not in (None, "001", "ZZ")
            else str(Locale.parse(language))
        )
    except (UnknownLocaleError, ValueError):  # a territory CLDR knows no language of
        return str(Locale.parse(language))
