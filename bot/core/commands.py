"""The command menu, registered with Telegram in each language."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.core.languages import LANGUAGES

logger = logging.getLogger(__name__)


def customer_commands() -> list[BotCommand]:
    return [
        BotCommand(command="card", description=_("My loyalty card and QR code")),
        BotCommand(command="history", description=_("My points history")),
        BotCommand(command="faq", description=_("Questions & answers")),
        BotCommand(command="support", description=_("Talk to a person from our team")),
        BotCommand(command="owner", description=_("Write to the owner")),
        BotCommand(command="feedback", description=_("Tell us how we are doing")),
        BotCommand(command="profile", description=_("My profile: birthday, offers, language")),
        BotCommand(command="language", description=_("Change language")),
        BotCommand(command="help", description=_("What this bot can do")),
        BotCommand(command="mydata", description=_("Everything stored about me, as a file")),
        BotCommand(command="deleteme", description=_("Delete my data")),
    ]


def staff_commands() -> list[BotCommand]:
    return [
        BotCommand(command="scan", description=_("Find a card by number or QR photo")),
        BotCommand(command="undo", description=_("Undo the last points I added or redeemed")),
        BotCommand(command="cancel", description=_("Stop what I am doing")),
    ]


def manager_commands() -> list[BotCommand]:
    return [
        BotCommand(command="stats", description=_("Feedback figures: NPS, ratings, alerts")),
        BotCommand(command="export", description=_("Survey responses as a CSV file")),
        BotCommand(command="report", description=_("Loyalty figures: members, churn, lifetime value, points owed")),
        BotCommand(command="close", description=_("Close this customer's request")),
        BotCommand(command="assign", description=_("Hand this request to another manager")),
        BotCommand(command="t", description=_("Send a ready-made reply: /t name")),
        BotCommand(command="faq", description=_("Reply to an answer: propose it for the FAQ")),
        BotCommand(command="faq_drafts", description=_("Review FAQ drafts (admins)")),
        BotCommand(command="faq_stats", description=_("Which FAQ answers help (admins)")),
        BotCommand(command="reload_faq", description=_("Reload the FAQ file (admins)")),
        BotCommand(command="broadcast", description=_("Send a message to customers (admins)")),
    ]


async def register_commands(
    bot: Bot, i18n: I18n, default_language: str, manager_chat_id: int | None = None, managers_language: str = "en"
) -> None:
    with i18n.context():
        for language in LANGUAGES:
            with i18n.use_locale(language):
                await bot.set_my_commands(customer_commands(), scope=BotCommandScopeDefault(), language_code=language)
        with i18n.use_locale(default_language):
            await bot.set_my_commands(customer_commands(), scope=BotCommandScopeDefault())
        if manager_chat_id is not None:
            with i18n.use_locale(managers_language):
                try:
                    await bot.set_my_commands(manager_commands(), scope=BotCommandScopeChat(chat_id=manager_chat_id))
                except TelegramAPIError:
                    logger.exception("could not set the command menu of the managers' group")


async def register_chat_commands_safely(bot: Bot, chat_id: int, is_staff: bool) -> None:
    """The menu of one chat, in the current locale, with the staff commands when they apply.

    A menu is a convenience: failing to set one is logged and never stops the caller.
    """
    commands = customer_commands() + (staff_commands() if is_staff else [])
    try:
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id=chat_id))
    except TelegramAPIError:
        logger.exception("could not set the command menu of chat %s", chat_id)
