"""Inline keyboards. Button labels are translated when the keyboard is built."""

from __future__ import annotations

from urllib.parse import urlencode

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.core.callbacks import (
    ConsentCB,
    DeleteMeCB,
    ProfileCB,
    UnsubscribeCB,
)
from bot.core.keyboards import Buttons


def unsubscribe() -> InlineKeyboardMarkup:
    """Under every marketing message: one tap withdraws the consent."""
    builder = Buttons()
    builder.button(text=_("🔕 Unsubscribe"), callback_data=UnsubscribeCB())
    return builder.as_markup()


def profile(has_birthday: bool, marketing: bool) -> InlineKeyboardMarkup:
    builder = Buttons()
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
    builder = Buttons()
    builder.button(text=_("✅ Yes, send me offers"), callback_data=ConsentCB(granted=True))
    builder.button(text=_("No, thanks"), callback_data=ConsentCB(granted=False))
    return builder.as_markup()


def invite_share(link: str, text: str) -> InlineKeyboardMarkup:
    """Telegram's own share screen: the member picks the friend's chat."""
    builder = Buttons()
    share = "https://t.me/share/url?" + urlencode({"url": link, "text": text})
    builder.button(text=_("📤 Send to a friend"), url=share)
    return builder.as_markup()


def delete_me() -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("Yes, delete my data"), callback_data=DeleteMeCB(confirm=True))
    builder.button(text=_("No, keep it"), callback_data=DeleteMeCB(confirm=False))
    builder.adjust(1)
    return builder.as_markup()
