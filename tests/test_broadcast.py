"""Broadcasts: the segments, the rate limiter, the admins' /broadcast flow in the managers' group,
1,000 recipients against a Bot API that answers 429 and "blocked", and a restart midway.

Sending runs on a virtual clock: the limiter's sleeps move it forward at once, and the fake Bot
API stamps each call with it, so the rate is checked exactly and the tests take no real time."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import EditMessageText, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import Location, PhotoSize
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select, update

from bot.broadcasts.jobs import Broadcaster
from bot.broadcasts.rules import (
    Progress,
    Segment,
    SegmentError,
    SegmentKind,
    matches,
    minutes_left,
    parse_days,
    parse_segment,
    seconds_left,
)
from bot.broadcasts.service import BroadcastService
from bot.business import Business
from bot.core.callbacks import BroadcastCB, UnsubscribeCB
from bot.core.config import DEFAULT_FAQ_FILE, Settings
from bot.core.i18n import create_i18n
from bot.core.limiter import RateLimiter, sending_in_bulk
from bot.core.scheduler import Scheduler
from bot.core.sender import EDITING, SENDING
from bot.core.timers import Timers, renewing
from bot.dispatcher import create_bot, create_dispatcher
from bot.faq.service import FaqService
from bot.loyalty.service import LoyaltyService
from bot.support.service import SupportService
from bot.surveys.service import SurveyService
from storage.database import Database
from storage.models import Broadcast, BroadcastRecipient, BroadcastStatus, Customer, RecipientStatus
from tests.conftest import ADMIN_ID, GROUP_ID, MANAGER, OWNER, Clock, Harness, VirtualTime, make_settings
from tests.fake_telegram import RecordingSession

# --- a virtual clock and a harness whose broadcaster runs on it --------------------------------


def make_broadcaster(
    db: Database, business: Business, settings: Settings, i18n: I18n, clock: Clock, time: VirtualTime
) -> Broadcaster:
    return Broadcaster(BroadcastService(db, business, clock=clock), business, settings, i18n, now=time)


@dataclass
class BroadcastHarness(Harness):
    time: VirtualTime = field(default_factory=VirtualTime)
    calls: list[tuple[float, TelegramMethod[Any]]] = field(default_factory=list)  # every call, stamped

    @property
    def broadcaster(self) -> Broadcaster:
        return self.dp["broadcaster"]  # type: ignore[no-any-return]

    @property
    def service(self) -> BroadcastService:
        return self.broadcaster.service


@pytest.fixture
async def h(db: Database, business: Business) -> AsyncIterator[BroadcastHarness]:
    settings = make_settings(manager_chat_id=str(GROUP_ID))
    session = RecordingSession()
    clock = Clock()
    time = VirtualTime()
    bot = create_bot(settings, session=session, limiter=RateLimiter(now=time, sleep=time.sleep))
    i18n = create_i18n(business.default_language)
    loyalty = LoyaltyService(db, business, clock=clock, admin_ids=settings.admin_ids)
    surveys = SurveyService(db, business, clock=clock)
    dp = create_dispatcher(
        settings,
        business,
        db,
        i18n,
        loyalty=loyalty,
        surveys=surveys,
        support=SupportService(db, business, clock=clock),
        faq=FaqService(db, DEFAULT_FAQ_FILE, clock=clock),
        timers=Timers(clock.sleep),
        scheduler=Scheduler(sleep=clock.sleep),
        broadcaster=make_broadcaster(db, business, settings, i18n, clock, time),
    )
    harness = BroadcastHarness(
        bot=bot,
        dp=dp,
        session=session,
        db=db,
        loyalty=loyalty,
        business=business,
        clock=clock,
        surveys=surveys,
        time=time,
    )
    session.on_request = lambda method: harness.calls.append((time(), method))
    yield harness
    await dp.emit_shutdown(bot=bot)


# --- customers straight in the database -----------------------------------------------------


FIRST_ID = 500_000


async def add_customers(h: Harness, count: int, first_id: int = FIRST_ID, **fields: Any) -> list[int]:
    """Members who agreed to offers, unless `fields` say otherwise; returns their Telegram ids."""
    now = h.clock.now
    values: dict[str, Any] = {"joined_at": now - timedelta(days=100), "marketing_consent_at": now}
    values.update(fields)
    ids = list(range(first_id, first_id + count))
    async with h.db.writing() as session:
        for telegram_id in ids:
            member = values["joined_at"] is not None
            session.add(
                Customer(
                    telegram_id=telegram_id,
                    first_name=f"C{telegram_id}",
                    telegram_language=values.get("telegram_language", "en"),
                    card_number=f"{telegram_id:08d}" if member else None,
                    created_at=now - timedelta(days=200),
                    **{k: v for k, v in values.items() if k != "telegram_language"},
                )
            )
    return ids


async def recipients(h: Harness, broadcast_id: int) -> dict[int, BroadcastRecipient]:
    """Each recipient of a broadcast by Telegram id."""
    async with h.db.reading() as session:
        rows = await session.execute(
            select(Customer.telegram_id, BroadcastRecipient)
            .join(Customer, Customer.id == BroadcastRecipient.customer_id)
            .where(BroadcastRecipient.broadcast_id == broadcast_id)
        )
        return {telegram_id: recipient for telegram_id, recipient in rows.all()}


async def broadcasts(h: Harness) -> list[Broadcast]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(Broadcast).order_by(Broadcast.id)))


def sends_to_customers(h: BroadcastHarness, text: str | None = None) -> list[tuple[float, int]]:
    """Every call that sent customers something (with this text or caption), stamped; other jobs of
    the scheduler (a birthday, "we miss you") may write to them too."""
    return [
        (at, int(m.chat_id))  # type: ignore[arg-type]
        for at, m in h.calls
        if isinstance(m, (SendMessage, SendPhoto))
        and int(m.chat_id) > 0  # type: ignore[arg-type]
        and (text is None or (m.text if isinstance(m, SendMessage) else m.caption) == text)
    ]


def said(h: BroadcastHarness, language: str | None, text: str) -> str:
    """What the bot says in a person's language (the catalogs may translate it)."""
    i18n = h.broadcaster.i18n
    with i18n.context(), i18n.use_locale(language or "en"):
        return _(text)


