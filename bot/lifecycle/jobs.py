"""The scheduled side of the customer's life: birthday greetings, expiring points and their
reminders, win-back, retention. The rules and the claiming live in LifecycleService; this is
delivery, in each customer's language and outside the quiet hours."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.business import Business
from bot.core.limiter import sending_in_bulk
from bot.lifecycle import keyboards
from bot.lifecycle import texts as lifecycle_texts
from bot.lifecycle.service import LifecycleService
from bot.support.texts import language_of
from storage.models import Customer

logger = logging.getLogger(__name__)

RETENTION_EVERY = timedelta(hours=1)  # between two retention sweeps of one process


class LifecycleJobs:
    def __init__(self, service: LifecycleService, business: Business, i18n: I18n) -> None:
        self.service = service
        self.business = business
        self.i18n = i18n
        self._retention_at: datetime | None = None

    def _daytime(self) -> bool:
        local = self.service.clock().astimezone(self.business.timezone).time()
        return not self.business.surveys.quiet_hours.contains(local)

    async def run(self, bot: Bot) -> None:
        """One round, as the scheduler calls it."""
        await self.expire_points(bot)
        if self._daytime():
            with sending_in_bulk():  # the Outbox paces them and lets replies to people go first
                await self.birthdays(bot)
                await self.expiry_reminders(bot)
                await self.win_back(bot)
        now = self.service.clock()
        if self._retention_at is None or now - self._retention_at >= RETENTION_EVERY:
            self._retention_at = now
            removed = await self.service.apply_retention(now)
            if removed:
                logger.info("retention: deleted %s old support messages", removed)

    async def _send(self, bot: Bot, customer: Customer, text: str, markup: InlineKeyboardMarkup | None = None) -> bool:
        try:
            await bot.send_message(customer.telegram_id, text, reply_markup=markup)
            return True
        except TelegramForbiddenError:
            await self.service.mark_blocked(customer.id)
        except TelegramAPIError:
            logger.exception("could not write to customer %s", customer.id)
        return False

    async def birthdays(self, bot: Bot) -> int:
        now = self.service.clock()
        local = now.astimezone(self.business.timezone)
        if local.time() < self.business.lifecycle.birthday_at:
            return 0
        sent = 0
        for customer_id in await self.service.birthdays_due(now):
            greeting = await self.service.greet_birthday(customer_id, now)
            if greeting is None:
                continue
            with self.i18n.context(), self.i18n.use_locale(language_of(greeting.customer, self.business)):
                text = lifecycle_texts.birthday_greeting(greeting.customer, greeting.bonus, self.business)
            sent += await self._send(bot, greeting.customer, text)
        return sent

    async def expire_points(self, bot: Bot) -> int:
        """Each earning expires by the policy it was earned under, even one since turned off. Expiry
        is silent: the customer was reminded before, and /history shows it."""
        done = await self.service.expire_due(self.service.clock())
        return sum(item.points for item in done)

    async def expiry_reminders(self, bot: Bot) -> int:
        sent = 0
        for item in await self.service.expiry_reminders(self.service.clock()):
            with self.i18n.context(), self.i18n.use_locale(language_of(item.customer, self.business)):
                text = lifecycle_texts.expiry_reminder(item.points, item.on, self.business)
            sent += await self._send(bot, item.customer, text)
        return sent

    async def win_back(self, bot: Bot) -> int:
        sent = 0
        for customer in await self.service.win_back_due(self.service.clock()):
            with self.i18n.context(), self.i18n.use_locale(language_of(customer, self.business)):
                text = lifecycle_texts.win_back(customer, self.business)
                markup = keyboards.unsubscribe()
            sent += await self._send(bot, customer, text, markup)
        return sent
