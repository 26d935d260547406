"""Typed callback data, all in one place. They carry ids only: rights and amounts are looked up
and checked again on the server, because anyone can send any callback data."""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

# A database id as a button may carry it; anything else (a forged 10**30) fails to unpack, and
# the press falls through to "This button no longer works."
Id = Annotated[int, Field(ge=0, le=2**31 - 1)]


class JoinCB(CallbackData, prefix="join"):
    pass


class LanguageCB(CallbackData, prefix="lang"):
    code: str


class CardCB(CallbackData, prefix="card"):
    action: str  # "refresh"


class ScanCB(CallbackData, prefix="scan"):
    action: str  # "buy", "redeem", "cancel"
    customer_id: Id


class FlowCB(CallbackData, prefix="flow"):
    action: str  # "skip_receipt", "max", "cancel"


class OperationCB(CallbackData, prefix="op"):
    action: str  # "confirm", "cancel"
    op_id: Id


class RedeemAnswerCB(CallbackData, prefix="ra"):
    op_id: Id
    accept: bool


class UndoCB(CallbackData, prefix="undo"):
    entry_id: Id


class StaffCB(CallbackData, prefix="staff"):
    action: str  # "revoke", "move" (which store?), "to" (move to `store`)
    staff_id: Id
    store: str = ""


class InviteCB(CallbackData, prefix="inv"):
    store: str  # the store the new cashier will work in


class SurveyCB(CallbackData, prefix="sv"):
    survey_id: Id
    score: Annotated[int, Field(ge=0, le=10)]


class CommentCB(CallbackData, prefix="svc"):
    action: str  # "skip"
    survey_id: Id


class AlertCB(CallbackData, prefix="al"):
    action: str  # "contact", "bonus", "resolve"
    alert_id: Id


class ContactCB(CallbackData, prefix="ct"):
    action: str  # "cancel"


class StatsCB(CallbackData, prefix="st"):
    action: str  # "show", "chart", "csv"
    days: Annotated[int, Field(ge=1, le=366)]
    store: str = ""  # a store's id; empty: all stores


class ReportCB(CallbackData, prefix="rp"):
    action: str  # "show", "chart", "csv"
    days: Annotated[int, Field(ge=1, le=366)]
    store: str = ""  # a store's id; empty: all stores


class LetterCB(CallbackData, prefix="lt"):
    action: str  # "close"
    letter_id: Id


class MenuCB(CallbackData, prefix="mn"):
    action: str  # "card", "faq", "support"


class FaqMenuCB(CallbackData, prefix="fq"):
    action: str  # "cats", "cat", "entry"
    value: str = ""  # a category or an entry id
    query: Id = 0  # the customer's question this answers, when picked among candidates


class FaqRateCB(CallbackData, prefix="fr"):
    query: Id
    helpful: bool


class SupportCB(CallbackData, prefix="sp"):
    source: str  # "faq", "menu", "miss"
    query: Id = 0  # the FAQ question to pass on with the request


class TicketCB(CallbackData, prefix="tk"):
    action: str  # "take", "close", "assign"
    ticket_id: Id
    to: Annotated[int, Field(ge=0, le=2**53)] = 0  # the manager it is handed to


class DraftCB(CallbackData, prefix="dr"):
    action: str  # "approve", "reject", "put" (into a category)
    draft_id: Id
    category: str = ""


class ProfileCB(CallbackData, prefix="pf"):
    action: str  # "birthday", "clear_birthday", "marketing_on", "marketing_off", "language", "invite"


class ConsentCB(CallbackData, prefix="cs"):
    granted: bool  # the question after joining: offers and news, yes or no


class UnsubscribeCB(CallbackData, prefix="un"):
    pass


class DeleteMeCB(CallbackData, prefix="dm"):
    confirm: bool


class BroadcastCB(CallbackData, prefix="bc"):
    action: str  # "segment", "send", "cancel"
    value: str = ""  # the segment ("all", "tier:silver", "lang:pl", "inactive", "birthday")
