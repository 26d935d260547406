"""Build aiogram's Telegram types on first use instead of all at import.

aiogram declares its ~400 types with pydantic's `defer_build`, then calls `model_rebuild` on every
one of them at the end of `aiogram.types` (aiogram#1513, open). Each schema inlines the types it
nests, so that import alone costs about 140 MB of resident memory and 2 s here, while the bot uses a
few dozen of the types. `defer_schemas()` lets the import run with those rebuilds skipped, then
puts the names aiogram passed to them into the type modules (which import them only for type
checkers), so that pydantic can build each type the first time it validates or serialises one,
alone or nested in a method or a response. Validation itself is unchanged. Methods whose fields
nest types are then built on first use too (their build at class creation finds the types
unbuilt and pydantic defers it).

It must run before anything imports aiogram; `bot/__init__.py` calls it, so any `import bot.…`
does. When aiogram is already imported it does nothing (the types are built already).
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

TYPES_PACKAGE = "aiogram.types."


def defer_schemas() -> bool:
    """Import aiogram with its types' schemas deferred; False if it was imported already."""
    if "aiogram.types" in sys.modules:
        return False
    original = BaseModel.__dict__["model_rebuild"]
    namespaces: list[dict[str, Any]] = []

    def skip_rebuild(cls: type[BaseModel], *, _types_namespace: Any = None, **kwargs: Any) -> bool | None:
        if _types_namespace is not None and cls.__module__.startswith(TYPES_PACKAGE) and not kwargs:
            namespaces.append(_types_namespace)
            return None
        return original.__func__(cls, _types_namespace=_types_namespace, **kwargs)

    BaseModel.model_rebuild = classmethod(skip_rebuild)  # type: ignore[method-assign,assignment]
    try:
        import aiogram  # noqa: F401  (its types, then the methods and the rest)
    finally:
        BaseModel.model_rebuild = original  # type: ignore[method-assign]
    if namespaces:
        # The names each type module imports only for type checkers, where pydantic looks for
        # them when it builds a type, alone or nested in another model (a method, a response).
        for name, module in list(sys.modules.items()):
            if name.startswith(TYPES_PACKAGE):
                for key, value in namespaces[0].items():
                    module.__dict__.setdefault(key, value)
    return True


def warm_up() -> None:
    """Build the types every update goes through now, so the first update does not pay for it."""
    from aiogram.types import Message, Update

    for model in (Update, Message):
        model.model_rebuild()
