"""/broadcast in the managers' group, for the admins: the message (text, or a photo with a
caption), who gets it, a preview as customers will see it with the number of people it reaches,
and Send. Rights are checked on every message and every button; the sending is the Broadcaster's."""

from __future__ import annotations

import secrets

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.broadcasts.jobs import Broadcaster
from bot.broadcasts.rules import (
    MAX_INACTIVE_DAYS,
    Segment,
    SegmentError,
    SegmentKind,
    parse_days,
    parse_segment,
    stored_segment,
)
from bot.business import Business
from bot.core import formatting
from bot.core.callbacks import BroadcastCB
from bot.core.entities import MAX_CAPTION, MAX_TEXT, telegram_length
from bot.core.filters import InManagersGroup, InPrivateChat, IsAdmin, NotCommand
from bot.core.i18n import LANGUAGE_NAMES
from bot.core.keyboards import Buttons
from bot.core.languages import LANGUAGES
from bot.core.states import Broadcast as BroadcastState
from bot.lifecycle import keyboards

# --- words and buttons ---------------------------------------------------------------------------


def segment_label(segment: Segment, business: Business) -> str:
    if segment.kind == SegmentKind.TIER:
        tier = next((t for t in business.tiers if t.id == segment.value), None)
        name = tier.name.get(formatting.locale()) if tier is not None else segment.value
        return _("Tier: {tier}").format(tier=name)
    if segment.kind == SegmentKind.LANGUAGE:
        return _("Language: {language}").format(language=LANGUAGE_NAMES.get(segment.value or "", segment.value))
    if segment.kind == SegmentKind.INACTIVE:
        return ngettext("No purchase for {count} day", "No purchase for {count} days", segment.days).format(
            count=formatting.number(segment.days)
        )
    if segment.kind == SegmentKind.BIRTHDAY:
        return _("Birthday this month")
    return _("Everyone who agreed to offers")


def segments_keyboard(business: Business) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(
        text=segment_label(Segment(SegmentKind.ALL), business), callback_data=BroadcastCB(action="segment", value="all")
    )
    for tier in business.tiers:
        builder.button(
            text=segment_label(Segment(SegmentKind.TIER, tier.id), business),
            callback_data=BroadcastCB(action="segment", value=f"tier={tier.id}"),
        )
    for language in LANGUAGES:
        builder.button(
            text=segment_label(Segment(SegmentKind.LANGUAGE, language), business),
            callback_data=BroadcastCB(action="segment", value=f"lang={language}"),
        )
    builder.button(text=_("No purchase for N days…"), callback_data=BroadcastCB(action="segment", value="inactive"))
    builder.button(text=_("Birthday this month"), callback_data=BroadcastCB(action="segment", value="birthday"))
    builder.button(text=_("✖️ Cancel"), callback_data=BroadcastCB(action="cancel"))
    builder.adjust(1, len(business.tiers), len(LANGUAGES), 1, 1, 1)
    return builder.as_markup()


def confirm_keyboard(token: str) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=_("📣 Send"), callback_data=BroadcastCB(action="send", value=token))
    builder.button(text=_("✖️ Cancel"), callback_data=BroadcastCB(action="cancel"))
    return builder.as_markup()


def _only_owners() -> str:
    return _("Only the owners can send broadcasts.")


def _stale() -> str:
    return _("This button no longer works: the broadcast was sent or cancelled. Start again with /broadcast.")


# --- composing -----------------------------------------------------------------------------------


async def cmd_broadcast(message: Message, state: FSMContext) -> None:
    await state.clear()
    await state.set_state(BroadcastState.writing)
    await message.reply(
        _(
            "📣 Send me the message for customers: text, or one photo with a caption. It goes only to customers "
            "who agreed to offers, with an Unsubscribe button. /cancel to stop."
        )
    )


async def cmd_broadcast_in_private(message: Message) -> None:
    await message.answer(_("Send /broadcast in the managers' group: the preview and the progress are shown there."))


async def not_an_owner(message: Message) -> None:
    await message.reply(_only_owners())


async def message_written(message: Message, state: FSMContext, business: Business) -> None:
    if message.photo:
        photo: str | None = message.photo[-1].file_id
        text: str | None = message.html_text if message.caption else None
    elif message.text:
        photo, text = None, message.html_text
    else:
        await message.reply(_("A broadcast can be text, or one photo with a caption. Send it again, or /cancel."))
        return
    limit = MAX_CAPTION if photo is not None else MAX_TEXT  # a caption may be shorter than a message
    # Telegram counts UTF-16 units (an emoji is two); the markup counted too keeps within our column.
    if text is not None and telegram_length(text) > limit:
        await message.reply(
            _("This message is too long with its formatting ({length} of {limit} characters). Shorten it.").format(
                length=formatting.number(telegram_length(text)), limit=formatting.number(limit)
            )
        )
        return
    await state.update_data(text=text, photo=photo)
    await state.set_state(BroadcastState.choosing_segment)
    await message.reply(
        _("Who should get it? Only customers who agreed to offers are counted."),
        reply_markup=segments_keyboard(business),
    )


