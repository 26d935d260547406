"""FSM states: what the bot waits for from a cashier or a manager."""

from aiogram.fsm.state import State, StatesGroup


class Scan(StatesGroup):
    entering_card = State()  # a card number or a photo of the QR


class Purchase(StatesGroup):
    entering_amount = State()
    entering_receipt = State()


class Redemption(StatesGroup):
    entering_amount = State()
    entering_points = State()


class ContactCustomer(StatesGroup):
    writing = State()  # a manager's next message in the group goes to the customer of an alert
