"""The customer's own data: /profile (birthday, offers and news, language), the marketing consent
after joining, /unsubscribe, "bring a friend", /mydata and /deleteme."""

from __future__ import annotations

import json

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.core.callbacks import CardCB, ConsentCB, DeleteMeCB, ProfileCB, UnsubscribeCB
from bot.core.filters import InPrivateChat
from bot.core.states import Profile
from bot.faq.service import FaqService
from bot.lifecycle import keyboards
from bot.lifecycle import texts as lifecycle_texts
from bot.lifecycle.rules import REFERRAL_PREFIX, BirthdayError, parse_birthday
from bot.lifecycle.service import LifecycleService
from bot.support.desk import SupportDesk
from bot.surveys.jobs import SurveySender
from handlers.language import cmd_language
from storage.models import Customer


async def show_profile(bot: Bot, customer: Customer, business: Business) -> None:
    await bot.send_message(
        customer.telegram_id,
        lifecycle_texts.profile(customer, business),
        reply_markup=keyboards.profile(customer.birthday_day is not None, customer.has_marketing_consent),
    )


async def cmd_profile(message: Message, bot: Bot, customer: Customer, business: Business) -> None:
    await show_profile(bot, customer, business)


async def profile_pressed(
    callback: CallbackQuery,
    callback_data: ProfileCB,
    bot: Bot,
    state: FSMContext,
    customer: Customer,
    business: Business,
    lifecycle: LifecycleService,
    callback_answer: CallbackAnswer,
) -> None:
    assert customer.id is not None
    action = callback_data.action
    if action == "birthday":
        await state.set_state(Profile.birthday)
        await bot.send_message(customer.telegram_id, lifecycle_texts.birthday_prompt())
        return
    if action == "clear_birthday":
        customer = await lifecycle.set_birthday(customer.id, None, None)
        callback_answer.text = _("Birthday removed.")
    elif action in ("marketing_on", "marketing_off"):
        granted = action == "marketing_on"
        assert customer.id is not None
        await lifecycle.set_marketing(customer.id, granted, "profile")
        callback_answer.text = lifecycle_texts.marketing_on() if granted else lifecycle_texts.marketing_off()
        customer = await lifecycle.customer(customer.id) or customer
    elif action == "language" and isinstance(callback.message, Message):
        await cmd_language(callback.message, customer, business)
        return
    else:
        callback_answer.text = _("This button no longer works.")
        return
    if isinstance(callback.message, Message):
        await callback.message.edit_text(
            lifecycle_texts.profile(customer, business),
            reply_markup=keyboards.profile(customer.birthday_day is not None, customer.has_marketing_consent),
        )


async def birthday_entered(
    message: Message, bot: Bot, state: FSMContext, customer: Customer, business: Business, lifecycle: LifecycleService
) -> None:
    try:
        day, month = parse_birthday(message.text or "")
    except BirthdayError:
        await message.answer(lifecycle_texts.birthday_error())  # the state stays: try again, or /cancel
        return
    await state.clear()
    customer = await lifecycle.set_birthday(customer.id, day, month)
    today = lifecycle.local_today(lifecycle.clock())
    await message.answer(lifecycle_texts.birthday_saved(day, month, business, today))
    await show_profile(bot, customer, business)


async def consent_answered(
    callback: CallbackQuery,
    callback_data: ConsentCB,
    customer: Customer,
    lifecycle: LifecycleService,
    callback_answer: CallbackAnswer,
) -> None:
    await lifecycle.set_marketing(customer.id, callback_data.granted, "after_join")
    text = lifecycle_texts.marketing_on() if callback_data.granted else _("All right. You can change it in /profile.")
    if isinstance(callback.message, Message):
        await callback.message.edit_text(text)
    else:
        callback_answer.text = text