async def segment_chosen(
    callback: CallbackQuery,
    callback_data: BroadcastCB,
    state: FSMContext,
    business: Business,
    broadcaster: Broadcaster,
    callback_answer: CallbackAnswer,
) -> None:
    message = callback.message
    if not isinstance(message, Message):
        return
    if callback_data.value == "inactive":
        await state.set_state(BroadcastState.entering_days)
        await message.answer(
            _("No purchase for how many days? Send a whole number from 1 to {max}: for example 60.").format(
                max=MAX_INACTIVE_DAYS
            )
        )
        return
    try:
        segment = parse_segment(callback_data.value, business)
    except SegmentError:
        callback_answer.text, callback_answer.show_alert = _stale(), True
        return
    await _preview(message, state, business, broadcaster, segment)


async def days_entered(message: Message, state: FSMContext, business: Business, broadcaster: Broadcaster) -> None:
    days = parse_days(message.text or "")
    if days is None:
        await message.reply(
            _("Send a whole number of days from 1 to {max}, for example 60, or /cancel.").format(max=MAX_INACTIVE_DAYS)
        )
        return
    await _preview(message, state, business, broadcaster, parse_segment("inactive", business, days))


async def _preview(
    message: Message, state: FSMContext, business: Business, broadcaster: Broadcaster, segment: Segment
) -> None:
    """The message exactly as customers will see it, then how many it reaches, with Send."""
    data = await state.get_data()
    count = await broadcaster.service.count(segment)
    label = segment_label(segment, business)
    if count == 0:
        await state.set_state(BroadcastState.choosing_segment)
        await message.answer(
            _(
                "{segment}: nobody there has agreed to offers, so there is nobody to send it to. Choose another "
                "group, or /cancel."
            ).format(segment=label),
            reply_markup=segments_keyboard(business),
        )
        return
    if data.get("photo"):
        await message.answer_photo(data["photo"], caption=data.get("text"), reply_markup=keyboards.unsubscribe())
    else:
        await message.answer(data.get("text") or "", reply_markup=keyboards.unsubscribe())
    token = secrets.token_hex(4)  # this preview's Send: an older preview's button cannot send this one
    await state.update_data(segment=segment.kind.value, segment_value=segment.value, token=token)
    await state.set_state(BroadcastState.confirming)
    reach = ngettext("It reaches {count} person.", "It reaches {count} people.", count).format(
        count=formatting.number(count)
    )
    await message.answer(
        _("👆 This is how customers will see it.\n{segment}. {reach}").format(segment=label, reach=reach),
        reply_markup=confirm_keyboard(token),
    )


# --- sending -------------------------------------------------------------------------------------


async def send_pressed(
    callback: CallbackQuery,
    callback_data: BroadcastCB,
    bot: Bot,
    state: FSMContext,
    broadcaster: Broadcaster,
    callback_answer: CallbackAnswer,
) -> None:
    message = callback.message
    data = await state.get_data()
    if (
        not isinstance(message, Message)
        or await state.get_state() != BroadcastState.confirming.state
        or data.get("token") != callback_data.value
    ):
        callback_answer.text, callback_answer.show_alert = _stale(), True
        return
    await state.clear()  # before anything is awaited elsewhere: a second press finds nothing to send
    broadcast = await broadcaster.service.create(
        stored_segment(data["segment"], data.get("segment_value")),
        text=data.get("text"),
        photo_file_id=data.get("photo"),
        created_by=callback.from_user.id,
        created_by_name=callback.from_user.full_name,
        chat_id=message.chat.id,
        thread_id=message.message_thread_id if message.is_topic_message else None,
    )
    if broadcast is None:
        await message.edit_text(_("Nobody in this group can receive it any more, so nothing was sent."))
        return
    await message.edit_text(
        ngettext(
            "📣 Broadcast #{id} is on its way to {count} person. Its progress is shown below.",
            "📣 Broadcast #{id} is on its way to {count} people. Its progress is shown below.",
            broadcast.total,
        ).format(id=broadcast.id, count=formatting.number(broadcast.total))
    )
    callback_answer.text = _("Sending.")
    broadcaster.start(bot, broadcast)


async def cancel_pressed(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(_("Cancelled: nothing was sent."))


async def stale_button(callback: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text, callback_answer.show_alert = _stale(), True


async def not_an_owner_pressed(callback: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text, callback_answer.show_alert = _only_owners(), True


def create_router() -> Router:
    router = Router(name=__name__)
    admins, group = IsAdmin(), InManagersGroup()
    not_command = NotCommand()
    router.message.register(cmd_broadcast, Command("broadcast"), group, admins)
    router.message.register(cmd_broadcast_in_private, Command("broadcast"), InPrivateChat(), admins)
    router.message.register(not_an_owner, Command("broadcast"), group)
    router.message.register(message_written, StateFilter(BroadcastState.writing), group, admins, not_command)
    router.message.register(days_entered, StateFilter(BroadcastState.entering_days), group, admins, not_command)
    choosing = StateFilter(BroadcastState.choosing_segment, BroadcastState.confirming)
    router.callback_query.register(segment_chosen, BroadcastCB.filter(F.action == "segment"), choosing, group, admins)
    router.callback_query.register(send_pressed, BroadcastCB.filter(F.action == "send"), group, admins)
    router.callback_query.register(
        cancel_pressed, BroadcastCB.filter(F.action == "cancel"), StateFilter(BroadcastState), group, admins
    )
    router.callback_query.register(stale_button, BroadcastCB.filter(), group, admins)
    router.callback_query.register(not_an_owner_pressed, BroadcastCB.filter())
    return router
