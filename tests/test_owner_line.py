"""A line straight to the owner (issue 19): a customer writes, the owners read it in private as a
complaint with the customer's card, an owner's reply reaches the customer signed and marked as
read personally; its status is open, answered or closed; the managers never see it; a customer
writes only a few a day. Through the real dispatcher, on SQLite and PostgreSQL."""

from __future__ import annotations

from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import Chat, Message
from sqlalchemy import select

from bot.core.callbacks import LetterCB, MenuCB, SurveyCB
from storage.models import LetterStatus, OwnerLetter
from tests.conftest import ANNA, EMMA, GROUP_ID, OWNER, STRANGER, Harness
from tests.test_surveys import asked


async def letters(h: Harness) -> list[OwnerLetter]:
    async with h.db.reading() as session:
        return list(await session.scalars(select(OwnerLetter).order_by(OwnerLetter.id)))


def post_to(h: Harness, text_part: str) -> Message:
    """The owner's copy of a letter, as the message an owner replies to."""
    (message_id, text) = next(
        (mid, text)
        for (chat, mid), (text, _markup) in sorted(h.session._shown.items(), reverse=True)
        if chat == OWNER.id and text and text_part in text
    )
    return Message(message_id=message_id, date=h.clock(), chat=Chat(id=OWNER.id, type="private"), text=text)


async def write(h: Harness, words: str, user=EMMA) -> None:
    await h.send(user, "/owner")
    await h.send(user, words)


async def test_a_letter_reaches_the_owner_and_not_the_managers(shop: Harness) -> None:
    await shop.send(EMMA, "/owner")
    assert shop.last(EMMA.id).startswith("✉️ Write your message to the owner in one message.")
    before = len(shop.sent(SendMessage, GROUP_ID))
    await shop.send(EMMA, "The barista was rude to me twice this week")
    assert shop.last(EMMA.id) == "✉️ Sent to the owner. The owner reads it personally; the answer will come here."
    post = shop.last(OWNER.id)
    assert post.startswith("✉️ <b>To the owner</b> · complaint #1")
    assert "Emma Stone" in post and "Card number:" in post  # the customer's card
    assert "“The barista was rude to me twice this week”" in post
    assert post.endswith("Reply to this message to answer the customer.")
    assert len(shop.sent(SendMessage, GROUP_ID)) == before  # the managers' group never sees it
    (letter,) = await letters(shop)
    assert letter.status == LetterStatus.OPEN and letter.text == "The barista was rude to me twice this week"
    await shop.send(EMMA, "thanks")  # the next message is no longer a letter
    assert len(await letters(shop)) == 1


async def test_the_owners_reply_reaches_the_customer_signed_and_read_personally(shop: Harness) -> None:
    await write(shop, "The barista was rude")
    reply_to = post_to(shop, "complaint #1")
    await shop.feed(shop.message_update(OWNER, "I am sorry. I spoke to the team today.", reply_to_message=reply_to))
    assert shop.last(EMMA.id) == (
        "✉️ <b>Olga Owner, owner</b>:\nI am sorry. I spoke to the team today.\n\nThe owner read your message personally."
    )
    assert "Sent to the customer." in shop.texts(OWNER.id)
    (letter,) = await letters(shop)
    assert letter.status == LetterStatus.ANSWERED and letter.answered_by_name == "Olga Owner"
    edited = shop.sent(EditMessageText, OWNER.id)[-1]
    assert "💬 Answered by Olga Owner. Reply to this message to write again." in edited.text


async def test_an_owner_closes_a_letter_and_nobody_else_can(shop: Harness) -> None:
    await write(shop, "The music is too loud")
    (letter,) = await letters(shop)
    await shop.press(STRANGER, LetterCB(action="close", letter_id=letter.id))  # forged: no owner
    assert (await letters(shop))[0].status == LetterStatus.OPEN
    await shop.press(OWNER, LetterCB(action="close", letter_id=letter.id))
    assert shop.alerts()[-1] == "Closed."
    assert (await letters(shop))[0].status == LetterStatus.CLOSED
    assert "✅ Closed by Olga Owner." in shop.sent(EditMessageText, OWNER.id)[-1].text
    await shop.press(OWNER, LetterCB(action="close", letter_id=letter.id))
    assert shop.alerts()[-1] == "Already closed."


