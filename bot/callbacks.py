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
    action: str  # "revoke"
    staff_id: Id
