"""The one place the bot is wired together; production and tests both call these factories."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.types import ErrorEvent
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.broadcast_service import BroadcastService
from bot.broadcaster import Broadcaster
from bot.business import Business, pick_language
from bot.config import Settings
from bot.faq_service import FaqService
from bot.i18n import CustomerI18nMiddleware
from bot.lifecycle_jobs import LifecycleJobs
from bot.lifecycle_service import LifecycleService
from bot.middlewares import CustomerMiddleware, DropRepeatedUpdates
from bot.scheduler import Scheduler
from bot.services import LoyaltyService
from bot.support_desk import SupportDesk
from bot.support_service import SupportService
from bot.survey_sender import SurveySender
from bot.survey_service import SurveyService
from bot.timers import Timers
from handlers import get_routers
from storage.database import Database
from storage.models import Customer

logger = logging.getLogger(__name__)


def create_bot(settings: Settings, session: BaseSession | None = None) -> Bot:
    """A Bot talking to Telegram, or to the Bot API server at TELEGRAM_API_URL when set."""
    if session is None:
        session = AiohttpSession()
    if settings.telegram_api_url:
        session.api = TelegramAPIServer.from_base(settings.telegram_api_url)
    assert settings.bot_token is not None
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


async def on_error(
    event: ErrorEvent, bot: Bot, i18n: I18n, business: Business, customer: Customer | None = None
) -> None:
    """Log the failure and tell the person plainly; never show them a stack trace.

    Errors arrive outside the i18n middleware's context, so the language is set up again here.
    A button press was already answered (CallbackAnswerMiddleware), so the apology is a message.
    """
    exception = event.exception
    if isinstance(exception, TelegramBadRequest) and "message is not modified" in exception.message:
        # A double tap re-rendered the same screen: nothing is wrong and nothing needs saying.
        logger.debug("update %s: message not modified", event.update.update_id)
        return
    logger.error("update %s failed", event.update.update_id, exc_info=exception)
    language = business.default_language
    if customer is not None:
        language = pick_language(customer.language, customer.telegram_language, business.default_language)
    with i18n.context(), i18n.use_locale(language):
        text = _("Sorry, something went wrong on our side. Please try again in a moment.")
    try:
        query, message = event.update.callback_query, event.update.message
        if query is not None:
            await bot.send_message(query.message.chat.id if query.message else query.from_user.id, text)
        elif message is not None and message.chat.type == "private":
            await message.answer(text)
    except Exception:  # noqa: BLE001 - the apology itself failed; the log above has the cause
        logger.exception("could not report the failure of update %s", event.update.update_id)


def create_dispatcher(
    settings: Settings,
    business: Business,
    db: Database,
    i18n: I18n,
    *,
    storage: BaseStorage | None = None,
    loyalty: LoyaltyService | None = None,
    surveys: SurveyService | None = None,
    timers: Timers | None = None,
    scheduler: Scheduler | None = None,
    support: SupportService | None = None,
    faq: FaqService | None = None,
    broadcaster: Broadcaster | None = None,
    lifecycle: LifecycleService | None = None,
    **extra: Any,
) -> Dispatcher:
    timers = timers or Timers()
    scheduler = scheduler or Scheduler(settings.scheduler_interval_seconds)
    surveys = surveys or SurveyService(db, business)
    support = support or SupportService(db, business)
    faq = faq or FaqService(db, settings.faq_file)
    desk = SupportDesk(support, surveys, business, settings, i18n)
    survey_sender = SurveySender(surveys, business, settings, i18n, desk)
    scheduler.add(survey_sender.run_due)
    scheduler.add(desk.remind_due)
    broadcaster = broadcaster or Broadcaster(BroadcastService(db, business), business, settings, i18n)
    scheduler.add(broadcaster.resume)  # broadcasts whose process stopped or died
    lifecycle = lifecycle or LifecycleService(db, business)
    scheduler.add(LifecycleJobs(lifecycle, business, i18n).run)
    dp = Dispatcher(
        storage=storage or MemoryStorage(),
        # One person's updates are handled one after another, so a quick second message never
        # overtakes the button press before it.
        events_isolation=SimpleEventIsolation(),
        settings=settings,
        business=business,
        db=db,
        loyalty=loyalty or LoyaltyService(db, business, admin_ids=settings.admin_ids),
        surveys=surveys,
        survey_sender=survey_sender,
        support=support,
        desk=desk,
        faq=faq,
        broadcaster=broadcaster,
        lifecycle=lifecycle,
        timers=timers,
        scheduler=scheduler,
        **extra,
    )
    dp.update.outer_middleware(DropRepeatedUpdates(db))
    dp.update.outer_middleware(CustomerMiddleware())
    CustomerI18nMiddleware(i18n, business.default_language).setup(dp)
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    dp.include_routers(*get_routers())
    dp.errors.register(on_error)
    dp.startup.register(faq.load)  # the entries approved from managers' answers
    dp.startup.register(scheduler.start)
    dp.shutdown.register(scheduler.stop)
    dp.shutdown.register(broadcaster.stop)  # the next start resumes them through the lease
    dp.shutdown.register(timers.cancel_all)
    return dp
