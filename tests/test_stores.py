"""A chain of stores (issue 19): a cashier belongs to a store, every movement, operation, survey,
alert and request records the store it happened in, alerts name it (and reach the store's own
managers' group), and /stats takes a store. Through the real dispatcher, on SQLite and PostgreSQL;
the migration keeps a one-shop database as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiogram.methods import EditMessageText, SendDocument, SendMessage, SendPhoto
from aiogram.types import User
from sqlalchemy import select, text

from bot.business import Business, load_business
from bot.core.callbacks import (
    InviteCB,
    LanguageCB,
    RedeemAnswerCB,
    ScanCB,
    StaffCB,
    StatsCB,
    SurveyCB,
    TicketCB,
    UndoCB,
)
from bot.core.config import DEFAULT_BUSINESS_FILE
from bot.loyalty.service import LoyaltyService
from storage.database import Database, migrate
from storage.models import Alert, EntryKind, LedgerEntry, Operation, Staff, Survey, SurveyStatus, Ticket
from tests.conftest import (
    ANNA,
    CASHIER,
    CASHIER_2,
    EMMA,
    GROUP_ID,
    MANAGER,
    OWNER,
    STRANGER,
    Clock,
    Harness,
    RecordingSession,
    build_harness,
    make_settings,
    virtual_bot,
)
from tests.test_surveys import at_local

STORE_GROUP = -1001000000077  # the Old Town's own managers' group
STORES = [
    {"id": "centre", "name": {"ru": "Центр", "pl": "Centrum", "en": "City Centre"}, "address": "ul. Długa 1"},
    {
        "id": "old_town",
        "name": {"ru": "Старый город", "pl": "Stare Miasto", "en": "Old Town"},
        "managers_group_id": STORE_GROUP,
    },
]


def chain_business(tmp_path: Path) -> Business:
    rules = yaml.safe_load(DEFAULT_BUSINESS_FILE.read_text(encoding="utf-8"))
    rules["stores"] = STORES
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return load_business(path)


async def invite(h: Harness, user: User, store: str) -> None:
    await h.send(OWNER, "/invite")
    await h.press(OWNER, InviteCB(store=store))
    link = h.last(OWNER.id).split("start=")[1].split()[0]
    await h.send(user, f"/start {link}")
    await h.send(user, "/language")
    await h.press(user, LanguageCB(code="en"))


@pytest.fixture
async def chain(db: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    """Two stores: Kasia works in the City Centre, Piotr in the Old Town; Anna and Emma are members."""
    settings = make_settings(manager_chat_id=str(GROUP_ID))
    session = RecordingSession()
    session.group_members.update({MANAGER.id})
    bot = virtual_bot(settings, session)
    h = build_harness(db, chain_business(tmp_path), settings, bot, session, Clock())
    await invite(h, CASHIER, "centre")
    await invite(h, CASHIER_2, "old_town")
    for user in (ANNA, EMMA):
        await h.join(user)
    h.clear()
    yield h
    await h.dp.emit_shutdown(bot=bot)


async def rows(h: Harness, model: type) -> list:  # type: ignore[type-arg]
    async with h.db.reading() as session:
        return list(await session.scalars(select(model).order_by(model.id)))  # type: ignore[attr-defined]


async def open_card(h: Harness, cashier: User, user: User = EMMA) -> int:
    token = await h.card_token(user)
    await h.send(cashier, f"/start c_{token}")
    return (await h.customer(user)).id  # type: ignore[return-value]


async def staff_of(h: Harness, user: User) -> Staff:
    (staff,) = [s for s in await rows(h, Staff) if s.telegram_id == user.id]
    return staff


async def test_invite_asks_which_store_and_staff_shows_it(chain: Harness) -> None:
    assert (await staff_of(chain, CASHIER)).store == "centre"
    assert (await staff_of(chain, CASHIER_2)).store == "old_town"
    await chain.send(OWNER, "/invite")
    assert chain.last(OWNER.id) == "Which store will the new cashier work in?"
    labels = [b.text for row in chain.last_markup(OWNER.id).inline_keyboard for b in row]
    assert labels == ["City Centre", "Old Town"]
    await chain.press(OWNER, InviteCB(store="old_town"))
    assert chain.last(OWNER.id).startswith("Store: Old Town\nSend this link to your new cashier.")
    await chain.press(OWNER, InviteCB(store="old_town"))  # a second tap on the same question
    assert "no longer works" in chain.alerts()[-1]
    assert sum("Send this link" in t for t in chain.texts(OWNER.id)[-3:]) <= 1
    await chain.press(OWNER, InviteCB(store="airport"))  # a forged or stale store: no link
    assert "no longer in the business file" in chain.alerts()[-1]
    await chain.send(OWNER, "/staff")
    screen = chain.last(OWNER.id)
    assert "Kasia Kowalska · City Centre · since" in screen and "Piotr Zielinski · Old Town · since" in screen
    labels = [b.text for row in chain.last_markup(OWNER.id).inline_keyboard for b in row]
    assert labels[:2] == ["Move Kasia Kowalska", "Revoke Kasia Kowalska"]


async def test_a_sale_a_payment_with_points_and_an_undo_are_recorded_in_the_cashiers_store(chain: Harness) -> None:
    emma = await open_card(chain, CASHIER_2)
    await chain.send(CASHIER_2, "40")
    (sale,) = await rows(chain, Operation)
    (purchase,) = [e for e in await rows(chain, LedgerEntry) if e.kind == EntryKind.PURCHASE]
    assert sale.store == purchase.store == "old_town"
    (survey,) = await rows(chain, Survey)
    assert survey.store == "old_town"  # the survey about that visit belongs to the store too

    await open_card(chain, CASHIER_2)  # her next visit
    await chain.press(CASHIER_2, ScanCB(action="redeem", customer_id=emma))
    await chain.send(CASHIER_2, "30")
    await chain.send(CASHIER_2, "5")
    redemption = (await rows(chain, Operation))[-1]
    await chain.press(EMMA, RedeemAnswerCB(op_id=redemption.id, accept=True))
    await chain.press(CASHIER_2, UndoCB(entry_id=purchase.id))
    by_kind = {e.kind: e.store for e in await rows(chain, LedgerEntry)}
    assert by_kind[EntryKind.REDEMPTION] == by_kind[EntryKind.REVERSAL] == "old_town"
    assert by_kind[EntryKind.WELCOME] == "main"  # not a visit: the first store's, as before stores

    await open_card(chain, CASHIER, ANNA)
    await chain.send(CASHIER, "25")
    assert (await rows(chain, LedgerEntry))[-1].store == "centre"


async def unhappy_after_a_visit(h: Harness, cashier: User, user: User, morning: bool = True) -> Alert:
    if morning:
        at_local(h, 11)
    await open_card(h, cashier, user)
    await h.send(cashier, "40")
    h.clock.advance(minutes=61)
    await h.tick()
    (survey,) = [s for s in await rows(h, Survey) if s.status == SurveyStatus.ASKED and s.customer_id]
    await h.press(user, SurveyCB(survey_id=survey.id, score=2))
    return (await rows(h, Alert))[-1]


async def test_an_alert_names_the_store_and_reaches_its_own_group(chain: Harness) -> None:
    alert = await unhappy_after_a_visit(chain, CASHIER_2, EMMA)
    assert alert.store == "old_town"
    header, post = chain.sent(SendMessage, GROUP_ID)  # the main group sees every store
    assert "🏪 Store: Old Town" in post.text and "cashier Piotr Zielinski" in post.text
    assert "Last visit: " in header.text and ", Old Town · Last NPS" in header.text
    (copy,) = chain.sent(SendMessage, STORE_GROUP)  # and the store's own group is told
    assert "🏪 Store: Old Town" in copy.text and copy.text.endswith("It is handled in the main managers' group.")
    assert copy.reply_markup is None  # the buttons live in the main group's message
    await chain.send(EMMA, "The coffee was cold")  # her comment follows the score
    (edited,) = chain.sent(EditMessageText, STORE_GROUP)  # the copy follows the alert
    assert "Comment: “The coffee was cold”" in edited.text and "No comment yet." not in edited.text
    assert len(chain.sent(SendMessage, STORE_GROUP)) == 1


async def test_a_store_without_its_own_group_alerts_the_main_group_only(chain: Harness) -> None:
    alert = await unhappy_after_a_visit(chain, CASHIER, ANNA)
    assert alert.store == "centre"
    assert "🏪 Store: City Centre" in chain.sent(SendMessage, GROUP_ID)[-1].text
    assert chain.sent(SendMessage, STORE_GROUP) == []


async def test_a_request_belongs_to_the_store_of_the_last_visit(chain: Harness) -> None:
    await open_card(chain, CASHIER_2)
    await chain.send(CASHIER_2, "40")
    await chain.send(EMMA, "/support")
    await chain.send(EMMA, "The croissant was stale")
    (ticket,) = await rows(chain, Ticket)
    assert ticket.store == "old_town"


async def test_an_owner_moves_a_cashier_and_nobody_else_can(chain: Harness) -> None:
    piotr = await staff_of(chain, CASHIER_2)
    await open_card(chain, CASHIER_2)
    await chain.send(CASHIER_2, "40")
    for forger in (STRANGER, CASHIER, CASHIER_2):  # callback data can be forged: rights are checked
        await chain.press(forger, StaffCB(action="to", staff_id=piotr.id, store="centre"))
    assert (await staff_of(chain, CASHIER_2)).store == "old_town"

    await chain.send(OWNER, "/staff")
    await chain.press(OWNER, StaffCB(action="move", staff_id=piotr.id))
    labels = [b.text for row in chain.last_markup(OWNER.id).inline_keyboard for b in row]
    assert labels == ["City Centre", "Old Town"]
    await chain.press(OWNER, StaffCB(action="to", staff_id=piotr.id, store="airport"))
    assert "Nothing changed" in chain.alerts()[-1]
    await chain.press(OWNER, StaffCB(action="to", staff_id=piotr.id, store="centre"))
    assert chain.alerts()[-1] == "Piotr Zielinski now works at City Centre."
    assert "Piotr Zielinski · City Centre · since" in chain.last(OWNER.id)
    assert (await staff_of(chain, CASHIER_2)).store == "centre"

    await open_card(chain, CASHIER_2, ANNA)
    await chain.send(CASHIER_2, "25")
    stores = [e.store for e in await rows(chain, LedgerEntry) if e.kind == EntryKind.PURCHASE]
    assert stores == ["old_town", "centre"]  # the past stays where it happened


async def test_stats_take_a_store(chain: Harness) -> None:
    await unhappy_after_a_visit(chain, CASHIER_2, EMMA)  # NPS 2 in the Old Town
    chain.clock.advance(days=1)
    at_local(chain, 11, day=24)
    await open_card(chain, CASHIER, ANNA)
    await chain.send(CASHIER, "40")
    chain.clock.advance(minutes=61)
    await chain.tick()
    (survey,) = [s for s in await rows(chain, Survey) if s.status == SurveyStatus.ASKED]
    await chain.press(ANNA, SurveyCB(survey_id=survey.id, score=10))  # NPS 10 in the City Centre

    await chain.send_group(MANAGER, "/stats")
    everywhere = chain.last(GROUP_ID)
    assert "🏪 All stores" in everywhere and "promoters 1 · passives 0 · detractors 1" in everywhere
    labels = [b.text for row in chain.last_markup(GROUP_ID).inline_keyboard for b in row]
    assert labels[3:6] == ["✓ All stores", "City Centre", "Old Town"]
    await chain.press_group(MANAGER, StatsCB(action="show", days=30, store="old_town"))
    old_town = chain.last(GROUP_ID)
    assert "🏪 Store: Old Town" in old_town and "promoters 0 · passives 0 · detractors 1" in old_town
    assert "Piotr Zielinski · NPS −100 (1)" in old_town and "Kasia" not in old_town and "#1 Emma" in old_town
    await chain.press_group(MANAGER, StatsCB(action="show", days=30, store="centre"))
    centre = chain.last(GROUP_ID)
    assert "promoters 1 · passives 0 · detractors 0" in centre and "(1 of 1 surveys answered)" in centre
    assert "No open alerts." in centre  # Emma's alert is the Old Town's


async def test_the_migration_keeps_a_one_shop_database(tmp_path: Path) -> None:
    """Upgrading a database from before stores puts every row in the implicit store: the balance,
    the ledger and a cashier's next sale go on as they did."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await migrate(url, "0008")
    db = Database(url)
    async with db.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO customers (id, telegram_id, first_name, card_number, balance, lifetime_spend, "
                "joined_at, created_at) VALUES (1, 7, 'Zoe', '1234567890', 62, 4000, :t, :t)"
            ),
            {"t": "2026-11-01 10:00:00.000000"},
        )
        await connection.execute(
            text(
                "INSERT INTO ledger_entries (customer_id, kind, points, spend, balance_after, idempotency_key, "
                "created_at) VALUES (1, 'welcome', 50, 0, 50, 'welcome:1', :t), "
                "(1, 'purchase', 12, 4000, 62, 'op:1', :t)"
            ),
            {"t": "2026-11-01 10:00:00.000000"},
        )
        await connection.execute(
            text("INSERT INTO staff (telegram_id, name, role, created_at) VALUES (2001, 'Kasia', 'cashier', :t)"),
            {"t": "2026-11-01 10:00:00.000000"},
        )
    await db.dispose()

    await migrate(url)
    db = Database(url)
    try:
        async with db.reading() as session:
            assert [e.store for e in await session.scalars(select(LedgerEntry))] == ["main", "main"]
            assert (await session.scalar(select(Staff))).store == "main"  # type: ignore[union-attr]
        loyalty = LoyaltyService(db, load_business(DEFAULT_BUSINESS_FILE), clock=Clock())
        assert await loyalty.balance_is_consistent(1)
        assert (await loyalty.customer(1)).balance == 62  # type: ignore[union-attr]
        operation, _ = await loyalty.prepare_purchase(1, 2001, 2500, None)
        assert operation.store == "main"
    finally:
        await db.dispose()


