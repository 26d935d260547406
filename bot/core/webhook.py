"""Webhook mode: Telegram posts each update to WEBHOOK_URL, served here by aiohttp.

- A request without the right `X-Telegram-Bot-Api-Secret-Token` gets 401 and is not handled
  (aiogram compares it in constant time).
- An update is handled before the answer (`handle_in_background=False`). The inbox has recorded it
  by then, so a failure is answered 200 and replayed by the bot itself (`bot/core/inbox.py`); only an
  update the inbox could not record gets a 500, and Telegram sends it again. Telegram also sends
  an update again when the process dies before answering; the inbox skips it if it was handled.
- `/healthz` says whether the database (and Redis, when configured) answer: 200 or 503, in JSON.
- SIGTERM or SIGINT: stop listening, let the requests in flight finish (up to SHUTDOWN_TIMEOUT),
  then stop the scheduler and broadcasts and close the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from redis.asyncio import Redis

from bot.core.config import Settings
from storage.database import Database

logger = logging.getLogger(__name__)

UPDATES_IN_FLIGHT = 40  # Telegram's connections to the webhook at once: the back-pressure under a rush
SHUTDOWN_TIMEOUT = 25.0  # seconds for the updates in flight when the process is told to stop
HEALTH_TIMEOUT = 3.0
HEALTH_PATH = "/healthz"


async def _ping(redis: Redis) -> bool:
    """redis-py types `ping()` as `Awaitable[bool] | bool` (one signature for its sync and async
    clients); the async client's is awaitable."""
    return bool(await redis.ping())  # type: ignore[misc]  # the async client's ping is a coroutine


async def health(dp: Dispatcher, db: Database) -> tuple[bool, dict[str, Any]]:
    """Whether the database and Redis answer, and how many updates wait for the operator."""
    report: dict[str, Any] = {}
    healthy = True
    try:
        await asyncio.wait_for(db.ping(), HEALTH_TIMEOUT)
        report["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - reported, not raised
        healthy = False
        report["database"] = f"error: {type(error).__name__}"
    storage = dp.fsm.storage
    if isinstance(storage, RedisStorage):
        try:
            await asyncio.wait_for(_ping(storage.redis), HEALTH_TIMEOUT)
            report["redis"] = "ok"
        except Exception as error:  # noqa: BLE001
            healthy = False
            report["redis"] = f"error: {type(error).__name__}"
    if report["database"] == "ok":
        with contextlib.suppress(Exception):
            report["updates_given_up"] = await dp["inbox"].given_up()
    report["updates_in_flight"] = dp["inbox"].in_flight
    return healthy, report


def create_app(dp: Dispatcher, bot: Bot, settings: Settings, db: Database) -> web.Application:
    assert settings.webhook_secret is not None, "the settings require WEBHOOK_SECRET with WEBHOOK_URL"
    app = web.Application()
    handler = SimpleRequestHandler(
        dp, bot, handle_in_background=False, secret_token=settings.webhook_secret.get_secret_value()
    )
    # Only the route: the handler's own `register` would also close the Bot's session when aiohttp
    # shuts down, which comes before the requests in flight finish; `main.py` closes it after.
    app.router.add_route("POST", settings.webhook_path, handler.handle)

    async def healthz(_request: web.Request) -> web.Response:
        healthy, report = await health(dp, db)
        return web.json_response(report, status=200 if healthy else 503)

    app.router.add_get(HEALTH_PATH, healthz)
    return app


async def serve(
    dp: Dispatcher, bot: Bot, settings: Settings, db: Database, *, stop: asyncio.Event | None = None
) -> None:
    """Run until SIGTERM/SIGINT (or `stop` is set), then shut down gracefully."""
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(create_app(dp, bot, settings, db), handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    workflow = {"dispatcher": dp, **dp.workflow_data}
    await dp.emit_startup(bot=bot, **workflow)
    try:
        await web.TCPSite(runner, settings.webhook_host, settings.port).start()
        await bot.set_webhook(
            settings.webhook_url,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=dp.resolve_used_update_types(),
            max_connections=UPDATES_IN_FLIGHT,
        )
        logger.info("webhook at %s, listening on %s:%s", settings.webhook_url, settings.webhook_host, settings.port)
        await stop.wait()
        logger.info("stopping: no new updates; finishing the ones in flight")
    finally:
        await runner.cleanup()  # stops listening, then waits for the requests in flight
        await dp.emit_shutdown(bot=bot, **workflow)
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
