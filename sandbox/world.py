"""The sandbox's pretend Telegram: people, chats, messages, files, topics and the bot's update
queue. The Bot API server and the web page both act on one World.

Updates reach the bot as Telegram sends them: by getUpdates, or, once the bot has called
setWebhook, POSTed to its URL with the secret header. A webhook update counts as delivered only on
a 2xx answer; anything else (or no connection) is tried again after a short pause. One chat's
updates go one at a time, in order; different chats in parallel, up to max_connections at once.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiogram.types import MessageEntity
from aiogram.utils.text_decorations import html_decoration
from PIL import Image, UnidentifiedImageError

from sandbox.entities import MAX_CAPTION, MAX_TEXT, parse_html, telegram_length

BOT_ID = 7_000_000_001
BOT_USERNAME = "sandbox_cafe_bot"
GROUP_ID = -1_001_000_000_001
BURST_PER_CHAT = 20  # messages a second into one chat before a 429, like Telegram's flood control
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")
RETRY_AFTER = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds before each next try of an undelivered webhook update
WEBHOOK_TIMEOUT = 60.0  # Telegram gives a webhook about this long to answer

logger = logging.getLogger(__name__)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass(frozen=True)
class Person:
    id: int
    first_name: str
    last_name: str
    language_code: str
    role: str  # what the page shows: customer, cashier, admin, manager
    flag: str

    def as_user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": False,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "language_code": self.language_code,
        }


PEOPLE = (
    Person(1001, "Anna", "Nowak", "pl", "customer", "🇵🇱"),
    Person(1002, "Иван", "Петров", "ru", "customer", "🇷🇺"),
    Person(1003, "Emma", "Stone", "en", "customer", "🇬🇧"),
    Person(2001, "Kasia", "Kowalska", "pl", "cashier", "🇵🇱"),
    Person(2002, "Piotr", "Zieliński", "pl", "cashier", "🇵🇱"),
    Person(900_001, "Olga", "Owner", "en", "admin", "🇬🇧"),
    Person(3001, "Marta", "Wiśniewska", "pl", "manager", "🇵🇱"),
    Person(3002, "Oleg", "Smirnov", "ru", "manager", "🇷🇺"),
)


@dataclass
class Webhook:
    """What setWebhook recorded, and how the last delivery failed (for getWebhookInfo)."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None

    def info(self, pending: int) -> dict[str, Any]:
        info: dict[str, Any] = _without_nulls(
            {
                "url": self.url,
                "has_custom_certificate": False,
                "pending_update_count": pending,
                "max_connections": self.max_connections,
                "allowed_updates": self.allowed_updates,
                "last_error_date": self.last_error_date,
                "last_error_message": self.last_error_message,
            }
        )
        return info


def update_chat(update: dict[str, Any]) -> int:
    """The chat an update belongs to: Telegram sends one chat's updates one at a time."""
    query = update.get("callback_query")
    if query is not None:
        return int(query["message"]["chat"]["id"] if query.get("message") else query["from"]["id"])
    for value in update.values():
        if isinstance(value, dict) and "chat" in value:
            return int(value["chat"]["id"])
    return 0


def update_kind(update: dict[str, Any]) -> str:
    return next(key for key in update if key != "update_id")


@dataclass
class Stored:
    """A message as Telegram keeps it, plus what the page needs."""

    data: dict[str, Any]
    deleted: bool = False
    edited: bool = False


