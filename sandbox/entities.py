"""Telegram's HTML parse mode for the fake Bot API: the bot's own parser (`bot/entities.py`)."""

from bot.entities import parse_html, utf16_len

__all__ = ["parse_html", "utf16_len"]
