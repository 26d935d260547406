"""Surveys and alerts on their way to Telegram: sending due surveys, posting and updating alerts
in the managers' group. The rules live in SurveyService; this is only delivery."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup, ReplyParameters
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.config import Settings
from bot.core.limiter import sending_in_bulk
from bot.support.desk import SupportDesk
from bot.surveys import keyboards
from bot.surveys import texts as survey_texts
from bot.surveys.rules import kind_of
from bot.surveys.service import AlertView, Question, SurveyService

logger = logging.getLogger(__name__)


class SurveySender:
    def __init__(
        self,
        surveys: SurveyService,
        business: Business,
        settings: Settings,
        i18n: I18n,
        desk: SupportDesk | None = None,
    ) -> None:
        self.surveys = surveys
        self.business = business
        self.settings = settings
        self.i18n = i18n
        self.desk = desk  # alerts go to the customer's topic when the group has topics
        if desk is not None:
            desk.on_alert_contacted = self.refresh_alert

    async def send(self, bot: Bot, question: Question) -> bool:
        """Put a claimed survey in the customer's chat, and record how that went."""
        survey = question.survey
        assert survey.id is not None
        with self.i18n.context(), self.i18n.use_locale(question.language):
            text = survey_texts.question(survey, self.business)
            markup = keyboards.survey(kind_of(survey.kind), survey.id, self.business.surveys.rating_emoji)
        try:
            message = await bot.send_message(question.customer.telegram_id, text, reply_markup=markup)
        except TelegramForbiddenError:
            logger.info("survey %s: the customer has blocked the bot", survey.id)
            await self.surveys.not_sent(survey.id, blocked=True)
            return False
        except TelegramRetryAfter:
            logger.warning("survey %s: Telegram asks to slow down; trying again later", survey.id)
            await self.surveys.not_sent(survey.id, retry=True)
            return False
        except (TelegramNetworkError, TelegramServerError):
            # It may have arrived: sending again could ask twice, so it is not repeated.
            logger.warning("survey %s: no answer from Telegram; it may or may not have arrived", survey.id)
            await self.surveys.not_sent(survey.id, uncertain=True)
            return False
        except TelegramAPIError:
            logger.exception("survey %s could not be sent", survey.id)
            await self.surveys.not_sent(survey.id)
            return False
        await self.surveys.sent(survey.id, message.message_id)
        return True

    async def run_due(self, bot: Bot) -> int:
        """Send every survey whose time has come, in bulk (the Outbox paces it and lets replies
        to people go first); returns how many went out."""
        sent = 0
        with sending_in_bulk():
            for survey_id in await self.surveys.due():
                question = await self.surveys.claim(survey_id)
                if question is None:
                    continue
                if await self.send(bot, question):
                    sent += 1
        return sent

    # --- alerts in the managers' group -------------------------------------------------------

    def managers_locale(self) -> AbstractContextManager[None]:
        return self.i18n.use_locale(self.business.managers_language)

    def _alert_message(self, view: AlertView) -> tuple[str, InlineKeyboardMarkup]:
        with self.i18n.context(), self.i18n.use_locale(self.business.managers_language):
            return (
                survey_texts.alert(view, self.business),
                keyboards.alert_actions(view.alert, self.business.surveys.apology_bonus),
            )

    async def post_alert(self, bot: Bot, alert_id: int) -> None:
        chat_id = self.settings.manager_chat_id
        if chat_id is None:
            logger.warning("alert %s: MANAGER_CHAT_ID is not set, so nobody was told", alert_id)
            return
        view = await self.surveys.alert_view(alert_id)
        if view is None:
            return
        text, markup = self._alert_message(view)
        try:
            if self.desk is not None:
                message = await self.desk.in_place(
                    bot,
                    view.customer,
                    lambda chat, topic: bot.send_message(chat, text, message_thread_id=topic, reply_markup=markup),
                )
            else:
                message = await bot.send_message(chat_id, text, reply_markup=markup)
        except TelegramAPIError:
            logger.exception("alert %s could not be posted to the managers' group", alert_id)
            return
        if message is None:
            return
        await self.surveys.alert_posted(alert_id, chat_id, message.message_id)
        await self._tell_store(bot, view, text)

    async def _tell_store(self, bot: Bot, view: AlertView, text: str) -> None:
        """A copy in the store's own managers' group, when it has one; it is handled (contacted,
        resolved) in the main group, which sees every store."""
        group = self.business.store(view.alert.store).managers_group_id
        if group is None or group == self.settings.manager_chat_id:
            return
        with self.i18n.context(), self.i18n.use_locale(self.business.managers_language):
            note = _("It is handled in the main managers' group.")
        try:
            if view.alert.store_message_id is None:
                copy = await bot.send_message(group, text + "\n\n" + note)
                assert view.alert.id is not None
                await self.surveys.alert_copied(view.alert.id, copy.message_id)
            else:  # the copy follows the alert: a comment, a contact, resolved
                await bot.edit_message_text(
                    text=text + "\n\n" + note, chat_id=group, message_id=view.alert.store_message_id
                )
        except TelegramBadRequest as error:
            if "message is not modified" not in error.message:
                logger.warning(
                    "alert %s: could not update its copy in the store's group (%s)", view.alert.id, error.message
                )
        except TelegramAPIError:
            logger.exception("alert %s could not be posted to its store's group", view.alert.id)

    async def refresh_alert(self, bot: Bot, alert_id: int) -> None:
        """Show the alert's latest state in its message; post it anew if it was never posted."""
        view = await self.surveys.alert_view(alert_id)
        if view is None:
            return
        if view.alert.chat_id is None or view.alert.message_id is None:
            await self.post_alert(bot, alert_id)
            return
        text, markup = self._alert_message(view)
        await self._tell_store(bot, view, text)
        try:
            await bot.edit_message_text(
                text=text,
                chat_id=view.alert.chat_id,
                message_id=view.alert.message_id,
                reply_markup=markup,
            )
        except TelegramBadRequest as error:
            if "message is not modified" not in error.message:
                logger.warning("alert %s: could not update its message (%s)", alert_id, error.message)
        except TelegramAPIError:
            logger.exception("alert %s: could not update its message", alert_id)

    def reply_to_alert(self, view: AlertView) -> ReplyParameters | None:
        """Reply to the alert's message, when it is in the managers' group."""
        if view.alert.chat_id != self.settings.manager_chat_id or view.alert.message_id is None:
            return None
        return ReplyParameters(message_id=view.alert.message_id, allow_sending_without_reply=True)

    async def tell_managers(self, bot: Bot, alert_id: int, text: str) -> None:
        """A short note in the group, as a reply to the alert's message."""
        view = await self.surveys.alert_view(alert_id)
        chat_id = self.settings.manager_chat_id
        if view is None or chat_id is None:
            return
        try:
            await bot.send_message(chat_id, text, reply_parameters=self.reply_to_alert(view))
        except TelegramAPIError:
            logger.exception("alert %s: could not write to the managers' group", alert_id)
