"""Webhook mode as it is deployed: two `python main.py` instances behind a round-robin load
balancer, sharing one PostgreSQL database and one Redis.

The sandbox's Telegram posts every update to the balancer, which hands them to the instances in
turn. Customers join, a cashier records purchases (one amount message arrives twice, at both
instances at once; another amount is typed twice, one message to each instance), a customer writes
to support in a hurry, managers answer, the owner sends a broadcast, and both schedulers send
surveys. Nothing may be doubled or lost. Then instance 1 is told to stop while it handles an
update: it finishes that update, exits with 0, and instance 2 serves the rest.

Needs PostgreSQL (a database of the run's own, dropped with it) and Redis (keys under the run's prefix):
skipped without them, failed when CI is set. The first test needs neither: the sandbox's webhook
delivery on its own."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramConflictError
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sandbox.runner import TOKEN
from sandbox.server import create_app
from sandbox.world import GROUP_ID, SECRET_HEADER, Person, World
from storage.database import Database, migrate
from tests.conftest import (
    IN_CI,
    POSTGRES_URL,
    REDIS_PREFIX,
    drop_redis_keys,
    empty_postgres,
    free_port,
    postgres_database,
    stop_process,
)

PROJECT = Path(__file__).resolve().parent.parent
DATABASE_URL = postgres_database("instances")  # dropped with the run's own database
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")  # keys under this run's prefix only
SECRET = "instances-secret-0123456789"
HOOK_PATH = "/telegram/updates"
WAIT = 20.0  # seconds any one expected effect may take

OWNER, MARTA = 900_001, 3001  # from the sandbox's people: the owner (ADMIN_IDS) and a manager
CASHIER = Person(2101, "Kai", "Berg", "en", "cashier", "🇬🇧")
CUSTOMERS = {
    # name: (person, agrees to offers)
    "Ada": (Person(5001, "Ada", "Lovelace", "en", "customer", "🇬🇧"), True),
    "Ben": (Person(5002, "Ben", "Okri", "en", "customer", "🇬🇧"), False),
    "Cleo": (Person(5003, "Cleo", "Park", "en", "customer", "🇬🇧"), True),
    "Dan": (Person(5004, "Dan", "Brown", "en", "customer", "🇬🇧"), False),
    "Eve": (Person(5005, "Eve", "Stone", "en", "customer", "🇬🇧"), True),
    "Finn": (Person(5006, "Finn", "Wolf", "en", "customer", "🇬🇧"), False),
}
STRANGER = Person(5099, "Mallory", "Forge", "en", "customer", "🇬🇧")  # sends only forged updates


def _id(name: str) -> int:
    return CUSTOMERS[name][0].id


# --- the sandbox's webhook delivery on its own ----------------------------------------------


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def _app_with(path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    app = web.Application()
    app.router.add_post(path, handler)
    return app


async def _eventually(condition: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll until `condition()` is truthy; its value, or AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("the expected state was not reached in time")
        await asyncio.sleep(0.05)
    return result


async def test_the_sandbox_delivers_webhook_updates_like_telegram() -> None:
    """Secret header; no connection or a 500 means "again later"; one chat in order, one at a
    time; chats in parallel; getUpdates refused while the webhook is set, and back after
    deleteWebhook."""
    world = World()
    emma, anna = 1003, 1001
    events: list[tuple[str, int, int]] = []  # ("in" | "out", chat, update_id) as the bot saw them
    headers: set[str | None] = set()
    emma_second = asyncio.Event()
    failed_once: set[int] = set()

    async def receive(request: web.Request) -> web.Response:
        update = await request.json()
        chat = (update.get("message") or {}).get("chat", {}).get("id", 0)
        headers.add(request.headers.get(SECRET_HEADER))
        events.append(("in", chat, update["update_id"]))
        emma_updates = [u for kind, c, u in events if c == emma and kind == "in"]
        if chat == emma and len(set(emma_updates)) == 2:
            emma_second.set()
        try:
            if chat == emma and update["update_id"] not in failed_once:
                failed_once.add(update["update_id"])
                return web.Response(status=500)  # "try again later"
            if chat == anna and len([e for e in events if e[1] == anna]) == 1:
                # Anna's first update is held until Emma's second arrives: only chats delivered
                # side by side get there.
                await asyncio.wait_for(emma_second.wait(), 5)
            return web.json_response({})
        finally:
            events.append(("out", chat, update["update_id"]))

    bot_api, api_port = await serve(create_app(world, TOKEN))
    hook, hook_port = await serve(_app_with(HOOK_PATH, receive))
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{api_port}")))
    url = f"http://127.0.0.1:{hook_port}{HOOK_PATH}"
    try:
        # A long poll in progress ends when a webhook is set; getUpdates is refused from then on.
        polling = asyncio.create_task(bot.get_updates(timeout=10))
        await _eventually(lambda: world.last_poll)
        assert await bot.set_webhook(f"http://127.0.0.1:{free_port()}{HOOK_PATH}", secret_token="s3cret")
        with pytest.raises(TelegramConflictError, match="terminated by setWebhook request"):
            await polling
        with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates()

        for n in range(3):
            await world.person_says(emma, emma, f"Emma {n}")
            if n < 2:
                await world.person_says(anna, anna, f"Anna {n}")
        # Nobody listens at that address yet: the updates wait and are tried again.
        await _eventually(lambda: "Connection failed" in (world.webhook_info().get("last_error_message") or ""))
        assert await bot.set_webhook(url, secret_token="s3cret", allowed_updates=["message", "callback_query"])
        info = await bot.get_webhook_info()
        assert info.url == url and info.allowed_updates == ["message", "callback_query"]
        await world.wait_for(lambda: not world.updates, WAIT)
        await _eventually(lambda: len(events) == 2 * (3 + 3 + 2))

        assert headers == {"s3cret"}
        for chat, count in ((emma, 3), (anna, 2)):
            seen = [(kind, update_id) for kind, c, update_id in events if c == chat]
            # One at a time: every "in" is answered before the next "in" of the chat.
            assert [kind for kind, _ in seen] == ["in", "out"] * (len(seen) // 2)
            delivered = list(dict.fromkeys(update_id for _, update_id in seen))
            assert delivered == sorted(delivered) and len(delivered) == count
        emma_ids = [u for kind, c, u in events if c == emma and kind == "in"]
        assert len(emma_ids) == 6  # each of Emma's updates was refused once and sent again
        assert "500" in ((await bot.get_webhook_info()).last_error_message or "")

        # Back to polling: what arrives now waits for getUpdates, as before.
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
        await world.person_says(emma, emma, "polling again")
        (update,) = await bot.get_updates(timeout=1)
        assert update.message and update.message.text == "polling again"
    finally:
        await bot.session.close()
        await world.close()
        await hook.cleanup()
        await bot_api.cleanup()


# --- the cluster: a load balancer and two bot processes ---------------------------------------


HOP_BY_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}


class Balancer:
    """Round robin as a reverse proxy does it: each POST, headers and all, goes to the next
    instance; one that takes no connections (stopped) is skipped for the next."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.turn = itertools.count()
        self.handled: list[tuple[int, dict[str, Any]]] = []  # (instance number, update) answered 2xx
        self.http: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request) -> web.Response:
        assert self.http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        first = next(self.turn)
        for shift in range(len(self.backends)):
            index = (first + shift) % len(self.backends)
            try:
                async with self.http.post(self.backends[index] + request.path, data=body, headers=headers) as answer:
                    content = await answer.read()
            except aiohttp.ClientConnectionError:
                continue  # down: the next one
            if answer.status < 300:
                self.handled.append((index + 1, json.loads(body)))
            return web.Response(
                status=answer.status, body=content, headers={"Content-Type": answer.headers.get("Content-Type", "")}
            )
        return web.Response(status=502, text="no instance answers")

    def instance_of(self, predicate: Callable[[dict[str, Any]], bool]) -> list[int]:
        """Which instance took each update that matches, in order."""
        return [number for number, update in self.handled if predicate(update)]