def unsubscribe_button(markup: Any) -> str:
    (row,) = markup.inline_keyboard
    (button,) = row
    assert button.callback_data == UnsubscribeCB().pack()
    return str(button.text)


def assert_within_limits(h: BroadcastHarness) -> None:
    """No one-second window holds more than 30 messages and edits; a person never gets more than 5
    messages in 5 seconds, a group never more than 20 in a minute."""
    limited = [(at, method) for at, method in h.calls if isinstance(method, SENDING + EDITING)]
    times = sorted(at for at, _ in limited)
    for first, later in zip(times, times[30:], strict=False):
        assert later - first >= 1 - 1e-9, f"31 calls within {later - first:.3f} s"
    by_chat: dict[int, list[float]] = {}
    for at, method in limited:
        if isinstance(method, SENDING):
            by_chat.setdefault(int(method.chat_id), []).append(at)  # type: ignore[attr-defined]
    for chat, stamps in by_chat.items():
        size, span = (20, 60.0) if chat < 0 else (5, 5.0)
        for first, later in zip(stamps, stamps[size:], strict=False):
            assert later - first >= span - 1e-9, f"{size + 1} messages to {chat} within {later - first:.3f} s"


# --- the rules, without a bot -----------------------------------------------------------------


def member(**fields: Any) -> Customer:
    values: dict[str, Any] = {"telegram_id": 1, "joined_at": datetime(2026, 1, 1, tzinfo=UTC), "card_number": "1"}
    values.update(fields)
    return Customer(**values)


def test_a_tier_segment_follows_lifetime_spend(business: Business) -> None:
    now = datetime(2026, 5, 5, tzinfo=UTC)
    base, silver = business.tiers[0], business.tiers[1]
    silver_segment = parse_segment(f"tier={silver.id}", business)
    assert silver_segment == Segment(SegmentKind.TIER, silver.id)
    assert matches(silver_segment, member(lifetime_spend=silver.min_spend), business, now)
    assert not matches(silver_segment, member(lifetime_spend=silver.min_spend - 1), business, now)
    assert matches(parse_segment(f"tier={base.id}", business), member(lifetime_spend=0), business, now)
    if len(business.tiers) > 2:  # the top tier is not silver
        assert not matches(silver_segment, member(lifetime_spend=business.tiers[2].min_spend), business, now)


def test_a_language_segment_uses_the_language_the_bot_writes_in(business: Business) -> None:
    now = datetime(2026, 5, 5, tzinfo=UTC)
    polish = parse_segment("lang=pl", business)
    assert matches(polish, member(language="pl", telegram_language="ru"), business, now)
    assert matches(polish, member(language=None, telegram_language="pl-PL"), business, now)
    assert not matches(polish, member(language="en", telegram_language="pl"), business, now)
    default = parse_segment(f"lang={business.default_language}", business)
    assert matches(default, member(language=None, telegram_language="de"), business, now)


