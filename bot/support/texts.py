"""Words of the hand-off to a person, built for the current locale."""

from __future__ import annotations

from datetime import datetime

from aiogram import html
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from babel.dates import format_date

from bot.business import Business
from bot.core import formatting
from bot.core.i18n import LANGUAGE_NAMES
from bot.core.languages import pick_language
from bot.loyalty import texts
from bot.loyalty.rules import format_card_number, tier_for
from bot.support.rules import topic_title
from bot.support.service import HeaderFacts
from bot.surveys import texts as survey_texts
from storage.models import Customer, LetterStatus, OwnerLetter, Ticket, TicketStatus


def language_of(customer: Customer, business: Business) -> str:
    return pick_language(customer.language, customer.telegram_language, business.default_language)


def title(customer: Customer, ticket: Ticket | None, business: Business) -> str:
    """The topic's name, in the managers' language (the tier's name)."""
    if customer.deleted_at is not None:
        return "🗑 " + _("Deleted customer #{id}").format(id=customer.id)
    tier = tier_for(business, customer.lifetime_spend).name.get(formatting.locale())
    card = format_card_number(customer.card_number) if customer.card_number else None
    assignee = ticket.assignee_name if ticket is not None and ticket.status == TicketStatus.OPEN else None
    return topic_title(language_of(customer, business), customer.first_name, customer.last_name, card, tier, assignee)


def ticket_status(ticket: Ticket | None) -> str:
    if ticket is None:
        return _("no request yet")
    if ticket.status == TicketStatus.CLOSED:
        return _("request #{id}: closed by {name}").format(id=ticket.id, name=html.quote(ticket.closed_by_name or "—"))
    if ticket.assignee_name:
        return _("request #{id}: open, {name} is on it").format(id=ticket.id, name=html.quote(ticket.assignee_name))
    return _("request #{id}: open, nobody has taken it yet").format(id=ticket.id)


def header(facts: HeaderFacts, business: Business) -> str:
    """The customer's card, pinned at the top of their topic."""
    customer = facts.customer
    if customer.deleted_at is not None:
        return "🗑 " + _("This customer deleted their data on {date}. Their messages can no longer be answered.").format(
            date=date(customer.deleted_at, business)
        )
    lines = [f"👤 <b>{survey_texts.customer_name(customer)}</b>"]
    language = LANGUAGE_NAMES.get(language_of(customer, business), "—")
    if customer.is_member:
        tier = tier_for(business, customer.lifetime_spend)
        lines.append(
            _("Language: {language} · Tier: {tier} · Balance: {balance}").format(
                language=language, tier=texts.tier_name(tier), balance=texts.points(customer.balance)
            )
        )
        lines.append(texts.card_line(customer))
    else:
        lines.append(_("Language: {language} · not a member of the loyalty programme").format(language=language))
    visit = date(facts.last_visit, business) if facts.last_visit else _("none yet")
    if facts.last_visit and business.chain:
        visit = _("{date}, {store}").format(date=visit, store=texts.store_name(business.store(facts.last_store)))
    nps = str(facts.last_nps) if facts.last_nps is not None else "—"
    lines.append(_("Last visit: {date} · Last NPS: {score}").format(date=visit, score=nps))
    lines.append(_("Status: {status}").format(status=ticket_status(facts.ticket)))
    return "\n".join(lines)


def date(moment: datetime, business: Business) -> str:
    return format_date(moment.astimezone(business.timezone).date(), format="medium", locale=formatting.locale())


def bot_exchange(customer_text: str, answer: str) -> str:
    """One line of a hand-off: the customer's words to the bot, and what the bot did with them."""
    words = customer_text if len(customer_text) <= 200 else customer_text[:199] + "…"
    return _("• “{words}” → {answer}").format(words=html.quote(words), answer=answer)  # pl: „…”, ru: «…»


