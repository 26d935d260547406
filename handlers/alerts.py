"""The managers' side of an unhappy answer: the alert's buttons in the managers' group, writing
to the customer under the manager's name, and the customer's reply coming back."""

from __future__ import annotations

from datetime import timedelta

from aiogram import Bot, F, Router, html
from aiogram.filters import Command, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.callbacks import AlertCB, ContactCB
from bot.core.config import Settings
from bot.core.filters import InManagersGroup, InManagersPlace, InPrivateChat, IsManager, NotCommand
from bot.core.i18n import in_chat_language
from bot.core.notices import Notices
from bot.core.states import ContactCustomer
from bot.loyalty import texts
from bot.loyalty.middleware import Routing
from bot.support.desk import SupportDesk
from bot.support.relay import Delivery, deliver_to_customer
from bot.support.service import SupportService
from bot.surveys import keyboards
from bot.surveys import texts as survey_texts
from bot.surveys.jobs import SurveySender
from bot.surveys.service import AlertProblem, AlertView, SurveyService
from handlers.support import close_ticket
from storage.models import Customer, TicketStatus

REPLY_WINDOW = timedelta(hours=48)  # a customer's words after a manager wrote go back to the group


async def contact_pressed(
    callback: CallbackQuery,
    callback_data: AlertCB,
    state: FSMContext,
    i18n: I18n,
    settings: Settings,
    business: Business,
    surveys: SurveyService,
    callback_answer: CallbackAnswer,
) -> None:
    view = await surveys.alert_view(callback_data.alert_id)
    if view is None or not isinstance(callback.message, Message):
        callback_answer.text, callback_answer.show_alert = _("This button no longer works."), True
        return
    with in_chat_language(i18n, callback.message.chat.id, settings.manager_chat_id, business.managers_language):
        await _ask_for_contact(callback.message, callback, callback_data, state, view)


async def _ask_for_contact(
    message: Message, callback: CallbackQuery, callback_data: AlertCB, state: FSMContext, view: AlertView
) -> None:
    if message.is_topic_message:
        # The alert sits in the customer's topic, where everything a manager writes reaches them.
        await message.answer(
            _("{manager}, write in this topic: your messages go to {customer}, signed with your name.").format(
                manager=html.quote(callback.from_user.full_name), customer=survey_texts.customer_name(view.customer)
            )
        )  # answer() keeps to the topic of the message the button was under
        return
    await state.set_state(ContactCustomer.writing)
    await state.update_data(alert_id=callback_data.alert_id)
    await message.answer(
        _(
            "{manager}, write your message to {customer} now: your next message in this chat goes to them, "
            "signed with your name. It can be text, a photo or a voice message."
        ).format(manager=html.quote(callback.from_user.full_name), customer=survey_texts.customer_name(view.customer)),
        reply_markup=keyboards.contact_cancel(),
    )


async def contact_written(
    message: Message,
    bot: Bot,
    i18n: I18n,
    state: FSMContext,
    surveys: SurveyService,
    survey_sender: SurveySender,
) -> None:
    assert message.from_user is not None
    alert_id = (await state.get_data()).get("alert_id")
    await state.clear()
    view = await surveys.alert_view(alert_id) if isinstance(alert_id, int) else None
    if view is None:
        await message.reply(_("This alert no longer exists. Nothing was sent."))
        return
    customer = view.customer
    delivery = await deliver_to_customer(
        bot, i18n, surveys.language_of(customer), customer.telegram_id, message.from_user.full_name, message
    )
    name = survey_texts.customer_name(customer)
    if delivery == Delivery.BLOCKED:
        await message.reply(
            _("{customer} has blocked the bot, so the message was not delivered.").format(customer=name)
        )
        return
    if delivery == Delivery.FAILED:
        await message.reply(_("Telegram did not accept the message. Please try again."))
        return
    await surveys.contacted(view.alert.id or 0, message.from_user.id, message.from_user.full_name)
    await message.reply(_("✉️ Sent to {customer}. Their reply will appear here.").format(customer=name))
    await survey_sender.refresh_alert(bot, view.alert.id or 0)


