"""The till and the customer's card as people use them (issue 18): the money to take, a sale in one
step, a card in the chat that stays current, through the real dispatcher."""

from __future__ import annotations

from aiogram.methods import EditMessageCaption, SendPhoto

from bot.core.callbacks import CardCB, FlowCB, RedeemAnswerCB, ScanCB
from storage.models import EntryKind, Operation
from tests.conftest import CASHIER, EMMA, Harness, entries, open_card, operations


async def test_a_sale_is_one_step_after_the_scan(shop: Harness) -> None:
    """Counted: the scan opens the card, and the amount typed is the sale (it was four steps:
    Purchase, the amount, Skip receipt, Confirm)."""
    await open_card(shop)
    shop.clear()
    await shop.send(CASHIER, "25")
    assert len(await entries(shop, EntryKind.PURCHASE)) == 1
    assert shop.last(CASHIER.id).startswith("✅ Added: +1 point")


async def test_paying_with_points_shows_both_people_the_money_to_take_first(shop: Harness) -> None:
    emma_id = await open_card(shop)
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=emma_id))
    await shop.send(CASHIER, "30")
    await shop.press(CASHIER, FlowCB(action="max"))
    assert shop.last(EMMA.id).splitlines()[0] == "To pay: 21.00 zł"
    assert shop.last(CASHIER.id).splitlines()[0] == "To pay, if the customer confirms: 21.00 zł"
    (operation,) = await operations(shop)
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=True))
    assert shop.last(CASHIER.id) == (
        "💰 To pay: 21.00 zł\nPaid with points: 9 points\nCustomer: Emma\nBalance: 41 points"
    )
    assert shop.last(EMMA.id).splitlines()[0] == "To pay: 21.00 zł"
    assert "#" not in shop.last(CASHIER.id)


async def test_a_declined_request_tells_the_cashier_to_take_the_whole_amount(shop: Harness) -> None:
    emma_id = await open_card(shop)
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=emma_id))
    await shop.send(CASHIER, "30")
    await shop.send(CASHIER, "5")
    (operation,) = await operations(shop)
    assert isinstance(operation, Operation) and operation.points == 5
    assert shop.last(EMMA.id).splitlines()[0] == "To pay: 25.00 zł"
    await shop.press(EMMA, RedeemAnswerCB(op_id=operation.id, accept=False))
    assert shop.last(CASHIER.id) == "The customer declined. Nothing was redeemed. To pay: 30.00 zł."


async def test_the_card_in_the_chat_shows_the_new_balance_and_its_spent_code(shop: Harness) -> None:
    await open_card(shop)  # Emma opened /card; the cashier scanned it
    card = shop.sent(SendPhoto, EMMA.id)[-1]
    before = len(shop.sent(EditMessageCaption, EMMA.id))
    await shop.send(CASHIER, "250")
    (edit,) = shop.sent(EditMessageCaption, EMMA.id)[before:]
    card_id = shop.session.carrying(EMMA.id, CardCB(action="refresh").pack())
    assert card_id is not None and edit.message_id == card_id[0]
    assert "Balance: 62 points" in edit.caption and "Balance: 50 points" in card.caption
    assert "This code has been used. Tap “🔄 Refresh code” for your next visit." in edit.caption
    assert CardCB(action="refresh").pack() in shop.session.buttons(EMMA.id, edit.message_id)


async def test_an_older_card_says_it_was_replaced_and_loses_its_buttons(shop: Harness) -> None:
    await shop.send(EMMA, "/card")
    first = shop.session.carrying(EMMA.id, CardCB(action="refresh").pack())
    assert first is not None
    await shop.send(EMMA, "/card")
    retired = [e for e in shop.sent(EditMessageCaption, EMMA.id) if e.message_id == first[0]]
    assert [e.caption for e in retired] == ["This card was replaced by a newer one below."]
    assert shop.session.buttons(EMMA.id, first[0]) == []
    newest = shop.session.carrying(EMMA.id, CardCB(action="refresh").pack())
    assert newest is not None and newest[0] != first[0]
    # A purchase now brings the newest card up to date, not the retired one.
    await shop.send(EMMA, "/card")
    await open_card(shop)
    await shop.send(CASHIER, "100")
    live = shop.sent(EditMessageCaption, EMMA.id)[-1]
    assert live.message_id == shop.session.carrying(EMMA.id, CardCB(action="refresh").pack())[0]  # type: ignore[index]
    assert "Balance: 55 points" in (live.caption or "")


def test_the_time_the_team_is_back_reads_right_in_each_language(business) -> None:  # type: ignore[no-untyped-def]
    """A weekday after a verb is declined ("во вторник", "we wtorek"): each has its own phrase."""
    from datetime import UTC, datetime

    from bot.core.formatting import opening
    from bot.core.i18n import create_i18n

    i18n = create_i18n("en")
    now = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # a Monday evening
    tuesday, wednesday = datetime(2026, 11, 24, 8, tzinfo=UTC), datetime(2026, 11, 25, 8, tzinfo=UTC)
    expected = {
        "en": ("tomorrow at 9:00\u202fAM", "on Wednesday at 9:00\u202fAM"),
        "ru": ("завтра в 09:00", "в среду в 09:00"),
        "pl": ("jutro o 09:00", "w środę o 09:00"),
    }
    for language, (first, second) in expected.items():
        with i18n.context(), i18n.use_locale(language):
            assert (opening(tuesday, now, business), opening(wednesday, now, business)) == (first, second)


