"""A line straight to the owner: a customer writes (/owner, "✉️ Write to the owner" in the menu, in
/help and after a survey answer), every owner reads it in their private chat as a complaint with the
customer's card (or, with `support.owners_topic_id`, in that topic of the managers' group), and an
owner's reply to it reaches the customer signed with the owner's name. A store's managers never
see it."""

from __future__ import annotations

import logging
import re

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, Filter, StateFilter, or_f
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.callbacks import LetterCB, MenuCB
from bot.core.config import Settings
from bot.core.filters import HasNoText, HasText, InManagersGroup, InPrivateChat, IsAdmin, NotCommand
from bot.core.keyboards import Buttons
from bot.core.notify import notify
from bot.core.states import OwnerLine
from bot.loyalty.service import LoyaltyService
from bot.support import texts
from bot.support.service import HeaderFacts, OwnerLetters, SupportService
from storage.models import Customer, LetterStatus, OwnerLetter

logger = logging.getLogger(__name__)

LETTER_SINCE = "letter_since"  # FSM data: when the customer was asked for their letter
LETTER_PROMPT_SECONDS = 30 * 60  # a letter asked for longer ago than this is not awaited any more
MAX_LETTER = 3000  # leaves room for the customer's card in the owner's copy, one message


def _letter_actions(letter: OwnerLetter) -> InlineKeyboardMarkup | None:
    if letter.status == LetterStatus.CLOSED or letter.id is None:
        return None
    builder = Buttons()
    builder.button(text=_("✅ Close"), callback_data=LetterCB(action="close", letter_id=letter.id))
    return builder.as_markup()


async def _begin(
    bot: Bot, chat_id: int, customer: Customer, state: FSMContext, letters: OwnerLetters, settings: Settings
) -> None:
    if customer.id is None:
        return
    if not settings.admin_ids:  # nobody would read it
        await bot.send_message(chat_id, texts.no_owner_line())
        return
    written = await letters.written_lately(customer.id)
    if written >= letters.business.guards.owner_letters_per_day:
        await bot.send_message(chat_id, texts.letter_limit(written))
        return
    await state.set_state(OwnerLine.writing)
    await state.update_data({LETTER_SINCE: letters.clock().timestamp()})
    await bot.send_message(chat_id, texts.letter_prompt())


async def cmd_owner(
    message: Message, bot: Bot, customer: Customer, state: FSMContext, letters: OwnerLetters, settings: Settings
) -> None:
    await _begin(bot, message.chat.id, customer, state, letters, settings)


async def menu_owner_pressed(
    callback: CallbackQuery,
    bot: Bot,
    customer: Customer,
    state: FSMContext,
    letters: OwnerLetters,
    settings: Settings,
) -> None:
    await _begin(bot, callback.from_user.id, customer, state, letters, settings)


async def letter_written(
    message: Message,
    bot: Bot,
    i18n: I18n,
    customer: Customer,
    state: FSMContext,
    settings: Settings,
    business: Business,
    letters: OwnerLetters,
    support: SupportService,
    loyalty: LoyaltyService,
) -> None:
    assert message.text is not None and customer.id is not None
    since = (await state.get_data()).get(LETTER_SINCE, 0)
    if letters.clock().timestamp() - since > LETTER_PROMPT_SECONDS:  # asked long ago: not a letter now
        await state.clear()
        raise SkipHandler
    if len(message.text) > MAX_LETTER:
        await message.answer(texts.letter_too_long(MAX_LETTER))
        return
    written = await letters.write(customer.id, message.text, key=f"letter:{message.chat.id}:{message.message_id}")
    await state.clear()
    if written is None:
        await message.answer(texts.letter_limit(await letters.written_lately(customer.id)))
        return
    letter = written.letter
    assert letter.id is not None
    if written.created:
        facts = await support.header_facts(customer.id)
        topic, group = business.support.owners_topic_id, settings.manager_chat_id
        places = [(group, topic)] if topic and group else [(owner, None) for owner in settings.admin_ids]
        for chat_id, thread in places:
            text, markup = await _copy(i18n, loyalty, settings, business, letter, facts, chat_id)
            try:
                post = await bot.send_message(chat_id, text, message_thread_id=thread, reply_markup=markup)
            except TelegramAPIError:
                logger.warning("letter %s could not reach chat %s", letter.id, chat_id)
                continue
            await letters.posted(letter.id, chat_id, post.message_id)
    await message.answer(texts.letter_sent())


async def letter_not_text(message: Message) -> None:
    await message.answer(texts.letter_words_only())


async def something_else(event: Message | CallbackQuery, state: FSMContext) -> None:
    """A command or another menu button while a letter is awaited: the letter is dropped, and what
    they asked for happens (the handlers after this one take it)."""
    await state.clear()
    raise SkipHandler