async def test_a_customer_writes_a_few_letters_a_day(shop: Harness) -> None:
    for n in range(3):
        await write(shop, f"Letter {n}")
    await shop.send(EMMA, "/owner")
    assert shop.last(EMMA.id).startswith("You have written to the owner 3 times in the last 24 hours.")
    assert len(await letters(shop)) == 3
    shop.clock.advance(hours=24, minutes=1)
    await write(shop, "Letter 4")
    assert len(await letters(shop)) == 4
    await write(shop, "From Anna", user=ANNA)  # her own limit
    assert len(await letters(shop)) == 5


async def test_a_redelivered_letter_is_filed_once(shop: Harness) -> None:
    await shop.send(EMMA, "/owner")
    update = shop.message_update(EMMA, "Twice?")
    await shop.feed(update)
    again = update.model_copy(update={"update_id": update.update_id + 1000})
    await shop.feed(again)  # the same message under another update (a second instance, a retry)
    assert len(await letters(shop)) == 1
    assert sum("complaint #1" in t for t in shop.texts(OWNER.id)) == 1


async def test_a_letter_is_words(shop: Harness) -> None:
    await shop.send(EMMA, "/owner")
    await shop.feed(shop.message_update(EMMA, None, sticker=None, location={"latitude": 52.2, "longitude": 21.0}))
    assert shop.last(EMMA.id).startswith("Please write your message in words")
    assert await letters(shop) == []


async def test_the_owner_is_one_tap_away(shop: Harness) -> None:
    await shop.send(EMMA, "/help")
    labels = [b.text for row in shop.last_markup(EMMA.id).inline_keyboard for b in row]
    assert "✉️ Write to the owner" in labels and "/owner: write to the owner, past the staff" in shop.last(EMMA.id)
    await shop.press(EMMA, MenuCB(action="owner"))
    assert shop.last(EMMA.id).startswith("✉️ Write your message to the owner")
    survey = await asked(shop, ANNA)
    await shop.press(ANNA, SurveyCB(survey_id=survey.id, score=3))
    labels = [b.text for row in shop.last_markup(ANNA.id).inline_keyboard for b in row]
    assert labels[-1] == "✉️ Napisz do właściciela"  # Anna reads Polish


async def test_the_report_counts_letters_by_status(shop: Harness) -> None:
    await write(shop, "One")
    await write(shop, "Two")
    (first, _second) = await letters(shop)
    await shop.press(OWNER, LetterCB(action="close", letter_id=first.id))
    await shop.send(OWNER, "/report")
    assert "Letters to the owner: 2 · open: 1 · answered: 0 · closed: 1" in shop.last(OWNER.id)


async def test_mydata_shows_the_letters_and_deleteme_erases_their_words(shop: Harness) -> None:
    await write(shop, "Please call me back on 555-0101")
    customer = await shop.customer(EMMA)
    from bot.lifecycle.service import LifecycleService

    lifecycle = LifecycleService(shop.db, shop.business, clock=shop.clock)
    exported = await lifecycle.export(customer.id)  # type: ignore[arg-type]
    assert exported["letters_to_the_owner"][0]["text"] == "Please call me back on 555-0101"
    await lifecycle.erase(customer.id)  # type: ignore[arg-type]
    (letter,) = await letters(shop)
    assert letter.text == "" and letter.status == LetterStatus.CLOSED


async def test_a_command_or_another_button_drops_the_letter_being_written(shop: Harness) -> None:
    """Changed their mind: /support (or the menu's other buttons) does what it says, and the next
    words go there, not to the owner."""
    await shop.send(EMMA, "/owner")
    await shop.send(EMMA, "/support")
    assert "Write your question here" in shop.last(EMMA.id)
    await shop.send(EMMA, "My points are missing")
    assert await letters(shop) == []
    await shop.press(EMMA, MenuCB(action="owner"))
    await shop.press(EMMA, MenuCB(action="card"))
    await shop.send(EMMA, "hello")
    assert await letters(shop) == []


