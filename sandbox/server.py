"""The sandbox's HTTP side: the Bot API the bot talks to, and the page's own small API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.world import GROUP_ID, ApiError, World

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
Params = dict[str, Any]


FILENAME = "\0filename:"  # where an uploaded file's name is kept among the parameters
# getChat must list every gift type (aiogram requires the full object); the sandbox accepts none.
ACCEPTED_GIFT_TYPES = (
    "unlimited_gifts",
    "limited_gifts",
    "unique_gifts",
    "premium_subscription",
    "gifts_from_channels",
)


def _need(params: Params, name: str) -> int:
    """A required whole-number parameter (a 400 like Telegram's when it is missing)."""
    value = _int(params, name)
    assert value is not None  # _int raises for a required one that is missing
    return value


def _int(params: Params, name: str, required: bool = True) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        if required:
            raise ApiError(400, f"Bad Request: {name} is empty" if name != "chat_id" else "Bad Request: chat not found")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: invalid {name} specified") from None


def _flag(params: Params, name: str) -> bool:
    return str(params.get(name, "")).lower() in {"true", "1"}


def _json(params: Params, name: str) -> Any:
    value = params.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None


class BotApi:
    """Telegram's Bot API methods that the bot uses, with Telegram's request forms and answers."""

    def __init__(self, world: World, token: str) -> None:
        self.world = world
        self.token = token

    def _photo(self, params: Params, files: dict[str, bytes], name: str = "photo") -> list[dict[str, Any]]:
        value = params.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            content = files.get(value.removeprefix("attach://"))
            if content is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            return self.world.store_file(content)
        if name in files:
            return self.world.store_file(files[name])
        if isinstance(value, str) and value in self.world.files:
            return self.world.store_file(self.world.files[value])
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    async def call(self, method: str, params: Params, files: dict[str, bytes]) -> Any:
        world = self.world
        name = method.lower()
        if name == "getme":
            return world.bot_user
        if name == "getupdates":
            if world.webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
                    "delete the webhook first",
                )
            return await world.next_updates(
                _int(params, "offset", False) or 0,
                min(_int(params, "limit", False) or 100, 100),
                min(float(params.get("timeout") or 0), 50),
            )
        if name == "setwebhook":
            await world.set_webhook(
                str(params.get("url") or ""),
                secret_token=params.get("secret_token") or None,
                max_connections=_int(params, "max_connections", False) or 40,
                allowed_updates=_json(params, "allowed_updates"),
                drop_pending_updates=_flag(params, "drop_pending_updates"),
            )
            return True
        if name == "deletewebhook":
            world.delete_webhook(_flag(params, "drop_pending_updates"))
            return True
        if name == "getwebhookinfo":
            return world.webhook_info()
        if name in {"logout", "close", "sendchataction"}:
            return True
        if name == "setmycommands":
            scope = _json(params, "scope") or {"type": "default"}
            key = json.dumps([scope, params.get("language_code") or ""], sort_keys=True)
            world.commands[key] = _json(params, "commands") or []
            return True
        if name == "deletemycommands":
            scope = _json(params, "scope") or {"type": "default"}
            world.commands.pop(json.dumps([scope, params.get("language_code") or ""], sort_keys=True), None)
            return True
        if name == "getmycommands":
            scope = _json(params, "scope") or {"type": "default"}
            return world.commands.get(json.dumps([scope, params.get("language_code") or ""], sort_keys=True), [])
        if name == "getchat":
            return {
                **world.chat(_need(params, "chat_id")),
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": dict.fromkeys(ACCEPTED_GIFT_TYPES, False),
            }
        if name == "sendmessage":
            return await world.bot_send(
                _need(params, "chat_id"),
                text=params.get("text"),
                parse_mode=params.get("parse_mode"),
                reply_markup=_json(params, "reply_markup"),
                thread_id=_int(params, "message_thread_id", False),
            )
        if name == "sendphoto":
            chat_id = _need(params, "chat_id")
            world.chat(chat_id)
            return await world.bot_send(
                chat_id,
                photo=self._photo(params, files),
                caption=params.get("caption"),
                parse_mode=params.get("parse_mode"),
                reply_markup=_json(params, "reply_markup"),
                thread_id=_int(params, "message_thread_id", False),
            )
        if name == "senddocument":
            chat_id = _need(params, "chat_id")
            world.chat(chat_id)
            key = str(params.get("document") or "").removeprefix("attach://")
            if key not in files:
                raise ApiError(400, "Bad Request: there is no document in the request")
            return await world.bot_send(
                chat_id,
                document=world.store_document(files[key], str(params.get(f"{FILENAME}{key}") or "file")),
                caption=params.get("caption"),
                parse_mode=params.get("parse_mode"),
                reply_markup=_json(params, "reply_markup"),
                thread_id=_int(params, "message_thread_id", False),
            )
        if name == "getchatmember":
            return world.member_status(_need(params, "chat_id"), _need(params, "user_id"))
        if name in {"editmessagetext", "editmessagecaption", "editmessagereplymarkup", "editmessagemedia"}:
            return await self._edit(name, params, files)
        if name == "deletemessage":
            await world.bot_delete(_need(params, "chat_id"), _need(params, "message_id"))
            return True
        if name == "answercallbackquery":
            await world.answer_callback(
                str(params.get("callback_query_id")),
                params.get("text"),
                str(params.get("show_alert", "")).lower() == "true",
            )
            return True
        if name == "getfile":
            file_id = str(params.get("file_id"))
            content = world.files.get(file_id)
            if content is None:
                raise ApiError(400, "Bad Request: invalid file_id")
            return {
                "file_id": file_id,
                "file_unique_id": file_id[-16:],
                "file_size": len(content),
                "file_path": f"photos/{file_id}.jpg",
            }
        if name == "createforumtopic":
            if _need(params, "chat_id") != GROUP_ID:
                raise ApiError(400, "Bad Request: the chat is not a forum")
            icon = _int(params, "icon_color", False)
            return await world.create_topic(str(params.get("name") or ""), icon)
        if name == "pinchatmessage":
            world.get(_need(params, "chat_id"), _need(params, "message_id"))
            return True
        if name in {"editforumtopic", "closeforumtopic", "reopenforumtopic"}:
            topic = world.topics.get(_need(params, "message_thread_id") or 0)
            if topic is None:
                raise ApiError(400, "Bad Request: TOPIC_ID_INVALID")
            if name == "editforumtopic" and params.get("name"):
                topic["name"] = params["name"]
            if name != "editforumtopic":
                topic["closed"] = name == "closeforumtopic"
            return True
        if name in {"copymessage", "forwardmessage"}:
            source = world.get(_need(params, "from_chat_id"), _need(params, "message_id"))
            target = _need(params, "chat_id")
            thread = _int(params, "message_thread_id", False)
            data = source.data
            if data.get("photo"):
                sent = await world.bot_send(
                    target,
                    photo=data["photo"],
                    caption=data.get("caption"),
                    thread_id=thread,
                )
            else:
                sent = await world.bot_send(target, text=data.get("text"), thread_id=thread)
            return {"message_id": sent["message_id"]} if name == "copymessage" else sent
        raise ApiError(404, "Not Found")

    async def _edit(self, name: str, params: Params, files: dict[str, bytes]) -> Any:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages are not used by this bot")
        chat_id, message_id = _need(params, "chat_id"), _need(params, "message_id")
        stored = self.world.get(chat_id, message_id)
        changes: dict[str, Any] = {"reply_markup": _json(params, "reply_markup")}
        if name == "editmessagetext":
            text = params.get("text") or ""
            if not text.strip():
                raise ApiError(400, "Bad Request: message text is empty")
            if "text" not in stored.data:
                raise ApiError(400, "Bad Request: there is no text in the message to edit")
            changes.update(self.world.formatted(text, params.get("parse_mode")))
        elif name == "editmessagecaption":
            changes.update(self.world.formatted(params.get("caption") or "", params.get("parse_mode"), "caption"))
        elif name == "editmessagemedia":
            media = _json(params, "media") or {}
            if media.get("type") != "photo":
                raise ApiError(400, "Bad Request: only photos are supported here")
            changes["photo"] = self._photo({"photo": media.get("media")}, files)
            caption = media.get("caption")
            changes["caption"] = None
            changes["caption_entities"] = None
            if caption:
                changes.update(self.world.formatted(caption, media.get("parse_mode"), "caption"))
        return await self.world.bot_edit(chat_id, message_id, changes)