async def unsubscribe(bot: Bot, customer: Customer, lifecycle: LifecycleService) -> str:
    changed = await lifecycle.set_marketing(customer.id, False, "unsubscribe")
    return lifecycle_texts.marketing_off() if changed else lifecycle_texts.not_subscribed()


async def cmd_unsubscribe(message: Message, bot: Bot, customer: Customer, lifecycle: LifecycleService) -> None:
    await message.answer(await unsubscribe(bot, customer, lifecycle))


async def unsubscribe_pressed(
    callback: CallbackQuery, bot: Bot, customer: Customer, lifecycle: LifecycleService, callback_answer: CallbackAnswer
) -> None:
    text = await unsubscribe(bot, customer, lifecycle)
    callback_answer.text, callback_answer.show_alert = text, True
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)


async def invite_pressed(
    callback: CallbackQuery,
    bot: Bot,
    customer: Customer,
    business: Business,
    lifecycle: LifecycleService,
    callback_answer: CallbackAnswer,
) -> None:
    if not customer.is_member or business.lifecycle.referral_bonus <= 0:
        callback_answer.text = _("This button no longer works.")
        return
    code = await lifecycle.referral_code(customer.id)
    me = await bot.me()
    link = f"https://t.me/{me.username}?start={REFERRAL_PREFIX}{code}"
    friends = await lifecycle.referrals_made(customer.id)
    await bot.send_message(
        customer.telegram_id,
        lifecycle_texts.invite(link, business, friends),
        reply_markup=keyboards.invite_share(link, lifecycle_texts.invite_share_text(business)),
    )


async def cmd_mydata(message: Message, customer: Customer, lifecycle: LifecycleService) -> None:
    data = await lifecycle.export(customer.id)
    payload = json.dumps(data, ensure_ascii=False, indent=2).encode()
    day = lifecycle.local_today(lifecycle.clock()).isoformat()
    await message.answer_document(
        BufferedInputFile(payload, filename=f"my-data-{day}.json"), caption=lifecycle_texts.mydata_caption()
    )


async def cmd_deleteme(message: Message, customer: Customer) -> None:
    await message.answer(lifecycle_texts.delete_question(customer), reply_markup=keyboards.delete_me())


async def deleteme_answered(
    callback: CallbackQuery,
    callback_data: DeleteMeCB,
    bot: Bot,
    state: FSMContext,
    customer: Customer,
    lifecycle: LifecycleService,
    desk: SupportDesk,
    survey_sender: SurveySender,
    faq: FaqService,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    if not isinstance(callback.message, Message):
        return
    if not callback_data.confirm:
        await callback.message.edit_text(lifecycle_texts.delete_kept())
        return
    erased = await lifecycle.erase(customer.id)
    await state.clear()
    await callback.message.edit_text(lifecycle_texts.deleted())
    if erased is None:
        return
    if erased.had_topic:
        await desk.refresh(bot, erased.customer_id)  # the managers' topic shows the customer as deleted
    for alert_id in erased.alert_ids:  # and so do the alerts posted with their name and words
        await survey_sender.refresh_alert(bot, alert_id)
    if erased.faq_changed:
        await faq.load()  # an approved entry no longer matches on their words


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(InPrivateChat())
    router.callback_query.filter(InPrivateChat())
    router.message.register(cmd_profile, Command("profile"))
    router.message.register(birthday_entered, StateFilter(Profile.birthday))
    router.message.register(cmd_unsubscribe, Command("unsubscribe"))
    router.message.register(cmd_mydata, Command("mydata"))
    router.message.register(cmd_deleteme, Command("deleteme"))
    router.callback_query.register(profile_pressed, ProfileCB.filter())
    router.callback_query.register(consent_answered, ConsentCB.filter())
    router.callback_query.register(unsubscribe_pressed, UnsubscribeCB.filter())
    router.callback_query.register(deleteme_answered, DeleteMeCB.filter())
    router.callback_query.register(invite_pressed, CardCB.filter(F.action == "invite"))
    return router
