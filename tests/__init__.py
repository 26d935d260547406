# Imported before the conftest, so the tests load aiogram as production does (bot/core/lazy_types.py).
from bot.core import lazy_types  # noqa: F401
