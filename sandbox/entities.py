"""Telegram's HTML parse mode for the fake Bot API: the bot's own parser (`bot/core/entities.py`)."""

from bot.core.entities import MAX_CAPTION, MAX_TEXT, parse_html, telegram_length

__all__ = ["MAX_CAPTION", "MAX_TEXT", "parse_html", "telegram_length"]
