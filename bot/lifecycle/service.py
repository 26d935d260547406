"""The customer's life in the programme, in the database: profile and consents, referrals,
birthday bonuses, expiring points, win-back, retention, the data export and erasure.

Each method is one short transaction. Scheduled work claims its rows with conditional updates
(and the ledger's idempotency keys), so several bot processes never do it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.business import Business, LifecycleRules
from bot.lifecycle.rules import (
    Movement,
    add_months,
    birthday_due,
    celebrated_on,
    earning_expires_at,
    expired_lots,
    expiring_between,
    new_referral_code,
    open_lots,
)
from storage.database import Database, changed, ids
from storage.models import (
    Alert,
    BroadcastRecipient,
    ConsentEvent,
    Customer,
    DraftStatus,
    EntryKind,
    FaqDraft,
    FaqQuery,
    LedgerEntry,
    LetterStatus,
    Notice,
    OwnerLetter,
    ProcessedUpdate,
    SupportThread,
    Survey,
    SurveyStatus,
    Ticket,
    TicketMessage,
    TicketStatus,
    utcnow,
)
from storage.repositories import CardCodes, Customers, Ledger

BATCH = 100
GREETED_WITHIN = timedelta(days=364)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Referral(StrEnum):
    LINKED = "linked"  # the newcomer is linked to their friend
    ALREADY_MEMBER = "already_member"  # members (the referrer themselves too) earn nothing
    UNKNOWN = "unknown"  # no such code, or its owner left


@dataclass(frozen=True)
class Greeting:
    customer: Customer
    bonus: LedgerEntry | None


@dataclass(frozen=True)
class Expiring:
    customer: Customer
    points: int
    on: datetime  # the earliest of the expiries it sums


@dataclass(frozen=True)
class Erased:
    customer_id: int
    forfeited: int
    had_topic: bool
    alert_ids: tuple[int, ...] = ()  # alerts posted with their name and words: shown anew without
    faq_changed: bool = False  # an approved FAQ entry was matched on their words: the FAQ reloads


class LifecycleService:
    def __init__(self, db: Database, business: Business, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.business = business
        self.clock = clock

    @property
    def rules(self) -> LifecycleRules:
        return self.business.lifecycle

    # --- profile and consents ----------------------------------------------------------------

    async def customer(self, customer_id: int) -> Customer | None:
        async with self.db.reading() as session:
            return await Customers(session).by_id(customer_id)

    async def set_birthday(self, customer_id: int, day: int | None, month: int | None) -> Customer:
        async with self.db.writing() as session:
            customer = await Customers(session).locked(customer_id)
            assert customer is not None
            customer.birthday_day, customer.birthday_month = day, month
            customer.birthday_set_at = self.clock() if day is not None else None
            return customer

    async def set_marketing(self, customer_id: int, granted: bool, source: str) -> bool:
        """Give or withdraw the marketing consent; False when it already was so (nothing recorded)."""
        now = self.clock()
        async with self.db.writing() as session:
            customer = await Customers(session).locked(customer_id)
            if customer is None or customer.deleted_at is not None or customer.has_marketing_consent == granted:
                return False
            customer.marketing_consent_at = now if granted else None
            session.add(
                ConsentEvent(
                    customer_id=customer_id, purpose="marketing", granted=granted, source=source, created_at=now
                )
            )
            return True

    async def mark_blocked(self, customer_id: int) -> None:
        """The customer blocked the bot: they are skipped until they write again."""
        async with self.db.writing() as session:
            await Customers(session).mark_blocked(customer_id, self.clock())

    # --- referrals -----------------------------------------------------------------------------

    async def referral_code(self, customer_id: int) -> str:
        """The member's personal code, drawn the first time they share it."""
        for _attempt in range(5):
            try:
                async with self.db.writing() as session:
                    customer = await Customers(session).locked(customer_id)
                    assert customer is not None
                    if customer.referral_code is None:
                        customer.referral_code = new_referral_code()
                    return customer.referral_code
            except IntegrityError:
                continue  # the code was someone else's already: draw another
        raise RuntimeError("could not draw a free referral code")

    async def link_referral(self, customer_id: int, code: str) -> tuple[Referral, Customer | None]:
        """Link a newcomer to the member whose link they opened (the first link wins)."""
        async with self.db.writing() as session:
            customer = await Customers(session).locked(customer_id)
            assert customer is not None
            referrer = await session.scalar(select(Customer).where(col(Customer.referral_code) == code))
            if referrer is None or not referrer.is_member:
                return Referral.UNKNOWN, None
            if customer.joined_at is not None or referrer.id == customer.id:
                return Referral.ALREADY_MEMBER, referrer
            if customer.referred_by_id is None:
                customer.referred_by_id = referrer.id
            return Referral.LINKED, referrer

    async def referrals_made(self, customer_id: int) -> int:
        async with self.db.reading() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(
                    col(LedgerEntry.customer_id) == customer_id,
                    col(LedgerEntry.kind) == EntryKind.REFERRAL,
                    col(LedgerEntry.idempotency_key).like("referral:%:referrer"),
                )
            )
            return int(count or 0)

    # --- birthdays -----------------------------------------------------------------------------

    def local_today(self, now: datetime) -> date:
        return now.astimezone(self.business.timezone).date()

    async def birthdays_due(self, now: datetime) -> list[int]:
        """Members whose birthday is today (29 February on the 28th in other years)."""
        today = self.local_today(now)
        days = [today.day]
        if (today.month, today.day) == (2, 28) and celebrated_on(29, 2, today.year) == today:
            days.append(29)
        async with self.db.reading() as session:
            rows = await session.scalars(
                select(col(Customer.id))
                .where(
                    col(Customer.birthday_month) == today.month,
                    col(Customer.birthday_day).in_(days),
                    col(Customer.joined_at).is_not(None),
                    col(Customer.card_number).is_not(None),
                    col(Customer.deleted_at).is_(None),
                    # Not those greeted within the year (the exact rule is checked when claiming):
                    # else the same first hundred would fill every batch of the day.
                    or_(
                        col(Customer.birthday_greeted_at).is_(None),
                        col(Customer.birthday_greeted_at) <= now - GREETED_WITHIN,
                    ),
                )
                .order_by(col(Customer.id))
                .limit(BATCH)
            )
            return ids(rows)

    async def greet_birthday(self, customer_id: int, now: datetime) -> Greeting | None:
        """Claim today's greeting and credit the bonus; None when it is not due (or was done)."""
        today = self.local_today(now)
        async with self.db.writing() as session:
            customer = await Customers(session).locked(customer_id)
            if customer is None or not customer.is_member or customer.birthday_day is None:
                return None
            last = customer.birthday_greeted_at
            last_day = self.local_today(last) if last is not None else None
            if not birthday_due(customer.birthday_day, customer.birthday_month or 0, today, last_day):
                return None
            claimed = await session.execute(
                update(Customer)
                .where(
                    col(Customer.id) == customer_id,
                    col(Customer.birthday_greeted_at).is_(None)
                    if last is None
                    else col(Customer.birthday_greeted_at) == last,
                )
                .values(birthday_greeted_at=now)
            )
            if changed(claimed) != 1:
                return None
            bonus = None
            if self.rules.birthday_bonus > 0:
                bonus, created = await Ledger(session).append(
                    customer_id=customer_id,
                    kind=EntryKind.BIRTHDAY,
                    points=self.rules.birthday_bonus,
                    key=f"birthday:{customer_id}:{today.year}",
                    now=now,
                    expires_at=earning_expires_at(self.rules.expiry_months, self.rules.birthday_bonus, now),
                )
                if not created:
                    return None
            customer = await Customers(session).by_id(customer_id)
            assert customer is not None
            return Greeting(customer, bonus)

    # --- expiring points -----------------------------------------------------------------------

    async def _movements(self, session: AsyncSession, customer_id: int) -> list[Movement]:
        rows = await session.execute(
            select(
                col(LedgerEntry.id),
                col(LedgerEntry.kind),
                col(LedgerEntry.points),
                col(LedgerEntry.expires_at),
                col(LedgerEntry.reverses_id),
                col(LedgerEntry.lot_id),
            ).where(col(LedgerEntry.customer_id) == customer_id)
        )
        return [
            Movement(entry_id, kind, points, expires_at, reverses_id, lot_id)
            for entry_id, kind, points, expires_at, reverses_id, lot_id in rows
            if entry_id is not None
        ]

    async def _with_earnings_due(self, until: datetime, mark: Any) -> list[int]:
        """Customers holding an earning that expires by `until` and is past their `mark`."""
        async with self.db.reading() as session:
            rows = await session.scalars(
                select(col(LedgerEntry.customer_id))
                .join(Customer, col(Customer.id) == col(LedgerEntry.customer_id))
                .where(
                    col(LedgerEntry.expires_at).is_not(None),
                    col(LedgerEntry.expires_at) <= until,
                    or_(mark.is_(None), col(LedgerEntry.expires_at) > mark),
                    col(Customer.deleted_at).is_(None),
                )
                .distinct()
                .limit(BATCH)
            )
            return list(rows)

    @staticmethod
    async def _store_of_entry(session: AsyncSession, entry_id: int) -> str:
        store = await session.scalar(select(col(LedgerEntry.store)).where(col(LedgerEntry.id) == entry_id))
        return store or "main"

    async def expire_due(self, now: datetime) -> list[Expiring]:
        """Expire what is left of every earning past its date, one ledger entry per earning."""
        done = []
        for customer_id in await self._with_earnings_due(now, col(Customer.points_expired_until)):
            async with self.db.writing() as session:
                customer = await Customers(session).locked(customer_id)
                assert customer is not None
                total, first = 0, None
                for lot in expired_lots(open_lots(await self._movements(session, customer_id)), now):
                    _entry, created = await Ledger(session).append(
                        customer_id=customer_id,
                        kind=EntryKind.EXPIRY,
                        points=-lot.remaining,
                        key=f"expiry:{lot.entry_id}",
                        lot_id=lot.entry_id,
                        now=now,
                        store=await self._store_of_entry(session, lot.entry_id),  # where it was earned
                    )
                    if created:
                        total += lot.remaining
                        if lot.expires_at is not None:  # an expiring lot always has its date
                            first = lot.expires_at if first is None else min(first, lot.expires_at)
                customer.points_expired_until = now
                if total:
                    done.append(Expiring(customer, total, first or now))
        return done

    async def expiry_reminders(self, now: datetime) -> list[Expiring]:
        """Claim the reminders of points expiring within the reminder period, one per earning."""
        if self.rules.expiry_remind <= timedelta(0):
            return []
        until = now + self.rules.expiry_remind
        due = []
        for customer_id in await self._with_earnings_due(until, col(Customer.expiry_reminded_until)):
            async with self.db.writing() as session:
                customer = await Customers(session).locked(customer_id)
                assert customer is not None
                after = max(customer.expiry_reminded_until or EPOCH, now)
                lots = expiring_between(open_lots(await self._movements(session, customer_id)), after, until)
                customer.expiry_reminded_until = until
                if lots and not customer.blocked_at:
                    first = min(lot.expires_at for lot in lots if lot.expires_at is not None)
                    due.append(Expiring(customer, sum(lot.remaining for lot in lots), first))
        return due

    # --- win-back ------------------------------------------------------------------------------

    async def win_back_due(self, now: datetime) -> list[Customer]:
        """Claim one "we miss you" per quiet spell, for members who agreed to marketing."""
        if self.rules.win_back is None:
            return []
        last_seen = func.coalesce(col(Customer.last_purchase_at), col(Customer.joined_at))
        async with self.db.writing() as session:
            ids = list(
                await session.scalars(
                    select(col(Customer.id))
                    .where(
                        col(Customer.card_number).is_not(None),
                        col(Customer.deleted_at).is_(None),
                        col(Customer.blocked_at).is_(None),
                        col(Customer.marketing_consent_at).is_not(None),
                        last_seen <= now - self.rules.win_back,
                        or_(col(Customer.win_back_at).is_(None), col(Customer.win_back_at) < last_seen),
                    )
                    .order_by(col(Customer.id))
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if not ids:
                return []
            await session.execute(update(Customer).where(col(Customer.id).in_(ids)).values(win_back_at=now))
            return list(
                await session.scalars(select(Customer).where(col(Customer.id).in_(ids)).order_by(col(Customer.id)))
            )

    # --- retention -----------------------------------------------------------------------------

    async def apply_retention(self, now: datetime) -> int:
        """Delete stored support messages (and FAQ question texts) older than the retention period.
        A message an FAQ draft was made from keeps its row, without its text."""
        if self.rules.retention_months <= 0:
            return 0
        cutoff = add_months(now, -self.rules.retention_months)
        async with self.db.writing() as session:
            drafted = select(col(FaqDraft.source_message_id))
            deleted = await session.execute(
                delete(TicketMessage).where(
                    col(TicketMessage.created_at) < cutoff, col(TicketMessage.id).not_in(drafted)
                )
            )
            await session.execute(
                update(TicketMessage)
                .where(col(TicketMessage.created_at) < cutoff, col(TicketMessage.text).is_not(None))
                .values(text=None)
            )
            await session.execute(
                update(FaqQuery)
                .where(col(FaqQuery.created_at) < cutoff, col(FaqQuery.text).is_not(None))
                .values(text=None)
            )
            return changed(deleted) or 0

    # --- data rights ---------------------------------------------------------------------------

    async def export(self, customer_id: int) -> dict[str, Any]:
        """Everything stored about the customer, for /mydata."""
        async with self.db.reading(bulk=True) as session:
            customer = await Customers(session).by_id(customer_id)
            assert customer is not None

            async def rows(model: Any, *where: Any) -> list[Any]:
                return list(await session.scalars(select(model).where(*where).order_by(model.id)))

            tickets = await rows(Ticket, col(Ticket.customer_id) == customer_id)
            ticket_ids = [t.id for t in tickets]
            messages = await rows(TicketMessage, col(TicketMessage.ticket_id).in_(ticket_ids)) if ticket_ids else []
            referred = await session.scalar(
                select(func.count()).select_from(Customer).where(col(Customer.referred_by_id) == customer_id)
            )
            return {
                "exported_at": _iso(self.clock()),
                "business": self.business.name,
                "profile": {
                    "first_name": customer.first_name,
                    "last_name": customer.last_name,
                    "username": customer.username,
                    "telegram_id": customer.telegram_id,
                    "telegram_language": customer.telegram_language,
                    "language": customer.language,
                    "card_number": customer.card_number,
                    "balance_points": customer.balance,
                    "lifetime_spend_minor_units": customer.lifetime_spend,
                    "currency": self.business.currency,
                    "birthday": (
                        f"{customer.birthday_day:02d}.{customer.birthday_month:02d}" if customer.birthday_day else None
                    ),
                    "created_at": _iso(customer.created_at),
                    "joined_at": _iso(customer.joined_at),
                    "last_purchase_at": _iso(customer.last_purchase_at),
                    "blocked_bot_at": _iso(customer.blocked_at),
                    "referral_code": customer.referral_code,
                    "joined_through_a_friend": customer.referred_by_id is not None,
                    "friends_referred": int(referred or 0),
                },
                "consents": {
                    "programme": {"given_at": _iso(customer.joined_at)},
                    "marketing": {
                        "given": customer.has_marketing_consent,
                        "since": _iso(customer.marketing_consent_at),
                    },
                    "history": [
                        {"purpose": e.purpose, "granted": e.granted, "source": e.source, "at": _iso(e.created_at)}
                        for e in await rows(ConsentEvent, col(ConsentEvent.customer_id) == customer_id)
                    ],
                },
                "ledger": [
                    {
                        "id": e.id,
                        "at": _iso(e.created_at),
                        "kind": e.kind,
                        "points": e.points,
                        "balance_after": e.balance_after,
                        "amount_minor_units": e.amount,
                        "receipt_no": e.receipt_no,
                        "reason": e.reason,
                        "expires_at": _iso(e.expires_at),
                    }
                    for e in await rows(LedgerEntry, col(LedgerEntry.customer_id) == customer_id)
                ],
                "surveys": [
                    {
                        "asked_at": _iso(s.asked_at),
                        "kind": s.kind,
                        "score": s.score,
                        "answered_at": _iso(s.answered_at),
                        "comment": s.comment,
                    }
                    for s in await rows(
                        Survey, col(Survey.customer_id) == customer_id, col(Survey.asked_at).is_not(None)
                    )
                ],
                "support_requests": [
                    {"id": t.id, "opened_at": _iso(t.opened_at), "status": t.status, "closed_at": _iso(t.closed_at)}
                    for t in tickets
                ],
                "support_messages": [
                    {
                        "request": m.ticket_id,
                        "at": _iso(m.created_at),
                        "from": {"in": "you", "out": "manager"}.get(m.direction, m.direction),
                        "manager": m.manager_name if m.direction == "out" else None,
                        "type": m.content_type,
                        "text": m.text,
                    }
                    for m in messages
                    if m.direction != "note"  # managers' internal notes are the business's, not the customer's words
                ],
                "faq_questions": [
                    {"at": _iso(q.created_at), "text": q.text, "language": q.language, "helpful": q.helpful}
                    for q in await rows(FaqQuery, col(FaqQuery.customer_id) == customer_id)
                ],
                "letters_to_the_owner": [
                    {
                        "at": _iso(letter.created_at),
                        "status": letter.status,
                        "text": letter.text,
                        "answered_by": letter.answered_by_name,
                    }
                    for letter in await rows(OwnerLetter, col(OwnerLetter.customer_id) == customer_id)
                ],
                "broadcasts_received": [
                    {"broadcast": r.broadcast_id, "status": r.status, "sent_at": _iso(r.sent_at)}
                    for r in await rows(BroadcastRecipient, col(BroadcastRecipient.customer_id) == customer_id)
                ],
            }

    async def erase(self, customer_id: int) -> Erased | None:
        """Erase the customer's personal data; keep, under a pseudonym, what accounting needs.

        The balance is given up through a ledger entry, so the ledger still adds up to every
        balance; amounts and dates stay. The Telegram id becomes the negative row id: the person
        who writes again starts afresh, and nothing left points back to them.
        """
        now = self.clock()
        async with self.db.writing() as session:
            customer = await Customers(session).locked(customer_id)
            if customer is None or customer.deleted_at is not None:
                return None
            forfeited, telegram_id = customer.balance, customer.telegram_id
            if forfeited > 0:
                await Ledger(session).append(
                    customer_id=customer_id,
                    kind=EntryKind.FORFEIT,
                    points=-forfeited,
                    key=f"forfeit:{customer_id}",
                    now=now,
                )
            await CardCodes(session).revoke_active(customer_id, now)
            await session.execute(
                update(Customer)
                .where(col(Customer.id) == customer_id)
                .values(
                    telegram_id=-customer_id,
                    first_name="",
                    last_name=None,
                    username=None,
                    telegram_language=None,
                    card_number=None,
                    referral_code=None,
                    birthday_day=None,
                    birthday_month=None,
                    birthday_set_at=None,
                    birthday_greeted_at=None,
                    marketing_consent_at=None,
                    deleted_at=now,
                )
            )
            await session.execute(
                update(LedgerEntry).where(col(LedgerEntry.customer_id) == customer_id).values(reason=None)
            )
            await session.execute(update(Survey).where(col(Survey.customer_id) == customer_id).values(comment=None))
            await session.execute(  # letters to the owner: their words go, the count and status stay
                update(OwnerLetter)
                .where(col(OwnerLetter.customer_id) == customer_id)
                .values(text="", status=LetterStatus.CLOSED)
            )
            await session.execute(
                update(Survey)
                .where(col(Survey.customer_id) == customer_id, col(Survey.status) == SurveyStatus.PENDING)
                .values(status=SurveyStatus.SKIPPED, skip_reason="erased")
            )
            ticket_ids = select(col(Ticket.id)).where(col(Ticket.customer_id) == customer_id)
            await session.execute(
                update(Ticket)
                .where(col(Ticket.customer_id) == customer_id, col(Ticket.status) == TicketStatus.OPEN)
                .values(status=TicketStatus.CLOSED, closed_at=now, waiting_since=None)
            )
            message_ids = select(col(TicketMessage.id)).where(col(TicketMessage.ticket_id).in_(ticket_ids))
            # Drafts made from their messages: waiting ones are dropped; approved and rejected ones
            # lose the customer's question (an approved entry is shown in the owner's own wording).
            await session.execute(
                update(FaqDraft)
                .where(col(FaqDraft.source_message_id).in_(message_ids), col(FaqDraft.status) == DraftStatus.DRAFT)
                .values(status=DraftStatus.REJECTED, question="", answer="", reviewed_at=now)
            )
            approved = await session.execute(
                update(FaqDraft)
                .where(
                    col(FaqDraft.source_message_id).in_(message_ids),
                    col(FaqDraft.status) == DraftStatus.APPROVED,
                    col(FaqDraft.question) != "",
                )
                .values(question="")
            )
            await session.execute(
                update(FaqDraft).where(col(FaqDraft.source_message_id).in_(message_ids)).values(question="")
            )
            alert_ids = tuple(
                await session.scalars(
                    select(col(Alert.id)).where(
                        col(Alert.customer_id) == customer_id, col(Alert.message_id).is_not(None)
                    )
                )
            )
            # The topic's stored name and header carry the name: cleared here, set anew (as
            # "deleted") when the desk refreshes the topic.
            await session.execute(
                update(SupportThread)
                .where(col(SupportThread.customer_id) == customer_id)
                .values(title=None, header=None)
            )
            await session.execute(
                update(TicketMessage).where(col(TicketMessage.ticket_id).in_(ticket_ids)).values(text=None)
            )
            await session.execute(update(FaqQuery).where(col(FaqQuery.customer_id) == customer_id).values(text=None))
            # Their updates the inbox still holds (failed ones kept for the operator, or waiting
            # for a replay) carry their words: dropped, and never replayed.
            await session.execute(
                update(ProcessedUpdate)
                .where(
                    col(ProcessedUpdate.finished_at).is_(None),
                    col(ProcessedUpdate.payload).like(f'%"id":{telegram_id},%'),
                )
                .values(payload=None, retry_at=None, error="erased at the person's request")
            )
            # Messages owed to them, sent or not, name their chat: gone, and never sent now.
            await session.execute(delete(Notice).where(col(Notice.chat_id) == telegram_id))
            await session.execute(
                update(BroadcastRecipient)
                .where(col(BroadcastRecipient.customer_id) == customer_id, col(BroadcastRecipient.status) == "pending")
                .values(status="skipped")
            )
            session.add(
                ConsentEvent(
                    customer_id=customer_id, purpose="programme", granted=False, source="deleteme", created_at=now
                )
            )
            thread = await session.scalar(select(SupportThread).where(col(SupportThread.customer_id) == customer_id))
            return Erased(
                customer_id,
                forfeited,
                had_topic=thread is not None and thread.topic_id is not None,
                alert_ids=tuple(ids(alert_ids)),
                faq_changed=bool(changed(approved)),
            )


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None
