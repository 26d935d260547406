"""Talking to a person: the customer opens a request and writes; managers answer from the
customer's topic (or by replying, when the group has no topics), take, hand over and close it."""

from __future__ import annotations

from datetime import timedelta

from aiogram import Bot, F, Router, html
from aiogram.enums import ContentType
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import CallbackQuery, Message, User
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.callbacks import MenuCB, SupportCB, TicketCB
from bot.core.config import Settings
from bot.core.filters import (
    MEMBER_STATUSES,
    ContentIn,
    FromPerson,
    InManagersGroup,
    InManagersPlace,
    InPrivateChat,
    IsManager,
    NotCommand,
)
from bot.core.notify import notify
from bot.faq.service import FaqService
from bot.loyalty.middleware import Routing
from bot.support import keyboards
from bot.support import texts as support_texts
from bot.support.desk import SupportDesk
from bot.support.service import Opened, SupportService, TicketView
from bot.surveys.jobs import SurveySender
from bot.surveys.rules import SurveyKind, Trigger
from bot.surveys.service import AlertProblem, SurveyService
from storage.models import Customer, FaqQuery, TicketStatus

RELAYED = {
    ContentType.TEXT,
    ContentType.PHOTO,
    ContentType.DOCUMENT,
    ContentType.VOICE,
    ContentType.VIDEO,
    ContentType.VIDEO_NOTE,
    ContentType.AUDIO,
    ContentType.ANIMATION,
    ContentType.STICKER,
    ContentType.LOCATION,
    ContentType.VENUE,
    ContentType.CONTACT,
}


# --- the customer's side ---------------------------------------------------------------------


async def open_request(
    bot: Bot,
    customer: Customer,
    source: str,
    support: SupportService,
    desk: SupportDesk,
    business: Business,
    question: str | None = None,
    faq: FaqService | None = None,
) -> None:
    """Open (or continue) the customer's request, tell them what happens next, and tell the
    managers in the customer's topic, with what led here: the reason, and the customer's last
    questions to the bot with its answers (`faq`). A question the FAQ could not answer goes along."""
    assert customer.id is not None
    ticket, opened = await support.open_ticket(customer.id, source)
    personal = False
    if opened == Opened.NEW and customer.manager_id is not None:
        # Offered first to their personal manager, the one who last helped them, if still a manager.
        name = await _member_name(bot, desk.settings, customer.manager_id)
        if name is None:
            await support.forget_manager(customer.id)
        else:
            assert ticket.id is not None
            taken, personal = await support.take(ticket.id, customer.manager_id, customer.manager_name or name)
            ticket = taken or ticket
    now = support.clock()
    if opened == Opened.ALREADY and question is None:
        text = _("You are already talking to our team: just write here, and a manager will answer in this chat.")
    elif question is not None:
        text = _("I have passed your question on. A manager will answer here; you can add details or a photo.")
    else:
        text = _("Write your question here, in one message or several. A manager will answer in this chat.")
    opening = business.support.hours.next_opening(now, business.timezone)
    if opening is not None:
        text += "\n\n" + support_texts.closed_now(opening, now, business)
    if ticket.assignee_name and opened != Opened.ALREADY:
        text += "\n" + support_texts.your_manager(ticket.assignee_name)
    await notify(bot, customer.telegram_id, text)
    with desk.i18n.context(), desk.managers_locale():
        who = support_texts.customer_label(customer)
        if opened == Opened.NEW:
            line = _("🆕 Request #{id} from {customer}.").format(id=ticket.id, customer=who)
        elif opened == Opened.REOPENED:
            line = _("🔁 {customer} is back: request #{id} is open again.").format(customer=who, id=ticket.id)
        else:
            line = None
        if line is not None and personal and ticket.assignee_id is not None:
            line += "\n" + support_texts.offered_to(ticket.assignee_id, ticket.assignee_name or "")
    if line is not None:
        await desk.say_with_actions(bot, customer, line, ticket)
    if personal and ticket.assignee_id is not None:
        await desk.tell_personal_manager(bot, ticket.assignee_id, customer, ticket)
    story = await faq.recent(customer.id, HANDOFF_STORY) if faq is not None and opened != Opened.ALREADY else []
    if question is not None or story or source == "person":
        # What led here, so the manager starts from the customer's own words: why the bot handed
        # the conversation on, and the customer's last questions with what the bot answered.
        with desk.i18n.context(), desk.managers_locale():
            said = [
                support_texts.bot_exchange(query.text or "", _bot_answer(query, faq, business.managers_language))
                for query in story
                if query.text
            ]
            if question is not None and not any(query.text == question for query in story):
                answer = _("asked for a person") if source == "person" else _("no answer")
                said.append(support_texts.bot_exchange(question, answer))
            block = support_texts.handoff(_handoff_reason(source, story), said)
        posted = await desk.say(bot, customer, block)
        if posted is not None:  # a manager's reply to it reaches the customer
            assert ticket.id is not None
            await support.customer_wrote(ticket.id, "text", question, posted.chat.id, posted.message_id)
    if opened != Opened.ALREADY:
        await desk.refresh(bot, customer.id)