async def test_an_unhappy_answer_about_another_store_is_that_stores_own_alert(chain: Harness) -> None:
    """A customer's open alert takes further unhappy answers about the same store; one about
    another store is a new alert, which that store's group hears of."""
    first = await unhappy_after_a_visit(chain, CASHIER, EMMA)
    chain.clock.advance(days=31)  # past the recontact period, same hour
    second = await unhappy_after_a_visit(chain, CASHIER_2, EMMA, morning=False)
    assert (first.store, second.store) == ("centre", "old_town") and first.id != second.id
    assert len(chain.sent(SendMessage, STORE_GROUP)) == 1


async def test_rows_of_a_store_the_file_no_longer_names_count_for_the_first_store(
    chain: Harness, tmp_path: Path
) -> None:
    await unhappy_after_a_visit(chain, CASHIER, EMMA)
    async with chain.db.writing() as session:  # as if the survey's store were closed and removed
        await session.execute(text("UPDATE surveys SET store = 'airport'"))
        await session.execute(text("UPDATE alerts SET store = 'main'"))
    centre = await chain.surveys.report(30, "centre")
    old_town = await chain.surveys.report(30, "old_town")
    assert (centre.answered, len(centre.open_alerts)) == (1, 1)
    assert (old_town.answered, len(old_town.open_alerts)) == (0, 0)