@dataclass
class World:
    people: dict[int, Person] = field(default_factory=lambda: {p.id: p for p in PEOPLE})
    group_title: str = "Managers · Acme Café"
    messages: dict[int, dict[int, Stored]] = field(default_factory=dict)
    topics: dict[int, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    callbacks: dict[str, int] = field(default_factory=dict)
    last_poll: float = 0.0
    closing: bool = False
    timezone: str = "UTC"  # the business's: the page shows message times in it, as the bot writes them
    webhook: Webhook | None = None
    # Tests' lever: the next message the bot sends into this chat is answered this many seconds late.
    slow_sends: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._topic_ids = itertools.count(100)
        self._sends: dict[int, deque[float]] = {}
        self.changed = asyncio.Condition()
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._delivering: dict[int, asyncio.Task[None]] = {}  # by chat: the update on its way there
        self._connections = asyncio.Semaphore(40)
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Let long polls return at once, so the server can stop without waiting them out."""
        self.closing = True
        self._stop_deliveries()
        if self._http is not None:
            await self._http.close()
        async with self.changed:
            self.changed.notify_all()

    async def reset(self) -> None:
        """Forget every chat, file and topic: the state of a fresh Telegram for the same people."""
        for store in (self.messages, self.topics, self.files, self.commands, self.callbacks):
            store.clear()
        self._stop_deliveries()
        self.updates.clear()
        self.blocked.clear()
        self._message_ids.clear()
        self._sends.clear()
        self._update_ids = itertools.count(1)
        await self._publish({"type": "reset"})

    # --- identities ---------------------------------------------------------------------------

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Acme Café",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id == GROUP_ID:
            return {"id": GROUP_ID, "type": "supergroup", "title": self.group_title, "is_forum": True}
        person = self.people.get(chat_id)
        if person is None:
            raise ApiError(400, "Bad Request: chat not found")
        return {"id": person.id, "type": "private", "first_name": person.first_name, "last_name": person.last_name}

    # --- events for the page and for waiters ----------------------------------------------------

    async def _publish(self, event: dict[str, Any]) -> None:
        for queue in list(self.listeners):
            queue.put_nowait(event)
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        """Wait until `predicate()` returns something truthy (or raise TimeoutError)."""

        async def check() -> Any:
            async with self.changed:
                while not (result := predicate()):
                    await self.changed.wait()
                return result

        return await asyncio.wait_for(check(), timeout)

    def view(self, stored: Stored) -> dict[str, Any]:
        """A message as the page draws it: safe HTML from text and entities, photo, buttons."""
        data = stored.data
        text = data.get("text") or data.get("caption") or ""
        raw_entities = data.get("entities") or data.get("caption_entities") or []
        entities = [MessageEntity(**e) for e in raw_entities if e["type"] != "bot_command"]
        html = html_decoration.unparse(text, entities) if text else ""
        sender = data.get("from") or {}
        if not sender.get("is_bot") and text.startswith("/start "):
            html = "/start"  # Telegram shows a deep link's start as "/start", never its payload
        view: dict[str, Any] = {
            "message_id": data["message_id"],
            "chat_id": data["chat"]["id"],
            "thread_id": data.get("message_thread_id"),
            "from_id": sender.get("id"),
            "from_name": (sender.get("first_name", "") + " " + sender.get("last_name", "")).strip(),
            "is_bot": sender.get("is_bot", False),
            "html": html,
            "date": data["date"],
            "edited": stored.edited,
            "deleted": stored.deleted,
            "reply_markup": data.get("reply_markup"),
        }
        if data.get("photo"):
            view["photo"] = "/ui/file/" + data["photo"][-1]["file_id"]
        if data.get("document"):
            document = data["document"]
            view["document"] = {"url": "/ui/file/" + document["file_id"], "name": document.get("file_name") or "file"}
        if data.get("contact"):
            contact = data["contact"]
            view["html"] = "📞 " + html_decoration.quote(f"{contact['first_name']} {contact['phone_number']}")
        if data.get("forum_topic_created"):
            view["html"] = "🧵 " + html_decoration.quote(data["forum_topic_created"]["name"])
            view["service"] = True
        return view

    def snapshot(self) -> dict[str, Any]:
        return {
            "bot": self.bot_user,
            "people": [p.__dict__ for p in self.people.values()],
            "group": {"id": GROUP_ID, "title": self.group_title},
            "topics": [{"id": k, **v} for k, v in sorted(self.topics.items())],
            "messages": [self.view(s) for chat in self.messages.values() for s in chat.values() if not s.deleted],
            "blocked": sorted(self.blocked),
            "bot_online": self.webhook is not None or time.monotonic() - self.last_poll < 40,
            "timezone": self.timezone,
        }

    async def settle(self, quiet: float = 0.5, most: float = 5.0) -> None:
        """Wait until the bot has sent nothing for `quiet` seconds (at most `most`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + most
        while loop.time() < deadline:
            before = sum(len(chat) for chat in self.messages.values())
            await asyncio.sleep(quiet)
            if sum(len(chat) for chat in self.messages.values()) == before:
                return

    async def ready(self) -> None:
        """The setup is done: the page starts counting unread messages from here."""
        await self._publish({"type": "ready"})

    # --- storing messages -----------------------------------------------------------------------

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    async def _store(self, chat_id: int, data: dict[str, Any]) -> Stored:
        stored = Stored(data=data)
        self.messages.setdefault(chat_id, {})[data["message_id"]] = stored
        await self._publish({"type": "message", "message": self.view(stored)})
        return stored

    def get(self, chat_id: int, message_id: int) -> Stored:
        stored = self.messages.get(chat_id, {}).get(message_id)
        if stored is None or stored.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        return stored

    def _base(self, chat_id: int, sender: dict[str, Any], thread_id: int | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": sender,
        }
        if thread_id and chat_id == GROUP_ID:
            if thread_id not in self.topics:
                raise ApiError(400, "Bad Request: message thread not found")
            data["message_thread_id"] = thread_id
            data["is_topic_message"] = True
        return data

    def store_document(self, content: bytes, file_name: str) -> dict[str, Any]:
        file_id = "BQAC" + secrets.token_urlsafe(24)
        self.files[file_id] = content
        return {"file_id": file_id, "file_unique_id": file_id[-16:], "file_name": file_name, "file_size": len(content)}

    def member_status(self, chat_id: int, user_id: int) -> dict[str, Any]:
        """getChatMember: the managers and the owner are in the managers' group."""
        person = self.people.get(user_id)
        user = person.as_user() if person else {"id": user_id, "is_bot": False, "first_name": "?"}
        if chat_id != GROUP_ID:
            raise ApiError(400, "Bad Request: chat not found")
        if person is not None and person.role in {"manager", "admin"}:
            return {
                "status": "administrator" if person.role == "admin" else "member",
                "user": user,
                **(
                    {
                        "can_be_edited": False,
                        "is_anonymous": False,
                        "can_manage_chat": True,
                        "can_delete_messages": True,
                        "can_manage_video_chats": True,
                        "can_restrict_members": True,
                        "can_promote_members": False,
                        "can_change_info": True,
                        "can_invite_users": True,
                        "can_post_stories": False,
                        "can_edit_stories": False,
                        "can_delete_stories": False,
                        "can_manage_topics": True,
                    }
                    if person.role == "admin"
                    else {}
                ),
            }
        return {"status": "left", "user": user}

    def store_file(self, content: bytes) -> list[dict[str, Any]]:
        """Keep an uploaded photo; its PhotoSize list, as Telegram would describe it."""
        try:
            with Image.open(io.BytesIO(content)) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError):
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from None
        file_id = "AgAC" + secrets.token_urlsafe(24)
        self.files[file_id] = content
        return [
            {
                "file_id": file_id,
                "file_unique_id": file_id[-16:],
                "width": width,
                "height": height,
                "file_size": len(content),
            }
        ]

    # --- the bot's side (Bot API) ---------------------------------------------------------------

    def _check_can_send(self, chat_id: int) -> None:
        self.chat(chat_id)
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        now = time.monotonic()
        window = self._sends.setdefault(chat_id, deque())
        while window and now - window[0] > 1.0:
            window.popleft()
        if len(window) >= BURST_PER_CHAT:
            raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        window.append(now)

    @staticmethod
    def formatted(text: str, parse_mode: str | None, field_name: str = "text") -> dict[str, Any]:
        if parse_mode and parse_mode.upper() == "HTML":
            try:
                plain, entities = parse_html(text)
            except ValueError as error:
                raise ApiError(400, f"Bad Request: can't parse entities: {error}") from None
        else:
            plain, entities = text, []
        out: dict[str, Any] = {field_name: plain}
        if entities:
            out["entities" if field_name == "text" else "caption_entities"] = entities
        return out

    @staticmethod
    def check_markup(markup: dict[str, Any] | None) -> dict[str, Any] | None:
        """Validate a keyboard and keep it as Telegram echoes it back: without empty fields."""
        if not markup:
            return None
        markup = _without_nulls(markup)
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    async def bot_send(
        self,
        chat_id: int,
        *,
        text: str | None = None,
        parse_mode: str | None = None,
        reply_markup: dict[str, Any] | None = None,
        thread_id: int | None = None,
        photo: list[dict[str, Any]] | None = None,
        document: dict[str, Any] | None = None,
        caption: str | None = None,
    ) -> dict[str, Any]:
        delay = self.slow_sends.pop(chat_id, None)
        if delay:
            await asyncio.sleep(delay)
        self._check_can_send(chat_id)
        reply_markup = self.check_markup(reply_markup)
        data = self._base(chat_id, self.bot_user, thread_id)
        if photo is not None or document is not None:
            if photo is not None:
                data["photo"] = photo
            else:
                data["document"] = document
            if caption:
                data.update(self.formatted(caption, parse_mode, "caption"))
                if telegram_length(data["caption"]) > MAX_CAPTION:  # counted once the markup is parsed
                    raise ApiError(400, "Bad Request: message caption is too long")
        else:
            if not text or not text.strip():
                raise ApiError(400, "Bad Request: message text is empty")
            data.update(self.formatted(text, parse_mode))
            if telegram_length(data["text"]) > MAX_TEXT:
                raise ApiError(400, "Bad Request: message is too long")
        if reply_markup:
            data["reply_markup"] = reply_markup
        stored = await self._store(chat_id, data)
        return stored.data

    async def bot_edit(self, chat_id: int, message_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        stored = self.get(chat_id, message_id)
        if "reply_markup" in changes:
            changes["reply_markup"] = self.check_markup(changes["reply_markup"])
        new = dict(stored.data)
        for key, value in changes.items():
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        if "text" in changes and "entities" not in changes:
            new.pop("entities", None)
        if "caption" in changes and "caption_entities" not in changes:
            new.pop("caption_entities", None)
        if new == stored.data:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message",
            )
        new["edit_date"] = int(time.time())
        stored.data, stored.edited = new, True
        await self._publish({"type": "message", "message": self.view(stored)})
        return new

    async def bot_delete(self, chat_id: int, message_id: int) -> None:
        stored = self.messages.get(chat_id, {}).get(message_id)
        if stored is None or stored.deleted:
            raise ApiError(400, "Bad Request: message to delete not found")
        stored.deleted = True
        await self._publish({"type": "delete", "chat_id": chat_id, "message_id": message_id})

    async def answer_callback(self, callback_id: str, text: str | None, show_alert: bool) -> None:
        person_id = self.callbacks.pop(callback_id, None)
        if person_id is None:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        if text:
            await self._publish({"type": "toast", "person_id": person_id, "text": text, "alert": show_alert})

    async def create_topic(self, name: str, icon_color: int | None) -> dict[str, Any]:
        if not 1 <= len(name) <= 128:
            raise ApiError(400, "Bad Request: TOPIC_TITLE_EMPTY" if not name else "Bad Request: TOPIC_TITLE_INVALID")
        thread_id = next(self._topic_ids)
        topic = {"message_thread_id": thread_id, "name": name, "icon_color": icon_color or 7322096}
        self.topics[thread_id] = {"name": name, "icon_color": topic["icon_color"], "closed": False}
        data = self._base(GROUP_ID, self.bot_user, None)
        data.update({"message_thread_id": thread_id, "is_topic_message": True, "forum_topic_created": topic})
        await self._store(GROUP_ID, data)
        await self._publish({"type": "topic", "topic": {"id": thread_id, **self.topics[thread_id]}})
        return topic

    async def next_updates(self, offset: int, limit: int, timeout: float) -> list[dict[str, Any]]:
        self.last_poll = time.monotonic()
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

        def ready() -> list[dict[str, Any]]:
            return self.updates[:limit]

        if not ready() and timeout > 0 and not self.closing:
            try:
                await self.wait_for(lambda: ready() or self.closing or self.webhook, timeout)
            except TimeoutError:
                pass
        if self.webhook is not None:  # set while this poll waited: its updates go to the webhook
            raise ApiError(409, "Conflict: terminated by setWebhook request")
        self.last_poll = time.monotonic()
        return ready()

    # --- webhook delivery -----------------------------------------------------------------------

    async def set_webhook(
        self,
        url: str,
        secret_token: str | None = None,
        max_connections: int = 40,
        allowed_updates: list[str] | None = None,
        drop_pending_updates: bool = False,
    ) -> None:
        if not url:
            self.delete_webhook(drop_pending_updates)
            return
        if secret_token and not SECRET_SHAPE.fullmatch(secret_token):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if not 1 <= max_connections <= 100:
            raise ApiError(400, "Bad Request: invalid max_connections specified")
        if drop_pending_updates:
            self.updates.clear()
        self.webhook = Webhook(url, secret_token or None, max_connections, allowed_updates or None)
        self._connections = asyncio.Semaphore(max_connections)
        self._dispatch()
        async with self.changed:  # a long poll in progress ends
            self.changed.notify_all()

    def delete_webhook(self, drop_pending_updates: bool = False) -> None:
        """Back to getUpdates; the undelivered updates wait there."""
        self.webhook = None
        self._stop_deliveries()
        if drop_pending_updates:
            self.updates.clear()

    def webhook_info(self) -> dict[str, Any]:
        if self.webhook is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self.updates)}
        return self.webhook.info(len(self.updates))

    def _stop_deliveries(self) -> None:
        for task in self._delivering.values():
            task.cancel()
        self._delivering.clear()

    def _dispatch(self) -> None:
        """Start delivering the oldest waiting update of each chat that has none on its way."""
        hook = self.webhook
        if hook is None or self.closing:
            return
        if hook.allowed_updates:  # Telegram drops the kinds the bot did not ask for
            self.updates = [u for u in self.updates if update_kind(u) in hook.allowed_updates]
        busy = set(self._delivering)
        for update in self.updates:
            chat = update_chat(update)
            if chat not in busy:
                busy.add(chat)
                self._delivering[chat] = asyncio.create_task(self._deliver(update, chat))

    async def _deliver(self, update: dict[str, Any], chat: int) -> None:
        """POST one update until the bot answers 2xx; only then may the chat's next one go."""
        try:
            for attempt in itertools.count():
                hook = self.webhook
                if hook is None:
                    return
                async with self._connections:
                    error = await self._post(hook, update)
                if error is None:
                    self.updates = [u for u in self.updates if u is not update]
                    async with self.changed:
                        self.changed.notify_all()
                    return
                logger.info("update %s not delivered (%s); trying again", update["update_id"], error)
                hook.last_error_date, hook.last_error_message = int(time.time()), error
                await asyncio.sleep(RETRY_AFTER[min(attempt, len(RETRY_AFTER) - 1)])
        finally:
            if self._delivering.get(chat) is asyncio.current_task():
                del self._delivering[chat]
                self._dispatch()

    async def _post(self, hook: Webhook, update: dict[str, Any]) -> str | None:
        """One try: None when the bot took the update, else Telegram's words for what went wrong."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT))
        headers = {SECRET_HEADER: hook.secret_token} if hook.secret_token else {}
        try:
            async with self._http.post(hook.url, json=update, headers=headers) as response:
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"Connection failed: {type(error).__name__}"

    # --- the people's side (the page) -----------------------------------------------------------

    async def _enqueue(self, update: dict[str, Any]) -> None:
        if "update_id" not in update:
            update["update_id"] = next(self._update_ids)
        self.updates.append(update)
        self._dispatch()
        async with self.changed:
            self.changed.notify_all()

    def person(self, person_id: int) -> Person:
        person = self.people.get(person_id)
        if person is None:
            raise ApiError(400, "no such person")
        return person

    async def person_says(
        self,
        person_id: int,
        chat_id: int,
        text: str | None = None,
        *,
        thread_id: int | None = None,
        photo: bytes | None = None,
        contact: bool = False,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """A person writes in a chat: stored, shown, and delivered to the bot as an update (unless
        `deliver` is false: see `message_update`)."""
        person = self.person(person_id)
        if chat_id != GROUP_ID and chat_id != person_id:
            raise ApiError(400, "people write in their own chat with the bot or in the group")
        data = self._base(chat_id, person.as_user(), thread_id)
        if photo is not None:
            data["photo"] = self.store_file(photo)
            if text:
                data["caption"] = text
        elif contact:
            data["contact"] = {
                "phone_number": f"+48600{person.id:06d}"[:12],
                "first_name": person.first_name,
                "last_name": person.last_name,
                "user_id": person.id,
            }
        else:
            if not text or not text.strip():
                raise ApiError(400, "empty message")
            data["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                data["entities"] = [{"type": "bot_command", "offset": 0, "length": telegram_length(command)}]
        if person_id in self.blocked:
            self.blocked.discard(person_id)  # writing to the bot again unblocks it
        stored = await self._store(chat_id, data)
        if deliver:
            await self._enqueue({"message": stored.data})
        return stored.data

    async def message_update(
        self, person_id: int, chat_id: int, text: str, *, thread_id: int | None = None
    ) -> dict[str, Any]:
        """A person's message, shown in the chat, as an update with its own id that is not queued:
        tests deliver it themselves (to play Telegram sending one update twice)."""
        message = await self.person_says(person_id, chat_id, text, thread_id=thread_id, deliver=False)
        return {"update_id": next(self._update_ids), "message": message}

    async def person_presses(self, person_id: int, chat_id: int, message_id: int, data: str) -> str:
        update = self.press_update(person_id, chat_id, message_id, data)
        await self._enqueue(update)
        return str(update["callback_query"]["id"])

    def press_update(self, person_id: int, chat_id: int, message_id: int, data: str) -> dict[str, Any]:
        """A button press as an update with its own id, not queued: tests deliver it themselves
        (to play a double tap, or Telegram sending one update twice)."""
        person = self.person(person_id)
        stored = self.get(chat_id, message_id)
        callback_id = str(secrets.randbits(63))
        self.callbacks[callback_id] = person_id
        query = {
            "id": callback_id,
            "from": person.as_user(),
            "message": stored.data,
            "chat_instance": str(abs(chat_id)),
            "data": data,
        }
        return {"update_id": next(self._update_ids), "callback_query": query}

    async def set_blocked(self, person_id: int, blocked: bool) -> None:
        person = self.person(person_id)
        was_blocked = person_id in self.blocked
        (self.blocked.add if blocked else self.blocked.discard)(person_id)
        await self._publish({"type": "blocked", "blocked": sorted(self.blocked)})
        if was_blocked != blocked:
            # Telegram tells the bot with a my_chat_member update, as it does for real blocks.
            kicked = {"status": "kicked", "user": self.bot_user, "until_date": 0}
            member = {"status": "member", "user": self.bot_user}
            await self._enqueue(
                {
                    "my_chat_member": {
                        "chat": self.chat(person_id),
                        "from": person.as_user(),
                        "date": int(time.time()),
                        "old_chat_member": member if blocked else kicked,
                        "new_chat_member": kicked if blocked else member,
                    }
                }
            )

    # --- questions tests and the page ask ----------------------------------------------------

    def chat_messages(self, chat_id: int, thread_id: int | None = None) -> list[Stored]:
        return [
            s
            for s in self.messages.get(chat_id, {}).values()
            if not s.deleted and (thread_id is None or s.data.get("message_thread_id") == thread_id)
        ]

    def bot_texts(self, chat_id: int) -> list[str]:
        return [
            s.data.get("text") or s.data.get("caption") or ""
            for s in self.chat_messages(chat_id)
            if s.data["from"]["id"] == BOT_ID
        ]