HANDOFF_STORY = timedelta(hours=2)  # the customer's questions to the bot this recent go with a hand-off


def _bot_answer(query: FaqQuery, faq: FaqService | None, language: str) -> str:
    """What the bot did with a question, in the managers' words (their locale is current)."""

    def title(entry_id: str) -> str:
        if faq is None:
            return entry_id
        # The quotes are the managers' language's: “…” in English, „…” in Polish, «…» in Russian.
        return _("“{title}”").format(title=html.quote(faq.title(entry_id, language)))

    if query.outcome in ("answer", "picked") and query.entry_id:
        answered = _("answered with {entry}").format(entry=title(query.entry_id))
        if query.helpful is False:
            answered += " · " + _("👎 did not help")
        return answered
    if query.outcome == "choice" and query.entry_id:
        return _("offered {entry} and others").format(entry=title(query.entry_id))
    return _("no answer")


def _handoff_reason(source: str, story: list[FaqQuery]) -> str:
    if source == "faq":
        if story and story[-1].helpful is False:
            return _("the bot's answer did not help")
        return _("the bot had no answer")
    if source == "person":
        return _("the customer asked for a person")
    if source == "menu":
        return _("the customer tapped “Talk to a person”")
    return _("the customer sent /support")


async def cmd_support(
    message: Message,
    bot: Bot,
    customer: Customer,
    support: SupportService,
    desk: SupportDesk,
    faq: FaqService,
    business: Business,
) -> None:
    await open_request(bot, customer, "support", support, desk, business, faq=faq)


async def support_pressed(
    callback: CallbackQuery,
    callback_data: SupportCB,
    bot: Bot,
    customer: Customer,
    support: SupportService,
    desk: SupportDesk,
    faq: FaqService,
    business: Business,
) -> None:
    question = None
    if callback_data.query and customer.id is not None:
        asked = await faq.question(callback_data.query, customer.id)
        question = asked.text if asked is not None else None
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
    await open_request(bot, customer, callback_data.source, support, desk, business, question, faq)


async def menu_support_pressed(
    callback: CallbackQuery,
    bot: Bot,
    customer: Customer,
    support: SupportService,
    desk: SupportDesk,
    faq: FaqService,
    business: Business,
) -> None:
    await open_request(bot, customer, "menu", support, desk, business, faq=faq)


class InConversation(Filter):
    """The customer's message belongs to a request: an open one, or one closed so lately that
    writing again reopens it (which this filter does)."""

    async def __call__(
        self,
        message: Message,
        support: SupportService,
        customer: Customer | None = None,
        routing: Routing | None = None,
    ) -> bool | dict[str, object]:
        if customer is None or customer.id is None:
            return False
        if routing is not None:
            state = await routing.state()
            if not support.may_continue(state.ticket_status, state.ticket_closed_at):
                return False
        found = await support.continuing(customer.id)
        if found is None:
            return False
        ticket, opened = found
        return {"conversation": TicketView(ticket, customer), "opened": opened}


