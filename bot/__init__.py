"""The front door of a small business on Telegram: wiring, configuration and domain rules."""

from bot.core.lazy_types import defer_schemas

defer_schemas()  # before anything imports aiogram: its types' schemas are built on first use
