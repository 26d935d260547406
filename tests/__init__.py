# Imported before the conftest, so the tests load aiogram as production does (bot/lazy_types.py).
from bot import lazy_types  # noqa: F401
