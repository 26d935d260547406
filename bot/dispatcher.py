"""The one place the bot is wired together; production and tests both call these factories."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import ErrorEvent, User
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from redis.asyncio import Redis

from bot.broadcasts.jobs import Broadcaster
from bot.broadcasts.service import BroadcastService
from bot.business import Business
from bot.core.config import Settings
from bot.core.i18n import CustomerI18nMiddleware
from bot.core.inbox import ConversationMovedOn, Inbox, InterruptedEveryTry, Outcome
from bot.core.languages import pick_language
from bot.core.limiter import RateLimiter, SharedLimits
from bot.core.middlewares import InboxMiddleware, StepMiddleware, ThrottleMiddleware, is_harmless
from bot.core.notices import Notices
from bot.core.redaction import add_secret
from bot.core.scheduler import Scheduler
from bot.core.sender import Outbox
from bot.core.throttle import PersonThrottle
from bot.core.timers import Timers
from bot.faq.service import FaqService
from bot.lifecycle.jobs import LifecycleJobs
from bot.lifecycle.service import LifecycleService
from bot.loyalty.analytics import LoyaltyAnalytics
from bot.loyalty.middleware import CustomerMiddleware
from bot.loyalty.notices import register_loyalty_notices
from bot.loyalty.service import LoyaltyService
from bot.support.desk import SupportDesk
from bot.support.service import OwnerLetters, SupportService
from bot.surveys.jobs import SurveySender
from bot.surveys.service import SurveyService
from handlers import get_routers
from storage.database import Database
from storage.models import Customer

logger = logging.getLogger(__name__)

FSM_TTL = timedelta(days=30)
PERSON_LOCK_SECONDS = 300
UPDATES_IN_FLIGHT = 40  # updates handled at once, each past its person's lock (polling and webhook alike)


def create_bot(
    settings: Settings,
    session: BaseSession | None = None,
    limiter: RateLimiter | None = None,
    redis: Redis | None = None,
) -> Bot:
    """A Bot talking to Telegram, or to the Bot API server at TELEGRAM_API_URL when set; every
    call it makes goes through the Outbox (limits, 429s, long texts). With `redis` (the FSM
    storage's client), the limits are shared by every instance."""
    if session is None:
        session = AiohttpSession()
    if settings.telegram_api_url:
        session.api = TelegramAPIServer.from_base(settings.telegram_api_url)
    if limiter is None:
        shared = SharedLimits(redis, prefix=f"{{{settings.redis_prefix}:send}}") if redis is not None else None
        limiter = RateLimiter(settings.send_limit_per_second, shared=shared)
    session.middleware(Outbox(limiter))
    assert settings.bot_token is not None
    add_secret(settings.bot_token.get_secret_value())  # out of every log line and stored error
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


async def on_error(
    event: ErrorEvent,
    bot: Bot,
    i18n: I18n,
    business: Business,
    customer: Customer | None = None,
    loyalty: LoyaltyService | None = None,
    event_from_user: User | None = None,
    inbox_outcome: Outcome | None = None,
    inbox_replay: bool = False,
    inbox_taken: bool = False,
) -> Any:
    """Log the failure and tell the person plainly; never show them a stack trace.

    The inbox has scheduled a failed update for another try, so the apology says so; a failing
    replay stays quiet until the last try, which says it could not be done.
    Errors arrive outside the i18n middleware's context, so the language is set up again here.
    A button press was already answered (CallbackAnswerMiddleware), so the apology is a message.
    """
    exception = event.exception
    if is_harmless(exception):
        # A double tap re-rendered the same screen: nothing is wrong and nothing needs saying.
        logger.debug("update %s: message not modified", event.update.update_id)
        return None
    if not inbox_taken:
        # Not recorded, so not handled (the database or Redis is unreachable): a webhook answers
        # 500 and Telegram sends the update again later.
        logger.error("update %s refused: it could not be recorded", event.update.update_id, exc_info=exception)
        return UNHANDLED
    if isinstance(exception, ConversationMovedOn):
        logger.info("update %s not replayed: the person had moved on", event.update.update_id)
    elif isinstance(exception, InterruptedEveryTry):
        logger.info("update %s given up after its process died on every try", event.update.update_id)
    else:
        logger.error("update %s failed", event.update.update_id, exc_info=exception)
    if inbox_replay and inbox_outcome is Outcome.RETRY:
        return None  # the person was told at the first failure; the next try follows
    language = business.default_language
    if customer is not None:
        language = pick_language(customer.language, customer.telegram_language, business.default_language)
    elif loyalty is not None and event_from_user is not None:  # the failure came before their record was read
        with contextlib.suppress(Exception):
            language = await loyalty.language_of(event_from_user.id)
    with i18n.context(), i18n.use_locale(language):
        if inbox_outcome is Outcome.RETRY:
            text = _("Sorry, something went wrong on our side. We will try again in a minute; no need to repeat it.")
        elif inbox_outcome is Outcome.GAVE_UP:
            text = _(
                "Sorry, we could not finish what you asked because of a fault on our side. Please try again later."
            )
        else:
            text = _("Sorry, something went wrong on our side. Please try again in a moment.")
    try:
        query, message = event.update.callback_query, event.update.message
        if query is not None:
            await bot.send_message(query.message.chat.id if query.message else query.from_user.id, text)
        elif message is not None and message.chat.type == "private":
            await message.answer(text)
    except Exception:  # noqa: BLE001 - the apology itself failed; the log above has the cause
        logger.exception("could not report the failure of update %s", event.update.update_id)


def create_storage(settings: Settings) -> BaseStorage:
    """FSM state in Redis when REDIS_URL is set (shared by every instance), else in memory."""
    if settings.redis_url is None:
        return MemoryStorage()
    return RedisStorage.from_url(
        settings.redis_url,
        key_builder=DefaultKeyBuilder(prefix=settings.redis_prefix, with_bot_id=True),
        # An abandoned half-way step (a purchase amount never typed) does not stay forever.
        state_ttl=FSM_TTL,
        data_ttl=FSM_TTL,
    )


def shared_redis(storage: BaseStorage) -> Redis | None:
    """The Redis connection behind the FSM storage, if it is Redis (the send limits share it)."""
    return storage.redis if isinstance(storage, RedisStorage) else None


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
    inbox: Inbox | None = None,
    notices: Notices | None = None,
    throttle: PersonThrottle | None = None,
    analytics: LoyaltyAnalytics | None = None,
    letters: OwnerLetters | None = None,
    **extra: Any,
) -> Dispatcher:
    timers = timers or Timers()
    scheduler = scheduler or Scheduler(settings.scheduler_interval_seconds)
    surveys = surveys or SurveyService(db, business)
    support = support or SupportService(db, business)
    faq = faq or FaqService(db, settings.faq_file, features=business.offers())
    loyalty = loyalty or LoyaltyService(db, business, admin_ids=settings.admin_ids)
    desk = SupportDesk(support, surveys, business, settings, i18n, chosen_language=loyalty.chosen_language)
    survey_sender = SurveySender(surveys, business, settings, i18n, desk)
    scheduler.add(survey_sender.run_due)
    scheduler.add(desk.remind_due)
    broadcaster = broadcaster or Broadcaster(BroadcastService(db, business), business, settings, i18n)
    scheduler.add(broadcaster.resume)  # broadcasts whose process stopped or died
    lifecycle = lifecycle or LifecycleService(db, business)
    scheduler.add(LifecycleJobs(lifecycle, business, i18n).run)
    inbox = inbox or Inbox(db)
    analytics = analytics or LoyaltyAnalytics(db, business)
    letters = letters or OwnerLetters(db, business)
    notices = notices or Notices(db)
    register_loyalty_notices(notices, i18n, loyalty, business, after_movement=desk.refresh)
    scheduler.add(notices.deliver_due)  # what people are owed and did not get at once
    storage = storage or create_storage(settings)
    dp = Dispatcher(
        storage=storage,
        # Registered below, after the throttle and the inbox: an update is recorded before it
        # waits for its person's lock (bot/core/middlewares.py).
        disable_fsm=True,
        # One person's updates are handled one after another, so a quick second message never
        # overtakes the button press before it; with Redis, even when they reach two instances.
        events_isolation=(
            # The lock outlives the slowest handler (one waiting for a group's send limit); a
            # crashed instance's lock frees the person after it.
            storage.create_isolation(lock_kwargs={"timeout": PERSON_LOCK_SECONDS})
            if isinstance(storage, RedisStorage)
            else SimpleEventIsolation()
        ),
        inbox=inbox,
        settings=settings,
        business=business,
        db=db,
        loyalty=loyalty,
        analytics=analytics,
        letters=letters,
        notices=notices,
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
    throttle = throttle or PersonThrottle(
        business.guards.messages_per_minute,
        redis=shared_redis(storage),
        prefix=f"{{{settings.redis_prefix}:throttle}}",
    )

    async def language_of(user: User) -> str:
        chosen = await loyalty.chosen_language(user.id)
        return pick_language(chosen, user.language_code, business.default_language)

    dp.update.outer_middleware(ThrottleMiddleware(throttle, i18n, language_of))
    dp.update.outer_middleware(InboxMiddleware(inbox))
    dp.update.outer_middleware(dp.fsm)  # the person's step and lock
    dp.update.outer_middleware(StepMiddleware(inbox, UPDATES_IN_FLIGHT))
    dp.update.outer_middleware(CustomerMiddleware())
    CustomerI18nMiddleware(i18n, business.default_language, settings.manager_chat_id, business.managers_language).setup(
        dp
    )
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    dp.include_routers(*get_routers())
    dp.errors.register(on_error)
    dp.startup.register(faq.load)  # the entries approved from managers' answers
    scheduler.add(partial(inbox.replay_due, dp.feed_update))  # failed or interrupted updates
    dp.startup.register(scheduler.start)
    dp.shutdown.register(inbox.drain)  # first: the updates in flight finish
    dp.shutdown.register(scheduler.stop)
    dp.shutdown.register(broadcaster.stop)  # the next start resumes them through the lease
    dp.shutdown.register(timers.cancel_all)
    # aiogram registered the storage's close first; it goes last, after everything that uses it.
    closing = [h for h in dp.shutdown.handlers if h.callback == dp.fsm.close]
    dp.shutdown.handlers[:] = [h for h in dp.shutdown.handlers if h not in closing] + closing
    return dp
