"""The managers' group side of support: one forum topic per customer (created once, recreated
when deleted), its pinned header, customers' messages copied in, managers' messages delivered
under their names, reminders, and plain words when a right is missing. Without topics, each
customer message is posted with a header line, and a reply to it reaches that customer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from aiogram import Bot, html
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup, Message, ReplyParameters, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.config import Settings
from bot.core.notify import notify
from bot.core.prompts import take_off_buttons
from bot.support import keyboards
from bot.support import texts as support_texts
from bot.support.relay import Delivery, deliver_to_customer, signature
from bot.support.service import SupportService, TicketView
from bot.surveys.service import SurveyService
from storage.models import Customer, MessageDirection, SupportThread, Ticket, TicketStatus

logger = logging.getLogger(__name__)

T = TypeVar("T")

FORUM_TTL = 60.0  # seconds the group's "topics on" is trusted
WARN_EVERY = 6 * 3600.0  # a missing right is said again at most this often
WAIT_FOR_TOPIC = 10.0  # seconds a second message waits for the first to create the topic
THREAD_GONE = ("thread not found", "topic_deleted", "topic deleted", "topic_id_invalid")
TOPIC_CLOSED = ("topic_closed", "topic closed")
NO_RIGHTS = ("not enough rights", "chat_admin_required", "administrator", "rights")
NOT_FORUM = ("not a forum", "chat_not_forum", "forum")


def _says(error: TelegramAPIError, phrases: tuple[str, ...]) -> bool:
    return any(phrase in error.message.lower() for phrase in phrases)


TEXT_LIMIT, CAPTION_LIMIT = 4096, 1024  # Telegram's; checked on the HTML sent, which is never shorter
CAPTIONED = frozenset({"photo", "video", "document", "audio", "animation"})


@dataclass(frozen=True, slots=True)
class Place:
    """Where a customer's conversation lives in the managers' group."""

    chat_id: int
    thread: SupportThread | None  # their topic, when the group has topics

    @property
    def topic_id(self) -> int | None:
        return self.thread.topic_id if self.thread is not None else None


class SupportDesk:
    def __init__(
        self,
        support: SupportService,
        surveys: SurveyService,
        business: Business,
        settings: Settings,
        i18n: I18n,
        chosen_language: Callable[[int], Awaitable[str | None]] | None = None,
    ) -> None:
        self.support = support
        self.chosen_language = chosen_language  # the language a person picked (LoyaltyService's)
        self.surveys = surveys
        self.business = business
        self.settings = settings
        self.i18n = i18n
        self._forum: tuple[float, bool] | None = None
        self._warned: dict[str, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        # Set by the survey side: show on an alert that a manager has written to its customer.
        self.on_alert_contacted: Callable[[Bot, int], Awaitable[None]] | None = None

    def managers_locale(self) -> AbstractContextManager[None]:
        return self.i18n.use_locale(self.business.managers_language)

    # --- the customer's place in the group ---------------------------------------------------

    async def _is_forum(self, bot: Bot, chat_id: int) -> bool:
        now = time.monotonic()
        if self._forum is not None and now - self._forum[0] < FORUM_TTL:
            return self._forum[1]
        try:
            chat = await bot.get_chat(chat_id)
            is_forum = bool(chat.is_forum)
        except (TelegramAPIError, ValueError):  # ValueError: an answer aiogram could not read
            logger.exception("could not read the managers' group")
            is_forum = False
        self._forum = (now, is_forum)
        return is_forum

    def _topics_off(self) -> None:
        self._forum = (time.monotonic(), False)

    async def place(self, bot: Bot, customer: Customer, ticket: Ticket | None = None) -> Place | None:
        """The customer's topic, created on first need (once, whatever the races), or the group
        itself when it has no topics. None when no managers' group is set."""
        chat_id = self.settings.manager_chat_id
        if chat_id is None or customer.id is None:
            return None
        if not await self._is_forum(bot, chat_id):
            await self.warn(bot, "topics_off")
            return Place(chat_id, None)
        lock = self._locks.setdefault(customer.id, asyncio.Lock())
        async with lock:
            deadline = time.monotonic() + WAIT_FOR_TOPIC
            while True:
                thread, mine = await self.support.claim_thread(customer.id, chat_id)
                if thread.topic_id is not None:
                    return Place(chat_id, thread)
                if mine:
                    return await self._create_topic(bot, thread, customer, ticket)
                if time.monotonic() > deadline:
                    logger.warning("customer %s: another process is still creating the topic", customer.id)
                    return Place(chat_id, None)
                await asyncio.sleep(0.2)  # another process is creating it right now

    async def _create_topic(self, bot: Bot, thread: SupportThread, customer: Customer, ticket: Ticket | None) -> Place:
        assert thread.id is not None
        chat_id = thread.chat_id
        with self.i18n.context(), self.managers_locale():
            name = support_texts.title(customer, ticket, self.business)
        try:
            topic = await bot.create_forum_topic(chat_id, name)
        except TelegramAPIError as error:
            await self.support.topic_failed(thread.id)
            if _says(error, NOT_FORUM) and not _says(error, NO_RIGHTS):
                self._topics_off()
                await self.warn(bot, "topics_off")
            elif _says(error, NO_RIGHTS):
                await self.warn(bot, "manage_topics")
            else:
                logger.exception("could not create the topic of customer %s", customer.id)
            return Place(chat_id, None)
        await self.support.topic_created(thread.id, topic.message_thread_id, name)
        thread.topic_id = topic.message_thread_id  # this detached copy only; the row is updated above
        await self._post_header(bot, thread, customer.id or 0)
        return Place(chat_id, await self.support.thread_of(customer.id or 0))  # with its header

    async def _post_header(self, bot: Bot, thread: SupportThread, customer_id: int) -> None:
        facts = await self.support.header_facts(customer_id)
        if facts is None or thread.id is None:
            return
        with self.i18n.context(), self.managers_locale():
            text = support_texts.header(facts, self.business)
            markup = keyboards.ticket_actions(facts.ticket)
        try:
            message = await bot.send_message(
                thread.chat_id, text, message_thread_id=thread.topic_id, reply_markup=markup
            )
        except TelegramAPIError:
            logger.exception("could not post the header of customer %s", customer_id)
            return
        await self.support.header_shown(thread.id, message.message_id, text, None)
        try:
            await bot.pin_chat_message(thread.chat_id, message.message_id, disable_notification=True)
        except TelegramAPIError as error:
            if _says(error, NO_RIGHTS):
                await self.warn(bot, "pin_messages")
            else:
                logger.warning("could not pin the header of customer %s: %s", customer_id, error.message)

    async def refresh(self, bot: Bot, customer_id: int) -> None:
        """Show the latest state in the topic's name and pinned header (only what changed)."""
        thread = await self.support.thread_of(customer_id)
        if thread is None or thread.id is None or thread.topic_id is None:
            return  # no topic (most customers): nothing to bring up to date
        facts = await self.support.header_facts(customer_id)
        if facts is None:
            return
        with self.i18n.context(), self.managers_locale():
            text = support_texts.header(facts, self.business)
            markup = keyboards.ticket_actions(facts.ticket)
            name = support_texts.title(facts.customer, facts.ticket, self.business)
        if name != thread.title:
            try:
                await bot.edit_forum_topic(thread.chat_id, thread.topic_id, name=name)
                await self.support.header_shown(thread.id, None, None, name)
            except TelegramAPIError as error:
                logger.warning("could not rename the topic of customer %s: %s", customer_id, error.message)
        if facts.ticket is not None and facts.ticket.id is not None:
            for message_id in await self.support.take_buttons_back(facts.ticket.id):
                await take_off_buttons(bot, thread.chat_id, message_id)
        if thread.header_message_id is None:
            await self._post_header(bot, thread, customer_id)
            return
        try:
            await bot.edit_message_text(
                text=text, chat_id=thread.chat_id, message_id=thread.header_message_id, reply_markup=markup
            )
            await self.support.header_shown(thread.id, None, text, None)
        except TelegramBadRequest as error:
            if "message is not modified" not in error.message:
                logger.warning("could not update the header of customer %s: %s", customer_id, error.message)
        except TelegramAPIError:
            logger.exception("could not update the header of customer %s", customer_id)

    async def in_place(
        self,
        bot: Bot,
        customer: Customer,
        send: Callable[[int, int | None], Awaitable[T]],
        ticket: Ticket | None = None,
    ) -> T | None:
        """Send something into the customer's place (a new topic is named after `ticket`); a
        deleted topic is made again, a closed one reopened. None when there is nowhere to send,
        or it failed (logged)."""
        for attempt in range(2):
            place = await self.place(bot, customer, ticket)
            if place is None:
                return None
            try:
                return await send(place.chat_id, place.topic_id)
            except TelegramBadRequest as error:
                if place.thread is None or place.topic_id is None or attempt:
                    raise
                if _says(error, THREAD_GONE):
                    logger.info("the topic of customer %s was deleted; making a new one", customer.id)
                    await self.support.topic_gone(place.thread.id or 0, place.topic_id)
                elif _says(error, TOPIC_CLOSED):
                    await bot.reopen_forum_topic(place.chat_id, place.topic_id)
                elif _says(error, NOT_FORUM):
                    self._topics_off()
                    await self.warn(bot, "topics_off")
                else:
                    raise
        return None

    async def say(
        self, bot: Bot, customer: Customer, text: str, reply_markup: InlineKeyboardMarkup | None = None
    ) -> Message | None:
        """A line from the bot in the customer's place (already in the managers' language)."""

        async def send(chat_id: int, topic_id: int | None) -> Message:
            return await bot.send_message(chat_id, text, message_thread_id=topic_id, reply_markup=reply_markup)

        try:
            return await self.in_place(bot, customer, send)
        except TelegramAPIError:
            logger.exception("could not write to the managers' group about customer %s", customer.id)
            return None

    async def say_with_actions(self, bot: Bot, customer: Customer, text: str, ticket: Ticket) -> Message | None:
        """A line with the request's Take / Close under it; they go when they no longer apply."""
        with self.i18n.context(), self.managers_locale():
            markup = keyboards.ticket_actions(ticket)
        posted = await self.say(bot, customer, text, markup)
        if posted is not None and posted.reply_markup is not None and ticket.id is not None:
            await self.support.remember_buttons(ticket.id, posted.message_id)
        return posted

    async def warn(self, bot: Bot, problem: str) -> None:
        """One clear message in the group about a missing right, not one per customer message."""
        chat_id = self.settings.manager_chat_id
        now = time.monotonic()
        if chat_id is None or now - self._warned.get(problem, -WARN_EVERY) < WARN_EVERY:
            return
        self._warned[problem] = now
        with self.i18n.context(), self.managers_locale():
            if problem == "topics_off":
                text = _(
                    "⚠️ Topics are turned off in this group. Turn on Topics in the group settings so that each "
                    "customer gets a topic of their own. Until then, customers' messages are posted here, and "
                    "a reply to one of them goes to that customer."
                )
            elif problem == "manage_topics":
                text = _(
                    "⚠️ I cannot create topics: make me an administrator of this group with the "
                    "“Manage topics” right. Until then, customers' messages are posted here, and a reply to one "
                    "of them goes to that customer."
                )
            else:
                text = _(
                    "⚠️ I cannot pin messages: give me the “Pin messages” right, so that each customer's card "
                    "stays at the top of their topic."
                )
        try:
            await bot.send_message(chat_id, text)
        except TelegramAPIError:
            logger.exception("could not tell the managers' group about a missing right (%s)", problem)

    # --- messages both ways ------------------------------------------------------------------

    async def customer_message(self, bot: Bot, view: TicketView, message: Message) -> bool:
        """Copy a customer's message into their place; False when it could not be passed on."""
        customer, ticket = view.customer, view.ticket
        assert ticket.id is not None
        try:

            async def send(chat_id: int, topic_id: int | None) -> tuple[int, int | None]:
                header_id = None
                if topic_id is None:  # no topics: a line says whose message follows
                    with self.i18n.context(), self.managers_locale():
                        line = _("💬 {customer} · request #{id}:").format(
                            customer=support_texts.customer_label(customer), id=ticket.id
                        )
                    header_id = (await bot.send_message(chat_id, line)).message_id
                return await self._copy_signed(bot, customer, message, chat_id, topic_id), header_id

            sent = await self.in_place(bot, customer, send, ticket)
        except TelegramAPIError:
            logger.exception("could not pass a message of customer %s to the group", customer.id)
            return False
        if sent is None:
            return False
        copied_id, header_id = sent
        chat_id = self.settings.manager_chat_id
        await self.support.customer_wrote(
            ticket.id, message.content_type, message.text or message.caption, chat_id, copied_id
        )
        if header_id is not None:  # a reply to the header line reaches the customer too
            await self.support.customer_wrote(ticket.id, "header", None, chat_id, header_id)
        return True

    async def _copy_signed(
        self, bot: Bot, customer: Customer, message: Message, chat_id: int, topic_id: int | None
    ) -> int:
        """The customer's message in the group, under a name line ("Emma:"), as in a chat, so that their words
        never pass for the bot's own lines, which all begin with an emoji of their kind (🆕 ❓ ⏰ ✅).
        A text is sent again with its formatting; a photo, a video or a file is copied with the
        name above its caption; what has no caption (a sticker, a voice message) is copied as it
        is, and a line that long would not fit is copied without the name."""
        name = f"<b>{html.quote(customer.first_name or '—')}:</b>"
        if topic_id is None:  # no topics: the line before it already says whose message this is
            pass
        elif message.text is not None:
            signed = f"{name}\n{message.html_text}"
            if len(signed) <= TEXT_LIMIT:
                sent = await bot.send_message(chat_id, signed, message_thread_id=topic_id)
                return sent.message_id
        elif message.content_type in CAPTIONED:
            signed = f"{name}\n{message.html_text}" if message.caption else name
            if len(signed) <= CAPTION_LIMIT:
                copied = await bot.copy_message(
                    chat_id, message.chat.id, message.message_id, message_thread_id=topic_id, caption=signed
                )
                return copied.message_id
        copied = await bot.copy_message(chat_id, message.chat.id, message.message_id, message_thread_id=topic_id)
        return copied.message_id

    async def manager_message(
        self, bot: Bot, customer: Customer, ticket: Ticket | None, manager: User, message: Message
    ) -> None:
        """A manager's message in the customer's place: kept as a note (`//`), or delivered under
        their name. The first to answer takes the request."""
        text = message.text or message.caption
        if customer.deleted_at is not None:  # nothing to deliver to, and nothing of theirs is kept
            with self.i18n.context(), self.managers_locale():
                await self._reply(bot, message, _("This customer deleted their data: the message was not delivered."))
            return
        if text is not None and text.lstrip().startswith("//"):
            if ticket is None:
                ticket, _opened = await self.support.open_ticket(customer.id or 0, "manager")
            assert ticket.id is not None
            await self.support.manager_wrote(
                ticket.id,
                manager.id,
                manager.full_name,
                MessageDirection.NOTE,
                message.content_type,
                text,
                message.chat.id,
                message.message_id,
            )
            return
        ticket = await self._answering(bot, customer, ticket, manager)
        language = support_texts.language_of(customer, self.business)
        delivery = await deliver_to_customer(bot, self.i18n, language, customer.telegram_id, manager.full_name, message)
        await self._after_delivery(bot, customer, ticket, manager, message, delivery, text)

    async def canned(
        self, bot: Bot, customer: Customer, ticket: Ticket | None, manager: User, key: str, message: Message
    ) -> Delivery:
        """A template from the business file, in the customer's language, under the manager's name."""
        language = support_texts.language_of(customer, self.business)
        template = self.business.support.canned[key].get(language)
        ticket = await self._answering(bot, customer, ticket, manager)
        with self.i18n.context(), self.i18n.use_locale(language):
            text = f"{signature(manager.full_name)}\n{html.quote(template)}"
        try:
            await bot.send_message(customer.telegram_id, text)
            delivery = Delivery.DELIVERED
        except TelegramForbiddenError:
            delivery = Delivery.BLOCKED
        except TelegramAPIError:
            logger.exception("could not send a canned reply to customer %s", customer.id)
            delivery = Delivery.FAILED
        await self._after_delivery(bot, customer, ticket, manager, message, delivery, template, echo=True)
        return delivery

    async def _answering(self, bot: Bot, customer: Customer, ticket: Ticket | None, manager: User) -> Ticket:
        """The open request a manager's words answer (opened or reopened if need be); a customer
        nobody is helping yet is first told who will."""
        if ticket is None or ticket.status != TicketStatus.OPEN:
            ticket, _opened = await self.support.open_ticket(customer.id or 0, "manager")
        if ticket.assignee_id is None:
            await self.tell_customer_who(bot, customer, manager.full_name)
        return ticket

    async def tell_personal_manager(self, bot: Bot, manager_id: int, customer: Customer, ticket: Ticket) -> None:
        """A private word to the customer's own manager that their customer is back (best effort:
        a manager who never opened the bot cannot be written to, and the topic names them anyway)."""
        assert ticket.id is not None
        chosen = await self.chosen_language(manager_id) if self.chosen_language is not None else None
        language = chosen or self.business.managers_language
        with self.i18n.context(), self.i18n.use_locale(language):
            text = support_texts.personal_request(customer, ticket.id)
        try:
            await bot.send_message(manager_id, text)
        except TelegramAPIError as error:
            logger.info("request %s: could not tell manager %s in private (%s)", ticket.id, manager_id, error)

    async def tell_customer_who(self, bot: Bot, customer: Customer, manager_name: str) -> None:
        """ "<name>, manager, will help you.", in the customer's language."""
        with self.i18n.context(), self.i18n.use_locale(support_texts.language_of(customer, self.business)):
            text = _("{manager} from our team will help you.").format(manager=html.quote(manager_name))
        await notify(bot, customer.telegram_id, text)

    async def _after_delivery(
        self,
        bot: Bot,
        customer: Customer,
        ticket: Ticket,
        manager: User,
        message: Message,
        delivery: Delivery,
        text: str | None,
        echo: bool = False,
    ) -> None:
        assert ticket.id is not None
        if delivery != Delivery.DELIVERED:
            with self.i18n.context(), self.managers_locale():
                if delivery == Delivery.BLOCKED:
                    note = _("⚠️ {customer} has blocked the bot: this message was not delivered.").format(
                        customer=support_texts.customer_label(customer)
                    )
                else:
                    note = _("⚠️ Telegram did not accept this message for {customer}. Please try again.").format(
                        customer=support_texts.customer_label(customer)
                    )
            if delivery == Delivery.BLOCKED:
                await self.surveys.set_blocked(customer.telegram_id, True)
            await self._reply(bot, message, note)
            return
        group_message_id = message.message_id
        if echo:  # a template: show the managers what went out
            with self.i18n.context(), self.managers_locale():
                shown = _("📤 {manager} sent: {text}").format(
                    manager=html.quote(manager.full_name), text=html.quote(text or "")
                )
            sent = await self._reply(bot, message, shown)
            group_message_id = sent.message_id if sent is not None else message.message_id
        _message, assigned = await self.support.manager_wrote(
            ticket.id,
            manager.id,
            manager.full_name,
            MessageDirection.OUT,
            message.content_type if not echo else "text",
            text,
            message.chat.id,
            group_message_id,
        )
        alert_id = await self.surveys.contacted_in_conversation(customer.id or 0, manager.id, manager.full_name)
        if alert_id is not None and self.on_alert_contacted is not None:
            await self.on_alert_contacted(bot, alert_id)
        if assigned:
            await self.refresh(bot, customer.id or 0)

    async def _reply(self, bot: Bot, message: Message, text: str) -> Message | None:
        try:
            return await bot.send_message(
                message.chat.id,
                text,
                message_thread_id=message.message_thread_id if message.is_topic_message else None,
                reply_parameters=ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True),
            )
        except TelegramAPIError:
            logger.exception("could not answer a manager in the group")
            return None

    # --- reminders -------------------------------------------------------------------------------

    async def remind_due(self, bot: Bot) -> int:
        """One reminder per unanswered wait, in the customer's topic: to the assignee, or to
        everyone when nobody took the request."""
        sent = 0
        for ticket_id in await self.support.due_reminders():
            view = await self.support.claim_reminder(ticket_id)
            if view is None:
                continue
            minutes = int(self.business.support.reminder.total_seconds() // 60)
            ticket, customer = view.ticket, view.customer
            with self.i18n.context(), self.managers_locale():
                who = support_texts.customer_label(customer)
                if ticket.assignee_id is not None:
                    text = _(
                        "⏰ {manager}, {customer} has been waiting for an answer for over {minutes}\u00a0min."
                    ).format(
                        manager=support_texts.mention(ticket.assignee_id, ticket.assignee_name or "—"),
                        customer=who,
                        minutes=minutes,
                    )
                    markup = None
                else:
                    text = _(
                        "⏰ {customer} has been waiting for over {minutes}\u00a0min and nobody has taken the "
                        "request. Who will take it?"
                    ).format(customer=who, minutes=minutes)
                    markup = keyboards.ticket_actions(ticket)
            if markup is not None:
                posted = await self.say_with_actions(bot, customer, text, ticket)
            else:
                posted = await self.say(bot, customer, text)
            if posted is not None:
                sent += 1
        return sent