async def test_a_letter_asked_for_long_ago_is_not_awaited(shop: Harness) -> None:
    await shop.send(EMMA, "/owner")
    shop.clock.advance(hours=2)
    await shop.send(EMMA, "what time do you close on sundays")
    assert await letters(shop) == []


async def test_a_letter_fits_one_message(shop: Harness) -> None:
    await shop.send(EMMA, "/owner")
    await shop.send(EMMA, "x" * 3001)
    assert shop.last(EMMA.id).startswith("Please keep it under 3,000 characters")
    assert await letters(shop) == []
    await shop.send(EMMA, "Shorter, then.")  # still writing: the words are kept this time
    assert len(await letters(shop)) == 1


async def test_an_owners_command_in_reply_is_a_command_and_a_caption_is_an_answer(shop: Harness) -> None:
    await write(shop, "Cold coffee")
    reply_to = post_to(shop, "complaint #1")
    await shop.feed(shop.message_update(OWNER, "/report", reply_to_message=reply_to))
    assert not any("/report" in t for t in shop.texts(EMMA.id))
    assert (await letters(shop))[0].status == LetterStatus.OPEN
    photo = [{"file_id": "p1", "file_unique_id": "u1", "width": 10, "height": 10}]
    await shop.feed(shop.message_update(OWNER, None, photo=photo, caption="Sorry!", reply_to_message=reply_to))
    assert "Sorry!" in shop.last(EMMA.id)
    assert "Sent to the customer: the words only, not the attachment." in shop.texts(OWNER.id)


async def test_without_owners_nobody_is_promised_a_reader(db, business) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import Clock, RecordingSession, build_harness, make_settings, virtual_bot

    settings = make_settings(admin_ids="")
    session = RecordingSession()
    bot = virtual_bot(settings, session)
    h = build_harness(db, business, settings, bot, session, Clock())
    try:
        await h.send(EMMA, "/owner")
        assert h.last(EMMA.id) == "Writing to the owner is not set up here yet. Our team will help you: /support."
        await h.send(EMMA, "hello")
        assert await letters(h) == []
    finally:
        await h.dp.emit_shutdown(bot=bot)


async def test_letters_can_go_to_the_owners_topic_of_the_managers_group(db, business) -> None:  # type: ignore[no-untyped-def]
    """With `support.owners_topic_id`, a letter goes to that topic of the managers' group (one copy,
    in the group's language), and an owner answers there by replying."""
    import dataclasses

    from tests.conftest import Clock, RecordingSession, build_harness, make_settings, virtual_bot

    topic = 77
    rules = dataclasses.replace(business.support, owners_topic_id=topic)
    settings = make_settings(manager_chat_id=str(GROUP_ID))
    session = RecordingSession()
    bot = virtual_bot(settings, session)
    h = build_harness(db, dataclasses.replace(business, support=rules), settings, bot, session, Clock())
    try:
        await h.join(EMMA)
        await write(h, "A word for the owner")
        (post,) = [r for r in h.sent(SendMessage, GROUP_ID) if "complaint #1" in r.text]
        assert post.message_thread_id == topic and not any("complaint" in t for t in h.texts(OWNER.id))
        message_id = h.session.carrying(GROUP_ID, LetterCB(action="close", letter_id=1).pack())
        assert message_id is not None
        reply_to = Message(message_id=message_id[0], date=h.clock(), chat=Chat(id=GROUP_ID, type="supergroup"))
        await h.send_group(OWNER, "Thank you, I will look into it.", reply_to_message=reply_to, message_thread_id=topic)
        assert "Thank you, I will look into it." in h.last(EMMA.id)
        assert (await letters(h))[0].status == LetterStatus.ANSWERED
    finally:
        await h.dp.emit_shutdown(bot=bot)
