"""Issue 15, flooding: one person sending 100 quick messages must not slow anyone else down.

The real bot process (`python main.py`, as in production) against the sandbox's Telegram, which
keeps Telegram's send limits (a chat gets 429 past its rate) and delivers webhooks one chat at a
time. Before, under long polling, one person's backlog filled all 40 places for updates while each
reply waited for that chat's send limit: an unrelated customer waited 60.5 s for an answer.

Timed in real seconds on purpose (the issue's measure: the other person's answer under 1 s). The
figure is the time from the other customer's message to the bot's answer in the sandbox; the
structure it checks (a person's backlog waits on their own lock and holds no place) keeps it near
0.05 s, far from the bound."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from sandbox.runner import TOKEN
from sandbox.server import create_app
from sandbox.world import Person, World
from tests.conftest import free_port, stop_process

PROJECT = Path(__file__).resolve().parent.parent.parent
FLOODER = Person(6001, "Flo", "Od", "en", "customer", "🇬🇧")
OTHER = Person(6002, "Otto", "Calm", "en", "customer", "🇬🇧")
FLOOD = 100
BOUND = 1.0  # seconds


@dataclass
class Bot:
    world: World
    process: asyncio.subprocess.Process
    log: Path
    mode: str

    def answers(self, chat: int) -> list[str]:
        return self.world.bot_texts(chat)

    def tail(self) -> str:
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if "aiohttp.access" not in line]
        return "\n".join(lines[-30:])


async def _serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def _answered(bot: Bot, chat: int, count: int, timeout: float) -> float:
    """Seconds until the chat has `count` answers from the bot."""
    start = time.monotonic()
    while len(bot.answers(chat)) < count:
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{chat} got {len(bot.answers(chat))} answers, not {count}\n{bot.tail()}")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


@pytest.fixture(params=["polling", "webhook"])
async def running(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bot]:
    world = World()
    for person in (FLOODER, OTHER):
        world.people[person.id] = person
    api, api_port = await _serve(create_app(world, TOKEN))
    rules = yaml.safe_load((PROJECT / "business.example.yaml").read_text(encoding="utf-8"))
    rules["support"].pop("working_hours", None)
    business = tmp_path / "business.yaml"
    business.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = dict(os.environ)
    env.update(
        {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": f"http://127.0.0.1:{api_port}",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            "BUSINESS_FILE": str(business),
            "ADMIN_IDS": "900001",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for key in ("REDIS_URL", "WEBHOOK_URL", "MANAGER_CHAT_ID"):
        env.pop(key, None)
    if request.param == "webhook":
        port = free_port()
        env.update(
            {
                "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/hook",
                "WEBHOOK_SECRET": "flood-secret-0123456789",
                "WEBHOOK_HOST": "127.0.0.1",
                "PORT": str(port),
            }
        )
    log = tmp_path / "bot.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(PROJECT / "main.py"), env=env, cwd=str(tmp_path), stdout=output, stderr=output
        )
    bot = Bot(world, process, log, request.param)
    try:
        await world.person_says(OTHER.id, OTHER.id, "/start")  # the bot is up once it answers
        await _answered(bot, OTHER.id, 1, timeout=60)
        yield bot
    finally:
        await stop_process(process, 15)
        await world.close()
        await api.cleanup()


async def test_one_persons_flood_does_not_slow_anyone_else(running: Bot) -> None:
    bot = running
    before = len(bot.answers(OTHER.id))
    for n in range(FLOOD):  # as fast as a script can: far past the per-person limit
        await bot.world.person_says(FLOODER.id, FLOODER.id, f"hello {n}")
    await _answered(bot, FLOODER.id, 3, timeout=30)  # the flood is being worked through
    waits = []
    for n in range(3):  # the other customer, three times while the flood is under way
        await bot.world.person_says(OTHER.id, OTHER.id, "/help")
        waits.append(await _answered(bot, OTHER.id, before + n + 1, timeout=30))
        await asyncio.sleep(0.2)
    print(f"\nthe other customer's answers came after {[round(w, 3) for w in waits]} s")
    assert max(waits) < BOUND, bot.tail()
    if bot.mode == "polling":  # all 100 arrive at once: the flood meets the per-person limit
        await bot.world.wait_for(lambda: any("sending messages very fast" in a for a in bot.answers(FLOODER.id)), 90)
        flood_answers = bot.answers(FLOODER.id)
        assert sum("sending messages very fast" in a for a in flood_answers) == 1  # asked once
        assert len(flood_answers) <= 62  # at most the minute's 60, and the one word to slow down
    # A webhook gets one chat's updates one at a time: the flood comes in as fast as it is answered.
