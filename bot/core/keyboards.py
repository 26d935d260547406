"""Inline keyboards. Button labels are translated when the keyboard is built."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.core.callbacks import (
    LanguageCB,
    MenuCB,
)
from bot.core.i18n import LANGUAGE_NAMES


def languages(current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for code, name in LANGUAGE_NAMES.items():
        builder.button(text=("✓ " if code == current else "") + name, callback_data=LanguageCB(code=code))
    builder.adjust(3)
    return builder.as_markup()


def main_menu() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("💳 My card"), callback_data=MenuCB(action="card"))
    builder.button(text=_("❓ Questions & answers"), callback_data=MenuCB(action="faq"))
    builder.button(text=_("💬 Talk to a person"), callback_data=MenuCB(action="support"))
    builder.button(text=_("✉️ Write to the owner"), callback_data=MenuCB(action="owner"))
    builder.adjust(2, 2)
    return builder.as_markup()
