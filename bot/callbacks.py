"""Typed callback data, all in one place. They carry ids only: rights and amounts are looked up
and checked again on the server, because anyone can send any callback data."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class JoinCB(CallbackData, prefix="join"):
    pass


class LanguageCB(CallbackData, prefix="lang"):
    code: str


class CardCB(CallbackData, prefix="card"):
    action: str  # "refresh"


class ScanCB(CallbackData, prefix="scan"):
    action: str  # "buy", "redeem", "cancel"
    customer_id: int


class FlowCB(CallbackData, prefix="flow"):
    action: str  # "skip_receipt", "max", "cancel"


class OperationCB(CallbackData, prefix="op"):
    action: str  # "confirm", "cancel"
    op_id: int


class RedeemAnswerCB(CallbackData, prefix="ra"):
    op_id: int
    accept: bool


class UndoCB(CallbackData, prefix="undo"):
    entry_id: int


class StaffCB(CallbackData, prefix="staff"):
    action: str  # "revoke"
    staff_id: int
