"""The outer middlewares every update passes through, in this order (`create_dispatcher`):

1. `ThrottleMiddleware`: a person past their messages a minute is asked once to slow down, and
   the rest is dropped here, before it costs anything.
2. `InboxMiddleware`: the update is recorded (`bot/core/inbox.py`) before anything else happens to
   it, so it is never lost and never handled twice; its lease is held until it is done.
3. aiogram's FSM middleware: the person's step, and their lock, so one person's updates are
   handled one after another.
4. `StepMiddleware`: the person's step is recorded as handling starts (a replay goes ahead only
   in the same step), and the update takes one of the handling slots. A slot is taken only
   after the person's lock: one person's backlog waits on their own lock and holds no slot, so
   it never keeps anyone else waiting.
5. `CustomerMiddleware`: the person's record.

Recording comes before the person's lock: under polling, Telegram is told an update arrived
(the next getUpdates) only once it is recorded (`bot/core/polling.py`), and waiting behind someone's
slow step must not hold that up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.core.inbox import ConversationMovedOn, Inbox, InterruptedEveryTry, Outcome, UpdateNotRecorded, conversation
from bot.core.throttle import PersonThrottle, Verdict
from storage.database import on_the_loop

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def is_harmless(error: BaseException) -> bool:
    """Failures that mean nothing went wrong: a double tap re-rendered the same screen."""
    return isinstance(error, TelegramBadRequest) and "message is not modified" in error.message


def _recorded(data: dict[str, Any], recorded: bool) -> None:
    """Tell the poller whether this update may be confirmed to Telegram (`bot/core/polling.py`)."""
    future: asyncio.Future[bool] | None = data.get("inbox_recorded")
    if future is not None and not future.done():
        future.set_result(recorded)


class ThrottleMiddleware(BaseMiddleware):
    """Messages and button presses past a person's limit are dropped; the first one dropped gets
    a polite word in their language (in a private chat: a message; a press: its answer)."""

    def __init__(self, throttle: PersonThrottle, i18n: I18n, language_of: Callable[[User], Awaitable[str]]) -> None:
        self.throttle = throttle
        self.i18n = i18n
        self.language_of = language_of

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user: User | None = data.get("event_from_user")
        if (
            user is None
            or user.is_bot
            or (event.message is None and event.callback_query is None)
            or data.get("inbox_replay")
            or data.get("inbox_give_up")
        ):
            return await handler(event, data)
        try:
            verdict = await self.throttle.check(user.id)
        except Exception:  # noqa: BLE001 - a broken limit must not stop the bot
            logger.exception("the throttle failed; update %s let through", event.update_id)
            verdict = Verdict.ALLOWED
        if verdict == Verdict.ALLOWED:
            return await handler(event, data)
        _recorded(data, True)  # dropped on purpose: Telegram may forget it
        logger.info("update %s from %s dropped: over the limit of messages a minute", event.update_id, user.id)
        if verdict == Verdict.FIRST_DROPPED:
            await self._slow_down(data["bot"], user, event.message, event.callback_query)
        return None

    async def _slow_down(self, bot: Bot, user: User, message: Message | None, query: CallbackQuery | None) -> None:
        try:
            language = await self.language_of(user)
            with self.i18n.context(), self.i18n.use_locale(language):
                text = _("You are sending messages very fast. Please wait a minute, then write again.")
            if query is not None:
                await bot.answer_callback_query(query.id, text=text, show_alert=True)
            elif message is not None and message.chat.type == "private":
                await bot.send_message(message.chat.id, text)
            # In a group, nothing: the group's own send limit is for the managers' work.
        except Exception:  # noqa: BLE001 - the word is a courtesy; the drop stands
            logger.warning("could not ask %s to slow down", user.id, exc_info=True)


class InboxMiddleware(BaseMiddleware):
    """Takes each update through the inbox (`bot/core/inbox.py`): a redelivered one does nothing, a
    failed one is scheduled for replay, and `data["inbox_outcome"]` tells the error handler what
    to say. Replays (`inbox_replay=True`) were taken by the scheduler already. An update whose
    process died on every try comes back once more with `inbox_give_up`, only for the error
    handler to tell its person.

    `data["inbox_taken"]` marks an update the inbox holds: one it could not record (the database
    is down) is refused, so a webhook answers 500 and Telegram sends it again, and the poller
    fetches it again."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        if data.get("inbox_give_up"):  # claimed and given up by the scheduler: only the apology
            data["inbox_taken"], data["inbox_outcome"] = True, Outcome.GAVE_UP
            raise InterruptedEveryTry(f"update {event.update_id}")
        replay = bool(data.get("inbox_replay"))
        if not replay:
            try:
                taken = await self.inbox.take(event)
            except Exception as error:
                _recorded(data, False)
                raise UpdateNotRecorded(f"update {event.update_id} could not be recorded") from error
            _recorded(data, True)
            if not taken:
                logger.info("update %s was delivered again; skipped", event.update_id)
                return None
        data["inbox_taken"] = True
        async with self.inbox.leased(event.update_id):  # also while it waits for the person's lock
            try:
                with on_the_loop():  # SQLite: its short statements run on the loop's thread
                    result = await handler(event, data)
            except ConversationMovedOn:
                raise
            except Exception as error:
                if is_harmless(error):
                    await self._finish(event.update_id)
                else:
                    data["inbox_outcome"] = await self._failed(event.update_id, error)
                raise
        await self._finish(event.update_id)
        return result

    async def _failed(self, update_id: int, error: Exception) -> Outcome:
        try:
            return await self.inbox.failed(update_id, error)
        except Exception:  # noqa: BLE001 - the lease still brings the replay, so say that
            logger.exception("update %s failed and the failure could not be recorded", update_id)
            return Outcome.RETRY

    async def _finish(self, update_id: int) -> None:
        try:
            await self.inbox.finished(update_id)
        except Exception:  # noqa: BLE001 - handled already; at worst it is replayed after its lease
            logger.exception("update %s was handled but could not be marked so", update_id)


class StepMiddleware(BaseMiddleware):
    """Inside the person's lock: records their step as handling starts (only when they are in
    one, so most updates write nothing here), lets a replay go ahead only in that same step, and
    gives the update one of `slots` handling places."""

    def __init__(self, inbox: Inbox, slots: int) -> None:
        self.inbox = inbox
        self.slots = asyncio.Semaphore(slots)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        if data.get("inbox_taken"):
            step = await conversation(data)
            if data.get("inbox_replay"):
                if data.get("inbox_context") != step:
                    await self.inbox.give_up(event.update_id, "the person had moved on to another step")
                    data["inbox_outcome"] = Outcome.GAVE_UP
                    raise ConversationMovedOn(f"update {event.update_id}")
            elif step is not None:
                with contextlib.suppress(Exception):  # without it, a replay is only more careful
                    await self.inbox.started(event.update_id, step)
        async with self.slots:
            return await handler(event, data)
