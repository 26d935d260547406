"""Run the bot: `python main.py`. Settings come from the environment or a `.env` file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from bot.business import load_business
from bot.core.commands import register_commands
from bot.core.config import ConfigError, Settings, load_settings
from bot.core.i18n import create_i18n
from bot.core.lazy_types import warm_up
from bot.core.polling import serve as serve_polling
from bot.core.webhook import serve as serve_webhook
from bot.dispatcher import create_bot, create_dispatcher, create_storage, shared_redis
from bot.faq.rules import load_faq
from storage.database import Database, migrate

logger = logging.getLogger("main")

NO_TOKEN = """\
BOT_TOKEN is not set, so the bot cannot talk to Telegram.

1. Open Telegram, write to @BotFather, send /newbot and follow the steps.
2. Copy the token it gives you (it looks like 123456789:AAE...).
3. Put it in a file named .env next to main.py:
       BOT_TOKEN=123456789:AAE...
   or export it in your shell before running the bot.
See README.md for every other setting."""


async def run(settings: Settings) -> None:
    business = load_business(settings.business_file)
    logger.info("applying database migrations")
    await migrate(settings.database_url)
    db = Database(settings.database_url)
    i18n = create_i18n(business.default_language)
    storage = create_storage(settings)
    # With Redis, the send limits are kept there too: Telegram counts per bot, not per instance.
    bot = create_bot(settings, redis=shared_redis(storage))
    dp = create_dispatcher(settings, business, db, i18n, storage=storage)
    warm_up()
    try:
        me = await bot.me()
        logger.info("running as @%s for %s", me.username, business.name)
        await register_commands(
            bot, i18n, business.default_language, settings.manager_chat_id, business.managers_language
        )
        if settings.webhook_url:
            await serve_webhook(dp, bot, settings, db)
        else:
            webhook = await bot.get_webhook_info()
            if webhook.url:  # left from webhook mode; Telegram refuses polling while it is set
                logger.warning("removing the webhook %s: this process polls (run one poller only)", webhook.url)
                await bot.delete_webhook()
            # An update is confirmed to Telegram only once it is recorded (bot/core/polling.py).
            await serve_polling(dp, bot)
    finally:
        await bot.session.close()
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The Telegram front door of a small business.")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    parser.add_argument(
        "--sandbox", action="store_true", help="try the bot offline: a local Telegram and a web page playing the people"
    )
    parser.add_argument("--port", type=int, default=8080, help="the sandbox page's port on 127.0.0.1 (default 8080)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per update handled, and one per request served: noise at INFO, kept for DEBUG.
    for chatty in ("aiogram.event", "aiohttp.access"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if args.sandbox:
        from sandbox.runner import serve

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.port))
        return 0
    try:
        settings = load_settings()
        business = load_business(settings.business_file)
        faq = load_faq(settings.faq_file)
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    if args.check:
        print(
            f"Configuration is valid: {business.name}, {business.currency}, {len(business.tiers)} tiers, "
            f"{len(faq.entries)} FAQ entries."
        )
        return 0
    if settings.bot_token is None:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    try:
        asyncio.run(run(settings))
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
