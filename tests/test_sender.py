"""The one sender path: every call of the Bot goes through the Outbox, which splits long texts,
waits out Telegram's 429 and keeps the limits (the limiter itself: tests/test_broadcast.py)."""

from __future__ import annotations

from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity

from bot.core.entities import parse_html, telegram_length
from bot.core.limiter import RateLimiter
from bot.core.sender import MAX_TEXT, split_text
from tests.conftest import EMMA, Harness, VirtualTime

KEYBOARD = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="OK", callback_data="ok")]])


def paragraphs(count: int, width: int = 900) -> list[str]:
    return [f"Paragraph {n}: " + "word " * (width // 5) for n in range(count)]


def test_a_long_text_is_cut_at_paragraphs_and_nothing_is_lost() -> None:
    text = "\n\n".join(paragraphs(12))
    pieces = split_text(text, [], MAX_TEXT)
    assert len(pieces) == 3
    assert "".join(piece for piece, _ in pieces) == text
    for piece, _ in pieces[:-1]:
        assert telegram_length(piece) <= MAX_TEXT and piece.endswith("\n\n")
    assert all(piece.startswith("Paragraph") for piece, _ in pieces)


def test_without_paragraphs_it_cuts_at_a_space_and_counts_emoji_as_telegram_does() -> None:
    text = "😀 " * 3000  # every emoji is two UTF-16 units: 9 000 units in all
    pieces = split_text(text, [], MAX_TEXT)
    assert "".join(piece for piece, _ in pieces) == text
    assert [telegram_length(piece) <= MAX_TEXT for piece, _ in pieces] == [True] * len(pieces) and len(pieces) == 3
    assert all(piece.endswith(" ") for piece, _ in pieces[:-1])


def test_formatting_that_spans_the_cut_continues_in_the_next_part() -> None:
    text = "a" * 4000 + " " + "b" * 200
    bold = MessageEntity(type="bold", offset=3990, length=100)
    (first, first_entities), (second, second_entities) = split_text(text, [bold], MAX_TEXT)
    assert first == "a" * 4000 + " " and second == "b" * 200
    assert [(e.type, e.offset, e.length) for e in first_entities] == [("bold", 3990, 11)]
    assert [(e.type, e.offset, e.length) for e in second_entities] == [("bold", 0, 89)]


async def test_the_bot_sends_a_long_html_text_in_parts_with_the_keyboard_on_the_last(harness: Harness) -> None:
    chunks = [f"<b>Section {n}</b>\n" + "line of text &amp; more\n" * 40 for n in range(8)]
    html = "\n".join(chunks)
    plain, _ = parse_html(html)
    assert telegram_length(plain) > MAX_TEXT
    message = await harness.bot.send_message(EMMA.id, html, reply_markup=KEYBOARD)
    parts = harness.sent(SendMessage, EMMA.id)
    assert len(parts) == 2
    assert "".join(part.text for part in parts) == plain  # Telegram shows exactly the same words
    assert all(part.parse_mode is None and telegram_length(part.text) <= MAX_TEXT for part in parts)
    assert [part.reply_markup for part in parts] == [None, KEYBOARD]
    bold = [(part.text[e.offset : e.offset + e.length]) for part in parts for e in part.entities or []]
    assert bold == [f"Section {n}" for n in range(8)]
    assert message.text == parts[-1].text  # the caller gets the last part, the one with the keyboard


async def test_a_text_that_fits_is_sent_untouched(harness: Harness) -> None:
    await harness.bot.send_message(EMMA.id, "<b>Hello</b>")
    (sent,) = harness.sent(SendMessage, EMMA.id)
    assert sent.text == "<b>Hello</b>" and sent.entities is None


async def test_a_429_is_waited_out_and_the_message_goes_once(harness: Harness) -> None:
    time = VirtualTime()
    limiter = RateLimiter(now=time, sleep=time.sleep)
    from bot.dispatcher import create_bot
    from tests.conftest import make_settings

    bot = create_bot(make_settings(), session=harness.session, limiter=limiter)
    harness.session.failures = [
        TelegramRetryAfter(method=SendMessage(chat_id=EMMA.id, text="x"), message="Too Many Requests", retry_after=7)
    ]
    await bot.send_message(EMMA.id, "Your points are in.")
    assert time() == 7.0  # everyone waited the 7 seconds Telegram asked for
    # Two calls reached Telegram: the one it refused with 429 (not delivered), then the one it took.
    assert [m.text for m in harness.sent(SendMessage, EMMA.id)] == ["Your points are in."] * 2
    assert harness.session.failures == []


async def test_answering_a_button_too_late_is_not_an_error(harness: Harness) -> None:
    assert await harness.bot.answer_callback_query("42") is True
    # A replayed update answers its button again; Telegram says the query is too old.
    assert await harness.bot.answer_callback_query("42") is True
    assert len(harness.session.requests) == 2


async def test_whitespace_at_a_cut_never_makes_a_blank_message(harness: Harness) -> None:
    await harness.bot.send_message(EMMA.id, "word " * 818 + "     " + "\n" * 10, parse_mode=None, reply_markup=KEYBOARD)
    (sent,) = harness.sent(SendMessage, EMMA.id)  # Telegram refuses a blank message
    assert sent.text.strip() and telegram_length(sent.text) <= MAX_TEXT and sent.reply_markup == KEYBOARD