async def _read_params(request: web.Request) -> tuple[Params, dict[str, bytes]]:
    params: Params = dict(request.query)
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        params.update(await request.json())
    elif request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
                params[f"{FILENAME}{key}"] = value.filename
            else:
                params[key] = value
    return params, files


def _error(error: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": error.code, "description": error.description}
    if error.retry_after is not None:
        body["parameters"] = {"retry_after": error.retry_after}
    return web.json_response(body, status=error.code)


def create_app(
    world: World,
    token: str,
    *,
    on_reset: Callable[[], Awaitable[None]] | None = None,
) -> web.Application:
    api = BotApi(world, token)
    app = web.Application(client_max_size=20 * 1024 * 1024)

    async def bot_method(request: web.Request) -> web.Response:
        if request.match_info["token"] != token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        try:
            params, files = await _read_params(request)
            result = await api.call(request.match_info["method"], params, files)
        except ApiError as error:
            return _error(error)
        return web.json_response({"ok": True, "result": result})

    async def bot_file(request: web.Request) -> web.Response:
        if request.match_info["token"] != token:
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
        content = world.files.get(file_id)
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content, content_type="image/jpeg")

    # --- the page ----------------------------------------------------------------------------

    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def state(_request: web.Request) -> web.Response:
        return web.json_response(world.snapshot())

    async def ui_file(request: web.Request) -> web.Response:
        content = world.files.get(request.match_info["file_id"])
        if content is None:
            return web.Response(status=404)
        kind = "image/png" if content.startswith(b"\x89PNG") else "application/octet-stream"
        return web.Response(body=content, content_type=kind, headers={"Cache-Control": "max-age=3600"})

    async def guarded(action: Callable[[], Awaitable[Any]]) -> web.Response:
        try:
            return web.json_response({"ok": True, "result": await action()})
        except ApiError as error:
            return web.json_response({"ok": False, "description": error.description}, status=400)

    async def ui_send(request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            photo = form.get("photo")
            content = photo.file.read() if isinstance(photo, web.FileField) else None
            body: dict[str, Any] = {k: v for k, v in form.items() if not isinstance(v, web.FileField)}
        else:
            body, content = await request.json(), None
        return await guarded(
            lambda: world.person_says(
                int(body["person_id"]),
                int(body["chat_id"]),
                body.get("text") or None,
                thread_id=int(body["thread_id"]) if body.get("thread_id") else None,
                photo=content,
                contact=str(body.get("contact", "")).lower() == "true",
            )
        )

    async def ui_press(request: web.Request) -> web.Response:
        body = await request.json()
        return await guarded(
            lambda: world.person_presses(
                int(body["person_id"]), int(body["chat_id"]), int(body["message_id"]), str(body["data"])
            )
        )

    async def ui_scan(request: web.Request) -> web.Response:
        """What a phone camera does with a QR: read it and open its deep link as the person."""
        from bot.loyalty.qr import read_qr

        body = await request.json()
        content = world.files.get(str(body["file_id"]))
        if content is None:
            return web.json_response({"ok": False, "description": "no such photo"}, status=400)
        links = await asyncio.to_thread(read_qr, content)
        prefix = f"https://t.me/{world.bot_user['username']}?start="
        link = next((link for link in links if link.startswith(prefix)), None)
        if link is None:
            return web.json_response({"ok": False, "description": "no link to this bot in the QR code"}, status=400)
        person_id = int(body["person_id"])
        return await guarded(lambda: world.person_says(person_id, person_id, "/start " + link.removeprefix(prefix)))

    async def ui_block(request: web.Request) -> web.Response:
        body = await request.json()
        return await guarded(lambda: world.set_blocked(int(body["person_id"]), bool(body["blocked"])))

    async def ui_reset(_request: web.Request) -> web.Response:
        if on_reset is None:
            return web.json_response({"ok": False}, status=400)
        await on_reset()
        return web.json_response({"ok": True})

    async def ui_events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        world.listeners.add(queue)
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 15)
                    payload = json.dumps(event, ensure_ascii=False)
                    await response.write(f"data: {payload}\n\n".encode())
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            world.listeners.discard(queue)
        return response

    app.router.add_route("*", "/bot{token}/{method}", bot_method)
    app.router.add_get("/file/bot{token}/{path:.+}", bot_file)
    app.router.add_get("/", index)
    app.router.add_get("/ui/state", state)
    app.router.add_get("/ui/file/{file_id}", ui_file)
    app.router.add_get("/ui/events", ui_events)
    app.router.add_post("/ui/send", ui_send)
    app.router.add_post("/ui/press", ui_press)
    app.router.add_post("/ui/scan", ui_scan)
    app.router.add_post("/ui/block", ui_block)
    app.router.add_post("/ui/reset", ui_reset)
    return app