async def test_plain_words_get_the_thing_itself_not_an_faq_entry(shop: Harness) -> None:
    """The sandbox's stumbles (issue 18): each phrase got an FAQ answer or a hand-off before."""
    from tests.conftest import ANNA, GROUP_ID, IVAN

    await shop.send(ANNA, "moja karta")
    assert shop.sent(SendPhoto, ANNA.id), "the card, with its QR"
    await shop.send(ANNA, "ile mam punktów?")
    assert "Saldo: 50 punktów" in shop.last(ANNA.id)
    await shop.send(ANNA, "historia")
    assert shop.last(ANNA.id).startswith("<b>Historia Twoich punktów</b>")
    await shop.send(ANNA, "cześć")
    assert shop.last(ANNA.id).startswith("Cześć, Anna!")
    await shop.send(ANNA, "dzięki!")
    assert shop.last(ANNA.id) == "Nie ma za co! Pisz śmiało w każdej chwili."
    assert not any("🧭" in t for t in shop.texts(GROUP_ID)), "nobody was handed on"
    await shop.send(IVAN, "позовите, пожалуйста, живого человека")
    block = next(t for t in shop.texts(GROUP_ID) if t.startswith("🧭"))
    assert block.splitlines()[0] == "🧭 Handed on: the customer asked for a person."
    assert "передали" in shop.last(IVAN.id) or "менеджер" in shop.last(IVAN.id).lower()


async def test_an_amount_typed_again_after_the_sale_is_not_taken_for_a_question(shop: Harness) -> None:
    await open_card(shop)
    await shop.send(CASHIER, "250")
    await shop.send(CASHIER, "250")  # "Added" was slow to show: typed again
    assert shop.last(CASHIER.id).startswith("No card is open, so nothing was added.")
    assert len(await entries(shop, EntryKind.PURCHASE)) == 1


async def test_the_next_customers_card_opens_while_a_payment_with_points_waits_for_its_amount(
    shop: Harness,
) -> None:
    from tests.conftest import ANNA

    emma_id = await open_card(shop)
    await shop.press(CASHIER, ScanCB(action="redeem", customer_id=emma_id))
    anna = await shop.customer(ANNA)
    await shop.send(CASHIER, anna.card_number or "")
    assert "<b>Anna</b>" in shop.last(CASHIER.id)
    await shop.send(CASHIER, "40")
    (purchase,) = await entries(shop, EntryKind.PURCHASE)
    assert purchase.customer_id == anna.id


async def test_cancel_takes_the_steps_buttons_away(shop: Harness) -> None:
    await open_card(shop)
    view = shop.session.carrying(CASHIER.id, shop.button(CASHIER.id, "Cancel"))
    assert view is not None
    await shop.send(CASHIER, "/cancel")
    assert shop.session.buttons(CASHIER.id, view[0]) == []


async def test_a_card_left_open_does_not_take_the_next_days_sale(shop: Harness) -> None:
    await open_card(shop)
    shop.clock.advance(hours=20)
    await shop.send(CASHIER, "40")
    assert shop.last(CASHIER.id) == "This card was opened too long ago. Scan the customer's QR code again."
    assert await entries(shop, EntryKind.PURCHASE) == []


async def test_a_camera_that_fires_twice_leaves_the_card_open(shop: Harness) -> None:
    token = await shop.card_token(EMMA)
    await shop.send(CASHIER, f"/start c_{token}")
    await shop.send(CASHIER, f"/start c_{token}")  # the same QR, read again
    assert "already been used" in shop.last(CASHIER.id)
    await shop.send(CASHIER, "40")
    assert shop.last(CASHIER.id).startswith("✅ Added: +2 points\nCustomer: Emma")


async def test_cancel_under_the_scan_prompt_cancels(shop: Harness) -> None:
    await shop.send(CASHIER, "/scan")
    await shop.press(CASHIER, FlowCB(action="cancel"))
    assert shop.last(CASHIER.id) == "Cancelled. Nothing was changed."
    await shop.send(CASHIER, "12345678")
    assert "<b>" not in shop.last(CASHIER.id)  # not read as a card number any more


async def test_a_telegram_fault_taking_buttons_off_does_not_spoil_the_sale(shop: Harness) -> None:
    from aiogram.exceptions import TelegramNetworkError
    from aiogram.methods import EditMessageReplyMarkup

    await open_card(shop)
    shop.session.fail_next[EditMessageReplyMarkup] = [
        TelegramNetworkError(method=EditMessageReplyMarkup(chat_id=CASHIER.id, message_id=1), message="timeout")
    ]
    await shop.send(CASHIER, "250")
    assert shop.last(CASHIER.id).startswith("✅ Added: +12 points")
    assert len(await entries(shop, EntryKind.PURCHASE)) == 1
    assert not any("went wrong" in t for t in shop.texts(CASHIER.id))


async def test_the_words_of_a_customer_asking_for_a_person_reach_the_managers(shop: Harness) -> None:
    from tests.conftest import GROUP_ID, IVAN

    await shop.send(IVAN, "вчера кассир не начислил баллы за покупку, соедините с оператором")
    block = next(t for t in shop.texts(GROUP_ID) if t.startswith("🧭"))
    assert "• “вчера кассир не начислил баллы за покупку, соедините с оператором” → asked for a person" in block


async def test_a_cashier_in_a_support_conversation_still_reaches_the_managers_with_a_number(
    shop: Harness,
) -> None:
    """Staff are customers too: "100" in their own open request is for the managers, not the till."""
    from tests.conftest import GROUP_ID

    await shop.join(CASHIER)
    await shop.send(CASHIER, "/support")
    await shop.send(CASHIER, "100")
    assert not shop.last(CASHIER.id).startswith("No card is open")
    assert any(t.endswith(":</b>\n100") for t in shop.texts(GROUP_ID))