def test_inactive_counts_from_the_last_purchase_or_from_joining(business: Business) -> None:
    now = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)
    month = parse_segment("inactive", business, days=30)
    assert month.days == 30
    assert matches(month, member(last_purchase_at=now - timedelta(days=31)), business, now)
    assert not matches(month, member(last_purchase_at=now - timedelta(days=29)), business, now)
    assert not matches(
        month, member(joined_at=now - timedelta(days=90), last_purchase_at=now - timedelta(days=2)), business, now
    )
    assert matches(month, member(joined_at=now - timedelta(days=40), last_purchase_at=None), business, now)
    assert not matches(month, member(joined_at=now - timedelta(days=10), last_purchase_at=None), business, now)


def test_birthday_this_month_is_the_month_in_the_business_time_zone(business: Business) -> None:
    # 31 March 23:30 UTC is already 1 April in Warsaw.
    now = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    birthday = parse_segment("birthday", business)
    assert matches(birthday, member(birthday_day=10, birthday_month=4), business, now)
    assert not matches(birthday, member(birthday_day=31, birthday_month=3), business, now)
    assert not matches(birthday, member(), business, now)


def test_forged_segments_and_bad_day_counts_are_refused(business: Business) -> None:
    for value in ("tier=platinum", "lang=de", "inactive", "everyone", "tier=", "tier:base", ""):
        with pytest.raises(SegmentError):
            parse_segment(value, business)
    with pytest.raises(SegmentError):
        parse_segment("inactive", business, days=0)
    assert parse_days(" 60 ") == 60
    assert parse_days("3650") == 3650
    for text in ("0", "3651", "-5", "2.5", "sixty", "", "٣٠"):
        assert parse_days(text) is None


def test_time_left_follows_the_pace_and_never_beats_the_limit() -> None:
    assert seconds_left(0, 10, 5.0, 30) == 0
    assert seconds_left(300, 0, 0.0, 30) == 10  # nothing measured yet: the limit
    assert seconds_left(300, 100, 20.0, 30) == 60  # 5 a second so far
    assert seconds_left(300, 1000, 1.0, 30) == 10  # faster than allowed: the limit
    assert minutes_left(59) == 0
    assert minutes_left(60) == 1
    assert minutes_left(61) == 2
    progress = Progress.from_counts(10, {"sent": 4, "blocked": 1, "unknown": 1, "pending": 3, "sending": 1})
    assert (progress.remaining, progress.not_delivered, progress.finished) == (4, 2, False)


# --- the limiter -------------------------------------------------------------------------------


async def test_the_limiter_allows_30_calls_in_any_second_across_concurrent_workers() -> None:
    time = VirtualTime()
    limiter = RateLimiter(per_second=30, now=time, sleep=time.sleep)
    granted: list[float] = []

    async def worker(first_chat: int) -> None:
        for chat in range(first_chat, first_chat + 50):
            await limiter.acquire(chat)
            granted.append(time())

    await asyncio.gather(*(worker(1000 * n) for n in range(1, 5)))
    assert len(granted) == 200
    assert granted[:30] == [0.0] * 30  # a burst of 30 at once is allowed…
    assert granted[30] >= 1.0  # …the 31st waits for the window to slide
    for first, later in zip(granted, granted[30:], strict=False):
        assert later - first >= 1 - 1e-9
    assert granted[-1] < 7  # and no slower than needed: 200 calls fill about 6 windows


async def test_a_lease_is_renewed_while_the_work_runs_and_a_failed_renewal_is_tried_again() -> None:
    """Real time, about 0.2 s: how a broadcast and an update in the inbox keep their leases."""
    calls: list[str] = []

    async def renew() -> None:
        calls.append("renew")
        if len(calls) == 2:
            raise OSError("database went away")  # one bad round does not end the renewals

    async with renewing(renew, 0.02, "a test lease"):
        await asyncio.sleep(0.15)
    renewed = len(calls)
    assert renewed >= 4
    await asyncio.sleep(0.06)
    assert len(calls) == renewed  # stopped with the block


async def test_the_limiter_keeps_each_chats_pace_and_pauses_everyone_on_429() -> None:
    time = VirtualTime()
    limiter = RateLimiter(now=time, sleep=time.sleep)
    for _n in range(5):  # a short burst to one person is fine…
        await limiter.acquire(7)
    await limiter.acquire(8)
    assert time() == 0
    await limiter.acquire(7)  # …then about one a second
    assert time() == 5.0
    limiter.pause(3)
    await limiter.acquire(9)
    assert time() == 8.0
    await limiter.acquire(None)  # an edit counts only towards the overall window
    assert time() == 8.0


