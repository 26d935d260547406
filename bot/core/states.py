"""FSM states: what the bot waits for from a cashier or a manager."""

from aiogram.fsm.state import State, StatesGroup


class Scan(StatesGroup):
    entering_card = State()  # a card number or a photo of the QR
    card_open = State()  # a card is open: the amount typed now is a sale


class Purchase(StatesGroup):
    entering_amount = State()  # kept for chats mid-sale at an upgrade: the amount is a sale
    entering_receipt = State()  # the business asks for the receipt's number (till.ask_receipt_number)


class Redemption(StatesGroup):
    entering_amount = State()
    entering_points = State()


class ContactCustomer(StatesGroup):
    writing = State()  # a manager's next message in the group goes to the customer of an alert


class OwnerLine(StatesGroup):
    writing = State()  # the customer's next message goes to the owners


class Profile(StatesGroup):
    birthday = State()  # the customer's next message is their birthday


class Broadcast(StatesGroup):
    writing = State()  # the message for customers: text, or a photo with a caption
    choosing_segment = State()
    entering_days = State()  # "no purchase for N days"
    confirming = State()  # the preview is shown, with Send and Cancel


class FaqReview(StatesGroup):
    wording = State()  # an admin approving a draft writes its question as customers will read it
