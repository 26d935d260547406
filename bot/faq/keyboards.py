"""Inline keyboards. Button labels are translated when the keyboard is built."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.core.callbacks import (
    DraftCB,
    FaqMenuCB,
    FaqRateCB,
    SupportCB,
)
from bot.core.keyboards import Buttons
from bot.faq.rules import Category, Entry


def faq_categories(categories: list[Category], language: str) -> InlineKeyboardMarkup:
    builder = Buttons()
    for category in categories:
        builder.button(
            text=category.names.get(language, category.id), callback_data=FaqMenuCB(action="cat", value=category.id)
        )
    builder.button(text=_("💬 Talk to a person"), callback_data=SupportCB(source="menu"))
    builder.adjust(1)
    return builder.as_markup()


def faq_questions(entries: list[Entry], language: str, query_id: int = 0, back: bool = True) -> InlineKeyboardMarkup:
    builder = Buttons()
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
    builder = Buttons()
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
    builder = Buttons()
    builder.button(text=_("💬 Talk to a person"), callback_data=SupportCB(source="faq", query=query_id))
    builder.button(text=_("❓ Questions & answers"), callback_data=FaqMenuCB(action="cats"))
    builder.adjust(1)
    return builder.as_markup()


def draft_review(draft_id: int) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("✅ Approve"), callback_data=DraftCB(action="approve", draft_id=draft_id))
    builder.button(text=_("🗑 Reject"), callback_data=DraftCB(action="reject", draft_id=draft_id))
    return builder.as_markup()


def draft_categories(draft_id: int, categories: list[Category], language: str) -> InlineKeyboardMarkup:
    builder = Buttons()
    for category in categories:
        builder.button(
            text=category.names.get(language, category.id),
            callback_data=DraftCB(action="put", draft_id=draft_id, category=category.id),
        )
    builder.adjust(1)
    return builder.as_markup()