async def test_a_group_gets_20_messages_a_minute_without_holding_up_other_chats() -> None:
    minute_passed = asyncio.Event()  # the clock stands still until the test moves it a minute on

    async def sleep(_seconds: float) -> None:
        await minute_passed.wait()

    limiter = RateLimiter(now=lambda: 60.0 if minute_passed.is_set() else 0.0, sleep=sleep)
    group = -1001
    for _n in range(20):
        await limiter.acquire(group)
    twenty_first = asyncio.create_task(limiter.acquire(group))
    await asyncio.sleep(0)
    assert not twenty_first.done()  # the group's 21st message waits for the minute…
    await asyncio.wait_for(limiter.acquire(55), 1)  # …while a person's reply goes at once
    minute_passed.set()
    await asyncio.wait_for(twenty_first, 1)


async def test_bulk_sending_gives_way_to_replies() -> None:
    time = VirtualTime()
    limiter = RateLimiter(per_second=2, now=time, sleep=time.sleep)
    order: list[str] = []

    async def send(name: str, chat: int, bulk: bool) -> None:
        await limiter.acquire(chat, bulk=bulk)
        order.append(name)

    with sending_in_bulk():  # what the broadcaster and the scheduled jobs do
        bulk = [asyncio.create_task(send(f"bulk{n}", 100 + n, bulk=None)) for n in range(4)]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    replies = [asyncio.create_task(send(f"reply{n}", 200 + n, bulk=False)) for n in range(2)]
    await asyncio.gather(*bulk, *replies)
    assert order.index("reply1") < order.index("bulk3")
    assert sorted(order) == ["bulk0", "bulk1", "bulk2", "bulk3", "reply0", "reply1"]


# --- the admins' flow ---------------------------------------------------------------------------


async def compose(h: BroadcastHarness, text: str | None = "Autumn sale: −20% on cakes", **fields: Any) -> None:
    await h.send_group(OWNER, "/broadcast")
    assert "Send me the message for customers" in h.last(GROUP_ID)
    await h.send_group(OWNER, text, **fields)
    assert "Who should get it?" in h.last(GROUP_ID)


async def test_an_admin_composes_previews_and_sends_a_broadcast(h: BroadcastHarness) -> None:
    english = await add_customers(h, 2, telegram_language="en")
    polish = await add_customers(h, 1, first_id=600_000, telegram_language="pl")
    no_consent = await add_customers(h, 1, first_id=700_000, marketing_consent_at=None)
    blocked = await add_customers(h, 1, first_id=710_000, blocked_at=h.clock.now)
    not_member = await add_customers(h, 1, first_id=720_000, joined_at=None)
    h.clear()
    await compose(h, "Autumn sale: <b>−20%</b> on cakes")
    await h.press_group(OWNER, h.button(GROUP_ID, "Everyone who agreed"))

    preview, summary = h.sent(SendMessage, GROUP_ID)[-2:]
    # Exactly what customers get: the text as written (quoted for HTML), with the Unsubscribe button.
    assert preview.text == "Autumn sale: &lt;b&gt;−20%&lt;/b&gt; on cakes"
    assert unsubscribe_button(preview.reply_markup) == "🔕 Unsubscribe"
    assert "It reaches 3 people." in summary.text
    assert not sends_to_customers(h)

    await h.press_group(OWNER, h.button(GROUP_ID, "Send"))
    # The confirmation and the first progress figures race; both reach the group.
    assert any("Broadcast #1 is on its way to 3 people" in text for text in h.texts(GROUP_ID))
    await h.broadcaster.wait()

    i18n = h.dp["broadcaster"].i18n
    for telegram_id, language in [(english[0], "en"), (english[1], "en"), (polish[0], "pl")]:
        (sent,) = h.sent(SendMessage, telegram_id)
        assert sent.text == preview.text
        with i18n.context(), i18n.use_locale(language):
            assert unsubscribe_button(sent.reply_markup) == _("🔕 Unsubscribe")
    for telegram_id in no_consent + blocked + not_member:
        assert h.texts(telegram_id) == []
    (broadcast,) = await broadcasts(h)
    assert (broadcast.status, broadcast.total, broadcast.created_by) == (BroadcastStatus.DONE, 3, ADMIN_ID)
    assert {r.status for r in (await recipients(h, 1)).values()} == {RecipientStatus.SENT}
    progress = [m for _, m in h.calls if isinstance(m, SendMessage) and "Broadcast #1: sending" in m.text]
    assert len(progress) == 1  # one progress message, edited afterwards
    assert h.last(GROUP_ID) == "✅ Broadcast #1 is done: sent to 3 of 3."


