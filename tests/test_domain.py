"""Loyalty and money rules, without Telegram or a database."""

from __future__ import annotations

import pytest

from bot.business import Business
from bot.core.languages import pick_language
from bot.core.money import AmountError, AmountProblem, country_of, format_money, parse_amount
from bot.loyalty.rules import (
    CardNumberError,
    CardNumberProblem,
    RedeemProblem,
    check_redemption,
    format_card_number,
    luhn_check_digit,
    max_redeemable,
    new_card_number,
    new_token,
    next_tier,
    parse_card_number,
    parse_points,
    points_for_purchase,
    redeem_cap,
    tier_for,
    token_from_card_link,
)


@pytest.mark.parametrize(
    ("typed", "minor"),
    [
        ("12,50", 1250),
        ("12.50", 1250),
        ("1 234,50", 123450),
        ("1\u00a0234,50", 123450),
        ("1.234,50", 123450),
        ("1,234.50", 123450),
        ("250", 25000),
        ("0,5", 50),
        (" 7 ", 700),
    ],
)
def test_amounts_a_cashier_types_are_read_exactly(typed: str, minor: int) -> None:
    assert parse_amount(typed, 2) == minor


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", AmountProblem.EMPTY),
        ("abc", AmountProblem.NOT_A_NUMBER),
        ("12,50 zł", AmountProblem.NOT_A_NUMBER),
        ("12.5.0", AmountProblem.NOT_A_NUMBER),
        ("1,2,3", AmountProblem.NOT_A_NUMBER),
        ("5,", AmountProblem.NOT_A_NUMBER),
        ("12,505", AmountProblem.TOO_MANY_DECIMALS),
        ("1,234", AmountProblem.TOO_MANY_DECIMALS),
        ("-5", AmountProblem.NOT_POSITIVE),
        ("0", AmountProblem.NOT_POSITIVE),
        ("0,00", AmountProblem.NOT_POSITIVE),
    ],
)
def test_malformed_amounts_are_refused_not_guessed(typed: str, problem: AmountProblem) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(typed, 2)
    assert caught.value.problem == problem


def test_money_is_formatted_for_each_locale() -> None:
    assert format_money(123450, "PLN", "pl") == "1\u00a0234,50\u00a0zł"
    assert format_money(1250, "EUR", "en") == "€12.50"
    assert "12,50" in format_money(1250, "RUB", "ru")


@pytest.mark.parametrize(
    ("country", "currency", "written"),
    [
        ("pl_PL", "PLN", {"en": "1,234.50\u00a0zł", "pl": "1\u00a0234,50\u00a0zł", "ru": "1\u00a0234,50\u00a0zł"}),
        ("de_DE", "EUR", {"en": "1,234.50\u00a0€", "pl": "1\u00a0234,50\u00a0€", "ru": "1\u00a0234,50\u00a0€"}),
        ("en_GB", "GBP", {"en": "£1,234.50", "pl": "£1\u00a0234,50", "ru": "£1\u00a0234,50"}),
        ("ja_JP", "JPY", {"en": "￥123,450", "pl": "￥123\u00a0450", "ru": "￥123\u00a0450"}),
    ],
)
def test_money_is_written_as_in_the_businesss_country_whatever_the_language(
    country: str, currency: str, written: dict[str, str]
) -> None:
    """The country decides the symbol and its place; the reader's language only the separators
    (GLOSSARY.md: a Warsaw café writes 12.50 zł in English, never PLN12.50)."""
    minor = 123450
    assert {language: format_money(minor, currency, language, country) for language in written} == written


def test_the_businesss_country_comes_from_its_time_zone_unless_the_file_names_it() -> None:
    assert country_of("Europe/Warsaw", "en") == "pl_PL"
    assert country_of("Europe/Berlin", "en") == "de_DE"
    assert country_of("UTC", "ru") == "ru" and country_of("Etc/UTC", "pl") == "pl"  # no country: the language


def test_tiers_follow_lifetime_spend(business: Business) -> None:
    assert tier_for(business, 0).id == "base"
    assert tier_for(business, 99_999).id == "base"
    assert tier_for(business, 100_000).id == "silver"
    assert tier_for(business, 500_000).id == "gold"
    assert next_tier(business, 68_000) == (business.tiers[1], 32_000)
    assert next_tier(business, 600_000) is None


def test_earning_rounds_down_at_the_tier_rate(business: Business) -> None:
    assert points_for_purchase(business, 25_000, 0) == 12  # 5% of 250,00 = 12.5
    assert points_for_purchase(business, 1_999, 0) == 0
    assert points_for_purchase(business, 10_000, 100_000) == 7  # Silver 7%
    assert points_for_purchase(business, 10_000, 500_000) == 10  # Gold 10%


def test_redemption_is_capped_at_a_share_of_the_receipt(business: Business) -> None:
    assert redeem_cap(business, 25_000) == 75  # 30% of 250,00 at 1,00 a point
    assert max_redeemable(business, 25_000, 40) == 40
    assert max_redeemable(business, 25_000, 400) == 75
    assert check_redemption(business, 25_000, 80, 400) == RedeemProblem.OVER_CAP
    assert check_redemption(business, 25_000, 50, 40) == RedeemProblem.NOT_ENOUGH_POINTS
    assert check_redemption(business, 25_000, 0, 40) == RedeemProblem.NOT_POSITIVE
    assert check_redemption(business, 25_000, 40, 40) is None


def test_points_are_whole_numbers() -> None:
    assert parse_points("80") == 80
    assert parse_points(" 1 000 ") == 1000
    assert parse_points("8.5") is None
    assert parse_points("-3") is None
    assert parse_points("ten") is None


def test_card_numbers_carry_a_check_digit() -> None:
    for _ in range(200):
        number = new_card_number()
        assert len(number) == 8 and number[0] != "0"
        assert parse_card_number(format_card_number(number)) == number
        assert parse_card_number(number[:4] + "-" + number[4:]) == number
    number = new_card_number()
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    with pytest.raises(CardNumberError) as caught:
        parse_card_number(wrong)
    assert caught.value.problem == CardNumberProblem.CHECK_DIGIT
    with pytest.raises(CardNumberError) as caught:
        parse_card_number("1234")
    assert caught.value.problem == CardNumberProblem.WRONG_LENGTH
    assert luhn_check_digit("7992739871") == 3  # the textbook example


def test_swapped_neighbour_digits_are_caught() -> None:
    number = "12345674"  # 1234567 + Luhn digit
    assert parse_card_number(number) == number
    with pytest.raises(CardNumberError):
        parse_card_number("21345674")


def test_tokens_have_128_random_bits_and_fit_a_deep_link() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) == 22 for t in tokens)
    link = f"https://t.me/acme_cafe_bot?start=c_{next(iter(tokens))}"
    assert len(link.split("start=")[1]) <= 64
    assert token_from_card_link(link) == next(iter(tokens))
    assert token_from_card_link("https://t.me/acme_cafe_bot?start=staff_xxxxxxxxxxxxxxxxxxxxxx") is None
    assert token_from_card_link("hello") is None


def test_language_choice_order() -> None:
    assert pick_language("pl", "ru", "en") == "pl"
    assert pick_language(None, "ru-RU", "en") == "ru"
    assert pick_language(None, "de", "pl") == "pl"
    assert pick_language(None, None, "en") == "en"
