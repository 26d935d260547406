"""The customer's side of surveys: /feedback, the score buttons, the follow-up comment, and
noticing when someone blocks the bot."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, Filter
from aiogram.filters.chat_member_updated import KICKED, MEMBER, ChatMemberUpdatedFilter
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.callbacks import CommentCB, SurveyCB
from bot.core.filters import HasNoText, HasText, InPrivateChat, NotCommand
from bot.loyalty import keyboards as loyalty_keyboards
from bot.loyalty.middleware import Routing
from bot.surveys import keyboards as surveys_keyboards
from bot.surveys import texts as survey_texts
from bot.surveys.jobs import SurveySender
from bot.surveys.rules import SurveyKind, category, kind_of
from bot.surveys.service import AlertEvent, Answered, Outcome, SurveyService
from storage.models import CommentStatus, Customer, Survey


async def cmd_feedback(
    message: Message,
    bot: Bot,
    customer: Customer,
    business: Business,
    surveys: SurveyService,
    survey_sender: SurveySender,
) -> None:
    if not customer.is_member:
        await message.answer(
            _("Surveys are for members of our loyalty programme. Join in one tap:"),
            reply_markup=loyalty_keyboards.join(),
        )
        return
    assert customer.id is not None
    if await surveys.feedback_today(customer.id) >= business.guards.feedback_per_day:
        await message.answer(_("Thank you, you have told us a lot today already. You can answer again tomorrow."))
        return
    question = await surveys.ask_now(customer.id, key=f"feedback:{customer.id}:{message.message_id}")
    if question is None or not await survey_sender.send(bot, question):
        await message.answer(_("Sorry, I could not start the survey. Please try again in a moment."))


async def score_pressed(
    callback: CallbackQuery,
    callback_data: SurveyCB,
    bot: Bot,
    business: Business,
    surveys: SurveyService,
    survey_sender: SurveySender,
    callback_answer: CallbackAnswer,
    customer: Customer | None = None,
) -> None:
    answered = await surveys.answer(callback_data.survey_id, callback.from_user.id, callback_data.score, customer)
    outcome, survey = answered.outcome, answered.survey
    if outcome == Outcome.UNKNOWN or survey is None:
        callback_answer.text, callback_answer.show_alert = _("This button no longer works."), True
        return
    message = callback.message if isinstance(callback.message, Message) else None
    if outcome == Outcome.CLOSED:
        callback_answer.text, callback_answer.show_alert = _("This survey has closed. Thank you for your time!"), True
        if message is not None:
            await _drop_keyboard(message)
        return
    if outcome == Outcome.LOCKED:
        callback_answer.text = _("Your answer is saved. Thank you!")
        return
    if outcome == Outcome.SAME:
        callback_answer.text = _("Saved.")
        return
    kind = kind_of(survey.kind)
    assert survey.id is not None
    # The managers first: the answer is stored, and a failure below must not keep it from them.
    await _tell_managers(bot, answered, survey_sender)
    if kind == SurveyKind.CHECK_BACK:
        if message is not None:
            await message.edit_text(
                survey_texts.question(survey, business) + "\n\n" + survey_texts.check_back_answer(survey.score == 1),
                reply_markup=surveys_keyboards.survey(kind, survey.id, business.surveys.rating_emoji, survey.score),
            )
    else:
        if message is not None:
            await message.edit_reply_markup(
                reply_markup=surveys_keyboards.survey(kind, survey.id, business.surveys.rating_emoji, survey.score)
            )
        await _ask_or_update_follow_up(bot, answered, surveys)
    callback_answer.text = _("Saved.")


async def _ask_or_update_follow_up(bot: Bot, answered: Answered, surveys: SurveyService) -> None:
    survey, customer = answered.survey, answered.customer
    assert survey is not None and customer is not None and survey.id is not None and survey.score is not None
    kind = kind_of(survey.kind)
    if answered.outcome == Outcome.FIRST:
        sent = await bot.send_message(
            customer.telegram_id,
            survey_texts.follow_up(kind, survey.score),
            reply_markup=surveys_keyboards.skip_comment(survey.id),
        )
        await surveys.remember_comment_question(survey.id, sent.message_id)
        return
    # A changed score: the follow-up question follows it while it still waits for an answer.
    if (
        survey.comment_status == CommentStatus.ASKED
        and survey.comment_message_id is not None
        and answered.previous is not None
        and category(kind, answered.previous) != category(kind, survey.score)
    ):
        try:
            await bot.edit_message_text(
                text=survey_texts.follow_up(kind, survey.score),
                chat_id=customer.telegram_id,
                message_id=survey.comment_message_id,
                reply_markup=surveys_keyboards.skip_comment(survey.id),
            )
        except TelegramAPIError:
            pass  # the old question still works: whatever they write is kept


async def _tell_managers(bot: Bot, answered: Answered, survey_sender: SurveySender) -> None:
    if answered.alert_id is None or answered.alert_event is None:
        return
    if answered.alert_event == AlertEvent.CREATED:
        await survey_sender.post_alert(bot, answered.alert_id)
        return
    await survey_sender.refresh_alert(bot, answered.alert_id)
    survey, customer = answered.survey, answered.customer
    if answered.alert_event == AlertEvent.REOPENED and survey is not None and customer is not None:
        with survey_sender.managers_locale():
            if survey.kind == SurveyKind.CHECK_BACK:
                note = _("❗ {name} says the problem is not fixed. The alert is open again.")
            else:
                note = _("❗ {name} changed their answer, and it is unhappy again. The alert is open again.")
            await survey_sender.tell_managers(
                bot, answered.alert_id, note.format(name=survey_texts.customer_name(customer))
            )


async def _drop_keyboard(message: Message) -> None:
    try:
        await message.edit_reply_markup(reply_markup=None)
    except TelegramAPIError:
        pass  # an old message may no longer be editable; the answer above already explains


async def skip_pressed(
    callback: CallbackQuery,
    callback_data: CommentCB,
    surveys: SurveyService,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    survey = await surveys.skip_comment(callback_data.survey_id, callback.from_user.id)
    if survey is None:
        callback_answer.text = _("This button no longer works.")
        return
    if isinstance(callback.message, Message):
        await callback.message.edit_text(survey_texts.thanks_for(survey, surveys.clock(), business))


class AwaitingComment(Filter):
    """The customer owes words to a follow-up question they were asked lately."""

    async def __call__(
        self, message: Message, surveys: SurveyService, customer: Customer | None = None, routing: Routing | None = None
    ) -> bool | dict[str, Survey]:
        if customer is None or customer.id is None:
            return False
        if routing is not None and not surveys.may_await_comment((await routing.state()).comment_asked_at):
            return False
        survey = await surveys.awaiting_comment(customer.id)
        return {"survey": survey} if survey is not None else False


async def comment_written(
    message: Message,
    bot: Bot,
    survey: Survey,
    surveys: SurveyService,
    survey_sender: SurveySender,
    business: Business,
) -> None:
    assert survey.id is not None and message.text is not None
    stored = await surveys.add_comment(survey.id, message.text)
    if stored is None:  # answered meanwhile (a double send): the first words are kept
        await message.answer(survey_texts.thanks())
        return
    _survey, alert_id = stored
    if survey.comment_message_id is not None:
        try:
            await bot.edit_message_reply_markup(
                chat_id=message.chat.id, message_id=survey.comment_message_id, reply_markup=None
            )
        except TelegramAPIError:
            pass  # the Skip button stays; pressing it now says it no longer works
    await message.answer(survey_texts.thanks_for(survey, surveys.clock(), business))
    if alert_id is not None:
        await survey_sender.refresh_alert(bot, alert_id)


async def comment_not_text(message: Message) -> None:
    await message.answer(_("Please write your answer in words, or tap Skip."))


async def bot_blocked(event: ChatMemberUpdated, surveys: SurveyService) -> None:
    await surveys.set_blocked(event.from_user.id, blocked=True)


async def bot_unblocked(event: ChatMemberUpdated, surveys: SurveyService) -> None:
    await surveys.set_blocked(event.from_user.id, blocked=False)


def create_router() -> Router:
    router = Router(name=__name__)
    # A survey is a customer's, in their private chat: its buttons do nothing anywhere else.
    router.message.filter(InPrivateChat())
    router.callback_query.filter(InPrivateChat())
    router.message.register(cmd_feedback, Command("feedback"))
    router.callback_query.register(score_pressed, SurveyCB.filter())
    router.callback_query.register(skip_pressed, CommentCB.filter(F.action == "skip"))
    router.message.register(comment_written, HasText(), NotCommand(), AwaitingComment())
    router.message.register(comment_not_text, HasNoText(), AwaitingComment())
    router.my_chat_member.filter(InPrivateChat())
    router.my_chat_member.register(bot_blocked, ChatMemberUpdatedFilter(member_status_changed=KICKED))
    router.my_chat_member.register(bot_unblocked, ChatMemberUpdatedFilter(member_status_changed=MEMBER))
    return router
