"""Customers in their private chat: joining, the card and its QR, history, language, help."""

from __future__ import annotations

from aiogram.methods import EditMessageMedia, SendPhoto, SetMyCommands
from sqlalchemy import func, select

from bot.core.callbacks import CardCB, JoinCB, LanguageCB
from bot.core.commands import register_commands
from bot.loyalty.qr import read_qr
from bot.loyalty.rules import parse_card_number, token_from_card_link
from storage.models import CardCode, Customer, EntryKind, LedgerEntry
from tests.conftest import ANNA, EMMA, IVAN, Harness


async def test_start_greets_with_privacy_notice_and_join_button(harness: Harness) -> None:
    await harness.send(EMMA, "/start")
    text = harness.last(EMMA.id)
    assert "Hello, Emma!" in text and "Acme Café" in text
    assert "About your data" in text and "Telegram name and id" in text
    assert harness.button(EMMA.id, "Join") == JoinCB().pack()
    assert not (await harness.customer(EMMA)).is_member


async def test_joining_issues_the_card_and_the_welcome_bonus_once(harness: Harness) -> None:
    await harness.send(EMMA, "/start")
    await harness.press(EMMA, JoinCB())
    texts = harness.texts(EMMA.id)
    assert any("You have joined the Acme Café loyalty programme!" in t for t in texts)
    assert any("+50 points: your welcome bonus. Balance: 50 points." in t for t in texts)
    photo = harness.sent(SendPhoto, EMMA.id)[-1]
    assert "Balance: 50 points" in photo.caption and "Tier: Base" in photo.caption

    # Pressing Join again, a second /start, the same update redelivered: still one card, one bonus.
    await harness.press(EMMA, JoinCB())
    await harness.send(EMMA, "/start")
    update = harness.callback_update(EMMA, JoinCB())
    await harness.feed(update)
    await harness.feed(update)
    assert "Welcome back, Emma!" in harness.texts(EMMA.id)[-2] or any(
        "Welcome back, Emma!" in t for t in harness.texts(EMMA.id)
    )
    async with harness.db.reading() as session:
        customers = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.telegram_id == EMMA.id)
        )
        bonuses = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == EntryKind.WELCOME)
        )
    assert customers == 1 and bonuses == 1
    customer = await harness.customer(EMMA)
    assert customer.balance == 50 and await harness.loyalty.balance_is_consistent(customer.id)


async def test_card_shows_qr_number_balance_tier_and_progress(harness: Harness) -> None:
    await harness.join(EMMA)
    harness.clear()
    await harness.send(EMMA, "/card")
    photo = harness.sent(SendPhoto, EMMA.id)[-1]
    customer = await harness.customer(EMMA)
    number = customer.card_number
    assert number is not None and parse_card_number(number) == number
    caption = photo.caption
    assert f"Card number: {number[:4]} {number[4:]}" in caption
    assert "Balance: 50 points" in caption
    assert "Tier: Base" in caption
    assert "Spend 1,000.00 zł more to reach Silver." in caption
    assert "It works once, for 10 minutes." in caption
    assert harness.button(EMMA.id, "Refresh code") == CardCB(action="refresh").pack()

    (link,) = read_qr(photo.photo.data)
    assert link.startswith("https://t.me/acme_cafe_bot?start=c_")
    token = token_from_card_link(link)
    assert token is not None and len(token) >= 22
    async with harness.db.reading() as session:
        hashes = list(await session.scalars(select(CardCode.token_hash)))
    assert token not in "".join(hashes), "the token itself must never be stored"


async def test_card_progress_in_polish_and_russian(harness: Harness) -> None:
    await harness.join(ANNA)
    await harness.join(IVAN)
    await harness.send(ANNA, "/card")
    await harness.send(IVAN, "/card")
    polish = harness.sent(SendPhoto, ANNA.id)[-1].caption
    russian = harness.sent(SendPhoto, IVAN.id)[-1].caption
    assert "50 punktów" in polish and "Podstawowy" in polish and "1\u00a0000,00\u00a0zł" in polish
    assert "50 баллов" in russian and "Базовый" in russian and "Серебряный" in russian


async def test_refresh_replaces_the_code_and_the_old_one_stops_working(harness: Harness) -> None:
    await harness.join(EMMA)
    old = await harness.card_token(EMMA)
    await harness.press(EMMA, CardCB(action="refresh"))
    edit = harness.sent(EditMessageMedia, EMMA.id)[-1]
    new = token_from_card_link(read_qr(edit.media.media.data)[0])
    assert new and new != old
    assert "New code ready" in harness.alerts()[-1]
    async with harness.db.reading() as session:
        live = await session.scalar(
            select(func.count()).select_from(CardCode).where(CardCode.revoked_at.is_(None), CardCode.used_at.is_(None))
        )
    assert live == 1


