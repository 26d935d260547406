"""/stats, the weekly chart and /export; /report, the loyalty programme's figures, its cohort chart
and its CSV (`/export report`): for the managers' group and the admins."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _
from babel.dates import format_date

from bot.business import Business
from bot.core import formatting
from bot.core.callbacks import ReportCB, StatsCB
from bot.core.config import Settings
from bot.core.filters import InManagersPlace, InPrivateChat, IsManager
from bot.core.i18n import in_chat_language
from bot.core.money import whole_number
from bot.loyalty import keyboards as loyalty_keyboards
from bot.loyalty import texts as loyalty_texts
from bot.loyalty.analytics import REPORT_PERIODS, LoyaltyAnalytics
from bot.loyalty.charts import CohortLabels, cohort_chart
from bot.loyalty.export import report_csv
from bot.surveys import keyboards
from bot.surveys import texts as survey_texts
from bot.surveys.charts import ChartLabels, weekly_chart
from bot.surveys.export import responses_csv
from bot.surveys.service import Report, SurveyService

DEFAULT_DAYS = 30
MAX_DAYS = 366


def _days(command: CommandObject) -> int | None:
    """`/stats`, `/stats 90`: the period in days; None when the argument is not a number."""
    if not command.args:
        return DEFAULT_DAYS
    days = whole_number(command.args.strip())
    if days is None or not 1 <= days <= MAX_DAYS:
        return None
    return days


def _bad_days() -> str:
    return _("Give the period in days, from 1 to {max}: for example /stats 90.").format(max=MAX_DAYS)


async def cmd_stats(message: Message, command: CommandObject, business: Business, surveys: SurveyService) -> None:
    days = _days(command)
    if days is None:
        await message.reply(_bad_days())
        return
    report = await surveys.report(days)
    markup = keyboards.stats(days, business.stores)
    await message.answer(survey_texts.stats(report, days, business), reply_markup=markup)


def _store(callback_data: StatsCB | ReportCB, business: Business) -> str:
    """The store a button names, when the business file still names it; otherwise all stores."""
    return callback_data.store if callback_data.store in business.store_ids else ""


async def stats_period(
    callback: CallbackQuery,
    callback_data: StatsCB,
    i18n: I18n,
    settings: Settings,
    business: Business,
    surveys: SurveyService,
) -> None:
    store = _store(callback_data, business)
    report = await surveys.report(callback_data.days, store)
    if isinstance(callback.message, Message):
        with in_chat_language(i18n, callback.message.chat.id, settings.manager_chat_id, business.managers_language):
            await callback.message.edit_text(
                survey_texts.stats(report, callback_data.days, business, store),
                reply_markup=keyboards.stats(callback_data.days, business.stores, store),
            )


def _chart_labels(days: int) -> ChartLabels:
    return ChartLabels(
        title=ngettext("Feedback by week, last {days} day", "Feedback by week, last {days} days", days).format(
            days=days
        ),
        nps=_("NPS"),
        rating=_("Average rating"),
        no_data=_("No answers in this period"),
    )


async def _chart(report: Report, days: int) -> bytes:
    def week_label(start: datetime) -> str:
        return format_date(start.date(), format="d MMM", locale=formatting.locale())

    labels = _chart_labels(days)
    weeks = [week_label(week.start) for week in report.weeks]
    nps = [week.nps.score for week in report.weeks]
    ratings = [None if w.rating.average_tenths is None else w.rating.average_tenths / 10 for w in report.weeks]
    return await asyncio.to_thread(weekly_chart, weeks, nps, ratings, labels)


async def stats_chart(
    callback: CallbackQuery,
    callback_data: StatsCB,
    bot: Bot,
    i18n: I18n,
    settings: Settings,
    business: Business,
    surveys: SurveyService,
) -> None:
    store = _store(callback_data, business)
    report = await surveys.report(callback_data.days, store)
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    with in_chat_language(i18n, chat_id, settings.manager_chat_id, business.managers_language):
        png = await _chart(report, callback_data.days)
        caption = survey_texts.nps_line(report.nps) + "\n" + survey_texts.rating_line(report.rating)
        await bot.send_photo(
            chat_id,
            BufferedInputFile(png, filename="feedback.png"),
            caption=_where(store, business) + caption,
        )


def _where(store: str, business: Business) -> str:
    """The line naming a store-filtered chart's or file's store (nothing for all stores)."""
    if not store:
        return ""
    return _("🏪 Store: {store}").format(store=loyalty_texts.store_name(business.store(store))) + "\n"


async def _send_export(
    bot: Bot, chat_id: int, days: int, business: Business, surveys: SurveyService, store: str = ""
) -> None:
    rows = await surveys.export_rows(days, store)
    data = responses_csv(rows, business, formatting.locale())
    today = surveys.clock().astimezone(business.timezone).date().isoformat()
    where = f"{store}-" if store else ""
    await bot.send_document(
        chat_id,
        BufferedInputFile(data, filename=f"feedback-{where}{days}d-{today}.csv"),
        caption=_where(store, business)
        + ngettext(
            "Survey responses, last {days} day: {count}", "Survey responses, last {days} days: {count}", days
        ).format(days=days, count=formatting.number(len(rows))),
    )


async def cmd_export(
    message: Message,
    command: CommandObject,
    bot: Bot,
    business: Business,
    surveys: SurveyService,
    analytics: LoyaltyAnalytics,
) -> None:
    words = (command.args or "").split()
    if words and words[0].casefold() == "report":  # /export report [days]
        days = _days(CommandObject(prefix="/", command="export", args=" ".join(words[1:]) or None))
        if days is None:
            await message.reply(_bad_days())
            return
        await _send_report_csv(bot, message.chat.id, days, "", business, analytics)
        return
    days = _days(command)
    if days is None:
        await message.reply(_bad_days())
        return
    await _send_export(bot, message.chat.id, days, business, surveys)


async def stats_csv(
    callback: CallbackQuery,
    callback_data: StatsCB,
    bot: Bot,
    i18n: I18n,
    settings: Settings,
    business: Business,
    surveys: SurveyService,
) -> None:
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    with in_chat_language(i18n, chat_id, settings.manager_chat_id, business.managers_language):
        await _send_export(bot, chat_id, callback_data.days, business, surveys, _store(callback_data, business))


# --- the loyalty report ---------------------------------------------------------------------


async def cmd_report(message: Message, business: Business, analytics: LoyaltyAnalytics) -> None:
    days = REPORT_PERIODS[0]
    report = await analytics.report(days)
    await message.answer(
        loyalty_texts.loyalty_report(report, business),
        reply_markup=loyalty_keyboards.report(days, REPORT_PERIODS, business.stores),
    )


async def report_period(
    callback: CallbackQuery,
    callback_data: ReportCB,
    i18n: I18n,
    settings: Settings,
    business: Business,
    analytics: LoyaltyAnalytics,
) -> None:
    store = _store(callback_data, business)
    report = await analytics.report(callback_data.days, store)
    if isinstance(callback.message, Message):
        with in_chat_language(i18n, callback.message.chat.id, settings.manager_chat_id, business.managers_language):
            await callback.message.edit_text(
                loyalty_texts.loyalty_report(report, business),
                reply_markup=loyalty_keyboards.report(callback_data.days, REPORT_PERIODS, business.stores, store),
            )


async def report_chart(
    callback: CallbackQuery,
    callback_data: ReportCB,
    bot: Bot,
    i18n: I18n,
    settings: Settings,
    business: Business,
    analytics: LoyaltyAnalytics,
) -> None:
    store = _store(callback_data, business)
    report = await analytics.report(callback_data.days, store)
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    with in_chat_language(i18n, chat_id, settings.manager_chat_id, business.managers_language):
        labels = CohortLabels(
            title=_("Members who bought, by join month (%)"),
            joined=_("Joined in (members)"),
            since=_("Months since joining"),
            no_data=_("No members joined in these months"),
        )
        png = await asyncio.to_thread(cohort_chart, report.cohorts, labels)
        await bot.send_photo(
            chat_id, BufferedInputFile(png, filename="cohorts.png"), caption=_where(store, business) + labels.title
        )


async def report_csv_pressed(
    callback: CallbackQuery,
    callback_data: ReportCB,
    bot: Bot,
    i18n: I18n,
    settings: Settings,
    business: Business,
    analytics: LoyaltyAnalytics,
) -> None:
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    store = _store(callback_data, business)
    with in_chat_language(i18n, chat_id, settings.manager_chat_id, business.managers_language):
        await _send_report_csv(bot, chat_id, callback_data.days, store, business, analytics)


async def _send_report_csv(
    bot: Bot, chat_id: int, days: int, store: str, business: Business, analytics: LoyaltyAnalytics
) -> None:
    report = await analytics.report(days, store)
    data = report_csv(report, business, formatting.locale())
    today = analytics.clock().astimezone(business.timezone).date().isoformat()
    where = f"{store}-" if store else ""
    await bot.send_document(
        chat_id,
        BufferedInputFile(data, filename=f"loyalty-{where}{days}d-{today}.csv"),
        caption=_where(store, business)
        + ngettext("Loyalty programme, last {days} day", "Loyalty programme, last {days} days", days).format(days=days),
    )


async def not_a_manager(message: Message) -> None:
    await message.answer(_("Reports are for the managers' group and the owners."))


def create_router() -> Router:
    router = Router(name=__name__)
    # Reports name customers and quote their comments: only in the managers' group and private
    # chats. In any other group they are ignored, whoever asks: the bot does not speak in groups
    # it does not serve, and a refusal there would only tell strangers what to try.
    router.message.filter(InManagersPlace())
    router.callback_query.filter(InManagersPlace())
    managers = IsManager()
    router.message.register(cmd_stats, Command("stats"), managers)
    router.message.register(cmd_export, Command("export"), managers)
    router.message.register(cmd_report, Command("report"), managers)
    router.message.register(not_a_manager, Command("stats", "export", "report"), InPrivateChat())
    router.callback_query.register(stats_period, StatsCB.filter(F.action == "show"), managers)
    router.callback_query.register(stats_chart, StatsCB.filter(F.action == "chart"), managers)
    router.callback_query.register(stats_csv, StatsCB.filter(F.action == "csv"), managers)
    router.callback_query.register(report_period, ReportCB.filter(F.action == "show"), managers)
    router.callback_query.register(report_chart, ReportCB.filter(F.action == "chart"), managers)
    router.callback_query.register(report_csv_pressed, ReportCB.filter(F.action == "csv"), managers)
    return router
