"""A failure inside a handler reaches the person as a plain, localised apology."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.callbacks import OperationCB
from storage.models import ProcessedUpdate
from tests.conftest import ANNA, EMMA, IVAN, Harness


async def test_a_crash_is_apologised_for_in_the_persons_language(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for user in (EMMA, ANNA, IVAN):
        await harness.join(user)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(harness.loyalty, "history", broken)
    await harness.send(EMMA, "/history")
    assert harness.last(EMMA.id) == "Sorry, something went wrong on our side. Please try again in a moment."
    await harness.send(ANNA, "/history")
    await harness.send(IVAN, "/history")
    assert harness.last(ANNA.id).startswith("Przepraszamy, coś poszło nie tak")
    assert harness.last(IVAN.id).startswith("Извините, у нас что-то пошло не так")
    for user in (EMMA, ANNA, IVAN):
        assert "Traceback" not in harness.last(user.id) and "disk on fire" not in harness.last(user.id)


async def test_a_failed_update_can_be_retried(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    await harness.join(EMMA)
    calls = []
    original = harness.loyalty.history

    async def flaky(customer_id: int, limit: int = 10):  # type: ignore[no-untyped-def]
        calls.append(customer_id)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return await original(customer_id, limit)

    monkeypatch.setattr(harness.loyalty, "history", flaky)
    update = harness.message_update(EMMA, "/history")
    await harness.feed(update)
    assert "something went wrong" in harness.last(EMMA.id)
    await harness.feed(update)  # Telegram delivers it again
    assert "Welcome bonus" in harness.last(EMMA.id)
    async with harness.db.reading() as session:
        seen = await session.scalar(
            select(func.count()).select_from(ProcessedUpdate).where(ProcessedUpdate.update_id == update.update_id)
        )
    assert seen == 1


async def test_a_crash_on_a_button_is_apologised_for_in_the_chat(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import CASHIER

    await harness.make_cashier(CASHIER)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(harness.loyalty, "confirm_purchase", broken)
    await harness.press(CASHIER, OperationCB(action="confirm", op_id=1))
    # The button was answered once (the spinner stops); the apology comes as a message.
    assert harness.last(CASHIER.id).startswith("Przepraszamy, coś poszło nie tak")
    assert "boom" not in harness.last(CASHIER.id)


async def test_pressing_the_same_language_twice_is_quietly_fine(harness: Harness) -> None:
    from bot.callbacks import LanguageCB

    message = None
    await harness.send(EMMA, "/language")
    from aiogram.methods import SendMessage

    sent = harness.sent(SendMessage, EMMA.id)[-1]
    message = harness.session._message(EMMA.id, text=sent.text)  # the menu as Telegram shows it
    await harness.press(EMMA, LanguageCB(code="pl"), message)
    await harness.press(EMMA, LanguageCB(code="pl"), message)  # Telegram: "message is not modified"
    assert not [t for t in harness.texts(EMMA.id) if "something went wrong" in t or "coś poszło nie tak" in t]
