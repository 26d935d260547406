"""Loyalty rules with no Telegram and no database: tiers, earning, the redemption cap, card
numbers and card codes."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from bot.business import Business, Tier
from bot.core.money import whole_number

CARD_NUMBER_DIGITS = 8  # seven random digits and a Luhn check digit
TOKEN_BYTES = 16  # 128 random bits; 22 characters of base64url in a deep link


def tier_for(business: Business, lifetime_spend: int) -> Tier:
    current = business.tiers[0]
    for tier in business.tiers:
        if lifetime_spend >= tier.min_spend:
            current = tier
    return current


def next_tier(business: Business, lifetime_spend: int) -> tuple[Tier, int] | None:
    """The next tier and how much more must be spent to reach it, or None at the top."""
    for tier in business.tiers:
        if tier.min_spend > lifetime_spend:
            return tier, tier.min_spend - lifetime_spend
    return None


def points_for_purchase(business: Business, amount: int, lifetime_spend: int) -> int:
    """Points earned on a receipt at the customer's current tier, rounded down."""
    tier = tier_for(business, lifetime_spend)
    return amount * tier.earn_basis_points // (10_000 * business.point_value)


def redeem_cap(business: Business, amount: int) -> int:
    """The most points that may pay for a receipt of `amount` minor units."""
    return amount * business.redeem_max_share_percent // (100 * business.point_value)


class RedeemProblem(StrEnum):
    NOT_POSITIVE = "not_positive"
    NOT_ENOUGH_POINTS = "not_enough_points"
    OVER_CAP = "over_cap"


def check_redemption(business: Business, amount: int, points: int, balance: int) -> RedeemProblem | None:
    if points <= 0:
        return RedeemProblem.NOT_POSITIVE
    if points > balance:
        return RedeemProblem.NOT_ENOUGH_POINTS
    if points > redeem_cap(business, amount):
        return RedeemProblem.OVER_CAP
    return None


def max_redeemable(business: Business, amount: int, balance: int) -> int:
    return max(0, min(balance, redeem_cap(business, amount)))


def parse_points(text: str) -> int | None:
    """A whole number of points as typed; None when it is not one."""
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", text or "")
    if len(cleaned) > 9:
        return None
    return whole_number(cleaned)


# --- Card numbers --------------------------------------------------------------------------


def luhn_check_digit(digits: str) -> int:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def new_card_number() -> str:
    body = str(secrets.randbelow(9 * 10 ** (CARD_NUMBER_DIGITS - 2)) + 10 ** (CARD_NUMBER_DIGITS - 2))
    return body + str(luhn_check_digit(body))


class CardNumberProblem(StrEnum):
    WRONG_LENGTH = "wrong_length"
    CHECK_DIGIT = "check_digit"


@dataclass(frozen=True)
class CardNumberError(ValueError):
    problem: CardNumberProblem


def parse_card_number(text: str) -> str:
    """Normalise a typed card number (`4821 7305`, `4821-7305`) and verify its check digit."""
    cleaned = re.sub(r"[\s\-\u00a0.]", "", text or "")
    if whole_number(cleaned) is None or len(cleaned) != CARD_NUMBER_DIGITS:
        raise CardNumberError(CardNumberProblem.WRONG_LENGTH)
    if luhn_check_digit(cleaned[:-1]) != int(cleaned[-1]):
        raise CardNumberError(CardNumberProblem.CHECK_DIGIT)
    return cleaned


def format_card_number(number: str) -> str:
    return f"{number[:4]} {number[4:]}"


# --- One-time codes (card QR, staff invites) ------------------------------------------------

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22,43}$")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def looks_like_token(token: str) -> bool:
    return bool(_TOKEN_RE.match(token))


CARD_LINK_PREFIX = "c_"
STAFF_LINK_PREFIX = "staff_"
_CARD_LINK_RE = re.compile(r"[?&]start=c_([A-Za-z0-9_-]{22,43})(?:$|&)")


def token_from_card_link(text: str) -> str | None:
    """The card token inside a scanned deep link (`https://t.me/bot?start=c_…`)."""
    match = _CARD_LINK_RE.search(text.strip())
    return match.group(1) if match else None
