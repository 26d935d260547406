"""The live FAQ: the file plus entries approved from managers' answers, the matcher over it,
customers' questions and their 👍/👎, and the drafts admins review."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.faq.rules import FEATURES, Entry, Faq, FaqMatcher, Match, Text, Verdict, load_faq
from storage.database import Database, changed
from storage.models import DraftStatus, FaqDraft, FaqQuery, utcnow

logger = logging.getLogger(__name__)

MISS_MEMORY = timedelta(minutes=30)  # an unanswered question this recent makes the next miss the second
UNRESOLVED = {"none", "choice"}
MIN_TITLE, MAX_TITLE = 3, 120  # an FAQ question is a button's label


def draft_entry_id(draft_id: int) -> str:
    return f"draft_{draft_id}"


@dataclass(frozen=True, slots=True)
class Asked:
    query: FaqQuery
    match: Match
    second_miss: bool  # the customer's previous question went unanswered too


@dataclass(frozen=True, slots=True)
class EntryStats:
    entry_id: str
    helped: int
    not_helped: int


class FaqService:
    def __init__(
        self,
        db: Database,
        path: Path,
        clock: Callable[[], datetime] = utcnow,
        features: frozenset[str] = FEATURES,
    ) -> None:
        """`features`: what the business file offers (`bot.faq.rules.FEATURES`); entries about
        anything else are left out."""
        self.db = db
        self.path = path
        self.clock = clock
        self.features = features
        self.file_faq = load_faq(path).offered(features)
        self.faq = self.file_faq
        self.matcher = FaqMatcher(self.faq)

    async def load(self) -> None:
        """Add the approved drafts to the file's entries (at start, and after each change)."""
        async with self.db.reading() as session:
            drafts = list(
                await session.scalars(
                    select(FaqDraft).where(col(FaqDraft.status) == DraftStatus.APPROVED).order_by(col(FaqDraft.id))
                )
            )
        extra = [
            Entry(
                id=draft_entry_id(d.id or 0),
                category=d.category or self.file_faq.categories[0].id,
                texts={
                    d.language: Text(
                        # Shown on the button: the reviewer's wording. The customer's own question is
                        # only matched on, and is gone once they erase their data.
                        question=d.title,
                        # A manager's answer is their plain words: "<3" is text, not markup, and
                        # "{wifi}" is text, not one of the programme's figures (answers are
                        # templates: `bot.faq.rules.FACTS`).
                        answer=html.escape(d.answer, quote=False).replace("{", "{{").replace("}", "}}"),
                        phrasings=tuple(p for p in (d.title, d.question) if p),
                    )
                },
            )
            for d in drafts
            if d.title
        ]
        self.faq = self.file_faq.with_entries(extra)
        self.matcher = FaqMatcher(self.faq)

    async def reload(self) -> Faq:
        """Read the file again; on any problem the FAQ in use stays as it was (ConfigError)."""
        self.file_faq = load_faq(self.path).offered(self.features)
        await self.load()
        return self.faq

    # --- customers' questions ----------------------------------------------------------------------

    async def ask(self, customer_id: int, language: str, text: str, per_day: int | None = None) -> Asked | None:
        """Match a customer's question and keep it (for the figures and the 👍/👎). None when they
        asked `per_day` questions in the last 24 hours already: nothing is kept then."""
        match = self.matcher.match(text, language)
        now = self.clock()
        query = FaqQuery(
            customer_id=customer_id,
            language=language,
            text=text[:1024],
            outcome=match.verdict.value,
            entry_id=match.best,
            score=round(match.score * 1000),
            created_at=now,
        )
        # Every question: one transaction through the driver, the day's count and the previous
        # question in one statement, then the question kept.
        latest = "FROM faq_queries WHERE customer_id = $1 AND created_at >= $3 ORDER BY id DESC LIMIT 1"
        async with self.db.direct() as tx:
            row = await tx.fetchrow(
                "SELECT (SELECT count(*) FROM faq_queries WHERE customer_id = $1 AND created_at >= $2"
                " AND outcome IN ('answer', 'choice', 'none')),"
                f" (SELECT outcome {latest}), (SELECT helpful {latest})",
                customer_id,
                now - timedelta(days=1),
                now - MISS_MEMORY,
            )
            assert row is not None  # a SELECT of scalars always has its one row
            asked, previous_outcome, previous_helpful = row
            if per_day is not None and int(asked) >= per_day:
                return None
            inserted = await tx.fetchrow(
                "INSERT INTO faq_queries (customer_id, language, text, outcome, entry_id, score, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                query.customer_id,
                query.language,
                query.text,
                query.outcome,
                query.entry_id,
                query.score,
                query.created_at,
            )
            assert inserted is not None
            query.id = inserted[0]
        # SQLite hands a boolean back as 0 or 1: a 👎 is any false value that is not "no rating".
        missed_before = previous_outcome is not None and (
            previous_outcome in UNRESOLVED or (previous_helpful is not None and not previous_helpful)
        )
        return Asked(query, match, second_miss=missed_before and match.verdict != Verdict.ANSWER)

    async def shown(self, customer_id: int, language: str, entry_id: str, query_id: int | None) -> FaqQuery:
        """An answer the customer picked: from the /faq menu, or among a question's candidates."""
        async with self.db.writing() as session:
            if query_id is not None:
                query = await session.get(FaqQuery, query_id)
                if query is not None and query.customer_id == customer_id:
                    query.outcome, query.entry_id = "picked", entry_id
                    return query
            query = FaqQuery(
                customer_id=customer_id,
                language=language,
                outcome="browsed",
                entry_id=entry_id,
                created_at=self.clock(),
            )
            session.add(query)
            return query

    async def rate(self, query_id: int, customer_id: int, helpful: bool) -> FaqQuery | None:
        """👍 or 👎 on an answer; the last press counts. None for someone else's question."""
        async with self.db.writing() as session:
            query = await session.get(FaqQuery, query_id)
            if query is None or query.customer_id != customer_id:
                return None
            query.helpful = helpful
            return query

    async def recent(self, customer_id: int, within: timedelta, limit: int = 5) -> list[FaqQuery]:
        """The customer's last questions to the bot (oldest first), for the managers at a hand-off."""
        since = self.clock() - within
        async with self.db.reading() as session:
            rows = await session.scalars(
                select(FaqQuery)
                .where(col(FaqQuery.customer_id) == customer_id, col(FaqQuery.created_at) >= since)
                .order_by(col(FaqQuery.id).desc())
                .limit(limit)
            )
            return list(reversed(list(rows)))

    def title(self, entry_id: str, language: str) -> str:
        """An entry's question in `language` (or any it has), to name it to the managers."""
        entry = self.faq.entry(entry_id)
        if entry is None:
            return entry_id
        text = entry.text(language) or next(iter(entry.texts.values()), None)
        return text.question if text is not None else entry_id

    async def question(self, query_id: int, customer_id: int) -> FaqQuery | None:
        async with self.db.reading() as session:
            query = await session.get(FaqQuery, query_id)
            return query if query is not None and query.customer_id == customer_id else None

    async def stats(self, days: int) -> tuple[list[EntryStats], int, list[str]]:
        """Per entry 👍 and 👎, the number of questions nothing answered, and a few of them."""
        since = self.clock() - timedelta(days=days)
        async with self.db.reading(bulk=True) as session:
            rows = await session.execute(
                select(col(FaqQuery.entry_id), col(FaqQuery.helpful), func.count())
                .where(
                    col(FaqQuery.created_at) >= since,
                    col(FaqQuery.helpful).is_not(None),
                    col(FaqQuery.entry_id).is_not(None),
                )
                .group_by(col(FaqQuery.entry_id), col(FaqQuery.helpful))
            )
            counts: dict[str, list[int]] = {}
            for entry_id, helpful, count in rows:
                if entry_id is not None:  # the query asks for rated answers only
                    counts.setdefault(entry_id, [0, 0])[0 if helpful else 1] += count
            unanswered = await session.scalar(
                select(func.count())
                .select_from(FaqQuery)
                .where(col(FaqQuery.created_at) >= since, col(FaqQuery.outcome) == "none")
            )
            examples = list(
                await session.scalars(
                    select(col(FaqQuery.text))
                    .where(
                        col(FaqQuery.created_at) >= since,
                        col(FaqQuery.outcome) == "none",
                        col(FaqQuery.text).is_not(None),
                    )
                    .order_by(col(FaqQuery.id).desc())
                    .limit(5)
                )
            )
        stats = [EntryStats(entry_id, good, bad) for entry_id, (good, bad) in counts.items()]
        stats.sort(key=lambda s: (-s.not_helped, s.helped, s.entry_id))
        return stats, unanswered or 0, [e for e in examples if e]

    # --- drafts from managers' answers ---------------------------------------------------------

    async def save_draft(
        self, source_message_id: int, language: str, question: str, answer: str, manager_id: int, manager_name: str
    ) -> tuple[FaqDraft, bool]:
        """A draft from a manager's answer; the same answer makes one draft (False: it existed)."""
        try:
            async with self.db.writing() as session:
                draft = FaqDraft(
                    source_message_id=source_message_id,
                    language=language,
                    question=question[:1024],
                    answer=answer[:4096],
                    status=DraftStatus.DRAFT,
                    created_by=manager_id,
                    created_by_name=manager_name[:256],
                    created_at=self.clock(),
                )
                session.add(draft)
            return draft, True
        except IntegrityError:
            async with self.db.reading() as session:
                existing = await session.scalar(
                    select(FaqDraft).where(col(FaqDraft.source_message_id) == source_message_id)
                )
            assert existing is not None
            return existing, False

    async def pending_drafts(self) -> list[FaqDraft]:
        async with self.db.reading() as session:
            return list(
                await session.scalars(
                    select(FaqDraft).where(col(FaqDraft.status) == DraftStatus.DRAFT).order_by(col(FaqDraft.id))
                )
            )

    async def draft(self, draft_id: int) -> FaqDraft | None:
        async with self.db.reading() as session:
            return await session.get(FaqDraft, draft_id)

    async def review(
        self, draft_id: int, approve: bool, category: str | None, reviewer: str, title: str | None = None
    ) -> FaqDraft | None:
        """Approve a draft into the live FAQ (in a category, shown as `title`: the reviewer's own
        wording of the question), or reject it. Once only: None when it was reviewed already."""
        if approve and not title:
            raise ValueError("an approved entry needs the reviewer's wording of its question")
        async with self.db.writing() as session:
            result = await session.execute(
                update(FaqDraft)
                .where(col(FaqDraft.id) == draft_id, col(FaqDraft.status) == DraftStatus.DRAFT)
                .values(
                    status=DraftStatus.APPROVED if approve else DraftStatus.REJECTED,
                    category=category,
                    title=title[:MAX_TITLE] if approve and title else None,
                    reviewed_by_name=reviewer[:256],
                    reviewed_at=self.clock(),
                )
            )
            if not changed(result):
                return None
            draft = await session.get(FaqDraft, draft_id, populate_existing=True)
        if approve:
            await self.load()
        return draft


def entry_title(text: str) -> str | None:
    """A reviewer's wording of an FAQ question, on one line; None unless it fits a button."""
    line = " ".join(text.split())
    return line if MIN_TITLE <= len(line) <= MAX_TITLE else None
