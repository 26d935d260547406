"""Surveys and alerts in the database: planning, claiming for sending, answers and comments, the
managers' actions on alerts, and the figures behind /stats and /export. Each method is one short
transaction; nothing here talks to Telegram."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.business import Business
from bot.core import owing
from bot.core.languages import pick_language
from bot.lifecycle.rules import earning_expires_at
from bot.surveys.rules import (
    AnswerWindow,
    NpsSummary,
    RatingSummary,
    SurveyKind,
    Trigger,
    answer_window,
    asked_recently,
    choose_after_purchase,
    kind_of,
    needs_alert,
    nps_of_counts,
    rating_of_counts,
    scores_of,
)
from storage.database import Database, stamp
from storage.models import (
    Alert,
    AlertStatus,
    CommentStatus,
    Customer,
    EntryKind,
    LedgerEntry,
    Staff,
    Survey,
    SurveyStatus,
    utcnow,
)
from storage.repositories import Alerts, Customers, InsufficientBalance, Ledger, Surveys, in_store, last_visit_store

logger = logging.getLogger(__name__)
WEEK_SECONDS = 7 * 24 * 3600

# Surveys that count towards "one per recontact period"; the customer's own /feedback and the
# check-back after an alert are exempt.
THROTTLED = [Trigger.PURCHASE.value, Trigger.SUPPORT.value]
COMMENT_WINDOW = timedelta(hours=24)  # how long a follow-up question waits for the customer's words
STALE_CLAIM = timedelta(minutes=10)  # a claim older than this was left by a process that died
RETRY_AFTER = timedelta(minutes=5)
UNCERTAIN = "uncertain"  # a send that may or may not have arrived: never repeated, still answerable
MAX_COMMENT = 1024
REPORTED_KINDS = [SurveyKind.NPS.value, SurveyKind.RATING.value]


@dataclass(frozen=True)
class Question:
    """A survey claimed for sending, with whom it goes to and in which language."""

    survey: Survey
    customer: Customer
    language: str


class Outcome(StrEnum):
    FIRST = "first"  # the first answer
    CHANGED = "changed"  # a different score within the change window
    SAME = "same"  # the same button again
    LOCKED = "locked"  # answered, and the change window has passed
    CLOSED = "closed"  # the survey is too old
    UNKNOWN = "unknown"  # no such survey, not this person's, or a forged score


class AlertEvent(StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # the score or comment changed; the alert stays as it was
    WITHDRAWN = "withdrawn"  # the customer changed a bad score to a good one
    REOPENED = "reopened"  # a withdrawn alert is bad again, or the customer says it is not fixed
    CHECKED = "checked"  # the customer answered "Did we fix it?" with yes
    REPEATED = "repeated"  # another unhappy answer while the customer's alert is open: folded into it


@dataclass(frozen=True)
class Answered:
    outcome: Outcome
    survey: Survey | None = None
    customer: Customer | None = None
    previous: int | None = None
    alert_id: int | None = None
    alert_event: AlertEvent | None = None


@dataclass(frozen=True)
class AlertView:
    """Everything an alert message shows."""

    alert: Alert
    survey: Survey
    customer: Customer
    purchase: LedgerEntry | None
    cashier: str | None
    latest: Survey | None = None  # the last unhappy answer folded into the alert, if any


@dataclass(frozen=True)
class Bonus:
    view: AlertView
    entry: LedgerEntry
    created: bool
    notices: tuple[str, ...] = ()  # the customer's word on it, owed once the bonus is committed


class AlertProblem(Exception):
    def __init__(self, reason: str, by: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # "unknown", "already_resolved", "no_bonus", "not_member", "own_card"
        self.by = by  # who resolved it already


@dataclass
class CashierFigures:
    name: str
    nps_counts: Counter[int] = field(default_factory=Counter)  # answers by score
    rating_counts: Counter[int] = field(default_factory=Counter)

    @property
    def nps(self) -> NpsSummary:
        return nps_of_counts(self.nps_counts)

    @property
    def rating(self) -> RatingSummary:
        return rating_of_counts(self.rating_counts)


@dataclass(frozen=True)
class Week:
    start: datetime
    nps: NpsSummary
    rating: RatingSummary


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    asked: int
    answered: int
    nps: NpsSummary
    rating: RatingSummary
    cashiers: list[CashierFigures]
    weeks: list[Week]
    open_alerts: list[tuple[Alert, Survey, Customer]]


@dataclass(frozen=True)
class ExportRow:
    survey: Survey
    customer: Customer
    purchase: LedgerEntry | None
    cashier: str | None


def _answerable(survey: Survey) -> bool:
    """In the customer's chat, or possibly so: a press on a survey whose send was not confirmed
    (a quick tap, a timeout, a process that died) still counts."""
    if survey.asked_at is None:
        return False
    if survey.status in (SurveyStatus.ASKED, SurveyStatus.ANSWERED, SurveyStatus.SENDING):
        return True
    return survey.status == SurveyStatus.SKIPPED and survey.skip_reason == UNCERTAIN


class SurveyService:
    def __init__(self, db: Database, business: Business, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.business = business
        self.rules = business.surveys
        self.clock = clock

    def language_of(self, customer: Customer) -> str:
        """The language to write to this customer in."""
        return pick_language(customer.language, customer.telegram_language, self.business.default_language)

    # --- asking ------------------------------------------------------------------------------

    async def request(
        self,
        customer_id: int,
        trigger: Trigger,
        key: str,
        kind: SurveyKind | None = None,
        delay: timedelta = timedelta(0),
        alert_id: int | None = None,
        store: str | None = None,
    ) -> Survey:
        """Plan a survey for later (about `store`; by default the customer's last visit's); the
        scheduler sends it when due, subject to every rule (membership, recontact period, quiet
        hours). The same key plans it once.

        This is how the rest of the bot asks: a closed support conversation calls
        `request(customer_id, Trigger.SUPPORT, f"ticket:{id}", SurveyKind.RATING)`.
        """
        now = self.clock()
        async with self.db.writing() as session:
            survey, _ = await Surveys(session).plan(
                Survey(
                    key=key,
                    customer_id=customer_id,
                    kind=kind.value if kind else None,
                    trigger=trigger.value,
                    alert_id=alert_id,
                    store=store or await last_visit_store(session, customer_id),
                    status=SurveyStatus.PENDING,
                    created_at=now,
                    due_at=now + delay,
                )
            )
            return survey

    async def feedback_today(self, customer_id: int) -> int:
        """How many surveys the customer asked for with /feedback in the last 24 hours."""
        async with self.db.reading() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Survey)
                .where(
                    col(Survey.customer_id) == customer_id,
                    col(Survey.trigger) == Trigger.FEEDBACK.value,
                    col(Survey.created_at) >= self.clock() - timedelta(days=1),
                )
            )
        return int(count or 0)

    async def ask_now(self, customer_id: int, key: str) -> Question | None:
        """The customer's own /feedback: an NPS question at once (exempt from the recontact
        period and quiet hours). None when they are not a member."""
        survey = await self.request(customer_id, Trigger.FEEDBACK, key, SurveyKind.NPS)
        assert survey.id is not None
        return await self.claim(survey.id)

    async def due(self, limit: int = 100) -> list[int]:
        now = self.clock()
        async with self.db.writing() as session:
            for survey in await Surveys(session).stale_claims(now - STALE_CLAIM):
                # The process that claimed it died between claiming and recording the send. It may
                # have been sent; asking twice would pester, so it is given up.
                logger.warning("survey %s was claimed and never confirmed; not sending it again", survey.id)
                survey.status, survey.skip_reason = SurveyStatus.SKIPPED, UNCERTAIN
            return await Surveys(session).due_ids(now, limit)

    async def claim(self, survey_id: int) -> Question | None:
        """Take a due survey for sending, if every rule allows it now. Only one caller in any
        process gets it; a survey in quiet hours is put back until morning."""
        now = self.clock()
        async with self.db.writing() as session:
            surveys = Surveys(session)
            if not await surveys.claim(survey_id, now):
                return None
            survey = await surveys.by_id(survey_id)
            assert survey is not None
            customer = await Customers(session).locked(survey.customer_id)
            assert customer is not None
            own_request = survey.trigger == Trigger.FEEDBACK
            reason = await self._reason_not_to_ask(session, survey, customer, now, own_request)
            if reason is not None:
                survey.status, survey.skip_reason = SurveyStatus.SKIPPED, reason
                logger.info("survey %s not sent: %s", survey.id, reason)
                return None
            if not own_request:
                morning = self.rules.quiet_hours.next_allowed(now, self.business.timezone)
                if morning > now:
                    survey.status, survey.due_at, survey.claimed_at = SurveyStatus.PENDING, morning, None
                    return None
            if survey.kind is None:
                assert customer.id is not None
                nps_lately = asked_recently(
                    await surveys.last_answered(customer.id, SurveyKind.NPS.value), now, self.rules.recontact
                )
                chosen = choose_after_purchase(self.rules.after_purchase, nps_lately)
                if chosen is None:
                    survey.status, survey.skip_reason = SurveyStatus.SKIPPED, "off"
                    return None
                survey.kind = chosen.value
            # Counted as asked from the claim on: another process claiming a survey for the same
            # customer meanwhile sees it in the recontact check (the customer row lock orders them).
            survey.asked_at = now
            return Question(survey=survey, customer=customer, language=self.language_of(customer))

    async def _reason_not_to_ask(
        self, session: AsyncSession, survey: Survey, customer: Customer, now: datetime, own_request: bool
    ) -> str | None:
        assert survey.id is not None and customer.id is not None
        # A closed support conversation is rated by everyone who had one, members or not: the
        # satisfaction figure would otherwise miss whoever asks before joining.
        if not customer.is_member and survey.trigger != Trigger.SUPPORT.value:
            return "not_member"
        if customer.deleted_at is not None:
            return "deleted"
        if customer.blocked_at is not None and not own_request:
            return "blocked"
        if now - survey.created_at > self.rules.lifetime:
            return "too_late"
        ledger, surveys = Ledger(session), Surveys(session)
        if survey.entry_id is not None and await ledger.reversal_of(survey.entry_id) is not None:
            return "purchase_reversed"
        if survey.trigger in THROTTLED:
            last = await surveys.last_asked(customer.id, THROTTLED, survey.id)
            if asked_recently(last, now, self.rules.recontact):
                return "asked_recently"
        return None

    async def sent(self, survey_id: int, message_id: int) -> None:
        async with self.db.writing() as session:
            survey = await Surveys(session).by_id(survey_id)
            if survey is not None:
                survey.status, survey.asked_at, survey.message_id = SurveyStatus.ASKED, self.clock(), message_id

    async def not_sent(
        self, survey_id: int, *, blocked: bool = False, retry: bool = False, uncertain: bool = False
    ) -> None:
        """A send failed: the person blocked the bot (never again), Telegram asked to wait (try
        again later), or nobody knows whether it arrived (kept answerable, never sent again)."""
        now = self.clock()
        async with self.db.writing() as session:
            survey = await Surveys(session).by_id(survey_id)
            if survey is None:
                return
            if retry:
                survey.status, survey.due_at, survey.claimed_at = SurveyStatus.PENDING, now + RETRY_AFTER, None
                survey.asked_at = None
                return
            if uncertain:
                survey.status, survey.skip_reason = SurveyStatus.SKIPPED, UNCERTAIN
                return
            survey.status, survey.skip_reason = SurveyStatus.SKIPPED, "blocked" if blocked else "send_failed"
            survey.asked_at = None
            if blocked:
                customer = await Customers(session).by_id(survey.customer_id)
                if customer is not None:
                    customer.blocked_at = now

    async def set_blocked(self, telegram_id: int, blocked: bool) -> None:
        """The person blocked (or unblocked) the bot: Telegram's my_chat_member update says so."""
        async with self.db.writing() as session:
            customer = await Customers(session).by_telegram_id(telegram_id)
            if customer is not None:
                customer.blocked_at = self.clock() if blocked else None

    # --- answers -----------------------------------------------------------------------------

    async def answer(self, survey_id: int, telegram_id: int, score: int, presser: Customer | None = None) -> Answered:
        """Record a score; pressing another button within the change window replaces it.
        `presser`: the record of whoever pressed, read for this update already (not read again
        when the survey is theirs)."""
        now = self.clock()
        async with self.db.writing() as session:
            survey = await Surveys(session).locked(survey_id)
            if survey is None or not _answerable(survey):
                return Answered(Outcome.UNKNOWN)
            customer = presser
            if customer is None or customer.id != survey.customer_id:
                customer = await Customers(session).by_id(survey.customer_id)
            kind = kind_of(survey.kind)
            if customer is None or customer.telegram_id != telegram_id or score not in scores_of(kind):
                return Answered(Outcome.UNKNOWN)
            assert survey.asked_at is not None
            window = answer_window(
                survey.asked_at, survey.answered_at, now, self.rules.change_window, self.rules.lifetime
            )
            if window == AnswerWindow.CLOSED:
                return Answered(Outcome.CLOSED, survey, customer)
            if survey.score == score:
                return Answered(Outcome.SAME, survey, customer)
            if window == AnswerWindow.LOCKED:
                return Answered(Outcome.LOCKED, survey, customer)
            previous, first = survey.score, survey.answered_at is None
            survey.score, survey.status = score, SurveyStatus.ANSWERED
            if first:
                survey.answered_at = now
                if kind != SurveyKind.CHECK_BACK:
                    survey.comment_status = CommentStatus.ASKED
            if kind == SurveyKind.CHECK_BACK:
                alert_id, event = await self._check_back_answered(session, survey, score == 1, now)
            elif first and not needs_alert(kind, score):
                alert_id, event = None, None  # no alert refers to a survey before its first bad answer
            else:
                alert_id, event = await self._alert_for_score(session, survey, kind, score, now)
            outcome = Outcome.FIRST if first else Outcome.CHANGED
            return Answered(outcome, survey, customer, previous, alert_id, event)

    async def _alert_for_score(
        self, session: AsyncSession, survey: Survey, kind: SurveyKind, score: int, now: datetime
    ) -> tuple[int | None, AlertEvent | None]:
        assert survey.id is not None
        alerts = Alerts(session)
        alert = await alerts.for_survey(survey.id)
        bad = needs_alert(kind, score)
        if alert is None:
            same_store = self._in_store(col(Alert.store), self.business.store(survey.store).id)
            folded = await alerts.open_for_customer(survey.customer_id, same_store)
            if folded is not None and folded.last_survey_id == survey.id:
                return folded.id, AlertEvent.UPDATED  # a score changed within the window, folded already
            if not bad:
                return None, None
            if folded is not None:  # the customer's alert is still open: this answer joins it
                folded.repeats += 1
                folded.last_survey_id = survey.id
                return folded.id, AlertEvent.REPEATED
            alert = Alert(
                survey_id=survey.id,
                customer_id=survey.customer_id,
                status=AlertStatus.OPEN,
                created_at=now,
                store=survey.store,
            )
            session.add(alert)
            await session.flush()
            return alert.id, AlertEvent.CREATED
        if bad and alert.status == AlertStatus.WITHDRAWN:
            alert.status = AlertStatus.OPEN
            return alert.id, AlertEvent.REOPENED
        if not bad and alert.status == AlertStatus.OPEN:
            alert.status = AlertStatus.WITHDRAWN
            return alert.id, AlertEvent.WITHDRAWN
        return alert.id, AlertEvent.UPDATED

    async def _check_back_answered(
        self, session: AsyncSession, survey: Survey, fixed: bool, now: datetime
    ) -> tuple[int | None, AlertEvent | None]:
        if survey.alert_id is None:
            return None, None
        alert = await Alerts(session).locked(survey.alert_id)
        if alert is None:
            return None, None
        alert.fixed, alert.fixed_answered_at = fixed, now
        if fixed:
            if alert.status == AlertStatus.OPEN and alert.resolved_at is not None:
                alert.status = AlertStatus.RESOLVED  # "no" then changed to "yes" within the window
            return alert.id, AlertEvent.CHECKED
        alert.status = AlertStatus.OPEN
        return alert.id, AlertEvent.REOPENED

    async def remember_comment_question(self, survey_id: int, message_id: int) -> None:
        """The follow-up question's message (after every first answer: one statement through the driver)."""
        async with self.db.direct(one=True) as tx:
            await tx.execute("UPDATE surveys SET comment_message_id = $1 WHERE id = $2", message_id, survey_id)

    def may_await_comment(self, asked_at: datetime | None) -> bool:
        """Whether an answer whose follow-up question was asked at `asked_at` still waits for words
        (so `awaiting_comment` is worth a read)."""
        return asked_at is not None and asked_at >= self.clock() - COMMENT_WINDOW

    async def awaiting_comment(self, customer_id: int) -> Survey | None:
        async with self.db.reading() as session:
            return await Surveys(session).awaiting_comment(customer_id, self.clock() - COMMENT_WINDOW)

    async def add_comment(self, survey_id: int, text: str) -> tuple[Survey, int | None] | None:
        """Store the customer's words; returns the survey and its alert, if it has one."""
        async with self.db.writing() as session:
            survey = await Surveys(session).locked(survey_id)
            if survey is None or survey.comment_status != CommentStatus.ASKED:
                return None
            survey.comment, survey.comment_status = text.strip()[:MAX_COMMENT], CommentStatus.GIVEN
            alert = await Alerts(session).for_survey(survey_id) or await Alerts(session).folding(survey_id)
            return survey, alert.id if alert else None

    async def skip_comment(self, survey_id: int, telegram_id: int) -> Survey | None:
        async with self.db.writing() as session:
            survey = await Surveys(session).locked(survey_id)
            if survey is None or survey.comment_status != CommentStatus.ASKED:
                return None
            customer = await Customers(session).by_id(survey.customer_id)
            if customer is None or customer.telegram_id != telegram_id:
                return None
            survey.comment_status = CommentStatus.SKIPPED
            return survey

    # --- alerts ------------------------------------------------------------------------------

    async def alert_view(self, alert_id: int) -> AlertView | None:
        async with self.db.reading() as session:
            return await self._view(session, alert_id)

    async def _view(self, session: AsyncSession, alert_id: int) -> AlertView | None:
        alert = await Alerts(session).by_id(alert_id)
        if alert is None:
            return None
        survey = await Surveys(session).by_id(alert.survey_id)
        customer = await Customers(session).by_id(alert.customer_id)
        assert survey is not None and customer is not None
        purchase = cashier = None
        if survey.entry_id is not None:
            purchase = await Ledger(session).by_id(survey.entry_id)
            if purchase is not None and purchase.staff_telegram_id is not None:
                cashier = await self._staff_name(session, purchase.staff_telegram_id)
        latest = await Surveys(session).by_id(alert.last_survey_id) if alert.last_survey_id is not None else None
        return AlertView(alert, survey, customer, purchase, cashier, latest)

    @staticmethod
    async def _staff_name(session: AsyncSession, telegram_id: int) -> str | None:
        return await session.scalar(select(col(Staff.name)).where(col(Staff.telegram_id) == telegram_id))

    async def alert_copied(self, alert_id: int, message_id: int) -> None:
        """Its copy in the store's own group (the store's `managers_group_id`)."""
        async with self.db.writing() as session:
            alert = await Alerts(session).by_id(alert_id)
            if alert is not None:
                alert.store_message_id = message_id

    async def alert_posted(self, alert_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.writing() as session:
            alert = await Alerts(session).by_id(alert_id)
            if alert is not None:
                alert.chat_id, alert.message_id = chat_id, message_id

    async def contacted(self, alert_id: int, manager_id: int, manager_name: str) -> AlertView | None:
        async with self.db.writing() as session:
            alert = await Alerts(session).locked(alert_id)
            if alert is None:
                return None
            alert.contacted_by, alert.contacted_by_name, alert.contacted_at = manager_id, manager_name, self.clock()
            survey = await Surveys(session).by_id(alert.survey_id)
            if survey is not None and survey.comment_status == CommentStatus.ASKED:
                # From now on the customer's words answer the manager, and go to the group.
                survey.comment_status = CommentStatus.SKIPPED
            await session.flush()
            return await self._view(session, alert_id)

    async def contacted_in_conversation(self, customer_id: int, manager_id: int, manager_name: str) -> int | None:
        """A manager wrote to the customer in their topic: the customer's open alert nobody has
        contacted them about yet is marked contacted. Its id, or None."""
        async with self.db.writing() as session:
            alert = await session.scalar(
                select(Alert)
                .where(
                    col(Alert.customer_id) == customer_id,
                    col(Alert.status) == AlertStatus.OPEN,
                    col(Alert.contacted_at).is_(None),
                )
                .order_by(col(Alert.id).desc())
                .limit(1)
            )
            if alert is None:
                return None
        await self.contacted(alert.id or 0, manager_id, manager_name)
        return alert.id

    async def apology_bonus(self, alert_id: int, manager_id: int, manager_name: str) -> Bonus:
        """The configured apology points, as one ledger entry linked to the alert, once per alert."""
        points = self.rules.apology_bonus
        now = self.clock()
        async with self.db.writing() as session:
            alert = await Alerts(session).locked(alert_id)
            if alert is None:
                raise AlertProblem("unknown")
            if points <= 0:
                raise AlertProblem("no_bonus")
            customer = await Customers(session).locked(alert.customer_id)
            if customer is not None and customer.telegram_id == manager_id:
                raise AlertProblem("own_card")  # nobody grants points to their own card
            ledger = Ledger(session)
            if alert.bonus_entry_id is not None:
                entry = await ledger.by_id(alert.bonus_entry_id)
                view = await self._view(session, alert_id)
                assert entry is not None and view is not None
                return Bonus(view, entry, created=False)
            if customer is None or not customer.is_member:
                raise AlertProblem("not_member")
            # One apology per customer per recontact period, whatever alerts they raise meanwhile.
            lately = await session.scalar(
                select(col(LedgerEntry.id)).where(
                    col(LedgerEntry.customer_id) == customer.id,
                    col(LedgerEntry.kind) == EntryKind.APOLOGY.value,
                    col(LedgerEntry.created_at) >= now - self.rules.recontact,
                )
            )
            if lately is not None:
                raise AlertProblem("apologised_lately")
            try:
                entry, created = await ledger.append(
                    customer_id=alert.customer_id,
                    kind=EntryKind.APOLOGY,
                    points=points,
                    staff_telegram_id=manager_id,
                    reason=f"alert #{alert_id}",
                    key=f"apology:{alert_id}",
                    now=now,
                    expires_at=earning_expires_at(self.business.lifecycle.expiry_months, points, now),
                    store=alert.store,
                )
            except InsufficientBalance:  # cannot happen for a positive bonus; kept for clarity
                raise AlertProblem("unknown") from None
            alert.bonus_entry_id, alert.bonus_by_name = entry.id, manager_name
            await session.flush()
            view = await self._view(session, alert_id)
            assert view is not None and entry.id is not None
            owed = await owing.add(
                session,
                f"entry:{entry.id}:customer",
                "movement",
                customer.telegram_id,
                now,
                entry_id=entry.id,
                spend_before=customer.lifetime_spend,
            )
            return Bonus(view, entry, created, notices=(owed,))

    async def open_alert_of(self, customer_id: int) -> int | None:
        """The customer's alert still waiting for the managers, if any."""
        async with self.db.reading() as session:
            return await session.scalar(
                select(col(Alert.id))
                .where(col(Alert.customer_id) == customer_id, col(Alert.status) == AlertStatus.OPEN.value)
                .order_by(col(Alert.id).desc())
                .limit(1)
            )

    async def resolve(self, alert_id: int, manager_id: int, manager_name: str) -> AlertView:
        """Close an alert, recording who and when, and plan "Did we fix it?" for later."""
        now = self.clock()
        async with self.db.writing() as session:
            alert = await Alerts(session).locked(alert_id)
            if alert is None:
                raise AlertProblem("unknown")
            if alert.status == AlertStatus.RESOLVED:
                raise AlertProblem("already_resolved", alert.resolved_by_name)
            was_open = alert.status == AlertStatus.OPEN
            alert.status = AlertStatus.RESOLVED
            alert.resolved_by, alert.resolved_by_name, alert.resolved_at = manager_id, manager_name, now
            alert.fixed = alert.fixed_answered_at = None
            if was_open and self.rules.check_back_delay > timedelta(0):
                await Surveys(session).plan(
                    Survey(
                        key=f"check:{alert_id}:{int(now.timestamp())}",
                        customer_id=alert.customer_id,
                        kind=SurveyKind.CHECK_BACK.value,
                        trigger=Trigger.ALERT.value,
                        alert_id=alert_id,
                        store=alert.store,
                        status=SurveyStatus.PENDING,
                        created_at=now,
                        due_at=now + self.rules.check_back_delay,
                    )
                )
            await session.flush()
            view = await self._view(session, alert_id)
            assert view is not None
            return view

    async def contacted_recently(self, customer_id: int, within: timedelta) -> AlertView | None:
        """The alert through which a manager wrote to this customer lately, if any."""
        async with self.db.reading() as session:
            alert = await Alerts(session).latest_contacted(customer_id, self.clock() - within)
            return await self._view(session, alert.id) if alert and alert.id else None

    # --- reports -----------------------------------------------------------------------------

    def _week_number(self, moment: Any, since: datetime) -> Any:
        """Whole weeks from `since` to the moment, as arithmetic: a CASE of 53 bounds costs a
        comparison each for a year's million answers."""
        if self.db.is_sqlite:  # times are stored as ISO text, which julianday() reads
            return cast((func.julianday(moment) - func.julianday(stamp(since))) / 7, Integer)
        return cast(func.floor(func.extract("epoch", moment - since) / WEEK_SECONDS), Integer)

    def _in_store(self, column: Any, store: str | None) -> Any:
        """A condition keeping a store's rows (all stores: none)."""
        return in_store(column, store or "", self.business.first_store.id, self.business.store_ids)

    async def report(self, days: int, store: str | None = None) -> Report:
        """The figures of the surveys asked in the last `days` (in one store, or all), counted by
        the database: one aggregation by kind, score, week and cashier, never the answers themselves."""
        until = self.clock()
        since = until - timedelta(days=days)
        starts = []
        start = since
        while start < until:
            starts.append(start)
            start = min(start + timedelta(days=7), until)
        asked_at = col(Survey.asked_at)
        week = self._week_number(asked_at, since)
        # By the cashier the survey recorded: no join to the ledger (a million answers against two
        # million movements); their names come from the staff table after.
        cashier = col(Survey.staff_telegram_id)
        counted = (
            select(col(Survey.kind), col(Survey.score), week, cashier, func.count())
            .where(
                asked_at >= since,
                asked_at <= until,
                col(Survey.kind).in_(REPORTED_KINDS),
                self._in_store(col(Survey.store), store),
            )
            .group_by(col(Survey.kind), col(Survey.score), week, cashier)
        )
        asked = 0
        totals: dict[str, Counter[int]] = {SurveyKind.NPS: Counter(), SurveyKind.RATING: Counter()}
        by_week = [{SurveyKind.NPS: Counter[int](), SurveyKind.RATING: Counter[int]()} for _ in starts]
        cashiers: dict[int, CashierFigures] = {}
        async with self.db.reading(bulk=True) as session:
            names = {
                telegram_id: name
                for telegram_id, name in await session.execute(select(col(Staff.telegram_id), col(Staff.name)))
            }
            for kind, score, week_number, cashier_id, count in await session.execute(counted):
                asked += count
                if score is None:
                    continue
                totals[kind][score] += count
                if week_number is not None and by_week:  # an answer at the very end is the last week's
                    by_week[min(max(int(week_number), 0), len(by_week) - 1)][kind][score] += count
                if cashier_id in names:  # an owner at the till is no cashier
                    figures = cashiers.setdefault(cashier_id, CashierFigures(names[cashier_id]))
                    (figures.nps_counts if kind == SurveyKind.NPS else figures.rating_counts)[score] += count
            weeks = [
                Week(s, nps_of_counts(w[SurveyKind.NPS]), rating_of_counts(w[SurveyKind.RATING]))
                for s, w in zip(starts, by_week, strict=True)
            ]
            open_alerts = []
            for alert in await Alerts(session).open():
                if not self.business.holds(store or "", alert.store):
                    continue
                alerted = await Surveys(session).by_id(alert.survey_id)
                customer = await Customers(session).by_id(alert.customer_id)
                assert alerted is not None and customer is not None
                open_alerts.append((alert, alerted, customer))
        return Report(
            since=since,
            until=until,
            asked=asked,
            answered=sum(totals[SurveyKind.NPS].values()) + sum(totals[SurveyKind.RATING].values()),
            nps=nps_of_counts(totals[SurveyKind.NPS]),
            rating=rating_of_counts(totals[SurveyKind.RATING]),
            cashiers=sorted(cashiers.values(), key=lambda c: c.name.casefold()),
            weeks=weeks,
            open_alerts=open_alerts,
        )

    @staticmethod
    async def _cashiers_of(session: AsyncSession, entry_ids: list[int]) -> dict[int, str]:
        if not entry_ids:
            return {}
        rows = await session.execute(
            select(col(LedgerEntry.id), col(Staff.name))
            .join(Staff, col(Staff.telegram_id) == col(LedgerEntry.staff_telegram_id))
            .where(col(LedgerEntry.id).in_(entry_ids))
        )
        return {entry_id: name for entry_id, name in rows if entry_id is not None}

    async def export_rows(self, days: int, store: str | None = None) -> list[ExportRow]:
        until = self.clock()
        since = until - timedelta(days=days)
        kinds = [kind.value for kind in SurveyKind]
        async with self.db.reading(bulk=True) as session:
            surveys = await Surveys(session).asked_between(since, until, kinds)
            surveys = [s for s in surveys if self.business.holds(store or "", s.store)]
            entry_ids = [s.entry_id for s in surveys if s.entry_id]
            cashier_of = await self._cashiers_of(session, entry_ids)
            purchases = {}
            if entry_ids:
                purchases = {
                    e.id: e
                    for e in await session.scalars(select(LedgerEntry).where(col(LedgerEntry.id).in_(entry_ids)))
                }
            customer_ids = {s.customer_id for s in surveys}
            customers = {}
            if customer_ids:
                customers = {
                    c.id: c for c in await session.scalars(select(Customer).where(col(Customer.id).in_(customer_ids)))
                }
        return [
            ExportRow(
                survey=s,
                customer=customers[s.customer_id],
                purchase=purchases.get(s.entry_id or 0),
                cashier=cashier_of.get(s.entry_id or 0),
            )
            for s in surveys
        ]