async def customer_wrote(
    message: Message,
    bot: Bot,
    conversation: TicketView,
    opened: Opened,
    support: SupportService,
    desk: SupportDesk,
    business: Business,
) -> None:
    customer, ticket = conversation.customer, conversation.ticket
    if await support.written_today(customer.id or 0) >= business.guards.support_messages_per_day:
        await message.answer(
            _(
                "You have sent us a lot of messages today: the team has them all and will answer here. "
                "You can write again tomorrow."
            )
        )
        return
    if message.content_type not in RELAYED:
        await message.answer(
            _("I cannot pass this kind of message on. Please send text, a photo, a file or a voice message.")
        )
        return
    if opened == Opened.REOPENED:
        with desk.i18n.context(), desk.managers_locale():
            line = _("🔁 {customer} wrote again: request #{id} is open again.").format(
                customer=support_texts.customer_label(customer), id=ticket.id
            )
        await desk.say_with_actions(bot, customer, line, ticket)
        now = support.clock()
        opening = business.support.hours.next_opening(now, business.timezone)
        if opening is not None:
            await message.answer(support_texts.closed_now(opening, now, business))
    if not await desk.customer_message(bot, conversation, message):
        await message.answer(_("Sorry, I could not pass this on to our team. Please try again in a moment."))
        return
    if opened == Opened.REOPENED:
        await desk.refresh(bot, customer.id or 0)


# --- the managers' side ----------------------------------------------------------------------


class CustomerPlace(Filter):
    """A message in the managers' group about one customer: in their topic, or a reply to one of
    their messages. Gives `conversation` (their latest request, if any) and `place_customer`."""

    async def __call__(self, message: Message, settings: Settings, support: SupportService) -> bool | dict[str, object]:
        if settings.manager_chat_id is None or message.chat.id != settings.manager_chat_id:
            return False
        if message.is_topic_message and message.message_thread_id is not None:
            found = await support.in_topic(message.chat.id, message.message_thread_id)
            if found is not None:
                customer, ticket = found
                return {"conversation": TicketView(ticket, customer) if ticket else None, "place_customer": customer}
        reply = message.reply_to_message
        if reply is not None and not reply.forum_topic_created:
            replied = await support.by_group_message(message.chat.id, reply.message_id)
            if replied is not None:
                return {"conversation": replied[0], "place_customer": replied[0].customer}
        return False


async def manager_wrote(
    message: Message,
    bot: Bot,
    place_customer: Customer,
    conversation: TicketView | None,
    support: SupportService,
    desk: SupportDesk,
) -> None:
    assert message.from_user is not None
    ticket = conversation.ticket if conversation is not None else None
    await desk.manager_message(bot, place_customer, ticket, message.from_user, message)


async def close_ticket(
    bot: Bot,
    ticket_id: int,
    manager: User,
    support: SupportService,
    desk: SupportDesk,
    surveys: SurveyService,
    survey_sender: SurveySender,
) -> bool:
    """Close a request: tell the customer, ask them to rate the conversation, tell the group.
    False when it was not open."""
    ticket = await support.close(ticket_id, manager.full_name)
    if ticket is None:
        return False
    view = await support.ticket(ticket_id)
    assert view is not None
    customer = view.customer
    language = support_texts.language_of(customer, desk.business)
    with desk.i18n.use_locale(language):
        await notify(
            bot,
            customer.telegram_id,
            _("{manager} has closed your request. If you need anything else, just write here.").format(
                manager=html.quote(manager.full_name)
            ),
        )
    survey = await surveys.request(
        customer.id or 0,
        Trigger.SUPPORT,
        f"ticket:{ticket_id}:{ticket.reopened_count}",
        SurveyKind.RATING,
        store=ticket.store,  # the conversation's store, not a later visit's
    )
    question = await surveys.claim(survey.id or 0)
    if question is not None:
        await survey_sender.send(bot, question)
    with desk.managers_locale():
        line = _("✅ Request #{id} closed by {manager}.").format(id=ticket_id, manager=html.quote(manager.full_name))
    await desk.say(bot, customer, line)
    # One action finishes the case: the customer's open alert is resolved with the request.
    alert_id = await surveys.open_alert_of(customer.id or 0)
    if alert_id is not None:
        try:
            await surveys.resolve(alert_id, manager.id, manager.full_name)
        except AlertProblem:
            pass  # resolved by someone else a moment ago
        await survey_sender.refresh_alert(bot, alert_id)
    await desk.refresh(bot, customer.id or 0)
    return True


