"""Owners invite and revoke cashiers; rights are checked on every message and button."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.core.callbacks import ScanCB, StaffCB
from bot.loyalty.filters import IsStaff
from handlers import cashier
from storage.models import Staff
from tests.conftest import ANNA, CASHIER, CASHIER_2, EMMA, OWNER, STRANGER, Harness, recorded_sql


async def _staff(h: Harness) -> list[Staff]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(Staff)))


async def test_invite_link_makes_a_cashier_once(harness: Harness) -> None:
    await harness.send(OWNER, "/invite")
    text = harness.last(OWNER.id)
    assert "https://t.me/acme_cafe_bot?start=staff_" in text and "works once" in text
    payload = text.split("start=")[1].split()[0]
    assert len(payload) <= 64

    await harness.send(CASHIER, f"/start {payload}")
    assert harness.last(CASHIER.id).startswith("Acme Café: witaj w zespole! Masz teraz dostęp kasjera.")
    assert "Kasia Kowalska is now a cashier." in harness.last(OWNER.id)
    (staff,) = await _staff(harness)
    assert staff.telegram_id == CASHIER.id and staff.name == "Kasia Kowalska" and staff.invited_by == OWNER.id

    await harness.send(CASHIER_2, f"/start {payload}")
    assert "not valid" in harness.last(CASHIER_2.id)
    assert len(await _staff(harness)) == 1


async def test_invite_expires_after_24_hours(harness: Harness) -> None:
    await harness.send(OWNER, "/invite")
    payload = harness.last(OWNER.id).split("start=")[1].split()[0]
    harness.clock.advance(hours=24, seconds=1)
    await harness.send(CASHIER_2, f"/start {payload}")
    assert "not valid" in harness.last(CASHIER_2.id)
    assert await _staff(harness) == []


async def test_forged_invite_token_is_refused(harness: Harness) -> None:
    await harness.send(STRANGER, "/start staff_AAAAAAAAAAAAAAAAAAAAAA")
    assert "not valid" in harness.last(STRANGER.id)
    assert await _staff(harness) == []


async def test_only_owners_can_invite_or_list_staff(harness: Harness) -> None:
    await harness.make_cashier(CASHIER)
    for user in (STRANGER, CASHIER):
        await harness.send(user, "/invite")
        assert "https://" not in harness.last(user.id)
        await harness.send(user, "/staff")
        assert "Revoke" not in str(harness.session.requests[-1])
    (staff,) = await _staff(harness)
    await harness.press(STRANGER, StaffCB(action="revoke", staff_id=staff.id))
    assert harness.alerts()[-1] == "This button no longer works."
    (staff,) = await _staff(harness)
    assert staff.revoked_at is None


async def test_staff_list_and_revoke_take_effect_at_once(harness: Harness) -> None:
    await harness.make_cashier(CASHIER)
    await harness.make_cashier(CASHIER_2)
    await harness.send(OWNER, "/staff")
    text = harness.last(OWNER.id)
    assert "Kasia Kowalska" in text and "Piotr Zielinski" in text
    kasia = next(s for s in await _staff(harness) if s.telegram_id == CASHIER.id)
    assert harness.button(OWNER.id, "Revoke Kasia") == StaffCB(action="revoke", staff_id=kasia.id).pack()

    await harness.join(EMMA)
    token = await harness.card_token(EMMA)
    await harness.send(CASHIER, f"/start c_{token}")
    assert "<b>Emma</b>" in harness.last(CASHIER.id)
    emma = await harness.customer(EMMA)

    await harness.press(OWNER, StaffCB(action="revoke", staff_id=kasia.id))
    assert "Kasia Kowalska is no longer a cashier." in harness.alerts()[-1]
    assert harness.last(CASHIER.id) == "Twój dostęp kasjera został odebrany."

    # The card view still on her screen no longer works, and neither do /scan nor card links.
    await harness.press(CASHIER, ScanCB(action="buy", customer_id=emma.id))
    assert harness.alerts()[-1] == "Ten przycisk już nie działa."
    before = len(harness.texts(CASHIER.id))
    await harness.send(CASHIER, "/scan")
    assert harness.last(CASHIER.id) == "Nie rozumiem. Wyślij /help, aby zobaczyć, co potrafię."
    assert len(harness.texts(CASHIER.id)) == before + 1
    token = await harness.card_token(EMMA)
    await harness.send(CASHIER, f"/start c_{token}")
    assert "Emma" not in harness.last(CASHIER.id) and "/card" in harness.last(CASHIER.id)
    # Her colleague is unaffected.
    await harness.send(CASHIER_2, f"/start c_{token}")
    assert "<b>Emma</b>" in harness.last(CASHIER_2.id)


def test_every_cashier_handler_checks_staff() -> None:
    router = cashier.create_router()
    handlers = [*router.message.handlers, *router.callback_query.handlers]
    assert len(handlers) > 15
    for handler in handlers:
        assert isinstance(handler.filters[-1].callback, IsStaff), handler.callback.__name__


async def test_staff_is_looked_up_only_for_what_a_cashier_handler_would_take(harness: Harness) -> None:
    await harness.make_cashier(CASHIER)
    await harness.join(ANNA)
    with recorded_sql(harness.db) as statements:
        await harness.send(ANNA, "/card")
        await harness.send(ANNA, "When are you open?")
        assert statements and not [s for s in statements if "FROM staff" in s]
        await harness.send(CASHIER, "/scan")
        assert len([s for s in statements if "FROM staff" in s]) == 1
    assert harness.last(CASHIER.id).startswith("Wyślij numer karty klienta")


async def test_reinvited_cashier_regains_access(harness: Harness) -> None:
    await harness.make_cashier(CASHIER)
    (staff,) = await _staff(harness)
    await harness.loyalty.revoke_staff(staff.id)
    await harness.make_cashier(CASHIER)
    (staff,) = await _staff(harness)
    assert staff.revoked_at is None
    harness.clock.advance(minutes=1)
    assert harness.clock() - staff.created_at < timedelta(hours=1)
    await harness.join(ANNA)


async def test_help_and_menu_follow_the_role(harness: Harness) -> None:
    from aiogram.methods import SetMyCommands

    await harness.make_cashier(CASHIER)
    menus = [r for r in harness.session.requests if isinstance(r, SetMyCommands) and r.scope.chat_id == CASHIER.id]
    assert "scan" in [c.command for c in menus[-1].commands]
    await harness.send(CASHIER, "/help")
    assert "/scan" in harness.last(CASHIER.id) and "/invite" not in harness.last(CASHIER.id)
    await harness.send(OWNER, "/start")
    menus = [r for r in harness.session.requests if isinstance(r, SetMyCommands) and r.scope.chat_id == OWNER.id]
    assert "scan" in [c.command for c in menus[-1].commands]
    await harness.send(OWNER, "/help")
    assert (
        "/scan" in harness.last(OWNER.id) and "/invite" in harness.last(OWNER.id) and "/void" in harness.last(OWNER.id)
    )

    (staff,) = await _staff(harness)
    await harness.press(OWNER, StaffCB(action="revoke", staff_id=staff.id))
    menus = [r for r in harness.session.requests if isinstance(r, SetMyCommands) and r.scope.chat_id == CASHIER.id]
    assert "scan" not in [c.command for c in menus[-1].commands]
    await harness.send(CASHIER, "/help")
    assert "/scan" not in harness.last(CASHIER.id)
