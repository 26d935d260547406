"""Words of the customer's life in the programme: profile, consents, birthdays, referrals,
expiring points, win-back, data rights. Built for the current locale."""

from __future__ import annotations

from datetime import date, datetime

from aiogram import html
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from babel.dates import format_date

from bot.business import Business
from bot.core import formatting
from bot.core.i18n import LANGUAGE_NAMES
from bot.lifecycle.rules import celebrated_on
from bot.loyalty import texts
from bot.support.texts import language_of
from storage.models import Customer, LedgerEntry


def day_and_month(day: int, month: int) -> str:
    """`15 March`, `15 марта`, `15 marca` (a leap year, so 29 February shows too)."""
    return format_date(date(2024, month, day), format="d MMMM", locale=formatting.locale())


def local_date(moment: datetime, business: Business) -> str:
    return format_date(moment.astimezone(business.timezone).date(), format="long", locale=formatting.locale())


def profile(customer: Customer, business: Business) -> str:
    name = " ".join(part for part in (customer.first_name, customer.last_name) if part)
    lines = [_("<b>Your profile</b>"), _("Name: {name}").format(name=html.quote(name) or "—")]
    if customer.is_member:
        lines.append(texts.card_line(customer))
    if customer.birthday_day and customer.birthday_month:
        lines.append(_("Birthday: {date}").format(date=day_and_month(customer.birthday_day, customer.birthday_month)))
    elif business.lifecycle.birthday_bonus > 0:
        lines.append(
            _("Birthday: not set. Add it and get {points} on your birthday.").format(
                points=texts.points(business.lifecycle.birthday_bonus)
            )
        )
    else:
        lines.append(_("Birthday: not set."))
    lines.append(_("Language: {language}").format(language=LANGUAGE_NAMES.get(language_of(customer, business), "—")))
    if customer.marketing_consent_at is not None:
        lines.append(
            _("Offers and news: on, since {date}.").format(date=local_date(customer.marketing_consent_at, business))
        )
    else:
        lines.append(_("Offers and news: off."))
    lines.append("")
    lines.append(_("/mydata sends you everything we store about you; /deleteme erases it."))
    return "\n".join(lines)


def birthday_prompt() -> str:
    return _("Send your birthday as day and month, for example 15.03. We never ask for the year.")


def birthday_error() -> str:
    return _("I could not read a date there. Send the day and the month, for example 15.03 or 29.02.")


def birthday_saved(day: int, month: int, business: Business, today: date) -> str:
    text = _("Saved: your birthday is {date}.").format(date=day_and_month(day, month))
    if business.lifecycle.birthday_bonus > 0:
        text += " " + _("On the day you will get {points} from us, once a year.").format(
            points=texts.points(business.lifecycle.birthday_bonus)
        )
    if celebrated_on(day, month, today.year) == today:
        text += "\n🎂 " + _("Happy birthday!")
    return text


def consent_question(business: Business) -> str:
    return _(
        "One more question: may {business} send you offers and news here, a few times a month at most? "
        "It is separate from the programme, and you can stop it any time with one tap or /unsubscribe."
    ).format(business=html.quote(business.name))


def marketing_on() -> str:
    return _("Done: you will get our offers and news. Every message has an Unsubscribe button.")


def marketing_off() -> str:
    return _("Done: you will not get offers and news any more. You can turn them back on in /profile.")


def not_subscribed() -> str:
    return _("You are not subscribed to offers and news. To subscribe, open /profile.")


def birthday_greeting(customer: Customer, bonus: LedgerEntry | None, business: Business) -> str:
    text = _("🎂 Happy birthday, {name}! Everyone at {business} wishes you a wonderful day.").format(
        name=html.quote(customer.first_name), business=html.quote(business.name)
    )
    if bonus is not None:
        text += "\n" + _("Our gift: {points} on your card. Balance: {balance}.").format(
            points=texts.signed_points(bonus.points), balance=texts.points(bonus.balance_after)
        )
    return text


def expiry_reminder(points: int, on: datetime, business: Business) -> str:
    return ngettext(
        "⏳ {count} point on your card expires on {date}. Use it before then: show /card at the till.",
        "⏳ {count} points on your card expire on {date}. Use them before then: show /card at the till.",
        points,
    ).format(count=formatting.number(points), date=local_date(on, business))


def win_back(customer: Customer, business: Business) -> str:
    text = _("We miss you, {name}! It has been a while since your last visit to {business}.").format(
        name=html.quote(customer.first_name), business=html.quote(business.name)
    )
    if customer.balance > 0:
        text += " " + _("You have {points} waiting on your card.").format(points=texts.points(customer.balance))
    return text


def invite(link: str, business: Business, friends: int) -> str:
    bonus = texts.points(business.lifecycle.referral_bonus)
    text = _(
        "<b>Invite a friend</b>\nSend this link to a friend. When they join and make their first "
        "purchase, you both get {points}.\n\n{link}"
    ).format(points=bonus, link=html.quote(link))
    if friends:
        text += "\n\n" + ngettext(
            "You have invited {count} friend so far. Thank you!",
            "You have invited {count} friends so far. Thank you!",
            friends,
        ).format(count=formatting.number(friends))
    return text


def invite_share_text(business: Business) -> str:
    return _("Join the {business} loyalty programme with my link and we both get a bonus.").format(
        business=business.name
    )


def referral_welcome(referrer: Customer, business: Business) -> str:
    return _("{name} invited you. Join, and after your first purchase you both get {points}.").format(
        name=html.quote(referrer.first_name), points=texts.points(business.lifecycle.referral_bonus)
    )


def referral_for_newcomers() -> str:
    return _("This invitation is for people who are new to the programme; you are already a member. Send /card.")


def referral_unknown() -> str:
    return _("This invitation link no longer works, but you can join all the same.")


def delete_question(customer: Customer) -> str:
    text = _(
        "<b>Delete your data?</b>\nWe will erase your name, username, birthday, survey comments and the "
        "messages we stored, and your card will stop working. We keep only the amounts and dates of your "
        "points, without your name, because accounting needs them."
    )
    if customer.balance > 0:
        text += "\n\n" + ngettext(
            "⚠️ The {count} point on your card will be lost.",
            "⚠️ The {count} points on your card will be lost.",
            customer.balance,
        ).format(count=formatting.number(customer.balance))
    return text


def deleted() -> str:
    return _(
        "Your data has been deleted. Thank you for having been with us. "
        "If you write to this bot again, you will start as a new customer."
    )


def delete_kept() -> str:
    return _("Nothing was deleted. Your card and points stay as they were.")


def mydata_caption() -> str:
    return _("Everything we store about you, as a JSON file.")
