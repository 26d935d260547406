"""Support requests in the database: opening, reopening, assigning and closing a customer's
request, the messages of both sides, the customer's topic in the managers' group, and the
reminders of unanswered requests. Delivery to Telegram is SupportDesk's job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.business import Business
from bot.support.rules import reminder_due, reopens
from storage.database import Database, changed
from storage.models import (
    Customer,
    EntryKind,
    LedgerEntry,
    LetterStatus,
    MessageDirection,
    OwnerLetter,
    OwnerLetterPost,
    SupportThread,
    Survey,
    Ticket,
    TicketMessage,
    TicketStatus,
    utcnow,
)
from storage.repositories import last_visit_store, latest_by, one_by

STALE_THREAD_CLAIM = timedelta(seconds=30)  # a topic creation that did not finish by then is retried


class Opened(StrEnum):
    NEW = "new"  # a new request
    REOPENED = "reopened"  # the last one, closed lately, continues
    ALREADY = "already"  # one was open


@dataclass(frozen=True, slots=True)
class TicketView:
    ticket: Ticket
    customer: Customer


@dataclass(frozen=True, slots=True)
class HeaderFacts:
    customer: Customer
    ticket: Ticket | None  # the latest request
    last_visit: datetime | None
    last_nps: int | None
    last_store: str | None = None  # the store of the last visit


class SupportService:
    def __init__(self, db: Database, business: Business, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.business = business
        self.rules = business.support
        self.clock = clock

    # --- the customer's side -------------------------------------------------------------------

    async def open_ticket(self, customer_id: int, source: str) -> tuple[Ticket, Opened]:
        """The customer asks for a person: their open request, the last one if it was closed
        lately, or a new one. Two processes opening at once end with one open request."""
        found = await self.continuing(customer_id)
        if found is not None:
            return found
        now = self.clock()
        try:
            async with self.db.writing() as session:
                ticket = Ticket(
                    customer_id=customer_id,
                    status=TicketStatus.OPEN,
                    source=source,
                    opened_at=now,
                    waiting_since=now,
                    store=await last_visit_store(session, customer_id),
                )
                session.add(ticket)
            return ticket, Opened.NEW
        except IntegrityError:  # another process opened it a moment ago
            latest = await self.latest_ticket(customer_id)
            assert latest is not None
            return latest, Opened.ALREADY

    def may_continue(self, status: str | None, closed_at: datetime | None) -> bool:
        """Whether a customer whose latest request is in this state is writing into it (so
        `continuing` is worth a read): it is open, or was closed so lately that writing reopens it."""
        if status == TicketStatus.OPEN:
            return True
        return status == TicketStatus.CLOSED and reopens(closed_at, self.clock(), self.rules.reopen_window)

    async def continuing(self, customer_id: int) -> tuple[Ticket, Opened] | None:
        """The request a customer's new message belongs to: the open one, or the last one when it
        was closed lately (reopened now). None when the message is not part of a request.

        Runs on every private message nobody else took, so it only reads unless it reopens.
        The open request, when there is one, is always the customer's latest."""
        now = self.clock()
        last = await self.latest_ticket(customer_id)
        if last is None or last.id is None:
            return None
        if last.status == TicketStatus.OPEN:
            return last, Opened.ALREADY
        if not reopens(last.closed_at, now, self.rules.reopen_window):
            return None
        async with self.db.writing() as session:
            result = await session.execute(
                update(Ticket)
                .where(col(Ticket.id) == last.id, col(Ticket.status) == TicketStatus.CLOSED)
                .values(
                    status=TicketStatus.OPEN,
                    closed_at=None,
                    closed_by_name=None,
                    reopened_count=col(Ticket.reopened_count) + 1,
                    waiting_since=now,
                    reminded_at=None,
                )
            )
            ticket = await session.get(Ticket, last.id, populate_existing=True)
        assert ticket is not None
        if changed(result):
            return ticket, Opened.REOPENED
        # Another update reopened it a moment ago (or closed it for good: then not a request).
        return (ticket, Opened.ALREADY) if ticket.status == TicketStatus.OPEN else None

    async def written_today(self, customer_id: int) -> int:
        """How many messages the customer passed to the managers in the last 24 hours (before
        every one: through the driver)."""
        since = self.clock() - timedelta(days=1)
        async with self.db.direct(write=False) as tx:
            row = await tx.fetchrow(
                "SELECT count(*) FROM ticket_messages JOIN tickets ON tickets.id = ticket_messages.ticket_id"
                " WHERE tickets.customer_id = $1 AND ticket_messages.direction = $2"
                " AND ticket_messages.created_at >= $3",
                customer_id,
                MessageDirection.IN.value,
                since,
            )
        return int(row[0]) if row is not None else 0

    async def customer_wrote(
        self,
        ticket_id: int,
        content_type: str,
        text: str | None,
        group_chat_id: int | None,
        group_message_id: int | None,
    ) -> None:
        """The customer's message, copied into the group, and their request waiting for a reply
        (since this message, unless it waited already). After every message: through the driver."""
        now = self.clock()
        async with self.db.direct() as tx:
            await tx.execute(
                "INSERT INTO ticket_messages (ticket_id, direction, content_type, text, group_chat_id,"
                " group_message_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                ticket_id,
                MessageDirection.IN.value,
                content_type,
                (text or "")[:4096] or None,
                group_chat_id,
                group_message_id,
                now,
            )
            # Both CASEs read the row as it was: the wait starts now only if none was running.
            await tx.execute(
                "UPDATE tickets SET last_customer_at = $1,"
                " reminded_at = CASE WHEN waiting_since IS NULL THEN NULL ELSE reminded_at END,"
                " waiting_since = CASE WHEN waiting_since IS NULL THEN $1 ELSE waiting_since END"
                " WHERE id = $2",
                now,
                ticket_id,
            )

    # --- the managers' side --------------------------------------------------------------------

    async def manager_wrote(
        self,
        ticket_id: int,
        manager_id: int,
        manager_name: str,
        direction: MessageDirection,
        content_type: str,
        text: str | None,
        group_chat_id: int | None,
        group_message_id: int | None,
    ) -> tuple[TicketMessage, bool]:
        """Record a manager's message (sent to the customer, or an internal note). A message to
        the customer answers the wait, and makes its writer the assignee when nobody is: the
        second value says whether that happened now."""
        now = self.clock()
        async with self.db.writing() as session:
            message = TicketMessage(
                ticket_id=ticket_id,
                direction=direction,
                content_type=content_type,
                text=(text or "")[:4096] or None,
                group_chat_id=group_chat_id,
                group_message_id=group_message_id,
                manager_id=manager_id,
                manager_name=manager_name[:256],
                created_at=now,
            )
            session.add(message)
            assigned = False
            if direction == MessageDirection.OUT:
                assigned = await self._assign_if_free(session, ticket_id, manager_id, manager_name)
                ticket = await session.get(Ticket, ticket_id, populate_existing=True)
                assert ticket is not None
                ticket.last_manager_at, ticket.waiting_since, ticket.reminded_at = now, None, None
                await self._become_their_manager(session, ticket.customer_id, manager_id, manager_name)
            await session.flush()
            return message, assigned

    async def forget_manager(self, customer_id: int) -> None:
        """The customer's manager left the managers' group: nobody is theirs until someone helps."""
        async with self.db.writing() as session:
            await session.execute(
                update(Customer).where(col(Customer.id) == customer_id).values(manager_id=None, manager_name=None)
            )

    @staticmethod
    async def _become_their_manager(session: AsyncSession, customer_id: int, manager_id: int, name: str) -> None:
        """The manager who last helped a customer (wrote to them, or was given them) is theirs."""
        await session.execute(
            update(Customer)
            .where(col(Customer.id) == customer_id)
            .values(manager_id=manager_id, manager_name=name[:256])
        )

    @staticmethod
    async def _assign_if_free(session: AsyncSession, ticket_id: int, manager_id: int, manager_name: str) -> bool:
        result = await session.execute(
            update(Ticket)
            .where(col(Ticket.id) == ticket_id, col(Ticket.assignee_id).is_(None))
            .values(assignee_id=manager_id, assignee_name=manager_name[:256])
        )
        return bool(changed(result))

    async def take(self, ticket_id: int, manager_id: int, manager_name: str) -> tuple[Ticket | None, bool]:
        """The first manager to press Take gets it; (ticket, whether this press assigned it)."""
        async with self.db.writing() as session:
            assigned = await self._assign_if_free(session, ticket_id, manager_id, manager_name)
            ticket = await session.get(Ticket, ticket_id, populate_existing=True)
            return ticket, assigned

    async def assign(self, ticket_id: int, manager_id: int, manager_name: str) -> tuple[Ticket | None, bool]:
        """Hand the request to a manager; False when they already had it."""
        async with self.db.writing() as session:
            ticket = await session.get(Ticket, ticket_id, populate_existing=True)
            if ticket is None or ticket.assignee_id == manager_id:
                return ticket, False
            ticket.assignee_id, ticket.assignee_name = manager_id, manager_name[:256]
            await self._become_their_manager(session, ticket.customer_id, manager_id, manager_name)
            return ticket, True

    async def close(self, ticket_id: int, manager_name: str) -> Ticket | None:
        """Close an open request; None when it was not open (closed twice, or by someone else)."""
        now = self.clock()
        async with self.db.writing() as session:
            result = await session.execute(
                update(Ticket)
                .where(col(Ticket.id) == ticket_id, col(Ticket.status) == TicketStatus.OPEN)
                .values(
                    status=TicketStatus.CLOSED, closed_at=now, closed_by_name=manager_name[:256], waiting_since=None
                )
            )
            if not changed(result):
                return None
            return await session.get(Ticket, ticket_id, populate_existing=True)

    async def ticket(self, ticket_id: int) -> TicketView | None:
        async with self.db.reading() as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return None
            customer = await session.get(Customer, ticket.customer_id)
            assert customer is not None
            return TicketView(ticket, customer)

    async def latest_ticket(self, customer_id: int) -> Ticket | None:
        async with self.db.direct(write=False) as tx:  # for every message in a request: through the driver
            return await latest_by(tx, Ticket, "customer_id", customer_id)

    @staticmethod
    async def _latest(session: AsyncSession, customer_id: int) -> Ticket | None:
        return await session.scalar(
            select(Ticket).where(col(Ticket.customer_id) == customer_id).order_by(col(Ticket.id).desc()).limit(1)
        )

    async def by_group_message(self, chat_id: int, message_id: int) -> tuple[TicketView, TicketMessage] | None:
        """The request a message in the managers' group belongs to (a customer's copied message,
        its header, or a manager's answer)."""
        async with self.db.reading() as session:
            message = await session.scalar(
                select(TicketMessage)
                .where(col(TicketMessage.group_chat_id) == chat_id, col(TicketMessage.group_message_id) == message_id)
                .order_by(col(TicketMessage.id).desc())
                .limit(1)
            )
            if message is None:
                return None
            ticket = await session.get(Ticket, message.ticket_id)
            assert ticket is not None
            customer = await session.get(Customer, ticket.customer_id)
            assert customer is not None
            return TicketView(ticket, customer), message

    async def question_before(self, message: TicketMessage) -> str | None:
        """The customer's words a manager's message answered: their text messages since the
        manager's previous message, joined."""
        async with self.db.reading() as session:
            previous_answer = await session.scalar(
                select(func.max(col(TicketMessage.id))).where(
                    col(TicketMessage.ticket_id) == message.ticket_id,
                    col(TicketMessage.direction) == MessageDirection.OUT,
                    col(TicketMessage.id) < message.id,
                )
            )
            rows = await session.scalars(
                select(col(TicketMessage.text))
                .where(
                    col(TicketMessage.ticket_id) == message.ticket_id,
                    col(TicketMessage.direction) == MessageDirection.IN,
                    col(TicketMessage.id) < message.id,
                    col(TicketMessage.id) > (previous_answer or 0),
                    col(TicketMessage.text).is_not(None),
                )
                .order_by(col(TicketMessage.id))
            )
            texts = [text for text in rows if text]
            return "\n".join(texts)[:1024] if texts else None

    async def known_managers(self, exclude: int | None = None, limit: int = 8) -> list[tuple[int, str]]:
        """Managers who answered customers lately, most recent first: whom /assign can offer."""
        since = self.clock() - timedelta(days=90)
        async with self.db.reading() as session:
            rows = await session.execute(
                select(
                    col(TicketMessage.manager_id),
                    col(TicketMessage.manager_name),
                    func.max(col(TicketMessage.id)).label("last"),
                )
                .where(col(TicketMessage.manager_id).is_not(None), col(TicketMessage.created_at) >= since)
                .group_by(col(TicketMessage.manager_id), col(TicketMessage.manager_name))
                .order_by(func.max(col(TicketMessage.id)).desc())
            )
            seen: dict[int, str] = {}
            for manager_id, name, _ in rows:
                if manager_id is not None and manager_id != exclude and manager_id not in seen:
                    seen[manager_id] = name or str(manager_id)
            return list(seen.items())[:limit]

    # --- the customer's topic ------------------------------------------------------------------

    async def thread_of(self, customer_id: int) -> SupportThread | None:
        async with self.db.direct(write=False) as tx:  # after every movement: through the driver
            return await one_by(tx, SupportThread, "customer_id", customer_id)

    async def in_topic(self, chat_id: int, topic_id: int) -> tuple[Customer, Ticket | None] | None:
        """Whose topic this is, and their latest request (None before their first)."""
        async with self.db.reading() as session:
            thread = await session.scalar(
                select(SupportThread).where(
                    col(SupportThread.chat_id) == chat_id, col(SupportThread.topic_id) == topic_id
                )
            )
            if thread is None:
                return None
            customer = await session.get(Customer, thread.customer_id)
            if customer is None:
                return None
            return customer, await self._latest(session, thread.customer_id)

    async def claim_thread(self, customer_id: int, chat_id: int) -> tuple[SupportThread, bool]:
        """The customer's topic row; True when this caller must create the topic. Only one caller
        in any process gets True until the topic exists (or the attempt went stale)."""
        now = self.clock()
        existing = await self.thread_of(customer_id)  # nearly always there already, with its topic
        if existing is not None and existing.topic_id is not None and existing.chat_id == chat_id:
            return existing, False
        if existing is None:
            try:
                async with self.db.writing() as session:
                    thread = SupportThread(customer_id=customer_id, chat_id=chat_id, claimed_at=now)
                    session.add(thread)
                return thread, True
            except IntegrityError:
                pass  # another update of theirs made it just now
        async with self.db.writing() as session:
            stored = await session.scalar(select(SupportThread).where(col(SupportThread.customer_id) == customer_id))
            if stored is None:  # a failed attempt was forgotten (topic_failed) since the read above
                stored = SupportThread(customer_id=customer_id, chat_id=chat_id, claimed_at=now)
                session.add(stored)
                return stored, True
            thread = stored
            if thread.topic_id is not None and thread.chat_id == chat_id:
                return thread, False
            # No topic yet (or one in another group): take over a stale or abandoned attempt.
            result = await session.execute(
                update(SupportThread)
                .where(
                    col(SupportThread.id) == thread.id,
                    col(SupportThread.claimed_at) == thread.claimed_at,
                    (col(SupportThread.claimed_at) < now - STALE_THREAD_CLAIM)
                    | (col(SupportThread.chat_id) != chat_id),
                )
                .values(claimed_at=now, chat_id=chat_id, topic_id=None, header_message_id=None, title=None, header=None)
            )
            fresh = await session.get(SupportThread, thread.id, populate_existing=True)
            assert fresh is not None
            return fresh, bool(changed(result))

    async def topic_created(self, thread_id: int, topic_id: int, title: str) -> None:
        async with self.db.writing() as session:
            await session.execute(
                update(SupportThread)
                .where(col(SupportThread.id) == thread_id)
                .values(topic_id=topic_id, title=title, created_at=self.clock(), header_message_id=None, header=None)
            )

    async def topic_failed(self, thread_id: int) -> None:
        """Creating the topic failed: forget the attempt, so the next message tries again."""
        async with self.db.writing() as session:
            await session.execute(delete(SupportThread).where(col(SupportThread.id) == thread_id))

    async def topic_gone(self, thread_id: int, topic_id: int) -> None:
        """The topic was deleted in the group: the next message makes a new one at once."""
        async with self.db.writing() as session:
            await session.execute(
                update(SupportThread)
                .where(col(SupportThread.id) == thread_id, col(SupportThread.topic_id) == topic_id)
                .values(
                    topic_id=None,
                    header_message_id=None,
                    title=None,
                    header=None,
                    claimed_at=self.clock() - STALE_THREAD_CLAIM * 2,
                )
            )

    async def remember_buttons(self, ticket_id: int, message_id: int) -> None:
        """A message in the topic carries the request's Take / Close."""
        async with self.db.writing() as session:
            ticket = await session.get(Ticket, ticket_id, populate_existing=True)
            if ticket is not None:
                ticket.buttons_on = " ".join(filter(None, [ticket.buttons_on, str(message_id)]))

    async def take_buttons_back(self, ticket_id: int) -> list[int]:
        """The messages whose Take / Close no longer apply (the request was taken or closed): their
        ids, forgotten as they are handed back, so each is edited once."""
        async with self.db.writing() as session:
            ticket = await session.get(Ticket, ticket_id, populate_existing=True)
            if ticket is None or not ticket.buttons_on:
                return []
            if ticket.status == TicketStatus.OPEN and ticket.assignee_id is None:
                return []  # still waiting for someone to take it: the buttons apply
            ids = [int(part) for part in ticket.buttons_on.split()]
            ticket.buttons_on = None
            return ids

    async def header_shown(
        self, thread_id: int, header_message_id: int | None, header: str | None, title: str | None
    ) -> None:
        values: dict[str, object] = {}
        if header_message_id is not None:
            values["header_message_id"] = header_message_id
        if header is not None:
            values["header"] = header
        if title is not None:
            values["title"] = title
        if values:
            async with self.db.writing() as session:
                await session.execute(update(SupportThread).where(col(SupportThread.id) == thread_id).values(**values))

    async def header_facts(self, customer_id: int) -> HeaderFacts | None:
        async with self.db.reading() as session:
            customer = await session.get(Customer, customer_id, populate_existing=True)
            if customer is None:
                return None
            ticket = await self._latest(session, customer_id)
            visit = (
                await session.execute(
                    select(col(LedgerEntry.created_at), col(LedgerEntry.store))
                    .where(col(LedgerEntry.customer_id) == customer_id, col(LedgerEntry.kind) == EntryKind.PURCHASE)
                    .order_by(col(LedgerEntry.id).desc())
                    .limit(1)
                )
            ).first()
            last_visit, last_store = (visit[0], visit[1]) if visit is not None else (None, None)
            last_nps = await session.scalar(
                select(col(Survey.score))
                .where(
                    col(Survey.customer_id) == customer_id, col(Survey.kind) == "nps", col(Survey.score).is_not(None)
                )
                .order_by(col(Survey.answered_at).desc())
                .limit(1)
            )
            return HeaderFacts(customer, ticket, last_visit, last_nps, last_store)

    # --- reminders -------------------------------------------------------------------------------

    async def due_reminders(self, limit: int = 50) -> list[int]:
        now = self.clock()
        rules, zone = self.rules, self.business.timezone
        if not rules.hours.is_open(now, zone):
            return []
        async with self.db.reading() as session:
            rows = await session.scalars(
                select(Ticket)
                .where(
                    col(Ticket.status) == TicketStatus.OPEN,
                    col(Ticket.waiting_since).is_not(None),
                    col(Ticket.waiting_since) <= now - rules.reminder,
                    col(Ticket.reminded_at).is_(None),
                )
                .order_by(col(Ticket.waiting_since))
                .limit(limit)
            )
            return [
                t.id
                for t in rows
                if t.id is not None
                and reminder_due(t.waiting_since, t.reminded_at, now, rules.hours, zone, rules.reminder)
            ]

    async def claim_reminder(self, ticket_id: int) -> TicketView | None:
        """Take a reminder for sending; only one caller in any process gets it."""
        async with self.db.writing() as session:
            result = await session.execute(
                update(Ticket)
                .where(
                    col(Ticket.id) == ticket_id,
                    col(Ticket.status) == TicketStatus.OPEN,
                    col(Ticket.reminded_at).is_(None),
                    col(Ticket.waiting_since).is_not(None),
                )
                .values(reminded_at=self.clock())
            )
            if not changed(result):
                return None
            ticket = await session.get(Ticket, ticket_id, populate_existing=True)
            assert ticket is not None
            customer = await session.get(Customer, ticket.customer_id)
            assert customer is not None
            return TicketView(ticket, customer)


