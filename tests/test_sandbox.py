"""The sandbox: its Bot API answers as Telegram would (parsed by aiogram's own types), and the real
bot process served by it end to end."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from aiohttp import web

from bot.loyalty.qr import qr_png, read_qr
from sandbox.runner import TOKEN, Sandbox
from sandbox.server import create_app
from sandbox.world import BOT_ID, GROUP_ID, World

EMMA, CASHIER, MARTA, OLEG = 1003, 2001, 3001, 3002


@pytest.fixture
async def api() -> AsyncIterator[tuple[Bot, World]]:
    world = World()
    runner = web.AppRunner(create_app(world, TOKEN))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    session = AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    bot = Bot(TOKEN, session=session)
    yield bot, world
    await session.close()
    await runner.cleanup()


async def test_bot_api_answers_have_telegrams_shapes(api: tuple[Bot, World]) -> None:
    bot, world = api
    me = await bot.get_me()
    assert me.id == BOT_ID and me.is_bot and me.username

    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="go:1")]])
    sent = await bot.send_message(EMMA, "<b>Hello</b> & welcome", parse_mode="HTML", reply_markup=keyboard)
    assert isinstance(sent, Message) and sent.chat.id == EMMA and sent.from_user and sent.from_user.id == BOT_ID
    assert sent.text == "Hello & welcome"
    assert sent.entities and sent.entities[0].type == "bold" and sent.entities[0].length == 5
    assert sent.reply_markup and sent.reply_markup.model_dump(exclude_none=True) == keyboard.model_dump(
        exclude_none=True
    )

    edited = await bot.edit_message_text("Changed", chat_id=EMMA, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.text == "Changed" and edited.edit_date
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Changed", chat_id=EMMA, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(EMMA, "<b>broken", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "nobody")

    photo = await bot.send_photo(
        EMMA, BufferedInputFile(qr_png("hello"), "qr.png"), caption="<i>QR</i>", parse_mode="HTML"
    )
    assert photo.photo and photo.photo[-1].width > 0 and photo.caption == "QR"
    replaced = await bot.edit_message_media(
        InputMediaPhoto(media=BufferedInputFile(qr_png("again"), "qr.png"), caption="New"),
        chat_id=EMMA,
        message_id=photo.message_id,
    )
    assert isinstance(replaced, Message) and replaced.caption == "New"
    file = await bot.get_file(replaced.photo[-1].file_id)  # type: ignore[index]
    downloaded = await bot.download_file(file.file_path)  # type: ignore[arg-type]
    assert read_qr(downloaded.getvalue()) == ["again"]  # type: ignore[union-attr]

    # A person writes and presses a button; the bot long-polls and answers the button.
    await world.person_says(EMMA, EMMA, "/start c_token")
    await world.person_presses(EMMA, EMMA, sent.message_id, "go:1")
    updates = await bot.get_updates(offset=0, timeout=1)
    assert [u.update_id for u in updates] == [1, 2]
    assert updates[0].message and updates[0].message.text == "/start c_token"
    assert updates[0].message.entities and updates[0].message.entities[0].type == "bot_command"
    query = updates[1].callback_query
    assert query and query.data == "go:1" and query.message and query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="Done", show_alert=True) is True
    assert await bot.get_updates(offset=3, timeout=0) == []

    topic = await bot.create_forum_topic(GROUP_ID, "🇬🇧 Emma S. · #1234 5678")
    in_topic = await bot.send_message(GROUP_ID, "New request", message_thread_id=topic.message_thread_id)
    assert in_topic.message_thread_id == topic.message_thread_id and in_topic.is_topic_message
    copied = await bot.copy_message(GROUP_ID, EMMA, sent.message_id, message_thread_id=topic.message_thread_id)
    assert copied.message_id > in_topic.message_id

    assert await bot.set_my_commands([BotCommand(command="card", description="Card")], language_code="pl")
    assert await bot.set_my_commands(
        [BotCommand(command="scan", description="Scan")], scope=BotCommandScopeChat(chat_id=CASHIER)
    )
    assert await bot.delete_message(EMMA, sent.message_id)

    await world.set_blocked(EMMA, True)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(EMMA, "Anyone there?")
    await world.set_blocked(EMMA, False)

    with pytest.raises(TelegramRetryAfter) as flood:
        for i in range(40):
            await bot.send_message(CASHIER, f"burst {i}")
    assert flood.value.retry_after >= 1


# --- the real bot process ------------------------------------------------------------------


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    log = (tmp_path / "bot.log").open("wb")
    box = Sandbox(port=0, data_dir=tmp_path, bot_output=log)  # type: ignore[arg-type]
    try:
        await box.start()
        yield box
    finally:
        await box.stop()
        log.close()
        print((tmp_path / "bot.log").read_text(errors="replace")[-3000:])


class Page:
    """What the web page does, through the same HTTP endpoints."""

    def __init__(self, box: Sandbox, http: aiohttp.ClientSession) -> None:
        self.box, self.world, self.http = box, box.world, http

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.box.url + path, json=body) as response:
            data = await response.json()
            assert data.get("ok"), data
            return data

    async def say(self, who: int, text: str) -> None:
        await self._post("/ui/send", {"person_id": who, "chat_id": who, "text": text})

    async def press(self, who: int, callback_prefix: str, label: str | None = None, chat: int | None = None) -> None:
        """Press the newest button in a chat (`who`'s own by default) whose callback data starts
        with the prefix (and whose label is `label`, when given)."""
        chat = who if chat is None else chat
        for stored in reversed(self.world.chat_messages(chat)):
            markup = stored.data.get("reply_markup") or {}
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if button.get("callback_data", "").startswith(callback_prefix) and (
                        label is None or button["text"] == label
                    ):
                        await self._post(
                            "/ui/press",
                            {
                                "person_id": who,
                                "chat_id": chat,
                                "message_id": stored.data["message_id"],
                                "data": button["callback_data"],
                            },
                        )
                        return
        raise AssertionError(f"no button {callback_prefix!r} {label or ''} in chat {chat}")

    async def say_in_group(self, who: int, text: str, thread_id: int | None = None) -> None:
        body: dict[str, object] = {"person_id": who, "chat_id": GROUP_ID, "text": text}
        if thread_id is not None:
            body["thread_id"] = thread_id
        await self._post("/ui/send", body)

    def topic_of(self, name_part: str) -> int:
        """The id of the group's topic whose name contains `name_part`."""
        return next(i for i, t in self.world.topics.items() if name_part in t["name"])

    async def scan_last_card(self, customer: int) -> None:
        photo = next(s.data for s in reversed(self.world.chat_messages(customer)) if s.data.get("photo"))
        await self._post("/ui/scan", {"person_id": CASHIER, "file_id": photo["photo"][-1]["file_id"]})

    async def sees(self, who: int, pattern: str, timeout: float = 20) -> str:
        regex = re.compile(pattern)

        def found() -> str | None:
            return next((t for t in reversed(self.world.bot_texts(who)) if regex.search(t)), None)

        try:
            return await self.world.wait_for(found, timeout)
        except TimeoutError:
            raise AssertionError(f"{who} never saw {pattern!r}; saw {self.world.bot_texts(who)[-4:]}") from None


async def test_a_customer_and_a_cashier_end_to_end(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        page = Page(sandbox, http)
        # The sandbox did the owner's setup: Kasia is a cashier already.
        assert "Acme Café: witaj w zespole!" in sandbox.world.bot_texts(CASHIER)[-1]

        await page.say(EMMA, "/start")
        await page.sees(EMMA, "Hello, Emma!")
        await page.press(EMMA, "join")
        await page.sees(EMMA, r"\+50 points: your welcome bonus")
        card = await page.sees(EMMA, "Tier: Base")
        assert "Balance: 50 points" in card and "Spend 1,000.00 zł more to reach Silver." in card

        # The cashier's phone camera reads the QR and opens the deep link.
        await page.scan_last_card(EMMA)
        await page.sees(CASHIER, r"Emma · Podstawowy\nNumer karty: \d{4} \d{4}\nSaldo: 50 punktów\n\n.*12,50")
        await page.say(CASHIER, "250,00")  # the receipt total typed into the open card: the sale
        await page.sees(CASHIER, r"^✅ Naliczono: \+12 punktów\nKlient: Emma\nSaldo: 62 punkty$")
        await page.sees(EMMA, r"\+12 points for your purchase of 250\.00 zł\. Balance: 62 points\.")

        # Paying with points, confirmed by the customer in her own chat.
        await page.say(EMMA, "/card")
        # The new card (the one used at the till now says its code was used).
        await page.sees(EMMA, r"Balance: 62 points\nTier: Base(.|\n)*Show this code at the till")
        await page.scan_last_card(EMMA)
        await page.sees(CASHIER, r"Emma · Podstawowy\nNumer karty: \d{4} \d{4}\nSaldo: 62 punkty")
        await page.press(CASHIER, "scan:redeem")
        await page.sees(CASHIER, r"Emma.*62 punkty\.\n.*12,50")
        await page.say(CASHIER, "100")
        await page.sees(CASHIER, r"100,00\s*zł\.\n.*30 punktów")
        await page.say(CASHIER, "20")
        await page.sees(
            EMMA,
            r"^To pay: 80\.00 zł\nPoints to use: 20 points on your 100\.00 zł receipt at Acme Café\n\n"
            r"Pay with points\?$",
        )
        await page.sees(
            CASHIER, r"^Do zapłaty, jeśli klient potwierdzi: 80,00\s?zł\nPunktami: 20 punktów\nKlient: Emma\."
        )
        await page.press(EMMA, "ra:", label="✅ Yes, redeem")
        await page.sees(
            EMMA, r"^To pay: 80\.00 zł\nPaid with points: 20 points for the receipt of 100\.00 zł\nBalance: 42 points$"
        )
        await page.sees(
            CASHIER, r"^💰 Do zapłaty: 80,00\s?zł\nZapłacono punktami: 20 punktów\nKlient: Emma\nSaldo: 42 punkty$"
        )

        await page.say(EMMA, "/history")
        history = await page.sees(EMMA, "Your points history")
        assert "−20 points" in history and "+12 points" in history and "+50 points" in history


async def test_reset_starts_over(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        page = Page(sandbox, http)
        await page.say(EMMA, "/start")
        await page.sees(EMMA, "Hello, Emma!")
        await page.press(EMMA, "join")
        await page.sees(EMMA, "Balance: 50 points")
        old = sandbox.process
        async with http.post(sandbox.url + "/ui/reset") as response:
            assert response.status == 200
        # Quick and quiet: the bot stopped by itself on SIGTERM (its long poll returned at once),
        # not killed after the grace period.
        assert old is not None and old.returncode == 0
        assert sandbox.world.bot_texts(EMMA) == []
        assert "witaj w zespole" in sandbox.world.bot_texts(CASHIER)[-1]
        await page.say(EMMA, "/card")
        await page.sees(EMMA, "You have not joined the loyalty programme yet")


async def test_the_feedback_loop_end_to_end(sandbox: Sandbox) -> None:
    """A purchase brings a survey (at once in the sandbox), an unhappy score reaches the managers'
    group, and a manager acts on it from there."""
    async with aiohttp.ClientSession() as http:
        page = Page(sandbox, http)
        await page.say(EMMA, "/start")
        await page.sees(EMMA, "Hello, Emma!")
        await page.press(EMMA, "join")
        await page.sees(EMMA, "Tier: Base")  # the card with its QR code
        await page.scan_last_card(EMMA)
        await page.sees(CASHIER, r"Emma · Podstawowy")
        await page.say(CASHIER, "80")  # the receipt total: the sale
        await page.sees(CASHIER, r"^✅ Naliczono: \+4 punkty\nKlient: Emma\nSaldo: 54 punkty$")
        await page.sees(EMMA, r"\+4 points for your purchase of 80\.00 zł\. Balance: 54 points\.")
        await page.sees(EMMA, "How likely are you to recommend Acme Café to a friend?")

        await page.press(EMMA, "sv:", label="3")
        await page.sees(EMMA, "What went wrong?")
        await page.sees(GROUP_ID, "Unhappy customer")
        await page.say(EMMA, "My latte was cold")
        await page.sees(EMMA, "We are sorry it was not good. A manager will write to you here")
        alert = await page.sees(GROUP_ID, "Unhappy customer")
        assert "Emma Stone" in alert and "NPS 3 of 10" in alert
        await page.sees(GROUP_ID, "Comment: “My latte was cold”")

        await page.press(MARTA, "al:bonus", chat=GROUP_ID)
        await page.sees(EMMA, "We have added 50 points to your card")
        # The alert sits in Emma's own topic: whatever a manager writes there reaches her.
        await page.press(MARTA, "al:contact", chat=GROUP_ID)
        await page.sees(GROUP_ID, "write in this topic")  # the group's language
        topic = page.topic_of("Emma S.")
        await page.say_in_group(MARTA, "Sorry about that! Next latte is on us.", thread_id=topic)
        await page.sees(EMMA, "Marta Wiśniewska from our team will help you.")
        await page.sees(EMMA, "Marta Wiśniewska, manager:\nSorry about that!")
        await page.say(EMMA, "Thanks, see you tomorrow")
        await sandbox.world.wait_for(
            lambda: any(
                # signed with her name, as in a chat (bot/support/desk.py)
                s.data.get("text") == "Emma:\nThanks, see you tomorrow" and s.data.get("message_thread_id") == topic
                for s in sandbox.world.chat_messages(GROUP_ID)
            ),
            20,
        )
        await page.say_in_group(MARTA, "/close", thread_id=topic)
        await page.sees(EMMA, "Marta Wiśniewska has closed your request")
        await page.press(MARTA, "al:resolve", chat=GROUP_ID)
        await page.sees(GROUP_ID, "Resolved by Marta Wiśniewska")

        await page.say_in_group(MARTA, "/stats")
        stats = await page.sees(GROUP_ID, "Feedback, last 30 days")  # in the group's language, for all managers
        assert "NPS: −100" in stats
        await page.press(MARTA, "st:csv", chat=GROUP_ID)
        await sandbox.world.wait_for(
            lambda: any(s.data.get("document") for s in sandbox.world.chat_messages(GROUP_ID)), 20
        )
        # A manager may read the figures in private too: the bot asks Telegram who is in the group.
        await page.say(OLEG, "/stats")
        await page.sees(OLEG, "Отзывы за последние 30 дней")


async def test_the_page_shows_what_telegram_shows(sandbox: Sandbox) -> None:
    """Times in the business's zone (the bot writes Warsaw time), and a deep link's start as
    "/start", never its payload."""
    async with aiohttp.ClientSession() as http:
        async with http.get(sandbox.url + "/ui/state") as response:
            state = await response.json()
        assert state["timezone"] == "Europe/Warsaw"
        cashier_lines = [m for m in state["messages"] if m["chat_id"] == CASHIER and not m["is_bot"]]
        assert cashier_lines and all("staff_" not in m["html"] for m in cashier_lines)
        assert cashier_lines[0]["html"] == "/start"  # the invitation link the cashier opened
