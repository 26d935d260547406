"""Questions & answers: the /faq menu, free-text questions matched against the FAQ, 👍/👎,
managers' answers saved as drafts, and the admins' review, reload and figures."""

from __future__ import annotations

from aiogram import Bot, F, Router, html
from aiogram.filters import Command, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.business import Business
from bot.core import formatting
from bot.core.callbacks import DraftCB, FaqMenuCB, FaqRateCB, MenuCB
from bot.core.config import ConfigError
from bot.core.filters import (
    HasNoText,
    HasText,
    InManagersGroup,
    InManagersPlace,
    InPrivateChat,
    IsAdmin,
    IsManager,
    IsReply,
    NotCommand,
)
from bot.core.keyboards import main_menu
from bot.core.states import FaqReview
from bot.faq import keyboards
from bot.faq.intents import Intent, recognise
from bot.faq.rules import Verdict
from bot.faq.service import MAX_TITLE, MIN_TITLE, FaqService, entry_title
from bot.loyalty import texts as loyalty_texts
from bot.loyalty.filters import IsStaff
from bot.loyalty.service import LoyaltyService
from bot.support import texts as support_texts
from bot.support.desk import SupportDesk
from bot.support.service import SupportService
from handlers.card import not_a_member, send_card
from handlers.cashier import LooksLikeAmount, amount_without_a_card
from handlers.support import open_request
from storage.models import Customer, DraftStatus, FaqDraft, MessageDirection

STATS_DAYS = 30


def _language(customer: Customer, business: Business) -> str:
    return support_texts.language_of(customer, business)


def _answer_text(faq: FaqService, entry_id: str, language: str, business: Business) -> str | None:
    """An entry as the customer reads it; the programme's figures in it ({welcome_bonus}, {tiers}…)
    from the business file as it is now."""
    entry = faq.faq.entry(entry_id)
    text = entry.text(language) if entry is not None else None
    if text is None:
        return None
    answer = text.answer.format_map(loyalty_texts.programme_facts(business)) if "{" in text.answer else text.answer
    return f"<b>{html.quote(text.question)}</b>\n\n{answer}"


# --- customers -------------------------------------------------------------------------------


async def show_categories(message: Message, customer: Customer, faq: FaqService, business: Business) -> None:
    language = _language(customer, business)
    await message.answer(
        _("Questions & answers: pick a topic."),
        reply_markup=keyboards.faq_categories(faq.faq.categories_in(language), language),
    )


async def menu_faq_pressed(callback: CallbackQuery, customer: Customer, faq: FaqService, business: Business) -> None:
    if isinstance(callback.message, Message):
        await show_categories(callback.message, customer, faq, business)


async def menu_card_pressed(
    callback: CallbackQuery, bot: Bot, customer: Customer, loyalty: LoyaltyService, business: Business
) -> None:
    if not customer.is_member:
        await bot.send_message(
            customer.telegram_id, _("You are not in the loyalty programme yet. Send /start to join.")
        )
        return
    await send_card(bot, customer, loyalty, business)


