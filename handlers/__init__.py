"""The bot's routers, one per feature, built fresh for each dispatcher.

Each reads as the story of one feature (bot/<feature>/ holds its rules, service and texts):
loyalty is five, one per person at work (start: joining and staff invites; card: the customer's
card; cashier: the till; redemption: the customer's confirmation; admin: the owner's tools);
surveys are the customer's answers (surveys), the
managers' alerts (alerts) and the figures (reports); support, faq, lifecycle and broadcasts are one
each; common, language and fallback are the bot's own."""

from __future__ import annotations

from aiogram import Router

from handlers import (
    admin,
    alerts,
    broadcasts,
    card,
    cashier,
    common,
    fallback,
    faq,
    language,
    lifecycle,
    owner,
    redemption,
    reports,
    start,
    support,
    surveys,
)


def get_routers() -> list[Router]:
    return [
        common.create_router(),  # /help and /cancel first: they work in every state
        owner.create_router(),  # an owner's reply to a letter, and a letter being written
        cashier.create_router(),  # before start: a staff member opening a card link scans it
        start.create_router(),
        language.create_router(),
        card.create_router(),
        lifecycle.create_router(),  # /profile, consents, /mydata, /deleteme; a birthday being typed
        admin.create_router(),
        redemption.create_router(),
        reports.create_router(),
        broadcasts.create_router(),  # before support: an admin's draft in a topic is not for the customer
        faq.create_review_router(),  # before support too: an admin wording an FAQ question
        # A customer in a conversation (a request open, or closed so lately that writing reopens
        # it, or just asked for with /support): their words go to the managers, even while a
        # survey's follow-up question waits for a comment.
        support.create_router(),
        surveys.create_router(),  # a follow-up comment before the customer-reply relay
        alerts.create_router(),
        faq.create_router(),  # free text nobody else took: matched against the FAQ
        fallback.create_router(),  # fallback must be last
    ]