async def test_a_support_rating_belongs_to_the_conversations_store(chain: Harness) -> None:
    await open_card(chain, CASHIER_2)
    await chain.send(CASHIER_2, "40")
    await chain.send(EMMA, "/support")
    await chain.send(EMMA, "The croissant was stale")
    (ticket,) = await rows(chain, Ticket)
    await open_card(chain, CASHIER, EMMA)  # a later visit elsewhere
    await chain.send(CASHIER, "25")
    await chain.press_group(MANAGER, TicketCB(action="close", ticket_id=ticket.id))
    (rating,) = [s for s in await rows(chain, Survey) if s.trigger == "support"]
    assert rating.store == "old_town"


async def test_one_named_store_with_its_own_group_gets_its_alerts_there(db: Database, tmp_path: Path) -> None:
    rules = yaml.safe_load(DEFAULT_BUSINESS_FILE.read_text(encoding="utf-8"))
    rules["stores"] = [{**STORES[1]}]
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    settings = make_settings(manager_chat_id=str(GROUP_ID))
    session = RecordingSession()
    bot = virtual_bot(settings, session)
    h = build_harness(db, load_business(path), settings, bot, session, Clock())
    try:
        await invite_one(h, CASHIER)
        await h.join(EMMA)
        alert = await unhappy_after_a_visit(h, CASHIER, EMMA)
        assert alert.store == "old_town"
        (copy,) = h.sent(SendMessage, STORE_GROUP)
        assert "Unhappy customer" in copy.text and "🏪" not in copy.text  # one store: nothing to tell apart
    finally:
        await h.dp.emit_shutdown(bot=bot)


async def invite_one(h: Harness, user: User) -> None:
    await h.make_cashier(user)
    await h.send(user, "/language")
    await h.press(user, LanguageCB(code="en"))


async def test_a_store_filtered_chart_and_file_name_their_store(chain: Harness) -> None:
    await unhappy_after_a_visit(chain, CASHIER_2, EMMA)
    await chain.press_group(MANAGER, StatsCB(action="chart", days=30, store="old_town"))
    assert chain.sent(SendPhoto, GROUP_ID)[-1].caption.startswith("🏪 Store: Old Town\n")
    await chain.press_group(MANAGER, StatsCB(action="csv", days=30, store="old_town"))
    document = chain.sent(SendDocument, GROUP_ID)[-1]
    assert document.document.filename.startswith("feedback-old_town-30d-")
    assert document.caption.startswith("🏪 Store: Old Town\n")