async def faq_menu_pressed(
    callback: CallbackQuery,
    callback_data: FaqMenuCB,
    customer: Customer,
    faq: FaqService,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    language = _language(customer, business)
    message = callback.message
    if not isinstance(message, Message):
        return
    if callback_data.action == "cats":
        await show_categories(message, customer, faq, business)
        return
    if callback_data.action == "cat":
        category = faq.faq.category(callback_data.value)
        entries = faq.faq.in_category(callback_data.value, language)
        if category is None or not entries:
            callback_answer.text, callback_answer.show_alert = _("This topic is no longer in the FAQ."), True
            return
        await message.edit_text(
            f"<b>{html.quote(category.names.get(language, category.id))}</b>",
            reply_markup=keyboards.faq_questions(entries, language),
        )
        return
    text = _answer_text(faq, callback_data.value, language, business)
    if text is None or customer.id is None:
        callback_answer.text, callback_answer.show_alert = _("This answer is no longer in the FAQ."), True
        return
    query = await faq.shown(customer.id, language, callback_data.value, callback_data.query or None)
    await message.edit_text(text, reply_markup=keyboards.faq_answer(query.id or 0))


class PlainWords(Filter):
    """The few things a customer says that are not questions (`bot/faq/intents.py`): my card, my
    balance, my history, a person please, hello, thanks. Checked before the FAQ matcher."""

    async def __call__(
        self, message: Message, business: Business, customer: Customer | None = None
    ) -> bool | dict[str, Intent]:
        if customer is None or message.text is None:
            return False
        intent = recognise(message.text, _language(customer, business))
        return {"intent": intent} if intent is not None else False


async def plain_words_said(
    message: Message,
    bot: Bot,
    intent: Intent,
    customer: Customer,
    loyalty: LoyaltyService,
    faq: FaqService,
    support: SupportService,
    desk: SupportDesk,
    business: Business,
) -> None:
    """Answered with the thing itself: the card, the balance, the history, a person, a word back."""
    if intent == Intent.HUMAN:  # their words go along: "the cashier forgot my points, get me a person"
        await open_request(bot, customer, "person", support, desk, business, message.text, faq)
        return
    if intent == Intent.THANKS:
        await message.answer(_("You are welcome! Write any time."))
        return
    if intent == Intent.HELLO:
        await message.answer(
            _("Hello, {name}! I can show your loyalty card, answer your questions or pass you to a person.").format(
                name=html.quote(customer.first_name or "")
            ),
            reply_markup=main_menu(),
        )
        return
    if not customer.is_member:
        await not_a_member(message)
        return
    if intent == Intent.CARD:
        await send_card(bot, customer, loyalty, business)
    elif intent == Intent.BALANCE:
        await message.answer(loyalty_texts.card_details(customer, business), reply_markup=main_menu())
    else:
        await message.answer(loyalty_texts.history(await loyalty.history(customer.id or 0), business))


async def question_asked(message: Message, customer: Customer, faq: FaqService, business: Business) -> None:
    """A customer's own words: the answer, a choice of close ones, or the way to a person."""
    assert message.text is not None and customer.id is not None
    language = _language(customer, business)
    asked = await faq.ask(customer.id, language, message.text, per_day=business.guards.questions_per_day)
    if asked is None:  # a day's questions are kept, and no more
        await message.answer(
            _("You have asked a lot of questions today. Browse /faq, or write to a person with /support.")
        )
        return
    query_id, match = asked.query.id or 0, asked.match
    if not asked.second_miss and match.verdict == Verdict.ANSWER and match.best is not None:
        text = _answer_text(faq, match.best, language, business)
        if text is not None:
            await message.answer(text, reply_markup=keyboards.faq_answer(query_id))
            return
    if not asked.second_miss and match.verdict == Verdict.CHOICE:
        entries = [e for e in (faq.faq.entry(entry_id) for entry_id, _score in match.ranked) if e is not None]
        await message.answer(
            _("Is it one of these?"), reply_markup=keyboards.faq_questions(entries, language, query_id, back=False)
        )
        return
    await message.answer(
        _(
            "I could not find an answer to that. I'll pass it to a manager: tap the button, and they will answer "
            "here. Send /help to see what else I can do."
        ),
        reply_markup=keyboards.hand_off(query_id),
    )


async def rate_pressed(
    callback: CallbackQuery,
    callback_data: FaqRateCB,
    bot: Bot,
    customer: Customer,
    faq: FaqService,
    support: SupportService,
    desk: SupportDesk,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    query = await faq.rate(callback_data.query, customer.id or 0, callback_data.helpful)
    if query is None:
        callback_answer.text, callback_answer.show_alert = _("This button no longer works."), True
        return
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(
            reply_markup=keyboards.faq_answer(query.id or 0, callback_data.helpful)
        )
    if callback_data.helpful:
        callback_answer.text = _("Glad it helped!")
        return
    await open_request(bot, customer, "faq", support, desk, business, query.text, faq)


# --- managers: answers become drafts -----------------------------------------------------------


async def cmd_faq_draft(message: Message, business: Business, support: SupportService, faq: FaqService) -> None:
    assert message.from_user is not None
    reply = message.reply_to_message
    found = await support.by_group_message(message.chat.id, reply.message_id) if reply is not None else None
    if found is None or found[1].direction != MessageDirection.OUT or not found[1].text:
        await message.reply(_("Reply /faq to a manager's answer in a customer's topic to propose it for the FAQ."))
        return
    view, answer = found
    question = await support.question_before(answer)
    if question is None:
        await message.reply(_("I could not find the customer's question before this answer, so no draft was saved."))
        return
    draft, created = await faq.save_draft(
        answer.id or 0,
        support_texts.language_of(view.customer, business),
        question,
        answer.text or "",
        message.from_user.id,
        message.from_user.full_name,
    )
    if not created:
        await message.reply(_("This answer is already FAQ draft #{id}.").format(id=draft.id))
        return
    await message.reply(_("📝 Saved as FAQ draft #{id}. Admins review drafts with /faq_drafts.").format(id=draft.id))


async def faq_in_group_without_reply(message: Message) -> None:
    await message.reply(_("Reply /faq to a manager's answer in a customer's topic to propose it for the FAQ."))


# --- admins ----------------------------------------------------------------------------------


async def cmd_reload_faq(message: Message, faq: FaqService) -> None:
    try:
        current = await faq.reload()
    except ConfigError as error:
        await message.answer(
            _("The FAQ file has a problem, so the FAQ in use has not changed:\n<pre>{error}</pre>").format(
                error=html.quote(str(error))
            )
        )
        return
    entries = ngettext("{count} entry", "{count} entries", len(current.entries)).format(count=len(current.entries))
    topics = ngettext("{count} topic", "{count} topics", len(current.categories)).format(count=len(current.categories))
    await message.answer(_("FAQ reloaded: {entries} in {topics}.").format(entries=entries, topics=topics))


def _draft_text(draft: FaqDraft, waiting: int) -> str:
    lines = [
        _("<b>FAQ draft #{id}</b> by {name}, {language}").format(
            id=draft.id, name=html.quote(draft.created_by_name), language=draft.language
        ),
        _("<b>Question:</b> {text}").format(text=html.quote(draft.title or draft.question)),
        _("<b>Answer:</b> {text}").format(text=html.quote(draft.answer)),
    ]
    if waiting > 1:
        lines.append(
            ngettext("{count} more draft is waiting.", "{count} more drafts are waiting.", waiting - 1).format(
                count=waiting - 1
            )
        )
    return "\n\n".join(lines)


async def _show_next_draft(message: Message, faq: FaqService) -> None:
    drafts = await faq.pending_drafts()
    if not drafts:
        await message.answer(_("No FAQ drafts are waiting."))
        return
    await message.answer(_draft_text(drafts[0], len(drafts)), reply_markup=keyboards.draft_review(drafts[0].id or 0))


async def cmd_faq_drafts(message: Message, faq: FaqService) -> None:
    await _show_next_draft(message, faq)


async def draft_pressed(
    callback: CallbackQuery,
    callback_data: DraftCB,
    state: FSMContext,
    faq: FaqService,
    callback_answer: CallbackAnswer,
) -> None:
    message = callback.message
    draft = await faq.draft(callback_data.draft_id)
    if draft is None or not isinstance(message, Message):
        callback_answer.text, callback_answer.show_alert = _("This button no longer works."), True
        return
    if draft.status != DraftStatus.DRAFT:
        callback_answer.text, callback_answer.show_alert = _("Someone has already reviewed this draft."), True
        return
    if callback_data.action == "approve":
        await message.edit_reply_markup(
            reply_markup=keyboards.draft_categories(draft.id or 0, list(faq.faq.categories), formatting.locale())
        )
        callback_answer.text = _("Pick the topic it belongs to.")
        return
    if callback_data.action == "put":
        if faq.faq.category(callback_data.category) is None:
            callback_answer.text, callback_answer.show_alert = _("This topic is no longer in the FAQ."), True
            return
        # Customers will see the question on a button: in the reviewer's words, never the
        # customer's own (which may name them or their family).
        await state.set_state(FaqReview.wording)
        await state.set_data({"draft_id": draft.id, "category": callback_data.category})
        await message.edit_reply_markup(reply_markup=None)
        await message.answer(
            _(
                "Write the question as customers will see it on the FAQ button, in the draft's language "
                "({language}), {low} to {high} characters, without anyone's name. /cancel stops."
            ).format(language=draft.language, low=MIN_TITLE, high=MAX_TITLE)
        )
        return
    reviewed = await faq.review(draft.id or 0, False, None, callback.from_user.full_name)
    if reviewed is None:
        callback_answer.text, callback_answer.show_alert = _("Someone has already reviewed this draft."), True
        return
    rejected = _("🗑 Rejected.")
    await message.edit_text(f"{_draft_text(reviewed, 0)}\n\n{rejected}")
    await _show_next_draft(message, faq)


async def draft_wording_written(message: Message, state: FSMContext, faq: FaqService) -> None:
    """The reviewer's wording of an approved draft's question: the draft goes live with it."""
    assert message.from_user is not None
    title = entry_title(message.text or "")
    if title is None:
        await message.answer(
            _("The question must be one line of {low} to {high} characters. Write it again, or /cancel.").format(
                low=MIN_TITLE, high=MAX_TITLE
            )
        )
        return
    data = await state.get_data()
    await state.clear()
    reviewed = await faq.review(int(data["draft_id"]), True, str(data["category"]), message.from_user.full_name, title)
    if reviewed is None:
        await message.answer(_("Someone has already reviewed this draft."))
        return
    note = _("✅ Approved: customers writing in this language can find it now.")
    await message.answer(f"{_draft_text(reviewed, 0)}\n\n{note}")
    await _show_next_draft(message, faq)


async def draft_wording_not_text(message: Message) -> None:
    await message.answer(_("Write the question as text, or /cancel."))


async def cmd_faq_stats(message: Message, faq: FaqService) -> None:
    stats, unanswered, examples = await faq.stats(STATS_DAYS)
    lines = [_("<b>FAQ answers in the last {days} days</b>").format(days=STATS_DAYS)]
    if not stats:
        lines.append(_("Nobody has rated an answer yet."))
    for item in stats[:15]:
        lines.append(f"{html.quote(item.entry_id)}: 👍 {item.helped} · 👎 {item.not_helped}")
    lines.append("")
    lines.append(
        ngettext("{count} question had no answer.", "{count} questions had no answer.", unanswered).format(
            count=unanswered
        )
    )
    lines += [f"• {html.quote(example[:120])}" for example in examples]
    await message.answer("\n".join(lines))


def create_router() -> Router:
    router = Router(name=__name__)
    private = InPrivateChat()
    # Drafts quote customers and the figures list their unanswered questions: admins get them in
    # the managers' group or in private, never in another group the bot was added to.
    admins, place, managers_group = IsAdmin(), InManagersPlace(), InManagersGroup()
    router.message.register(cmd_reload_faq, Command("reload_faq"), place, admins)
    router.message.register(cmd_faq_drafts, Command("faq_drafts"), place, admins)
    router.message.register(cmd_faq_stats, Command("faq_stats"), place, admins)
    router.callback_query.register(draft_pressed, DraftCB.filter(), place, admins)
    router.message.register(cmd_faq_draft, Command("faq"), managers_group, IsReply(), IsManager())
    router.message.register(faq_in_group_without_reply, Command("faq"), managers_group, IsManager())
    router.message.register(show_categories, Command("faq"), private)
    router.callback_query.register(menu_faq_pressed, MenuCB.filter(F.action == "faq"), private)
    router.callback_query.register(menu_card_pressed, MenuCB.filter(F.action == "card"), private)
    router.callback_query.register(faq_menu_pressed, FaqMenuCB.filter(), InPrivateChat())
    router.callback_query.register(rate_pressed, FaqRateCB.filter(), InPrivateChat())
    # A cashier's amount with no card open: registered here, after the support router, so that a
    # staff member who is also in a support conversation still reaches the managers with "100".
    router.message.register(
        amount_without_a_card, private, HasText(), NotCommand(), StateFilter(None), LooksLikeAmount(), IsStaff()
    )
    router.message.register(plain_words_said, private, HasText(), NotCommand(), StateFilter(None), PlainWords())
    router.message.register(question_asked, private, HasText(), NotCommand(), StateFilter(None))
    return router


def create_review_router() -> Router:
    """An admin wording an approved draft: before the support relay, which would otherwise take an
    admin's text as a message to the managers when the admin has a request of their own open."""
    router = Router(name=f"{__name__}.review")
    admins, place, wording = IsAdmin(), InManagersPlace(), StateFilter(FaqReview.wording)
    router.message.register(draft_wording_written, wording, HasText(), NotCommand(), place, admins)
    router.message.register(draft_wording_not_text, wording, HasNoText(), place, admins)
    return router
