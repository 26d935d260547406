"""Runs the sandbox: the local Bot API server, the real bot as a child process, and the setup a
real business would do by hand (the owner invites the cashier)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from sandbox.server import create_app
from sandbox.world import GROUP_ID, World

logger = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parent.parent
TOKEN = "7000000001:SANDBOX-sandbox-sandbox-sandbox-0000"
ADMIN_ID = 900_001
CASHIER_ID = 2001
CASHIER_2_ID = 2002  # the second store's cashier
STORES: list[dict[str, Any]] = [
    {"id": "centre", "name": {"ru": "Центр", "pl": "Centrum", "en": "City Centre"}, "address": "ul. Długa 1"},
    {"id": "old_town", "name": {"ru": "Старый город", "pl": "Stare Miasto", "en": "Old Town"}, "address": "Rynek 5"},
]


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


class Sandbox:
    def __init__(self, port: int = 8080, data_dir: Path | None = None, bot_output: int | None = None) -> None:
        self.world = World()
        self.port = free_port(port)
        self.data_dir = data_dir or PROJECT / "data"
        self.database = self.data_dir / "sandbox.db"
        self.bot_output = bot_output
        self.process: asyncio.subprocess.Process | None = None
        self._runner: web.AppRunner | None = None
        self._reset_lock = asyncio.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = create_app(self.world, TOKEN, on_reset=self.reset)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        await self._start_bot()
        await self._prepare_business()

    def bot_environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": self.url,
                "DATABASE_URL": f"sqlite+aiosqlite:///{self.database}",
                "ADMIN_IDS": str(ADMIN_ID),
                "MANAGER_CHAT_ID": str(GROUP_ID),
                "BUSINESS_FILE": str(self.business_file),
                "SCHEDULER_INTERVAL_SECONDS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    @property
    def business_file(self) -> Path:
        return self.data_dir / "sandbox-business.yaml"

    def write_business_file(self) -> None:
        """The example café with two stores, except that a survey follows a purchase at once, day
        or night, so the whole feedback loop can be tried in a minute."""
        rules = yaml.safe_load((PROJECT / "business.example.yaml").read_text(encoding="utf-8"))
        rules["stores"] = STORES
        rules.setdefault("surveys", {}).update({"delay_minutes": 0, "quiet_hours": {"start": "00:00", "end": "00:00"}})
        self.world.timezone = rules["timezone"]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.business_file.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")

    async def _start_bot(self) -> None:
        self.write_business_file()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PROJECT / "main.py"),
            env=self.bot_environment(),
            cwd=str(PROJECT),
            stdout=self.bot_output,
            stderr=self.bot_output,
        )
        # The bot is up once it asks for updates.
        for _ in range(600):
            if self.process.returncode is not None:
                raise RuntimeError(f"the bot exited with code {self.process.returncode}")
            if self.world.last_poll > 0:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("the bot did not start polling within 60 seconds")

    async def _prepare_business(self) -> None:
        """The owner invites a cashier to each store through the bot, exactly as people do."""
        world = self.world
        for cashier, store in ((CASHIER_ID, STORES[0]), (CASHIER_2_ID, STORES[1])):
            await self._invite(cashier, str(store["id"]))
        await world.settle()  # the owner's word that the cashiers joined, and the like
        await world.ready()

    async def _invite(self, cashier: int, store: str) -> None:
        """/invite, the store's button, and the link opened in the cashier's chat."""
        world = self.world

        def links() -> list[str]:
            return [m for t in world.bot_texts(ADMIN_ID) for m in re.findall(r"start=(staff_[\w-]+)", t)]

        before = len(links())
        await world.person_says(ADMIN_ID, ADMIN_ID, "/invite")
        question = await world.wait_for(
            lambda: next(
                (m for m in reversed(world.chat_messages(ADMIN_ID)) if f"inv:{store}" in json.dumps(m.data)),
                None,
            ),
            30,
        )
        await world.person_presses(ADMIN_ID, ADMIN_ID, question.data["message_id"], f"inv:{store}")
        link = await world.wait_for(lambda: links()[before] if len(links()) > before else None, 30)
        await world.person_says(cashier, cashier, f"/start {link}")
        await world.wait_for(lambda: len(world.bot_texts(cashier)) > 0, 30)

    async def _stop_bot(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        # The bot stops between two long polls: let the one it is in return at once.
        self.world.closing = True
        async with self.world.changed:
            self.world.changed.notify_all()
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def forget_database(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.database}{suffix}").unlink()

    async def reset(self) -> None:
        """Start over: a fresh database, empty chats, the setup done again."""
        async with self._reset_lock:
            await self._stop_bot()
            self.forget_database()
            self.world.last_poll = 0
            self.world.closing = False
            await self.world.reset()
            await self._start_bot()
            await self._prepare_business()

    async def stop(self) -> None:
        await self._stop_bot()
        await self.world.close()
        if self._runner is not None:
            await self._runner.cleanup()


async def serve(port: int) -> None:
    data_dir = PROJECT / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "sandbox-bot.log"
    # The bot's own lines (migrations, start-up, one per update) go to a file: the terminal keeps
    # the few lines a person needs, the address last.
    with log_path.open("ab") as bot_log:
        sandbox = Sandbox(port, bot_output=bot_log.fileno())
        sandbox.forget_database()  # the chats live in memory, so the bot's memory starts fresh too
        print("Starting the sandbox: a local Telegram and the bot…", flush=True)
        await sandbox.start()
        print(f"The bot's log: {log_path}", flush=True)
        print(f"\n    The sandbox is ready: open {sandbox.url} in your browser.\n    Ctrl+C stops it.\n", flush=True)
        await _until_stopped(sandbox)


async def _until_stopped(sandbox: Sandbox) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()
