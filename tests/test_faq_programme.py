"""The FAQ knows the programme (issue 20): its answers about the programme name the figures of
the business file as it is when the answer is shown, in the reader's language, and an entry about
something the business file turns off is not there. Every test runs with two business files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.business import Business, load_business
from bot.core.config import DEFAULT_BUSINESS_FILE, DEFAULT_FAQ_FILE
from bot.faq.rules import FEATURES, load_faq
from storage.models import FaqQuery
from tests.conftest import ANNA, EMMA, IVAN, Harness

# A second programme: other bonuses, other tiers, points that expire, no birthday bonus.
OTHER = {
    "welcome_bonus": 20,
    "point_value": "0.50",
    "limits": {"redeem_max_share_percent": 50},
    "tiers": [
        {"id": "start", "name": {"en": "Start", "ru": "Старт", "pl": "Start"}, "min_spend": "0", "earn_percent": "3"},
        {"id": "vip", "name": {"en": "VIP", "ru": "VIP", "pl": "VIP"}, "min_spend": "250", "earn_percent": "12"},
    ],
    "birthday": {"bonus": 0},
    "referral": {"bonus": 80},
    "points_expiry": {"months": 12},
}


def _with(changes: dict, tmp_path: Path) -> Path:
    data = yaml.safe_load(DEFAULT_BUSINESS_FILE.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path = tmp_path / "business.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(params=["example", "other"])
def business(request: pytest.FixtureRequest, tmp_path: Path) -> Business:
    return load_business(DEFAULT_BUSINESS_FILE if request.param == "example" else _with(OTHER, tmp_path))


def _example(business: Business) -> bool:
    return business.welcome_bonus == 50


async def answered_with(h: Harness) -> str | None:
    async with h.db.reading() as session:
        query = (await session.scalars(select(FaqQuery).order_by(FaqQuery.id.desc()).limit(1))).first()  # type: ignore[union-attr]
    return query.entry_id if query is not None and query.outcome == "answer" else None


async def test_a_birthday_question_gets_the_birthday_bonus_only_where_there_is_one(harness: Harness) -> None:
    await harness.send(EMMA, "do i get anything on my birthday")
    if _example(harness.business):
        assert await answered_with(harness) == "birthday_bonus"
        assert "Birthday bonus: <b>100 points</b>, once a year." in harness.last(EMMA.id)
    else:  # a birthday bonus of 0: no such entry, nothing promised
        assert await answered_with(harness) != "birthday_bonus"
        assert "Birthday bonus" not in harness.last(EMMA.id)


async def test_bringing_a_friend_offers_the_referral_bonus_of_the_file(harness: Harness) -> None:
    await harness.send(EMMA, "can i bring a friend and get points")
    assert await answered_with(harness) == "invite_friend"
    bonus = "50 points" if _example(harness.business) else "80 points"
    assert f"you each get a bonus: <b>{bonus}</b>." in harness.last(EMMA.id)
    await harness.send(IVAN, "можно пригласить друга и получить баллы?")
    assert f"бонус получит каждый из вас: <b>{'50 баллов' if _example(harness.business) else '80 баллов'}</b>" in (
        harness.last(IVAN.id)
    )


async def test_the_levels_and_rates_are_the_files_in_each_language(harness: Harness) -> None:
    await harness.send(EMMA, "what are the levels of the programme")
    await harness.send(IVAN, "какие уровни есть в программе?")
    await harness.send(ANNA, "jakie są poziomy w programie?")
    english, russian, polish = harness.last(EMMA.id), harness.last(IVAN.id), harness.last(ANNA.id)
    if _example(harness.business):
        assert "• Base: 5% back in points, from the first purchase\n" in english
        assert "• Silver: 7% back in points, once you have spent 1,000.00\u00a0zł in total\n" in english
        assert "• Gold: 10% back in points, once you have spent 5,000.00\u00a0zł in total\n" in english
        assert "• Серебряный: 7% баллами, когда вы потратите у нас 1\u00a0000,00\u00a0zł" in russian
        assert "• Złoty: 10% w punktach, gdy łącznie wydasz u nas 5\u00a0000,00\u00a0zł" in polish
    else:
        assert "• Start: 3% back in points, from the first purchase\n" in english
        assert "• VIP: 12% back in points, once you have spent 250.00\u00a0zł in total\n" in english
        assert "Silver" not in english and "Gold" not in english
        assert "• VIP: 12% баллами, когда вы потратите у нас 250,00\u00a0zł" in russian
        assert "• Start: 3% w punktach, od pierwszego zakupu" in polish


async def test_paying_with_points_names_the_point_value_and_the_cap(harness: Harness) -> None:
    await harness.send(EMMA, "how do I pay with points?")
    assert await answered_with(harness) == "spend_points"
    if _example(harness.business):
        assert "One point is worth <b>1.00\u00a0zł</b>, and points can pay for up to <b>30%</b>" in harness.last(
            EMMA.id
        )
    else:
        assert "One point is worth <b>0.50\u00a0zł</b>, and points can pay for up to <b>50%</b>" in harness.last(
            EMMA.id
        )


async def test_points_expiry_is_answered_as_the_file_says(harness: Harness) -> None:
    await harness.send(EMMA, "do my points expire?")
    await harness.send(ANNA, "czy punkty wygasają?")
    if _example(harness.business):  # months: 0
        assert await answered_with(harness) == "points_keep"
        assert "No, your points don't expire" in harness.last(EMMA.id)
        assert "Nie, punkty nie wygasają" in harness.last(ANNA.id)
    else:
        assert await answered_with(harness) == "points_expire"
        assert "points expire <b>12\u00a0months</b> after you earn them" in harness.last(EMMA.id)
        assert "punkty wygasają <b>12\u00a0miesięcy</b> po ich zdobyciu" in harness.last(ANNA.id)


async def test_joining_names_the_welcome_bonus_of_the_file(harness: Harness) -> None:
    await harness.send(IVAN, "как вступить в программу лояльности?")
    bonus = "50 баллов" if _example(harness.business) else "20 баллов"
    assert f"Приветственный бонус: {bonus}. Карта лояльности" in harness.last(IVAN.id)


async def test_data_and_offers_are_answered_in_the_customers_language(harness: Harness) -> None:
    await harness.send(ANNA, "jak usunąć moje dane")
    assert await answered_with(harness) == "my_data" and "/deleteme" in harness.last(ANNA.id)
    await harness.send(IVAN, "как отписаться от ваших акций")
    assert await answered_with(harness) == "offers" and "🔕 Отписаться" in harness.last(IVAN.id)


def test_what_a_business_offers_is_named_as_faq_entries_need_it(business: Business) -> None:
    """`Business.offers` and `bot.faq.rules.FEATURES` spell the same names (they live in modules
    that may not import each other): a name only one of them knows would hide an entry for good."""
    assert business.offers() <= FEATURES
    needed = {entry.needs for entry in load_faq(DEFAULT_FAQ_FILE).entries if entry.needs is not None}
    assert needed <= FEATURES
