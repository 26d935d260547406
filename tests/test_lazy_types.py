"""aiogram's Telegram types are built on first use (bot/core/lazy_types.py), and every one of them still
builds and validates. Each check runs in a fresh interpreter, where the import order is real."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_bot_leaves_the_types_unbuilt_until_used() -> None:
    out = run(
        """
        import bot
        from aiogram.types import CallbackQuery, Message, Update
        print(Update.__pydantic_complete__, Message.__pydantic_complete__)
        update = Update.model_validate({
            "update_id": 1,
            "callback_query": {
                "id": "7", "chat_instance": "c", "data": "x",
                "from": {"id": 5, "is_bot": False, "first_name": "Ann"},
                "message": {
                    "message_id": 3, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "hi",
                    "entities": [{"type": "bold", "offset": 0, "length": 2}],
                    "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]},
                    "reply_to_message": {"message_id": 2, "date": 0, "chat": {"id": 5, "type": "private"}},
                },
            },
        })
        message = update.callback_query.message
        print(type(message).__name__, message.reply_to_message.message_id, message.entities[0].type)
        print(Update.__pydantic_complete__, CallbackQuery.__pydantic_complete__)

        def first_use_among_other_names():
            ChatIdUnion = bool  # a caller's name that a type also uses, unresolved until built: theirs wins
            from aiogram.types import BotCommandScopeChat

            return BotCommandScopeChat.model_validate({"type": "chat", "chat_id": "@shop"}).chat_id

        print(first_use_among_other_names())
        """
    )
    assert out.split("\n")[:4] == ["False False", "Message 2 bold", "True False", "@shop"]


def test_every_type_and_method_builds_on_first_use() -> None:
    # Inside a running event loop, as in the bot: pydantic's deferred build looks 5 frames up.
    out = run(
        """
        import asyncio
        import bot
        import aiogram.methods as methods
        import aiogram.types as types
        from aiogram.methods.base import Response
        from pydantic import BaseModel

        async def build_all():
            names = {**vars(types), **vars(methods)}
            models = [m for m in names.values() if isinstance(m, type) and issubclass(m, BaseModel)]
            broken = []
            for model in models:
                try:
                    model.__pydantic_validator__.title  # pydantic's deferred build, as on first validation
                except Exception as error:
                    broken.append(f"{model.__name__}: {error}")
                else:
                    if not model.__pydantic_complete__:
                        broken.append(model.__name__)
            # What the Bot session validates each method's answer with.
            for method in vars(methods).values():
                returning = getattr(method, "__returning__", None)
                if returning is None or isinstance(returning, property):  # not a method, or their base
                    continue
                if isinstance(method, type) and issubclass(method, BaseModel):
                    try:
                        Response[returning].__pydantic_validator__.title
                    except Exception as error:
                        broken.append(f"Response[{returning}] of {method.__name__}: {error}")
            print(len(models), broken)

        asyncio.run(build_all())
        """
    )
    count, broken = out.split(" ", 1)
    assert int(count) > 550  # about 400 types and 190 methods
    assert broken.strip() == "[]"


def test_aiogram_imported_first_is_left_as_it_is() -> None:
    out = run(
        """
        import aiogram.types
        from bot.core.lazy_types import defer_schemas
        print(aiogram.types.Message.__pydantic_complete__, defer_schemas())
        """
    )
    assert out.strip() == "True False"
