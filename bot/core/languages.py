"""The three languages people read, and which one a person gets. Plain Python: the business file,
the rules and the i18n middleware all ask it."""

from __future__ import annotations

LANGUAGES = ("ru", "pl", "en")


def pick_language(chosen: str | None, telegram_language: str | None, default: str) -> str:
    """The stored choice, else Telegram's language (`pl`, `ru-RU`…), else the business default."""
    if chosen in LANGUAGES:
        return chosen
    if telegram_language:
        base = telegram_language.split("-")[0].lower()
        if base in LANGUAGES:
            return base
    return default
