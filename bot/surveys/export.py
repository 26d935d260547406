"""The survey responses as a CSV file that Excel opens correctly in each language."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from aiogram.utils.i18n import gettext as _
from babel.numbers import format_decimal

from bot.business import Business
from bot.loyalty.rules import format_card_number
from bot.surveys.rules import Category, SurveyKind, Trigger, category, kind_of
from bot.surveys.service import ExportRow

# Excel reads a CSV with the list separator of the reader's locale: a comma in English, a
# semicolon where the comma is the decimal separator (Polish, Russian).
DELIMITERS = {"en": ","}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """Text a customer typed must never run as a spreadsheet formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _kind_name(kind: str | None) -> str:
    names: dict[str, str] = {
        SurveyKind.NPS: _("NPS"),
        SurveyKind.RATING: _("Rating"),
        SurveyKind.CHECK_BACK: _("Did we fix it?"),
    }
    return names.get(kind or "", kind or "")


def _trigger_name(trigger: str) -> str:
    names: dict[str, str] = {
        Trigger.PURCHASE: _("Purchase"),
        Trigger.FEEDBACK: _("/feedback"),
        Trigger.SUPPORT: _("Support conversation"),
        Trigger.ALERT: _("After an alert"),
    }
    return names.get(trigger, trigger)


def _group_name(group: Category | None) -> str:
    if group is None:
        return ""
    return {Category.DETRACTOR: _("Detractor"), Category.PASSIVE: _("Passive"), Category.PROMOTER: _("Promoter")}[group]


def plain_amount(minor: int, business: Business, language: str) -> str:
    """A plain number with the locale's decimal separator, which Excel reads as a number."""
    pattern = "0." + "0" * business.exponent if business.exponent else "0"
    return format_decimal(Decimal(minor).scaleb(-business.exponent), format=pattern, locale=language)


def responses_csv(rows: list[ExportRow], business: Business, language: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=DELIMITERS.get(language, ";"), lineterminator="\r\n")
    writer.writerow(
        [
            _("Survey"),
            _("Kind"),
            _("Trigger"),
            _("Asked at"),
            _("Answered at"),
            _("Score"),
            _("Group"),
            _("Comment"),
            _("Card number"),
            _("Customer"),
            _("Language"),
            _("Purchase, {currency}").format(currency=business.currency),
            _("Cashier"),
        ]
    )
    zone = business.timezone
    for row in rows:
        survey, customer = row.survey, row.customer
        group = ""
        if survey.score is not None and survey.kind in ("nps", "rating"):
            group = _group_name(category(kind_of(survey.kind), survey.score))
        writer.writerow(
            [
                survey.id,
                _kind_name(survey.kind),
                _trigger_name(survey.trigger),
                survey.asked_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if survey.asked_at else "",
                survey.answered_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if survey.answered_at else "",
                "" if survey.score is None else survey.score,
                group,
                _cell(survey.comment),
                format_card_number(customer.card_number or ""),
                _cell(customer.first_name),
                customer.language or customer.telegram_language or "",
                plain_amount(row.purchase.amount or 0, business, language) if row.purchase else "",
                _cell(row.cashier),
            ]
        )
    # The byte order mark tells Excel the file is UTF-8; without it Cyrillic and Polish letters break.
    return buffer.getvalue().encode("utf-8-sig")
