"""Owing someone a notice: a message committed in the same transaction as what it tells, and sent
after it (`bot/core/notices.py`). Only the database here, so the services that owe notices know
nothing of Telegram."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Notice

GRACE = timedelta(seconds=30)  # the handler's own try goes first; the scheduler after this


async def add(session: AsyncSession, key: str, kind: str, chat_id: int, now: datetime, **payload: Any) -> str:
    """Owe `chat_id` a notice of `kind`, in the caller's transaction; once per `key` (one
    `INSERT … ON CONFLICT DO NOTHING`: a repeat's notice is the first one)."""
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    await session.execute(
        dialect.insert(Notice)
        .values(
            key=key,
            kind=kind,
            chat_id=chat_id,
            payload=json.dumps(payload, sort_keys=True),
            created_at=now,
            next_try_at=now + GRACE,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return key