async def cmd_close(
    message: Message,
    bot: Bot,
    conversation: TicketView | None,
    support: SupportService,
    desk: SupportDesk,
    surveys: SurveyService,
    survey_sender: SurveySender,
) -> None:
    assert message.from_user is not None
    if conversation is None or conversation.ticket.status != TicketStatus.OPEN:
        await message.reply(_("This customer has no open request."))
        return
    if not await close_ticket(
        bot, conversation.ticket.id or 0, message.from_user, support, desk, surveys, survey_sender
    ):
        await message.reply(_("This request is already closed."))


async def ticket_pressed(
    callback: CallbackQuery,
    callback_data: TicketCB,
    bot: Bot,
    support: SupportService,
    desk: SupportDesk,
    surveys: SurveyService,
    survey_sender: SurveySender,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    manager = callback.from_user
    view = await support.ticket(callback_data.ticket_id)
    if view is None:
        callback_answer.text, callback_answer.show_alert = _("This button no longer works."), True
        return
    if callback_data.action == "close":
        closed = await close_ticket(bot, callback_data.ticket_id, manager, support, desk, surveys, survey_sender)
        callback_answer.text = _("Closed.") if closed else _("This request is already closed.")
        return
    if view.ticket.status != TicketStatus.OPEN:
        callback_answer.text, callback_answer.show_alert = _("This request is already closed."), True
        return
    if callback_data.action == "take":
        ticket, assigned = await support.take(callback_data.ticket_id, manager.id, manager.full_name)
        if not assigned:
            callback_answer.text = _("{name} has already taken this request.").format(
                name=(ticket.assignee_name if ticket else None) or "—"
            )
            callback_answer.show_alert = True
            return
        await _tell_assigned(bot, view, manager.id, manager.full_name, None, desk)
        callback_answer.text = _("You're handling this request.")
        return
    if callback_data.action == "assign" and callback_data.to:
        name = await _member_name(bot, settings, callback_data.to)
        if name is None:
            callback_answer.text, callback_answer.show_alert = _("They are not a member of the managers' group."), True
            return
        await _assign(bot, view, callback_data.to, name, manager.full_name, support, desk)
        callback_answer.text = _("Handed over to {name}.").format(name=name)
        if isinstance(callback.message, Message):
            await callback.message.edit_reply_markup(reply_markup=None)
        return
    callback_answer.text, callback_answer.show_alert = _("This button no longer works."), True


async def _member_name(bot: Bot, settings: Settings, user_id: int) -> str | None:
    if settings.manager_chat_id is None:
        return None
    try:
        member = await bot.get_chat_member(settings.manager_chat_id, user_id)
    except TelegramAPIError:
        return None
    if member.status not in MEMBER_STATUSES or member.user.is_bot:
        return None
    return member.user.full_name


async def _tell_assigned(
    bot: Bot,
    view: TicketView,
    manager_id: int,
    manager_name: str,
    by: str | None,
    desk: SupportDesk,
) -> None:
    customer = view.customer
    await desk.tell_customer_who(bot, customer, manager_name)
    with desk.managers_locale():
        if by is None:
            line = _("🙋 {manager} took request #{id}.").format(manager=html.quote(manager_name), id=view.ticket.id)
        else:
            line = _("👤 {by} handed request #{id} to {manager}.").format(
                by=html.quote(by), id=view.ticket.id, manager=support_texts.mention(manager_id, manager_name)
            )
    await desk.say(bot, customer, line)
    await desk.refresh(bot, customer.id or 0)


async def _assign(
    bot: Bot, view: TicketView, manager_id: int, name: str, by: str, support: SupportService, desk: SupportDesk
) -> None:
    ticket, changed = await support.assign(view.ticket.id or 0, manager_id, name)
    if changed and ticket is not None:
        await _tell_assigned(bot, TicketView(ticket, view.customer), manager_id, name, by, desk)


async def cmd_assign(
    message: Message,
    bot: Bot,
    conversation: TicketView | None,
    support: SupportService,
    desk: SupportDesk,
    settings: Settings,
) -> None:
    assert message.from_user is not None
    if conversation is None or conversation.ticket.status != TicketStatus.OPEN:
        await message.reply(_("This customer has no open request."))
        return
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and not reply.from_user.is_bot:
        target = reply.from_user
        name = await _member_name(bot, settings, target.id)
        if name is None:
            await message.reply(_("They are not a member of the managers' group."))
            return
        await _assign(bot, conversation, target.id, name, message.from_user.full_name, support, desk)
        return
    managers = await support.known_managers(exclude=conversation.ticket.assignee_id)
    if message.from_user.id != conversation.ticket.assignee_id and all(
        manager_id != message.from_user.id for manager_id, _name in managers
    ):
        managers.insert(0, (message.from_user.id, message.from_user.full_name))
    await message.reply(
        _("Who should take request #{id}? Pick a manager, or reply /assign to a message of theirs.").format(
            id=conversation.ticket.id
        ),
        reply_markup=keyboards.assign_to(conversation.ticket.id or 0, managers),
    )


async def cmd_template(
    message: Message,
    command: CommandObject,
    bot: Bot,
    place_customer: Customer,
    conversation: TicketView | None,
    desk: SupportDesk,
    business: Business,
) -> None:
    assert message.from_user is not None
    key = (command.args or "").strip().lower()
    canned = business.support.canned
    if key not in canned:
        keys = ", ".join(sorted(canned)) or "—"
        if key:
            await message.reply(_("There is no reply “{key}”. Replies: {keys}").format(key=html.quote(key), keys=keys))
        else:
            await message.reply(_("Send /t and the reply's name. Replies: {keys}").format(keys=keys))
        return
    ticket = conversation.ticket if conversation is not None else None
    await desk.canned(bot, place_customer, ticket, message.from_user, key, message)


async def command_outside_topic(message: Message) -> None:
    await message.reply(_("Use this command in a customer's topic, or as a reply to one of their messages."))


def create_router() -> Router:
    router = Router(name=__name__)
    private = InPrivateChat()
    managers = IsManager()
    router.message.register(cmd_support, Command("support"), private)
    router.callback_query.register(support_pressed, SupportCB.filter(), InPrivateChat())
    router.callback_query.register(menu_support_pressed, MenuCB.filter(F.action == "support"), InPrivateChat())
    router.message.register(customer_wrote, private, NotCommand(), InConversation())
    # A request's buttons name the customer: the managers' group or a manager's private chat only.
    router.callback_query.register(ticket_pressed, TicketCB.filter(), InManagersPlace(), managers)
    place = CustomerPlace()
    group = InManagersGroup()
    router.message.register(cmd_close, Command("close"), group, managers, place)
    router.message.register(cmd_assign, Command("assign"), group, managers, place)
    router.message.register(cmd_template, Command("t"), group, managers, place)
    router.message.register(command_outside_topic, Command("close", "assign", "t"), group, managers)
    router.message.register(
        manager_wrote,
        group,
        NotCommand(notes=True),  # commands are not for the customer; notes are handled
        ContentIn(RELAYED),
        FromPerson(),
        managers,
        place,
    )
    return router