# --- a line straight to the owner ---------------------------------------------------------------

LETTER_WINDOW = timedelta(hours=24)  # the period `owner_letters_per_day` counts over


@dataclass(frozen=True)
class Written:
    letter: OwnerLetter
    created: bool  # False: the same message was handled before (a redelivery)


class OwnerLetters:
    """What customers write to the owners, past the staff: the letter, its status, and where each
    owner was shown it (a reply to that message answers the customer)."""

    def __init__(self, db: Database, business: Business, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.business = business
        self.clock = clock

    async def written_lately(self, customer_id: int) -> int:
        """Letters the customer wrote in the last 24 hours (the limit is `owner_letters_per_day`)."""
        async with self.db.reading() as session:
            return await self._count_lately(session, customer_id)

    async def _count_lately(self, session: AsyncSession, customer_id: int) -> int:
        since = self.clock() - LETTER_WINDOW
        count = await session.scalar(
            select(func.count())
            .select_from(OwnerLetter)
            .where(col(OwnerLetter.customer_id) == customer_id, col(OwnerLetter.created_at) >= since)
        )
        return int(count or 0)

    async def write(self, customer_id: int, text: str, key: str) -> Written | None:
        """File a letter; None when the customer has written the day's letters already. The same
        key (the customer's message) files it once."""
        now = self.clock()
        try:
            async with self.db.writing() as session:
                earlier = await session.scalar(select(OwnerLetter).where(col(OwnerLetter.key) == key))
                if earlier is not None:
                    return Written(earlier, False)
                if await self._count_lately(session, customer_id) >= self.business.guards.owner_letters_per_day:
                    return None
                letter = OwnerLetter(
                    key=key,
                    customer_id=customer_id,
                    store=await last_visit_store(session, customer_id),
                    status=LetterStatus.OPEN,
                    text=text[:4000],
                    created_at=now,
                )
                session.add(letter)
                await session.flush()
                return Written(letter, True)
        except IntegrityError:  # the same message handled at once elsewhere
            async with self.db.reading() as session:
                earlier = await session.scalar(select(OwnerLetter).where(col(OwnerLetter.key) == key))
            assert earlier is not None
            return Written(earlier, False)

    async def posted(self, letter_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.writing() as session:
            session.add(OwnerLetterPost(letter_id=letter_id, chat_id=chat_id, message_id=message_id))

    async def posts(self, letter_id: int) -> list[OwnerLetterPost]:
        async with self.db.reading() as session:
            return list(
                await session.scalars(select(OwnerLetterPost).where(col(OwnerLetterPost.letter_id) == letter_id))
            )

    async def by_post(self, chat_id: int, message_id: int) -> OwnerLetter | None:
        """The letter shown in that message (an owner's reply to it answers the letter)."""
        async with self.db.reading() as session:
            return await session.scalar(
                select(OwnerLetter)
                .join(OwnerLetterPost, col(OwnerLetterPost.letter_id) == col(OwnerLetter.id))
                .where(col(OwnerLetterPost.chat_id) == chat_id, col(OwnerLetterPost.message_id) == message_id)
            )

    async def letter(self, letter_id: int) -> OwnerLetter | None:
        async with self.db.reading() as session:
            return await session.get(OwnerLetter, letter_id)

    async def answered(self, letter_id: int, owner_id: int, owner_name: str) -> OwnerLetter | None:
        """An owner answered: the letter is answered (a closed one stays closed)."""
        async with self.db.writing() as session:
            letter = await session.get(OwnerLetter, letter_id, with_for_update=True)
            if letter is None:
                return None
            if letter.status == LetterStatus.OPEN:
                letter.status = LetterStatus.ANSWERED
            letter.answered_at, letter.answered_by, letter.answered_by_name = self.clock(), owner_id, owner_name[:256]
            return letter

    async def close(self, letter_id: int, owner_name: str) -> OwnerLetter | None:
        """Close a letter; None when it is closed already (a second press changes nothing)."""
        async with self.db.writing() as session:
            letter = await session.get(OwnerLetter, letter_id, with_for_update=True)
            if letter is None or letter.status == LetterStatus.CLOSED:
                return None
            letter.status, letter.closed_at, letter.closed_by_name = LetterStatus.CLOSED, self.clock(), owner_name[:256]
            return letter
