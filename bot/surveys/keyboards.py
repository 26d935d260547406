"""Inline keyboards. Button labels are translated when the keyboard is built."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.business import Store
from bot.core.callbacks import (
    AlertCB,
    CommentCB,
    ContactCB,
    MenuCB,
    StatsCB,
    SurveyCB,
)
from bot.core.keyboards import Buttons
from bot.loyalty.keyboards import figures
from bot.surveys.rules import SurveyKind
from storage.models import Alert, AlertStatus


def survey(kind: SurveyKind, survey_id: int, emoji: tuple[str, ...], chosen: int | None = None) -> InlineKeyboardMarkup:
    """NPS 0–10 in two rows, five emoticons for 1–5, or Yes/No; the chosen answer is ticked."""
    builder = Buttons()
    sizes: tuple[int, ...]
    if kind == SurveyKind.NPS:
        labels = [(score, str(score)) for score in range(11)]
        sizes = (6, 5)
    elif kind == SurveyKind.RATING:
        labels = [(score, emoji[score - 1]) for score in range(1, 6)]  # the value, never the position
        sizes = (5,)
    else:
        labels = [(1, _("👍 Yes")), (0, _("👎 No"))]
        sizes = (2,)
    for score, label in labels:
        builder.button(
            text=("✓" if score == chosen else "") + label, callback_data=SurveyCB(survey_id=survey_id, score=score)
        )
    builder.adjust(*sizes)
    return builder.as_markup()


def skip_comment(survey_id: int) -> InlineKeyboardMarkup:
    """Skip the follow-up question, or write to the owner instead (past the staff)."""
    builder = Buttons()
    builder.button(text=_("Skip"), callback_data=CommentCB(action="skip", survey_id=survey_id))
    builder.button(text=_("✉️ Write to the owner"), callback_data=MenuCB(action="owner"))
    builder.adjust(1)
    return builder.as_markup()


def alert_actions(alert: Alert, apology_points: int) -> InlineKeyboardMarkup:
    builder = Buttons()
    assert alert.id is not None
    builder.button(text=_("💬 Contact customer"), callback_data=AlertCB(action="contact", alert_id=alert.id))
    if apology_points > 0 and alert.bonus_entry_id is None:
        builder.button(text=_("🎁 Apology bonus"), callback_data=AlertCB(action="bonus", alert_id=alert.id))
    if alert.status != AlertStatus.RESOLVED:
        builder.button(text=_("✅ Resolved"), callback_data=AlertCB(action="resolve", alert_id=alert.id))
    builder.adjust(1)
    return builder.as_markup()


def contact_cancel() -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("Cancel"), callback_data=ContactCB(action="cancel"))
    return builder.as_markup()


def stats(days: int, stores: tuple[Store, ...] = (), store: str = "") -> InlineKeyboardMarkup:
    """/stats's buttons; 📈 is the weekly chart."""
    return figures(
        lambda action, d, s: StatsCB(action=action, days=d, store=s), days, STATS_PERIODS, stores, store, _("📈 Chart")
    )


STATS_PERIODS = (7, 30, 90)
