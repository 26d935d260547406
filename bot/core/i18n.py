"""Localisation: gettext catalogs from `locales/*/LC_MESSAGES/messages.po` and the choice of
each person's language."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from io import BytesIO
from pathlib import Path
from typing import Any

from aiogram.types import Message, TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.core.languages import pick_language

LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"
LANGUAGE_NAMES = {"ru": "Русский", "pl": "Polski", "en": "English"}


def compile_catalogs(path: Path = LOCALES_DIR, domain: str = "messages") -> None:
    """Compile each `.po` into the `.mo` aiogram reads, when the `.mo` is missing or older.

    The `.po` files are the source of truth in git; compiled files are build output.
    """
    for po_path in sorted(path.glob(f"*/LC_MESSAGES/{domain}.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        buffer = BytesIO()
        write_mo(buffer, catalog)
        # A file of this process's own, then an atomic rename: two processes compiling at once
        # (test workers, two instances started together) never read, or move, half a file.
        tmp_path = mo_path.with_suffix(f".mo.{os.getpid()}.tmp")
        tmp_path.write_bytes(buffer.getvalue())
        tmp_path.replace(mo_path)


def create_i18n(default_locale: str) -> I18n:
    compile_catalogs()
    return I18n(path=LOCALES_DIR, default_locale=default_locale, domain="messages")


class CustomerI18nMiddleware(I18nMiddleware):
    """Picks the language from the person's record (put in data by CustomerMiddleware)."""

    def __init__(
        self, i18n: I18n, default_language: str, group_id: int | None = None, group_language: str | None = None
    ) -> None:
        super().__init__(i18n=i18n)
        self.default_language = default_language
        self.group_id = group_id
        self.group_language = group_language or default_language

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        # What the bot posts in the managers' group is read by all of them: one language, the
        # group's. A button's pop-up is read by the one who pressed it: theirs (below).
        chat = data.get("event_chat")
        if self.group_id is not None and isinstance(event, Message) and chat is not None and chat.id == self.group_id:
            return self.group_language
        customer = data.get("customer")
        if customer is not None:
            return pick_language(customer.language, customer.telegram_language, self.default_language)
        user = data.get("event_from_user")
        if user is None:
            return self.default_language
        # Outside a private chat (a manager in the group): their choice made in private, if any.
        loyalty = data.get("loyalty")
        chosen = await loyalty.chosen_language(user.id) if loyalty is not None else None
        return pick_language(chosen, user.language_code, self.default_language)


def in_chat_language(
    i18n: I18n, chat_id: int, group_id: int | None, group_language: str
) -> AbstractContextManager[None]:
    """For a button pressed in the managers' group: what the bot posts there is in the group's
    language (the pop-up, set outside this block, stays in the presser's)."""
    return i18n.use_locale(group_language) if group_id is not None and chat_id == group_id else nullcontext()