async def _copy(
    i18n: I18n,
    loyalty: LoyaltyService,
    settings: Settings,
    business: Business,
    letter: OwnerLetter,
    facts: HeaderFacts | None,
    chat_id: int,
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The letter as one chat shows it: in the managers' group in the group's language, in an
    owner's private chat in the owner's own (their choice, else the business's default)."""
    if chat_id == settings.manager_chat_id:
        language = business.managers_language
    else:
        language = await loyalty.chosen_language(chat_id) or business.default_language
    with i18n.use_locale(language):
        return texts.letter_post(letter, facts, business), _letter_actions(letter)


class RepliesToLetter(Filter):
    """An owner's reply to a letter's message: hands the letter to the handler."""

    async def __call__(self, message: Message, letters: OwnerLetters) -> bool | dict[str, object]:
        reply = message.reply_to_message
        if reply is None:
            return False
        letter = await letters.by_post(message.chat.id, reply.message_id)
        return {"letter": letter} if letter is not None else False


async def owner_answered(
    message: Message,
    bot: Bot,
    i18n: I18n,
    letter: OwnerLetter,
    letters: OwnerLetters,
    support: SupportService,
    loyalty: LoyaltyService,
    settings: Settings,
    business: Business,
) -> None:
    assert message.from_user is not None and letter.id is not None
    words = message.text or message.caption
    if not words:
        await message.reply(_("Write the answer in words: the customer reads text."))
        return
    customer = await loyalty.customer(letter.customer_id)
    if customer is None or customer.deleted_at is not None:
        await message.reply(_("This customer deleted their data: the message was not delivered."))
        return
    name = message.from_user.full_name
    with i18n.use_locale(texts.language_of(customer, business)):
        delivered = await notify(bot, customer.telegram_id, texts.letter_answer(name, words))
    if not delivered:
        await message.reply(_("The answer was not delivered: the customer may have blocked the bot."))
        return
    updated = await letters.answered(letter.id, message.from_user.id, name)
    await message.reply(
        _("Sent to the customer.") if message.text else _("Sent to the customer: the words only, not the attachment.")
    )
    if updated is not None:
        await _refresh_posts(bot, i18n, updated, letters, support, loyalty, settings, business)


async def letter_pressed(
    callback: CallbackQuery,
    callback_data: LetterCB,
    bot: Bot,
    i18n: I18n,
    letters: OwnerLetters,
    support: SupportService,
    loyalty: LoyaltyService,
    settings: Settings,
    business: Business,
    callback_answer: CallbackAnswer,
) -> None:
    closed = await letters.close(callback_data.letter_id, callback.from_user.full_name)
    if closed is None:
        callback_answer.text = _("Already closed.")
        return
    callback_answer.text = _("Closed.")
    await _refresh_posts(bot, i18n, closed, letters, support, loyalty, settings, business)


async def _refresh_posts(
    bot: Bot,
    i18n: I18n,
    letter: OwnerLetter,
    letters: OwnerLetters,
    support: SupportService,
    loyalty: LoyaltyService,
    settings: Settings,
    business: Business,
) -> None:
    """Every owner's copy shows the letter's status now (answered by whom, closed)."""
    assert letter.id is not None
    facts = await support.header_facts(letter.customer_id)
    for post in await letters.posts(letter.id):
        text, markup = await _copy(i18n, loyalty, settings, business, letter, facts, post.chat_id)
        try:
            await bot.edit_message_text(
                text=text, chat_id=post.chat_id, message_id=post.message_id, reply_markup=markup
            )
        except TelegramAPIError as error:
            logger.info("letter %s: could not update the copy in chat %s (%s)", letter.id, post.chat_id, error)


def create_router() -> Router:
    router = Router(name=__name__)
    private = InPrivateChat()
    owners = IsAdmin()
    # An owner answers in their private chat, or in the owners' topic of the managers' group.
    places = or_f(InPrivateChat(), InManagersGroup())
    router.message.register(owner_answered, places, owners, NotCommand(), RepliesToLetter())
    router.callback_query.register(letter_pressed, LetterCB.filter(F.action == "close"), places, owners)
    router.message.register(cmd_owner, Command("owner"), private)
    router.callback_query.register(menu_owner_pressed, MenuCB.filter(F.action == "owner"), private)
    writing = StateFilter(OwnerLine.writing)
    router.message.register(something_else, private, writing, Command(re.compile(r".+")))
    router.callback_query.register(something_else, private, writing, MenuCB.filter(F.action != "owner"))
    router.message.register(letter_written, private, writing, HasText(), NotCommand())
    router.message.register(letter_not_text, private, writing, HasNoText())
    return router