def handoff(reason: str, said: list[str]) -> str:
    """The block that opens a hand-off in the topic: why, and what the customer asked the bot."""
    lines = [_("🧭 Handed on: {reason}.").format(reason=reason)]
    if said:
        lines.append(_("Before that, the customer wrote to the bot:"))
        lines.extend(said)
    return "\n".join(lines)


def closed_now(moment: datetime, now: datetime, business: Business) -> str:
    return _("Our team is away right now. A manager will answer {when}.").format(
        when=formatting.opening(moment, now, business)
    )


def customer_label(customer: Customer) -> str:
    """Short: the first name and the card number, for lines in the group."""
    label = html.quote(customer.first_name or "—")
    if customer.card_number:
        label += f" #{format_card_number(customer.card_number)}"
    return label


def mention(user_id: int, name: str) -> str:
    return f'<a href="tg://user?id={user_id}">{html.quote(name)}</a>'


# --- the personal manager ------------------------------------------------------------------------


def your_manager(name: str) -> str:
    return _("Your manager: {name}").format(name=html.quote(name))


def offered_to(manager_id: int, name: str) -> str:
    """The topic's line naming the customer's own manager, with a mention that notifies them."""
    return _("👤 Their manager, who helped them last time: {manager}").format(manager=mention(manager_id, name or "—"))


def personal_request(customer: Customer, ticket_id: int) -> str:
    return _("👤 Your customer {customer} has opened request #{id}. It is yours first: answer in their topic.").format(
        customer=customer_label(customer), id=ticket_id
    )


# --- a line straight to the owner ---------------------------------------------------------------


def letter_prompt() -> str:
    return _(
        "✉️ Write your message to the owner in one message. Only the owner reads it, not the staff. "
        "To stop, send /cancel."
    )


def letter_sent() -> str:
    return _("✉️ Sent to the owner. The owner reads it personally; the answer will come here.")


def letter_limit(count: int) -> str:
    return ngettext(
        "You have written to the owner {count} time in the last 24 hours. Please write again tomorrow, "
        "or talk to our team now: /support.",
        "You have written to the owner {count} times in the last 24 hours. Please write again tomorrow, "
        "or talk to our team now: /support.",
        count,
    ).format(count=formatting.number(count))


def no_owner_line() -> str:
    return _("Writing to the owner is not set up here yet. Our team will help you: /support.")


def letter_too_long(limit: int) -> str:
    return _("Please keep it under {limit} characters, so the owner reads it in one message.").format(
        limit=formatting.number(limit)
    )


def letter_words_only() -> str:
    return _("Please write your message in words: the owner reads text. To stop, send /cancel.")


def letter_post(letter: OwnerLetter, facts: HeaderFacts | None, business: Business) -> str:
    """What an owner reads: a complaint, with the customer's card."""
    lines = [_("✉️ <b>To the owner</b> · complaint #{id}").format(id=letter.id)]
    if facts is not None:
        lines.append(header(facts, business))
    if business.chain:
        lines.append(_("🏪 Store: {store}").format(store=texts.store_name(business.store(letter.store))))
    lines += ["", _("“{text}”").format(text=html.quote(letter.text)), ""]
    if letter.status == LetterStatus.CLOSED:
        lines.append(_("✅ Closed by {name}.").format(name=html.quote(letter.closed_by_name or "—")))
    elif letter.status == LetterStatus.ANSWERED:
        lines.append(
            _("💬 Answered by {name}. Reply to this message to write again.").format(
                name=html.quote(letter.answered_by_name or "—")
            )
        )
    else:
        lines.append(_("Reply to this message to answer the customer."))
    return "\n".join(lines)


def letter_answer(owner_name: str, text: str) -> str:
    """What the customer reads: the owner's words, signed, and that the owner read it personally."""
    return (
        _("✉️ <b>{name}, owner</b>:").format(name=html.quote(owner_name))
        + "\n"
        + html.quote(text)
        + "\n\n"
        + _("The owner read your message personally.")
    )
