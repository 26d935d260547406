"""Inline keyboards. Button labels are translated when the keyboard is built."""

from __future__ import annotations

from urllib.parse import urlencode

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import (
    AlertCB,
    CardCB,
    CommentCB,
    ConsentCB,
    ContactCB,
    DeleteMeCB,
    DraftCB,
    FaqMenuCB,
    FaqRateCB,
    FlowCB,
    JoinCB,
    LanguageCB,
    MenuCB,
    OperationCB,
    ProfileCB,
    RedeemAnswerCB,
    ScanCB,
    StaffCB,
    StatsCB,
    SupportCB,
    SurveyCB,
    TicketCB,
    UndoCB,
    UnsubscribeCB,
)
from bot.faq import Category, Entry
from bot.i18n import LANGUAGE_NAMES
from bot.surveys import SurveyKind
from storage.models import Alert, AlertStatus, Staff, Ticket, TicketStatus

STATS_PERIODS = (7, 30, 90)


def join() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Join the loyalty programme"), callback_data=JoinCB())
    return builder.as_markup()


def languages(current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for code, name in LANGUAGE_NAMES.items():
        builder.button(text=("✓ " if code == current else "") + name, callback_data=LanguageCB(code=code))
    builder.adjust(3)
    return builder.as_markup()


def card(invite: bool = False) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🔄 Refresh code"), callback_data=CardCB(action="refresh"))
    if invite:
        builder.button(text=_("🎁 Bring a friend"), callback_data=CardCB(action="invite"))
    return builder.as_markup()


def scanned_card(customer_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🧾 Purchase"), callback_data=ScanCB(action="buy", customer_id=customer_id))
    builder.button(text=_("🎁 Redeem"), callback_data=ScanCB(action="redeem", customer_id=customer_id))
    builder.button(text=_("Cancel"), callback_data=ScanCB(action="cancel", customer_id=customer_id))
    builder.adjust(2, 1)
    return builder.as_markup()


def flow_cancel() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Cancel"), callback_data=FlowCB(action="cancel"))
    return builder.as_markup()


def receipt_prompt() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Skip"), callback_data=FlowCB(action="skip_receipt"))
    builder.button(text=_("Cancel"), callback_data=FlowCB(action="cancel"))
    return builder.as_markup()


def points_prompt(max_points: int, label: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if max_points > 0:
        builder.button(text=_("Max: {points}").format(points=label), callback_data=FlowCB(action="max"))
    builder.button(text=_("Cancel"), callback_data=FlowCB(action="cancel"))
    builder.adjust(1)
    return builder.as_markup()


def confirm_operation(op_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Confirm"), callback_data=OperationCB(action="confirm", op_id=op_id))
    builder.button(text=_("Cancel"), callback_data=OperationCB(action="cancel", op_id=op_id))
    return builder.as_markup()


def waiting_customer(op_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Cancel"), callback_data=OperationCB(action="cancel", op_id=op_id))
    return builder.as_markup()


def redeem_answer(op_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Yes, redeem"), callback_data=RedeemAnswerCB(op_id=op_id, accept=True))
    builder.button(text=_("❌ No"), callback_data=RedeemAnswerCB(op_id=op_id, accept=False))
    return builder.as_markup()


def undo(entry_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("↩️ Undo"), callback_data=UndoCB(entry_id=entry_id))
    return builder.as_markup()


def staff_list(staff: list[Staff]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for person in staff:
        builder.button(
            text=_("Revoke {name}").format(name=person.name),
            callback_data=StaffCB(action="revoke", staff_id=person.id or 0),
        )
    builder.adjust(1)
    return builder.as_markup()


def survey(kind: SurveyKind, survey_id: int, emoji: tuple[str, ...], chosen: int | None = None) -> InlineKeyboardMarkup:
    """NPS 0–10 in two rows, five emoticons for 1–5, or Yes/No; the chosen answer is ticked."""
    builder = InlineKeyboardBuilder()
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
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Skip"), callback_data=CommentCB(action="skip", survey_id=survey_id))
    return builder.as_markup()


def alert_actions(alert: Alert, apology_points: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    assert alert.id is not None
    builder.button(text=_("💬 Contact customer"), callback_data=AlertCB(action="contact", alert_id=alert.id))
    if apology_points > 0 and alert.bonus_entry_id is None:
        builder.button(text=_("🎁 Apology bonus"), callback_data=AlertCB(action="bonus", alert_id=alert.id))
    if alert.status != AlertStatus.RESOLVED:
        builder.button(text=_("✅ Resolved"), callback_data=AlertCB(action="resolve", alert_id=alert.id))
    builder.adjust(1)
    return builder.as_markup()


def contact_cancel() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Cancel"), callback_data=ContactCB(action="cancel"))
    return builder.as_markup()


def stats(days: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for period in STATS_PERIODS:
        label = ngettext("{days} day", "{days} days", period).format(days=period)
        builder.button(text=("✓ " if period == days else "") + label, callback_data=StatsCB(action="show", days=period))
    builder.button(text=_("📈 Chart"), callback_data=StatsCB(action="chart", days=days))
    builder.button(text=_("📄 CSV"), callback_data=StatsCB(action="csv", days=days))
    builder.adjust(len(STATS_PERIODS), 2)
    return builder.as_markup()


# --- the customer's menu, the FAQ and support ----------------------------------------------------


def main_menu() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("💳 My card"), callback_data=MenuCB(action="card"))
    builder.button(text=_("❓ Questions & answers"), callback_data=MenuCB(action="faq"))
    builder.button(text=_("💬 Talk to a person"), callback_data=MenuCB(action="support"))
    builder.adjust(2, 1)
    return builder.as_markup()


def faq_categories(categories: list[Category], language: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for category in categories:
        builder.button(
            text=category.names.get(language, category.id), callback_data=FaqMenuCB(action="cat", value=category.id)
        )
    builder.button(text=_("💬 Talk to a person"), callback_data=SupportCB(source="menu"))
    builder.adjust(1)
    return builder.as_markup()


def faq_questions(entries: list[Entry], language: str, query_id: int = 0, back: bool = True) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for entry in entries:
        text = entry.text(language)
        if text is not None:
            builder.button(text=text.question, callback_data=FaqMenuCB(action="entry", value=entry.id, query=query_id))
    if back:
        builder.button(text=_("⬅️ All topics"), callback_data=FaqMenuCB(action="cats"))
    else:
        builder.button(text=_("None of these: talk to a person"), callback_data=SupportCB(source="faq", query=query_id))
    builder.adjust(1)
    return builder.as_markup()


def faq_answer(query_id: int, rated: bool | None = None) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=("✓ " if rated is True else "") + _("👍 Helped"), callback_data=FaqRateCB(query=query_id, helpful=True)
    )
    builder.button(
        text=("✓ " if rated is False else "") + _("👎 Talk to a person"),
        callback_data=FaqRateCB(query=query_id, helpful=False),
    )
    builder.button(text=_("⬅️ All topics"), callback_data=FaqMenuCB(action="cats"))
    builder.adjust(2, 1)
    return builder.as_markup()


def hand_off(query_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("💬 Talk to a person"), callback_data=SupportCB(source="faq", query=query_id))
    builder.button(text=_("❓ Questions & answers"), callback_data=FaqMenuCB(action="cats"))
    builder.adjust(1)
    return builder.as_markup()


def ticket_actions(ticket: Ticket | None) -> InlineKeyboardMarkup | None:
    """Take and Close under a request's header and its reminders, while it is open."""
    if ticket is None or ticket.id is None or ticket.status != TicketStatus.OPEN:
        return None
    builder = InlineKeyboardBuilder()
    if ticket.assignee_id is None:
        builder.button(text=_("🙋 Take"), callback_data=TicketCB(action="take", ticket_id=ticket.id))
    builder.button(text=_("✅ Close"), callback_data=TicketCB(action="close", ticket_id=ticket.id))
    return builder.as_markup()


def assign_to(ticket_id: int, managers: list[tuple[int, str]]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for manager_id, name in managers:
        builder.button(text=name, callback_data=TicketCB(action="assign", ticket_id=ticket_id, to=manager_id))
    builder.adjust(2)
    return builder.as_markup()


def draft_review(draft_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Approve"), callback_data=DraftCB(action="approve", draft_id=draft_id))
    builder.button(text=_("🗑 Reject"), callback_data=DraftCB(action="reject", draft_id=draft_id))
    return builder.as_markup()


def draft_categories(draft_id: int, categories: list[Category], language: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for category in categories:
        builder.button(
            text=category.names.get(language, category.id),
            callback_data=DraftCB(action="put", draft_id=draft_id, category=category.id),
        )
    builder.adjust(1)
    return builder.as_markup()


def unsubscribe() -> InlineKeyboardMarkup:
    """Under every marketing message: one tap withdraws the consent."""
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🔕 Unsubscribe"), callback_data=UnsubscribeCB())
    return builder.as_markup()


def profile(has_birthday: bool, marketing: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    label = _("🎂 Change birthday") if has_birthday else _("🎂 Add birthday")
    builder.button(text=label, callback_data=ProfileCB(action="birthday"))
    if has_birthday:
        builder.button(text=_("Remove birthday"), callback_data=ProfileCB(action="clear_birthday"))
    if marketing:
        builder.button(text=_("🔕 Stop offers and news"), callback_data=ProfileCB(action="marketing_off"))
    else:
        builder.button(text=_("🔔 Get offers and news"), callback_data=ProfileCB(action="marketing_on"))
    builder.button(text=_("🌐 Language"), callback_data=ProfileCB(action="language"))
    builder.adjust(2 if has_birthday else 1, 1, 1)
    return builder.as_markup()


def consent() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Yes, send me offers"), callback_data=ConsentCB(granted=True))
    builder.button(text=_("No, thanks"), callback_data=ConsentCB(granted=False))
    return builder.as_markup()


def invite_share(link: str, text: str) -> InlineKeyboardMarkup:
    """Telegram's own share screen: the member picks the friend's chat."""
    builder = InlineKeyboardBuilder()
    share = "https://t.me/share/url?" + urlencode({"url": link, "text": text})
    builder.button(text=_("📤 Send to a friend"), url=share)
    return builder.as_markup()


def delete_me() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Yes, delete my data"), callback_data=DeleteMeCB(confirm=True))
    builder.button(text=_("No, keep it"), callback_data=DeleteMeCB(confirm=False))
    builder.adjust(1)
    return builder.as_markup()