async def test_card_before_joining_offers_to_join(harness: Harness) -> None:
    await harness.send(EMMA, "/card")
    assert "You have not joined the loyalty programme yet" in harness.last(EMMA.id)
    assert harness.button(EMMA.id, "Join") == JoinCB().pack()
    await harness.send(EMMA, "/history")
    assert "You have not joined" in harness.last(EMMA.id)


async def test_history_lists_the_last_ten_movements(harness: Harness) -> None:
    await harness.join(EMMA)
    customer = await harness.customer(EMMA)
    await harness.send(EMMA, "/history")
    assert "Welcome bonus" in harness.last(EMMA.id) and "+50 points" in harness.last(EMMA.id)
    for i in range(12):
        await harness.loyalty.adjust(customer.id, i + 1, 1, f"gift {i}", key=f"t:{i}")
    await harness.send(EMMA, "/history")
    text = harness.last(EMMA.id)
    lines = text.splitlines()
    assert lines[0] == "<b>Your points history</b>"
    assert len(lines) == 11
    assert "Adjustment: gift 11" in lines[1] and "+12 points" in lines[1]
    assert "gift 2" in lines[-1] and "Welcome bonus" not in text
    assert str(harness.clock().year) in lines[1]


async def test_history_in_russian_uses_russian_plurals(harness: Harness) -> None:
    await harness.join(IVAN)
    customer = await harness.customer(IVAN)
    for points, key in ((1, "a"), (2, "b"), (5, "c"), (21, "d")):
        await harness.loyalty.adjust(customer.id, points, 1, "подарок", key=key)
    await harness.send(IVAN, "/history")
    text = harness.last(IVAN.id)
    for expected in ("+1 балл", "+2 балла", "+5 баллов", "+21 балл", "+50 баллов"):
        assert expected in text


async def test_language_switch_applies_at_once_and_is_remembered(harness: Harness) -> None:
    await harness.send(EMMA, "/language")
    assert "Choose your language" in harness.last(EMMA.id)
    await harness.press(EMMA, LanguageCB(code="pl"))
    assert harness.last(EMMA.id) == "Gotowe! Teraz będę pisać do Ciebie po polsku."
    commands = harness.sent(SetMyCommands, 0) or [r for r in harness.session.requests if isinstance(r, SetMyCommands)]
    assert commands and commands[-1].scope.chat_id == EMMA.id
    assert any("karta" in c.description.lower() for c in commands[-1].commands)
    await harness.send(EMMA, "/start")
    assert "Cześć, Emma!" in harness.last(EMMA.id)
    assert harness.button(EMMA.id, "Dołącz")
    assert (await harness.customer(EMMA)).language == "pl"
    await harness.press(EMMA, LanguageCB(code="ru"))
    assert harness.last(EMMA.id) == "Готово! Теперь я буду говорить с вами по-русски."


async def test_unknown_telegram_language_falls_back_to_the_default(harness: Harness) -> None:
    from tests.conftest import person

    hans = person(1010, "Hans", "de")
    await harness.send(hans, "/start")
    assert "Hello, Hans!" in harness.last(hans.id)


async def test_help_lists_what_the_bot_can_do(harness: Harness) -> None:
    await harness.send(EMMA, "/help")
    text = harness.last(EMMA.id)
    assert "/card" in text and "/history" in text and "/language" in text
    assert "/scan" not in text and "/invite" not in text


async def test_commands_are_registered_in_each_language(harness: Harness) -> None:
    from bot.core.i18n import create_i18n

    await register_commands(harness.bot, create_i18n("en"), "en", manager_chat_id=-100123, managers_language="pl")
    calls = [r for r in harness.session.requests if isinstance(r, SetMyCommands)]
    by_language = {c.language_code: c for c in calls if c.scope.type == "default"}
    assert set(by_language) == {"ru", "pl", "en", None}
    assert [c.command for c in by_language["ru"].commands] == [
        "card",
        "history",
        "faq",
        "support",
        "owner",
        "feedback",
        "profile",
        "language",
        "help",
        "mydata",
        "deleteme",
    ]
    (group,) = [c for c in calls if c.scope.type == "chat"]
    assert group.scope.chat_id == -100123 and [c.command for c in group.commands][:2] == ["stats", "export"]
    assert by_language["ru"].commands[0].description != by_language["en"].commands[0].description
    assert by_language["pl"].commands[0].description != by_language["en"].commands[0].description


async def test_unknown_text_gets_a_hint_not_silence(harness: Harness) -> None:
    await harness.send(EMMA, "blorp zzkx")
    assert "Send /help" in harness.last(EMMA.id)
    await harness.send(EMMA, "hello?")  # a greeting is greeted, not handed to a person
    assert harness.last(EMMA.id).startswith("Hello, Emma!")


async def test_an_old_join_button_never_pays_the_bonus_twice(harness: Harness) -> None:
    await harness.join(EMMA)
    for _ in range(3):
        await harness.press(EMMA, JoinCB())
    customer = await harness.customer(EMMA)
    assert customer.balance == 50
    assert len(await harness.loyalty.history(customer.id)) == 1  # type: ignore[arg-type]