async def test_a_broadcast_sent_from_the_group_works_off_the_loop(
    h: BroadcastHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Send press is an update, whose statements run on the loop's thread (SQLite); the
    broadcast it starts is long work, and runs its statements in the thread, as a resumed one."""
    import storage.database

    on_the_loop: list[bool] = []
    claim = BroadcastService.claim

    async def claiming(self: BroadcastService, broadcast_id: int, limit: int) -> Any:
        on_the_loop.append(storage.database._ON_THE_LOOP.get())
        return await claim(self, broadcast_id, limit)

    monkeypatch.setattr(BroadcastService, "claim", claiming)
    await add_customers(h, 2, telegram_language="en")
    h.clear()
    await compose(h)
    await h.press_group(OWNER, h.button(GROUP_ID, "Everyone who agreed"))
    await h.press_group(OWNER, h.button(GROUP_ID, "Send"))
    await h.broadcaster.wait()
    assert len(sends_to_customers(h)) == 2
    assert on_the_loop and not any(on_the_loop)


async def test_a_photo_broadcast_to_one_tier(h: BroadcastHarness) -> None:
    silver = h.business.tiers[1]
    (base,) = await add_customers(h, 1)
    (vip,) = await add_customers(h, 1, first_id=600_000, lifetime_spend=silver.min_spend)
    h.clear()
    photo = [PhotoSize(file_id="menu-photo", file_unique_id="menu", width=800, height=600)]
    await compose(h, None, photo=photo, caption="Our new menu")
    await h.press_group(OWNER, h.button(GROUP_ID, f"Tier: {silver.name.get('en')}"))
    (preview,) = h.sent(SendPhoto, GROUP_ID)
    assert (preview.photo, preview.caption) == ("menu-photo", "Our new menu")
    assert "It reaches 1 person." in h.last(GROUP_ID)
    await h.press_group(OWNER, h.button(GROUP_ID, "Send"))
    await h.broadcaster.wait()
    (sent,) = h.sent(SendPhoto, vip)
    assert (sent.photo, sent.caption) == ("menu-photo", "Our new menu")
    unsubscribe_button(sent.reply_markup)
    assert h.texts(base) == []


async def test_wrong_content_and_bad_day_counts_are_explained_and_the_draft_kept(h: BroadcastHarness) -> None:
    await add_customers(h, 2, last_purchase_at=h.clock.now - timedelta(days=45))
    await add_customers(h, 1, first_id=600_000, last_purchase_at=h.clock.now - timedelta(days=5))
    await h.send_group(OWNER, "/broadcast")
    await h.send_group(OWNER, None, location=Location(latitude=52.23, longitude=21.01))
    assert "A broadcast can be text, or one photo with a caption" in h.last(GROUP_ID)
    await h.send_group(OWNER, "We miss you! Coffee is on us this week.")
    await h.press_group(OWNER, h.button(GROUP_ID, "No purchase for N days"))
    assert "No purchase for how many days?" in h.last(GROUP_ID)
    for wrong in ("a month", "0", "99999"):
        await h.send_group(OWNER, wrong)
        assert "Send a whole number of days from 1 to 3650" in h.last(GROUP_ID)
    await h.send_group(OWNER, "30")
    assert h.texts(GROUP_ID)[-2] == "We miss you! Coffee is on us this week."
    assert "No purchase for 30 days. It reaches 2 people." in h.last(GROUP_ID)


async def test_a_segment_nobody_is_in_says_so_and_offers_no_send(h: BroadcastHarness) -> None:
    await add_customers(h, 2)  # no birthdays known
    await compose(h)
    await h.press_group(OWNER, h.button(GROUP_ID, "Birthday this month"))
    assert "nobody there has agreed to offers" in h.last(GROUP_ID)
    labels = [b.text for row in h.last_markup(GROUP_ID).inline_keyboard for b in row]
    assert not any("Send" in label for label in labels)
    assert not h.sent(SendPhoto, GROUP_ID) and "Autumn sale" not in " ".join(h.texts(GROUP_ID))
    await h.press_group(OWNER, BroadcastCB(action="send", value="anything"))
    assert await broadcasts(h) == []


async def test_cancel_stops_composing(h: BroadcastHarness) -> None:
    await add_customers(h, 1)
    await h.send_group(OWNER, "/broadcast")
    await h.send_group(OWNER, "/cancel")
    assert h.last(GROUP_ID) == "Cancelled."
    h.clear()
    await h.send_group(OWNER, "This is just a message in the group")
    assert "Who should get it?" not in " ".join(h.texts(GROUP_ID))
    # and from the preview: the Cancel button
    await compose(h)
    await h.press_group(OWNER, h.button(GROUP_ID, "Everyone who agreed"))
    await h.press_group(OWNER, h.button(GROUP_ID, "Cancel"))
    assert h.last(GROUP_ID) == "Cancelled: nothing was sent."
    assert await broadcasts(h) == []


async def test_only_admins_can_broadcast_even_with_a_forged_button(h: BroadcastHarness) -> None:
    await add_customers(h, 2)
    refusal = "Only the owners can send broadcasts."  # in the managers' group: the group's language
    await h.send_group(MANAGER, "/broadcast")
    assert h.last(GROUP_ID) == refusal
    await h.send_group(MANAGER, "Free cake for everyone!")
    assert "Who should get it?" not in " ".join(h.texts(GROUP_ID))

    # The owner's draft is waiting for Send; a manager presses a copy of that button.
    await compose(h)
    await h.press_group(OWNER, h.button(GROUP_ID, "Everyone who agreed"))
    send = h.button(GROUP_ID, "Send")
    for data in (send, BroadcastCB(action="segment", value="all").pack(), BroadcastCB(action="cancel").pack()):
        await h.press_group(MANAGER, data)
        # A pop-up is read by the one who pressed: in Marta's own language.
        assert h.alerts()[-1] == said(h, MANAGER.language_code, "Only the owners can send broadcasts.")
    assert await broadcasts(h) == []
    assert not sends_to_customers(h)
    # The owner's draft is untouched.
    await h.press_group(OWNER, send)
    await h.broadcaster.wait()
    assert len(sends_to_customers(h)) == 2


async def test_a_double_tap_on_send_makes_one_broadcast(h: BroadcastHarness) -> None:
    customers = await add_customers(h, 3)
    await compose(h)
    await h.press_group(OWNER, h.button(GROUP_ID, "Everyone who agreed"))
    send = h.button(GROUP_ID, "Send")
    await asyncio.gather(h.press_group(OWNER, send), h.press_group(OWNER, send))
    await h.press_group(OWNER, send)
    await h.broadcaster.wait()
    assert len(await broadcasts(h)) == 1
    assert (
        h.alerts().count(
            "This button no longer works: the broadcast was sent or cancelled. Start again with /broadcast."
        )
        == 2
    )
    assert Counter(chat for _, chat in sends_to_customers(h)) == dict.fromkeys(customers, 1)


# --- 1,000 recipients against a Bot API that pushes back --------------------------------------


def retry_after(chat: int, seconds: int) -> TelegramRetryAfter:
    method = SendMessage(chat_id=chat, text="")
    return TelegramRetryAfter(method=method, message=f"Too Many Requests: retry after {seconds}", retry_after=seconds)


async def test_a_thousand_recipients_get_it_once_within_the_limits(h: BroadcastHarness) -> None:
    reachable = await add_customers(h, 1000)
    no_consent = await add_customers(h, 30, first_id=700_000, marketing_consent_at=None)
    erased = await add_customers(h, 10, first_id=710_000, deleted_at=h.clock.now)
    blocked_before = await add_customers(h, 10, first_id=720_000, blocked_at=h.clock.now)
    outsiders = no_consent + erased + blocked_before

    blocks = set(reachable[5::13])  # "Forbidden: bot was blocked by the user"
    gone = set(reachable[11::97]) - blocks  # "chat not found": unreachable too
    refused = set(reachable[3::101]) - blocks - gone  # any other refusal: failed, not retried
    for chat in blocks:
        h.session.blocked.add(chat)
    waits: dict[int, list[int]] = {}  # chat -> the retry_after of each 429 it answers with
    for n, chat in enumerate(c for c in reachable if c not in blocks | gone | refused):
        if n % 40 == 0:  # sparse enough that the 30-a-second limit binds between the pauses
            waits[chat] = [1 + n % 3] * (2 if n % 120 == 0 else 1)
            h.session.chat_failures[chat] = [retry_after(chat, seconds) for seconds in waits[chat]]
    for chat in gone:
        h.session.chat_failures[chat] = [
            TelegramBadRequest(method=SendMessage(chat_id=chat, text=""), message="Bad Request: chat not found")
        ]
    for chat in refused:
        h.session.chat_failures[chat] = [
            TelegramBadRequest(method=SendMessage(chat_id=chat, text=""), message="Bad Request: something else")
        ]

    broadcast = await h.service.create(
        Segment(SegmentKind.ALL),
        text="Autumn offer",
        photo_file_id=None,
        created_by=ADMIN_ID,
        created_by_name="Olga",
        chat_id=GROUP_ID,
    )
    assert broadcast is not None and broadcast.total == 1000
    h.broadcaster.start(h.bot, broadcast)
    await asyncio.wait_for(h.broadcaster.wait(), timeout=120)  # a guard against a hang, not a timing

    # What people received: one message for each reachable customer, nothing for the others.
    attempts = Counter(chat for _, chat in sends_to_customers(h))
    unreachable = blocks | gone | refused
    for chat in reachable:
        delivered = attempts[chat] - len(waits.get(chat, [])) - (1 if chat in unreachable else 0)
        assert delivered == (0 if chat in unreachable else 1), chat
    for chat in outsiders:
        assert attempts[chat] == 0
    assert all(attempts[chat] == 1 for chat in unreachable)  # a refusal is not retried
    assert not any(h.session.chat_failures.values())  # every scripted 429 was met and retried

    # The limits: 30 a second overall, one a second per chat, and the pause after each 429.
    assert_within_limits(h)
    pauses: list[tuple[float, int]] = []  # when a 429 came, and how long it asked to wait
    answered: Counter[int] = Counter()
    for at, chat in sends_to_customers(h):
        if answered[chat] < len(waits.get(chat, [])):
            pauses.append((at, waits[chat][answered[chat]]))
        answered[chat] += 1
    assert len(pauses) == sum(len(w) for w in waits.values()) >= 25
    for start, seconds in pauses:
        assert not [at for at, _ in h.calls if start < at < start + seconds - 1e-9], "a call during a 429 pause"

    # What the database says, and what the managers read.
    rows = await recipients(h, broadcast.id or 0)
    statuses = Counter(r.status for r in rows.values())
    assert statuses == {
        RecipientStatus.SENT: 1000 - len(unreachable),
        RecipientStatus.BLOCKED: len(blocks) + len(gone),
        RecipientStatus.FAILED: len(refused),
    }
    async with h.db.reading() as session:
        marked = set(await session.scalars(select(Customer.telegram_id).where(Customer.blocked_at.is_not(None))))
    assert marked == blocks | gone | set(blocked_before)
    (done,) = await broadcasts(h)
    assert done.status == BroadcastStatus.DONE and done.finished_at is not None
    final = h.last(GROUP_ID)
    assert final.startswith(f"✅ Broadcast #{done.id} is done: sent to {1000 - len(unreachable)} of 1,000.")
    assert f"{len(blocks) + len(gone)} people have blocked the bot" in final
    assert f"Telegram did not accept {len(refused)} messages." in final
    edits = [m for _, m in h.calls if isinstance(m, EditMessageText) and int(m.chat_id or 0) == GROUP_ID]
    assert 2 <= len(edits) <= h.time() / 6 + 2  # edited as it went, sparingly
    assert any("Remaining:" in m.text and "Time left:" in m.text for m in edits)

    # The next broadcast skips those who blocked the bot.
    assert await h.service.count(Segment(SegmentKind.ALL)) == 1000 - len(blocks) - len(gone)


# --- a restart midway --------------------------------------------------------------------------


async def test_a_broadcast_resumes_after_a_restart_without_sending_anyone_twice(
    h: BroadcastHarness, db: Database, business: Business
) -> None:
    customers = await add_customers(h, 60)
    stalled = customers[4]  # its send leaves and never comes back before the process stops
    h.session.hanging.add(stalled)
    broadcast = await h.service.create(
        Segment(SegmentKind.ALL),
        text="Weekend brunch",
        photo_file_id=None,
        created_by=ADMIN_ID,
        created_by_name="Olga",
        chat_id=GROUP_ID,
    )
    assert broadcast is not None and broadcast.id is not None
    task = h.broadcaster.start(h.bot, broadcast)

    # A second process starting now leaves it alone: the first holds the lease.
    settings = make_settings(manager_chat_id=str(GROUP_ID))
    i18n = create_i18n(business.default_language)
    second_time = VirtualTime()
    second = make_broadcaster(db, business, settings, i18n, h.clock, second_time)
    assert await second.resume(h.bot) == 0

    def stop_midway(method: TelegramMethod[Any]) -> None:
        h.calls.append((h.time(), method))
        sent = [chat for _, chat in sends_to_customers(h, "Weekend brunch")]
        if stalled in sent and len(sent) >= 25 and not task.cancelling():
            task.cancel()  # the process is told to stop (a deploy, a restart)

    h.session.on_request = stop_midway
    await asyncio.wait_for(h.broadcaster.wait(), timeout=60)
    assert task.cancelled()
    rows = await recipients(h, broadcast.id)
    statuses = Counter(r.status for r in rows.values())
    assert rows[stalled].status == RecipientStatus.SENDING  # nobody knows whether it arrived
    assert statuses[RecipientStatus.SENDING] == 1  # claims never tried went back to the queue
    assert statuses[RecipientStatus.PENDING] > 0 and statuses[RecipientStatus.SENT] >= 20

    # The new process: its scheduler job takes the broadcast over and finishes it.
    dp = create_dispatcher(
        settings,
        business,
        db,
        i18n,
        scheduler=Scheduler(sleep=h.clock.sleep),
        broadcaster=second,
        timers=Timers(h.clock.sleep),
    )
    h.session.on_request = lambda method: h.calls.append((second_time(), method))
    h.session.hanging.clear()  # were it sent again, the count below would show it
    await dp["scheduler"].run_once(h.bot)
    await asyncio.wait_for(second.wait(), timeout=60)

    rows = await recipients(h, broadcast.id)
    assert rows[stalled].status == RecipientStatus.UNKNOWN
    assert {r.status for chat, r in rows.items() if chat != stalled} == {RecipientStatus.SENT}
    assert Counter(chat for _, chat in sends_to_customers(h, "Weekend brunch")) == dict.fromkeys(customers, 1)
    (done,) = await broadcasts(h)
    assert done.status == BroadcastStatus.DONE
    # The same progress message, carried on by the new process.
    progress = [m for _, m in h.calls if isinstance(m, SendMessage) and int(m.chat_id) == GROUP_ID]
    assert len(progress) == 1
    final = h.last(GROUP_ID)
    assert final.startswith(f"✅ Broadcast #{done.id} is done: sent to 59 of 60.")
    assert "1 message was interrupted by a restart and may not have arrived; it will not be sent again." in final
    await dp.emit_shutdown(bot=h.bot)


async def test_a_broadcast_whose_process_died_is_taken_over_when_its_lease_runs_out(h: BroadcastHarness) -> None:
    customers = await add_customers(h, 12)
    broadcast = await h.service.create(
        Segment(SegmentKind.ALL),
        text="Hello",
        photo_file_id=None,
        created_by=ADMIN_ID,
        created_by_name="Olga",
        chat_id=GROUP_ID,
    )
    assert broadcast is not None and broadcast.id is not None
    # The process that created it claimed two recipients and died without a word.
    claimed = await h.service.claim(broadcast.id, 2)
    # One customer withdrew consent in the meantime, another erased their data.
    async with h.db.writing() as session:
        await session.execute(
            update(Customer).where(Customer.telegram_id == customers[5]).values(marketing_consent_at=None)
        )
        await session.execute(
            update(Customer).where(Customer.telegram_id == customers[6]).values(deleted_at=h.clock.now)
        )
    await h.tick()
    assert not sends_to_customers(h, "Hello")  # the lease is still running
    h.clock.advance(minutes=3)
    await h.tick()
    await h.broadcaster.wait()
    rows = await recipients(h, broadcast.id)
    lost = {d.telegram_id for d in claimed}
    assert {chat for chat, r in rows.items() if r.status == RecipientStatus.UNKNOWN} == lost
    assert {chat for chat, r in rows.items() if r.status == RecipientStatus.SKIPPED} == {customers[5], customers[6]}
    sent = Counter(chat for _, chat in sends_to_customers(h, "Hello"))
    assert sent == dict.fromkeys(set(customers) - lost - {customers[5], customers[6]}, 1)
    final = h.last(GROUP_ID)
    assert "sent to 8 of 12." in final
    assert "2 people unsubscribed or left before the message reached them." in final


async def test_a_caption_longer_than_telegram_takes_is_refused_before_the_preview(h: BroadcastHarness) -> None:
    h.clear()
    photo = [PhotoSize(file_id="menu-photo", file_unique_id="menu", width=800, height=600)]
    await h.send_group(OWNER, "/broadcast")
    await h.send_group(OWNER, None, photo=photo, caption="x" * 1100)
    assert "too long" in h.last(GROUP_ID) and "1024" in h.last(GROUP_ID).replace("\u00a0", "").replace(",", "")
    assert h.sent(SendPhoto, GROUP_ID) == []
