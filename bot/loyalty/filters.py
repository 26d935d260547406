"""Rights, checked on every message and every button press."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import TelegramObject, User

from bot.core.config import Settings
from bot.loyalty.service import LoyaltyService


class IsStaff(Filter):
    """An admin, or a cashier whose access has not been revoked (looked up every time)."""

    async def __call__(
        self,
        event: TelegramObject,
        event_from_user: User | None,
        settings: Settings,
        loyalty: LoyaltyService,
    ) -> bool:
        if event_from_user is None:
            return False
        if event_from_user.id in settings.admin_ids:
            return True
        return await loyalty.active_staff(event_from_user.id) is not None