async def contact_cancelled(
    callback: CallbackQuery,
    state: FSMContext,
    i18n: I18n,
    settings: Settings,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    await state.clear()
    callback_answer.text = _("Cancelled.")
    if isinstance(callback.message, Message):
        with in_chat_language(i18n, callback.message.chat.id, settings.manager_chat_id, business.managers_language):
            await callback.message.edit_text(_("Cancelled. Nothing was sent."))


async def cmd_cancel_in_group(message: Message, state: FSMContext) -> None:
    had_state = await state.get_state() is not None
    await state.clear()
    await message.reply(_("Cancelled.") if had_state else _("Nothing to cancel."))


async def bonus_pressed(
    callback: CallbackQuery,
    callback_data: AlertCB,
    bot: Bot,
    notices: Notices,
    surveys: SurveyService,
    survey_sender: SurveySender,
    callback_answer: CallbackAnswer,
) -> None:
    callback_answer.show_alert = True
    try:
        bonus = await surveys.apology_bonus(callback_data.alert_id, callback.from_user.id, callback.from_user.full_name)
    except AlertProblem as problem:
        callback_answer.text = _alert_problem(problem)
        return
    if not bonus.created:
        callback_answer.text = _("The apology bonus was already given by {name}.").format(
            name=bonus.view.alert.bonus_by_name or "—"
        )
        return
    callback_answer.text = _("{points} added to the customer's card.").format(points=texts.points(bonus.entry.points))
    await notices.deliver(bot, bonus.notices)  # the customer's word, committed with the bonus
    await survey_sender.refresh_alert(bot, callback_data.alert_id)


async def resolve_pressed(
    callback: CallbackQuery,
    callback_data: AlertCB,
    bot: Bot,
    surveys: SurveyService,
    survey_sender: SurveySender,
    support: SupportService,
    desk: SupportDesk,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        view = await surveys.resolve(callback_data.alert_id, callback.from_user.id, callback.from_user.full_name)
    except AlertProblem as problem:
        callback_answer.text, callback_answer.show_alert = _alert_problem(problem), True
        return
    callback_answer.text = _("Marked as resolved.")
    await survey_sender.refresh_alert(bot, callback_data.alert_id)
    # One action finishes the case: the customer's open request closes with the alert.
    ticket = await support.latest_ticket(view.alert.customer_id)
    if ticket is not None and ticket.id is not None and ticket.status == TicketStatus.OPEN:
        await close_ticket(bot, ticket.id, callback.from_user, support, desk, surveys, survey_sender)
    else:
        await desk.refresh(bot, view.alert.customer_id)


def _alert_problem(problem: AlertProblem) -> str:
    if problem.reason == "already_resolved":
        return _("Already resolved by {name}.").format(name=problem.by or "—")
    if problem.reason == "no_bonus":
        return _("The apology bonus is turned off in the business file.")
    if problem.reason == "not_member":
        return _("This customer is no longer a member, so no points can be added.")
    if problem.reason == "apologised_lately":
        return _("This customer has already had an apology bonus recently: one per customer per survey period.")
    if problem.reason == "own_card":
        return _("This is your own card: nobody can add points to their own card. Ask another manager.")
    return _("This button no longer works.")


class ContactedLately(Filter):
    """The customer's message answers a manager who wrote to them lately."""

    async def __call__(
        self, message: Message, surveys: SurveyService, customer: Customer | None = None, routing: Routing | None = None
    ) -> bool | dict[str, AlertView]:
        if customer is None or customer.id is None:
            return False
        if routing is not None:
            contacted_at = (await routing.state()).contacted_at
            if contacted_at is None or contacted_at < surveys.clock() - REPLY_WINDOW:
                return False
        view = await surveys.contacted_recently(customer.id, REPLY_WINDOW)
        return {"view": view} if view is not None else False


async def customer_replied(
    message: Message, bot: Bot, view: AlertView, settings: Settings, survey_sender: SurveySender
) -> None:
    group = settings.manager_chat_id
    if group is None:
        await message.answer(_("Sorry, I could not pass this on. Please try again later."))
        return
    with survey_sender.managers_locale():
        header = _("💬 Reply from {customer} (alert #{id}):").format(
            customer=survey_texts.customer_name(view.customer), id=view.alert.id
        )
    await bot.send_message(group, header, reply_parameters=survey_sender.reply_to_alert(view))
    await bot.copy_message(group, message.chat.id, message.message_id)
    await message.answer(_("Passed on to the manager. They will answer here."))


def create_router() -> Router:
    router = Router(name=__name__)
    # An alert names the customer and quotes them: its buttons work in the managers' group and in
    # a manager's private chat, not under a forged press in another group.
    managers, place = IsManager(), InManagersPlace()
    router.callback_query.register(contact_pressed, AlertCB.filter(F.action == "contact"), place, managers)
    router.callback_query.register(bonus_pressed, AlertCB.filter(F.action == "bonus"), place, managers)
    router.callback_query.register(resolve_pressed, AlertCB.filter(F.action == "resolve"), place, managers)
    router.callback_query.register(contact_cancelled, ContactCB.filter(F.action == "cancel"), place, managers)
    in_group = InManagersGroup()
    router.message.register(cmd_cancel_in_group, Command("cancel"), in_group, managers)
    router.message.register(
        contact_written,
        StateFilter(ContactCustomer.writing),
        in_group,
        NotCommand(),
        managers,
    )
    router.message.register(customer_replied, InPrivateChat(), NotCommand(), ContactedLately())
    return router
