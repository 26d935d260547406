"""Build aiogram's Telegram types on first use instead of all at import.

aiogram declares its ~400 types with pydantic's `defer_build`, then calls `model_rebuild` on every
one of them at the end of `aiogram.types` (aiogram#1513, open). Each schema inlines the types it
nests, so that import alone costs about 140 MB of resident memory and 2 s here, while the bot uses a
few dozen of the types. `defer_schemas()` lets the import run with those rebuilds skipped, then
gives each type the namespace aiogram passed (pydantic's deferred rebuild reads it first) and puts
its names into the type modules (which import them only for type checkers), so that pydantic can
build each type the first time it validates or serialises one, alone or nested in a method or a
response. Validation itself is unchanged. Methods whose fields nest types are then built on first
use too (their build at class creation finds the types unbuilt and pydantic defers it). Should
pydantic change so that this cannot work, aiogram is imported as it is and all is built at once.

It must run before anything imports aiogram; `bot/__init__.py` calls it, so any `import bot.…`
does. When aiogram is already imported it does nothing (the types are built already).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pydantic import BaseModel

logger = logging.getLogger(__name__)

TYPES_PACKAGE = "aiogram.types."
deferred = False  # whether this process imported aiogram with the schemas deferred


def defer_schemas() -> bool:
    """Import aiogram with its types' schemas deferred; False if it was imported already, or
    pydantic no longer looks as this expects (aiogram is then imported as it is)."""
    global deferred
    if "aiogram.types" in sys.modules:
        return False
    original = BaseModel.__dict__.get("model_rebuild")
    if not isinstance(original, classmethod):
        import aiogram  # noqa: F401

        return False
    skipped: list[tuple[type[BaseModel], dict[str, Any]]] = []

    def skip_rebuild(cls: type[BaseModel], /, *, _types_namespace: Any = None, **kwargs: Any) -> bool | None:
        if _types_namespace is not None and cls.__module__.startswith(TYPES_PACKAGE) and not kwargs:
            skipped.append((cls, _types_namespace))
            return None
        # Anything else is rebuilt as asked, its caller's namespace one frame further up.
        kwargs["_parent_namespace_depth"] = kwargs.get("_parent_namespace_depth", 2) + 1
        rebuilt: bool | None = original.__func__(cls, _types_namespace=_types_namespace, **kwargs)
        return rebuilt

    # Patched for the length of one import, and put back just after: mypy cannot follow a method
    # swapped on a class, whose signature pydantic keeps private.
    BaseModel.model_rebuild = classmethod(skip_rebuild)  # type: ignore[method-assign,assignment]
    try:
        import aiogram  # noqa: F401  (its types, then the methods and the rest)
    finally:
        BaseModel.model_rebuild = original  # type: ignore[method-assign,assignment]  # put back, as above
    try:
        for cls, namespace in skipped:
            # Read by pydantic's deferred rebuild, ahead of the names where the first use happens.
            cls.__pydantic_parent_namespace__ = namespace
        if skipped:
            # The names each type module imports only for type checkers, where pydantic looks for
            # them when it builds a type nested in another model (a method, a response).
            namespace = skipped[0][1]
            for name, module in list(sys.modules.items()):
                if name.startswith(TYPES_PACKAGE):
                    for key, value in namespace.items():
                        module.__dict__.setdefault(key, value)
    except Exception:  # noqa: BLE001 - build them all now, as aiogram would have
        logger.exception("could not defer aiogram's types; building them all now")
        for cls, namespace in skipped:
            cls.model_rebuild(_types_namespace=namespace)
        return False
    deferred = True
    return True


def warm_up() -> None:
    """Build the types every update goes through now, so the first update does not pay for it."""
    if not deferred:
        logger.warning("aiogram's types were all built at import (about 140 MB more); see bot/core/lazy_types.py")
    from aiogram.types import Message, Update

    for model in (Update, Message):
        model.model_rebuild()