@dataclass
class Instance:
    number: int
    port: int
    log: Path
    process: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 40) -> str:
        """The log's last lines, without the access log's line per request."""
        kept = [line for line in self.log.read_text(errors="replace").splitlines() if "aiohttp.access" not in line]
        return "\n".join(kept[-lines:])


@dataclass
class Cluster:
    world: World
    balancer: Balancer
    instances: list[Instance]
    db: Database
    http: aiohttp.ClientSession
    notes: list[str] = field(default_factory=list)

    # --- people acting -----------------------------------------------------------------------

    async def say(self, who: int, words: str, chat: int | None = None, thread_id: int | None = None) -> None:
        await self.world.person_says(who, who if chat is None else chat, words, thread_id=thread_id)

    def button(self, who: int, prefix: str, label: str | None = None, chat: int | None = None) -> tuple[int, str]:
        """The newest button in the chat whose data starts with `prefix`: (message id, data)."""
        chat = who if chat is None else chat
        for stored in reversed(self.world.chat_messages(chat)):
            for row in (stored.data.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data", "")
                    if data.startswith(prefix) and (label is None or button["text"] == label):
                        return stored.data["message_id"], data
        raise AssertionError(f"no button {prefix!r} {label or ''} in chat {chat}")

    async def press(self, who: int, prefix: str, label: str | None = None, chat: int | None = None) -> None:
        message_id, data = self.button(who, prefix, label, chat)
        await self.world.person_presses(who, who if chat is None else chat, message_id, data)

    async def sees(self, chat: int, pattern: str, timeout: float = WAIT) -> str:
        regex = re.compile(pattern)

        def found() -> str | None:
            return next((t for t in reversed(self.world.bot_texts(chat)) if regex.search(t)), None)

        try:
            return await self.world.wait_for(found, timeout)  # type: ignore[no-any-return]
        except TimeoutError:
            raise AssertionError(f"{chat} never saw {pattern!r}; saw {self.world.bot_texts(chat)[-4:]}") from None

    def count(self, chat: int, pattern: str) -> int:
        regex = re.compile(pattern)
        return sum(1 for t in self.world.bot_texts(chat) if regex.search(t))

    async def post(self, instance: Instance, update: dict[str, Any], secret: str | None = SECRET) -> int:
        """Deliver an update straight to one instance, as Telegram would; the answer's status."""
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with self.http.post(instance.url + HOOK_PATH, json=update, headers=headers) as response:
            await response.read()
            return response.status

    async def health(self, instance: Instance) -> tuple[int, dict[str, Any]]:
        async with self.http.get(instance.url + "/healthz") as response:
            return response.status, await response.json()

    async def sql(self, query: str, **params: Any) -> list[Any]:
        async with self.db.reading() as session:
            return list((await session.execute(text(query), params)).all())


def _service_problem() -> str | None:
    postgres, redis = make_url(POSTGRES_URL), urlsplit(REDIS_URL)
    for what, host, port in (
        ("PostgreSQL", postgres.host or "127.0.0.1", postgres.port or 5432),
        ("Redis", redis.hostname or "127.0.0.1", redis.port or 6379),
    ):
        try:
            with socket.create_connection((host, port), timeout=2):
                pass
        except OSError as error:
            return f"{what} is not reachable at {host}:{port} ({error}); this test runs two instances against both"
    return None


async def _fresh_database() -> None:
    """Our own database: created when missing, its schema dropped and migrated anew."""
    await empty_postgres(DATABASE_URL)
    await migrate(DATABASE_URL)  # once, as a deployment does before starting the instances


async def _fresh_redis() -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        await drop_redis_keys(redis)
    finally:
        await redis.aclose()


def _business_file(directory: Path) -> Path:
    """The example café, with surveys at once day and night (as the sandbox has it) and support
    open all day, so nothing here depends on the time the test runs."""
    rules = yaml.safe_load((PROJECT / "business.example.yaml").read_text(encoding="utf-8"))
    rules["surveys"].update({"delay_minutes": 0, "quiet_hours": {"start": "00:00", "end": "00:00"}})
    rules["support"].pop("working_hours", None)
    path = directory / "business.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


async def _start_instance(number: int, api_url: str, hook_url: str, business: Path, directory: Path) -> Instance:
    port = free_port()
    log = directory / f"bot{number}.log"
    env = dict(os.environ)
    env.update(
        {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api_url,
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": REDIS_PREFIX,
            "WEBHOOK_URL": hook_url,
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_HOST": "127.0.0.1",
            "PORT": str(port),
            "ADMIN_IDS": str(OWNER),
            "MANAGER_CHAT_ID": str(GROUP_ID),
            "BUSINESS_FILE": str(business),
            "SCHEDULER_INTERVAL_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PROJECT / "main.py"),
            env=env,
            cwd=str(directory),  # no stray .env from the project directory
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    return Instance(number, port, log, process)


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str) -> AsyncIterator[Cluster]:
    """`postgres_url` is the run's own database: its teardown drops this test's database too."""
    problem = _service_problem()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    await _fresh_database()
    await _fresh_redis()

    world = World()
    for person in (CASHIER, STRANGER, *(p for p, _ in CUSTOMERS.values())):
        world.people[person.id] = person
    api, api_port = await serve(create_app(world, TOKEN))
    api_url = f"http://127.0.0.1:{api_port}"
    balancer = Balancer([])
    app = _app_with(HOOK_PATH, balancer.forward)
    front, front_port = await serve(app)
    business = _business_file(tmp_path)
    hook_url = f"http://127.0.0.1:{front_port}{HOOK_PATH}"
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    balancer.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    instances: list[Instance] = []
    box = Cluster(world, balancer, instances, Database(DATABASE_URL), http)
    try:
        for number in (1, 2):
            instances.append(await _start_instance(number, api_url, hook_url, business, tmp_path))
        balancer.backends = [i.url for i in instances]
        yield box
    finally:
        await asyncio.gather(*(stop_process(i.process, 15) for i in instances))
        await world.close()
        await http.close()
        await balancer.http.close()
        await front.cleanup()
        await api.cleanup()
        await box.db.dispose()
        await _fresh_redis()
        print("\n--- phases ---", *box.notes, sep="\n")
        print("\n--- updates through the balancer: id, instance, what ---")
        for number, update in balancer.handled:
            print(update["update_id"], number, _summary(update))
        for instance in instances:
            print(f"\n--- instance {instance.number} (exit code {instance.process.returncode}) ---")
            print(instance.tail())


def _summary(update: dict[str, Any]) -> str:
    if "callback_query" in update:
        query = update["callback_query"]
        return f"{query['from']['first_name']} pressed {query.get('data')}"
    message = update.get("message") or {}
    return f"{message.get('from', {}).get('first_name')} said {message.get('text')!r}"


# --- the scenario ------------------------------------------------------------------------------


async def test_two_instances_share_the_work_without_doubling_or_losing_anything(cluster: Cluster) -> None:
    phases = (
        both_instances_come_up,
        forged_updates_are_refused,
        customers_join,
        the_owner_invites_a_cashier,
        purchases_are_recorded_once,
        one_update_at_both_instances_is_handled_once,
        support_messages_in_a_hurry,
        the_owner_broadcasts_an_offer,
        instance_one_stops_gracefully,
        nothing_was_doubled_or_lost,
    )
    for phase in phases:
        started = time.monotonic()
        await phase(cluster)
        cluster.notes.append(f"{phase.__name__}: {time.monotonic() - started:.1f} s")


async def both_instances_come_up(c: Cluster) -> None:
    async def healthy(instance: Instance) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            if instance.process.returncode is not None:
                raise AssertionError(f"instance {instance.number} exited with {instance.process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                status, report = await c.health(instance)
                if status == 200:
                    return report
            if time.monotonic() > deadline:
                raise AssertionError(f"instance {instance.number} never answered /healthz with 200")
            await asyncio.sleep(0.2)

    for report in await asyncio.gather(*(healthy(i) for i in c.instances)):
        assert report["database"] == "ok" and report["redis"] == "ok", report
    hook = await _eventually(lambda: c.world.webhook)
    assert hook.url.endswith(HOOK_PATH) and hook.secret_token == SECRET


async def forged_updates_are_refused(c: Cluster) -> None:
    """Without the secret, or with a wrong one, an instance answers 401 and records nothing."""
    update = await c.world.message_update(STRANGER.id, STRANGER.id, "/start")
    for secret in (None, "wrong-secret"):
        assert await c.post(c.instances[0], update, secret=secret) == 401
    rows = await c.sql("SELECT update_id FROM processed_updates WHERE update_id = :id", id=update["update_id"])
    assert rows == []  # and the stranger's chat stays without an answer: checked at the end


async def customers_join(c: Cluster) -> None:
    async def join(name: str, person: Person, agrees: bool) -> None:
        await c.say(person.id, "/start")
        await c.sees(person.id, f"Hello, {name}!")
        await c.press(person.id, "join")
        await c.sees(person.id, "Tier: Base")
        await c.sees(person.id, "One more question: may Acme Café send you offers")
        await c.press(person.id, "cs:", label="✅ Yes, send me offers" if agrees else "No, thanks")
        await c.sees(person.id, "you will get our offers" if agrees else "All right. You can change it")

    await asyncio.gather(*(join(name, person, agrees) for name, (person, agrees) in CUSTOMERS.items()))


async def the_owner_invites_a_cashier(c: Cluster) -> None:
    await c.say(OWNER, "/invite")
    link = re.search(r"start=(staff_[\w-]+)", await c.sees(OWNER, r"start=staff_"))
    assert link is not None
    await c.say(CASHIER.id, f"/start {link.group(1)}")
    await c.sees(CASHIER.id, "You are now a cashier")
    await c.sees(OWNER, "Kai Berg is now a cashier")


PURCHASES = {"Ada": ("120", 6), "Ben": ("80", 4), "Cleo": ("200", 10), "Dan": ("64", 3)}  # receipt, points


def _added(name: str, points: int) -> str:
    return rf"✅ Added: \+{points} points\nCustomer: {name}\nBalance: "


async def purchases_are_recorded_once(c: Cluster) -> None:
    """The cashier types each card number, then the receipt total: that is the sale. Cleo's amount
    reaches both instances as one update sent twice (a redelivery), Dan's as the same amount typed
    twice at once (a double send), one message per instance."""
    for name, (amount, points) in PURCHASES.items():
        customer = _id(name)
        card = re.search(r"Card number: (\d{4}) (\d{4})", await c.sees(customer, "Card number:"))
        assert card is not None
        await c.say(CASHIER.id, "/scan")
        await c.sees(CASHIER.id, "Send the customer's card number")
        await c.say(CASHIER.id, card.group(1) + card.group(2))
        await c.sees(CASHIER.id, rf"{name} · Base\n(.|\n)*Type the receipt total, like 12\.50, to add points\.")
        if name == "Cleo":
            update = await c.world.message_update(CASHIER.id, CASHIER.id, amount)
            statuses = await asyncio.gather(*(c.post(i, update) for i in c.instances))
            assert statuses == [200, 200]
        elif name == "Dan":
            typed = [await c.world.message_update(CASHIER.id, CASHIER.id, amount) for _ in "12"]
            statuses = await asyncio.gather(*(c.post(i, u) for i, u in zip(c.instances, typed, strict=True)))
            assert statuses == [200, 200]
        else:
            await c.say(CASHIER.id, amount)
        await c.sees(CASHIER.id, _added(name, points))
        await c.sees(customer, rf"\+{points} points for your purchase of {amount}\.00\u00a0zł")
    # Both schedulers look for due surveys every second: each buyer is asked once (counted at the end).
    for name in PURCHASES:
        await c.sees(_id(name), "How likely are you to recommend Acme Café to a friend?")


async def one_update_at_both_instances_is_handled_once(c: Cluster) -> None:
    finn = _id("Finn")
    update = await c.world.message_update(finn, finn, "/history")
    assert await asyncio.gather(*(c.post(i, update) for i in c.instances)) == [200, 200]
    await c.sees(finn, "Your points history")  # once: counted at the end


SUPPORT_MESSAGES = ("My points from Monday are missing", "It was a latte and a croissant", "Card 5005, thanks!")
SIGNED = tuple(f"Eve:\n{words}" for words in SUPPORT_MESSAGES)  # in the topic, under her name (bot/support/desk.py)


async def support_messages_in_a_hurry(c: Cluster) -> None:
    eve = _id("Eve")
    await c.say(eve, "/support")
    for words in SUPPORT_MESSAGES:  # without waiting for anything in between
        await c.say(eve, words)
    await c.sees(eve, "Write your question here")

    def topic_texts() -> list[str] | None:
        topics = [i for i, t in c.world.topics.items() if "Eve S." in t["name"]]
        if not topics:
            return None
        texts = [s.data.get("text") for s in c.world.chat_messages(GROUP_ID, thread_id=topics[0])]
        return texts if SIGNED[-1] in texts else None

    texts = await c.world.wait_for(topic_texts, WAIT)
    assert [t for t in texts if t in SIGNED] == list(SIGNED)  # each once, in order
    assert len([t for t in c.world.topics.values() if "Eve S." in t["name"]]) == 1

    def took() -> list[int]:
        return c.balancer.instance_of(lambda u: (u.get("message") or {}).get("text") in SUPPORT_MESSAGES)

    await _eventually(lambda: len(took()) == len(SUPPORT_MESSAGES))  # the last answer may still be on its way
    assert set(took()) == {1, 2}, took()  # both instances had a part

    (topic,) = [i for i, t in c.world.topics.items() if "Eve S." in t["name"]]
    await c.say(MARTA, "We will add them today.", chat=GROUP_ID, thread_id=topic)
    await c.sees(eve, "Marta Wiśniewska, manager:\nWe will add them today.")


BROADCAST = "Autumn offer: two coffees for the price of one, all week."


async def the_owner_broadcasts_an_offer(c: Cluster) -> None:
    await c.say(OWNER, "/broadcast", chat=GROUP_ID)
    await c.sees(GROUP_ID, "Send me the message for customers")
    await c.say(OWNER, BROADCAST, chat=GROUP_ID)
    await c.sees(GROUP_ID, "Who should get it?")
    await c.press(OWNER, "bc:segment", label="Everyone who agreed to offers", chat=GROUP_ID)
    consenting = [name for name, (_, agrees) in CUSTOMERS.items() if agrees]
    await c.sees(GROUP_ID, f"Everyone who agreed to offers. It reaches {len(consenting)} people.")
    await c.press(OWNER, "bc:send", chat=GROUP_ID)
    await c.sees(GROUP_ID, f"is on its way to {len(consenting)} people")
    for name in consenting:
        await c.sees(_id(name), re.escape(BROADCAST))


async def instance_one_stops_gracefully(c: Cluster) -> None:
    """SIGTERM while instance 1 handles an update whose answer Telegram is slow to take: the
    update is finished and answered, the process exits with 0, and instance 2 serves the rest."""
    first, second = c.instances
    ben = _id("Ben")
    update = await c.world.message_update(ben, ben, "/history")
    c.world.slow_sends[ben] = 1.5
    delivery = asyncio.create_task(c.post(first, update))
    await _eventually(lambda: ben not in c.world.slow_sends)  # the bot's answer is on its way
    stopped_at = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    assert await delivery == 200
    await c.sees(ben, "Your points history")
    try:
        code = await asyncio.wait_for(first.process.wait(), 10)
    except TimeoutError:
        raise AssertionError(f"instance 1 still runs 10 s after SIGTERM:\n{first.tail()}") from None
    took = time.monotonic() - stopped_at
    assert code == 0, first.tail()
    c.notes.append(f"instance 1 exited with {code} {took:.1f} s after SIGTERM")
    rows = await c.sql("SELECT finished_at, error FROM processed_updates WHERE update_id = :id", id=update["update_id"])
    assert len(rows) == 1 and rows[0].finished_at is not None, f"the update in flight did not finish: {rows}"

    before = len(c.balancer.handled)
    asking = ("Ada", "Dan", "Finn")
    seen = {name: c.count(_id(name), "Your points history") for name in asking}
    for name in asking:
        await c.say(_id(name), "/history")
    await _eventually(lambda: all(c.count(_id(n), "Your points history") == seen[n] + 1 for n in asking))
    await _eventually(lambda: len(c.balancer.handled) >= before + len(asking))
    assert {number for number, _ in c.balancer.handled[before:]} == {2}
    status, report = await c.health(second)
    assert status == 200 and report["database"] == "ok" and report["redis"] == "ok"


async def nothing_was_doubled_or_lost(c: Cluster) -> None:
    world = c.world
    await world.wait_for(lambda: not world.updates, WAIT)  # every update delivered

    # The ledger: one entry per purchase, and every balance is the sum of its entries.
    purchases = await c.sql(
        "SELECT c.telegram_id, count(l.id) FROM customers c JOIN ledger_entries l ON l.customer_id = c.id "
        "WHERE l.kind = 'purchase' GROUP BY c.telegram_id"
    )
    assert dict(purchases) == {_id(name): 1 for name in PURCHASES}
    confirmed = await c.sql("SELECT count(*) FROM operations WHERE entry_id IS NOT NULL")
    assert confirmed[0][0] == len(PURCHASES)
    balances = await c.sql(
        "SELECT c.telegram_id, c.balance, COALESCE(SUM(l.points), 0) FROM customers c "
        "LEFT JOIN ledger_entries l ON l.customer_id = c.id GROUP BY c.id, c.telegram_id, c.balance"
    )
    assert balances and all(balance == total for _, balance, total in balances), balances
    for name, (_, points) in PURCHASES.items():
        assert c.count(_id(name), r"points for your purchase of") == 1, name
        assert c.count(CASHIER.id, _added(name, points)) == 1, name

    # One survey per buyer although both schedulers ran; none for the others.
    for name in CUSTOMERS:
        expected = 1 if name in PURCHASES else 0
        assert c.count(_id(name), "How likely are you to recommend") == expected, name
    asked = await c.sql("SELECT count(*) FROM surveys WHERE asked_at IS NOT NULL")
    assert asked[0][0] == len(PURCHASES)

    # The update sent to both instances, the support conversation, the broadcast.
    assert c.count(_id("Finn"), "Your points history") == 2  # once for the doubled update, once after the stop
    assert c.count(_id("Eve"), "Write your question here") == 1
    assert c.count(_id("Eve"), "Marta Wiśniewska, manager:\nWe will add them today.") == 1
    for name, (_, agrees) in CUSTOMERS.items():
        assert c.count(_id(name), re.escape(BROADCAST)) == (1 if agrees else 0), name
    assert world.bot_texts(STRANGER.id) == []

    # Every update the instances took was finished, none failed.
    unfinished = await c.sql("SELECT update_id, error FROM processed_updates WHERE finished_at IS NULL")
    assert unfinished == []
    assert {number for number, _ in c.balancer.handled} == {1, 2}
    for instance in c.instances:  # a failure replayed later would leave no other trace
        errors = [line for line in instance.log.read_text(errors="replace").splitlines() if " ERROR " in line]
        assert errors == [], f"instance {instance.number} logged errors"
