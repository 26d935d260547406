"""The FAQ: its YAML file, validated, and the matcher that finds the entry a customer's words ask
about. Plain Python: no aiogram, so the rules and the evaluation set test without a bot.

Matching works on normalised words (case, `ё`/`е`, Polish diacritics and punctuation folded).
Each word of the question is compared with the words an entry is asked with (its question and
phrasings) through rapidfuzz, so typos and inflected forms still meet; rare words weigh more than
common ones. An entry's score is the share of the question's meaning it covers, blended with how
closely the question resembles one of the entry's phrasings.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bot.core.config import load_yaml_model
from bot.core.entities import parse_html

LANGUAGES = ("ru", "pl", "en")
ENTRY_ID = r"^[a-z][a-z0-9_]{0,31}$"

# The programme's own figures an answer may name, filled from the business file each time the
# answer is shown (`bot.loyalty.texts.programme_facts`), so changing the file changes the answer.
FACTS = frozenset(
    {
        "business", "welcome", "welcome_bonus", "earn_rates", "tiers", "point_value", "redeem_max_share",
        "birthday_bonus", "referral_bonus", "expiry_months", "expiry_remind_days",
    }
)  # fmt: skip
# What the business file must offer for an entry to exist (an entry about the birthday bonus is
# gone when the bonus is off, and a question about it goes to a person).
FEATURES = frozenset(
    {"welcome_bonus", "birthday_bonus", "referral", "points_expire", "points_never_expire", "marketing"}
)
_FACT = re.compile(r"\{([^{}]*)\}")

# --- the file --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryName(_Strict):
    ru: str = Field(min_length=1, max_length=48)
    pl: str = Field(min_length=1, max_length=48)
    en: str = Field(min_length=1, max_length=48)


class CategoryRule(_Strict):
    id: str = Field(pattern=ENTRY_ID)
    name: CategoryName


class EntryText(_Strict):
    question: str = Field(min_length=3, max_length=120)  # shown on a button
    answer: str = Field(min_length=1, max_length=3500)  # leaves room for the buttons' words
    phrasings: list[str] = Field(default_factory=list, max_length=30)

    @field_validator("answer")
    @classmethod
    def _answer(cls, value: str) -> str:
        try:
            parse_html(value)
        except ValueError as error:  # it would fail every customer it answers
            raise ValueError(f"Telegram cannot show this answer ({error}); write '<' as &lt;") from None
        unknown = sorted(set(_FACT.findall(value)) - FACTS)
        if unknown or value.count("{") != value.count("}"):
            raise ValueError(
                f"unknown figure {{{unknown[0] if unknown else ''}}}: an answer may name "
                + ", ".join(f"{{{fact}}}" for fact in sorted(FACTS))
            )
        return value

    @field_validator("phrasings")
    @classmethod
    def _phrasings(cls, value: list[str]) -> list[str]:
        cleaned = [item.strip() for item in value]
        if any(not item or len(item) > 200 for item in cleaned):
            raise ValueError("each phrasing is a non-empty line of at most 200 characters")
        return cleaned


class EntryRule(_Strict):
    id: str = Field(pattern=ENTRY_ID)
    category: str
    needs: str | None = None  # one of FEATURES: the entry exists only when the business offers it
    ru: EntryText
    pl: EntryText
    en: EntryText


class FaqFile(_Strict):
    categories: list[CategoryRule] = Field(min_length=1)
    entries: list[EntryRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> FaqFile:
        category_ids = [c.id for c in self.categories]
        if len(set(category_ids)) != len(category_ids):
            raise ValueError("categories: every category needs its own id")
        entry_ids = [e.id for e in self.entries]
        repeated = sorted(i for i, n in Counter(entry_ids).items() if n > 1)
        if repeated:
            raise ValueError(f"entries: the id {repeated[0]!r} is used twice")
        for index, entry in enumerate(self.entries):
            if entry.needs is not None and entry.needs not in FEATURES:
                expected = ", ".join(sorted(FEATURES))
                raise ValueError(f"entries.{index} ({entry.id}): needs {entry.needs!r}, expected one of {expected}")
            if entry.category not in category_ids:
                raise ValueError(
                    f"entries.{index} ({entry.id}): unknown category {entry.category!r}; "
                    f"expected one of {', '.join(category_ids)}"
                )
        return self


@dataclass(frozen=True, slots=True)
class Text:
    question: str
    answer: str
    phrasings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    category: str
    texts: dict[str, Text]  # by language; an entry approved from a manager's answer has one
    needs: str | None = None  # a feature of the programme (FEATURES) it is about

    def text(self, language: str) -> Text | None:
        return self.texts.get(language)


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    names: dict[str, str]


@dataclass(frozen=True)
class Faq:
    categories: tuple[Category, ...]
    entries: tuple[Entry, ...]
    _by_id: dict[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {entry.id: entry for entry in self.entries})

    def entry(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def in_category(self, category_id: str, language: str) -> list[Entry]:
        return [e for e in self.entries if e.category == category_id and e.text(language) is not None]

    def categories_in(self, language: str) -> list[Category]:
        used = {e.category for e in self.entries if e.text(language) is not None}
        return [c for c in self.categories if c.id in used]

    def offered(self, features: frozenset[str]) -> Faq:
        """Only the entries about what the business offers (`needs`), for matching and browsing."""
        return Faq(self.categories, tuple(e for e in self.entries if e.needs is None or e.needs in features))

    def with_entries(self, extra: list[Entry]) -> Faq:
        """This FAQ and entries approved from managers' answers (which never replace the file's)."""
        known = set(self._by_id)
        return Faq(self.categories, self.entries + tuple(e for e in extra if e.id not in known))

    @classmethod
    def from_file_model(cls, data: FaqFile) -> Faq:
        return cls(
            categories=tuple(
                Category(c.id, {lang: getattr(c.name, lang) for lang in LANGUAGES}) for c in data.categories
            ),
            entries=tuple(
                Entry(
                    id=e.id,
                    category=e.category,
                    texts={
                        lang: Text(
                            question=getattr(e, lang).question,
                            answer=getattr(e, lang).answer,
                            phrasings=tuple(getattr(e, lang).phrasings),
                        )
                        for lang in LANGUAGES
                    },
                    needs=e.needs,
                )
                for e in data.entries
            ),
        )


def load_faq(path: Path) -> Faq:
    """Read and validate the FAQ file; every problem names its place in the file."""
    return Faq.from_file_model(load_yaml_model(path, "FAQ_FILE", FaqFile, "a mapping with categories and entries"))


# --- normalising -----------------------------------------------------------------------------

_FOLD = str.maketrans({"ё": "е", "ł": "l", "ß": "ss", "’": "'", "ʼ": "'"})
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Words that carry no topic: a question made only of them asks about nothing in particular.
STOPWORDS = {
    "en": set(
        "a an the i im i'm me my mine we us our you your yours it its is are was were be been am do does did "
        "doesnt dont didnt can could would should will shall may might must have has had to of in on at "
        "for from without with by about as and or but if so not no yes this that these there here what whats "
        "which who how when where why please hi hello hey thanks thank pls any some get got "
        "just still there's theres anything something also too very much really ok okay".split()
    ),
    "ru": set(
        "а и но или да нет не ни без что чтобы как когда где куда откуда почему зачем ли же бы вы вас вам вами "
        "ваш ваша ваше ваши я меня мне мной мой моя мое мои мы нас нам у в во на с со к ко по о об от до "
        "за из для при это этот эта эти то там тут здесь есть был была было были быть будет можно "
        "нужно надо мочь могу можете пожалуйста здравствуйте привет добрый день спасибо подскажите "
        "скажите а ещё еще уже так такой какой какая какие который которая ну вот же ли".split()
    ),
    "pl": set(
        "a i oraz lub albo ale czy nie bez tak to ten ta te tego tej jest sa byl byla bylo byc bedzie jak "
        "kiedy gdzie dlaczego czemu co ktory ktora ktore mi mnie mam moj moja moje my nas nam wy was "
        "wam ty cie ci twoj twoja u w we na z ze do od po o za dla przy przez moge mozna mozecie "
        "mozesz prosze dzien dobry czesc hej dzieki dziekuje siema jakie jaki jaka sie juz tez "
        "jeszcze no bo zeby".split()
    ),
}


def normalise(text: str) -> str:
    """Lower case, `ё`→`е`, Polish and other diacritics dropped, punctuation gone."""
    text = unicodedata.normalize("NFKD", text.lower().translate(_FOLD))
    text = "".join(ch for ch in text if not unicodedata.combining(ch) or ch == "\u0306")
    # Russian `й` decomposes to `и` + breve: keep the breve, then recompose it.
    text = unicodedata.normalize("NFC", text)
    return " ".join(_WORD.findall(text))


def words(text: str, language: str) -> list[str]:
    """The words that carry meaning: no stop words, no lone letters (`we're` → `we`, `re`)."""
    stop = STOPWORDS.get(language, set())
    return [w for w in normalise(text).split() if w not in stop and (len(w) > 2 or w.isdigit() or w == "qr")]


# --- matching --------------------------------------------------------------------------------


class Verdict(StrEnum):
    ANSWER = "answer"  # one entry, confidently
    CHOICE = "choice"  # a close call: let the customer pick
    NONE = "none"  # nothing fits: a manager should take it


@dataclass(frozen=True, slots=True)
class Match:
    verdict: Verdict
    ranked: tuple[tuple[str, float], ...]  # (entry id, score 0..1), best first, up to three

    @property
    def best(self) -> str | None:
        return self.ranked[0][0] if self.ranked else None

    @property
    def score(self) -> float:
        return self.ranked[0][1] if self.ranked else 0.0


RECALL_SHARE, PRECISION_SHARE, SHAPE_SHARE = 0.6, 0.25, 0.15  # how an entry's score is made up
UNKNOWN_WEIGHT = 1.0
ANSWER_WORD = 0.4  # a word found only in an entry's answer counts this much of one in its phrasings
ANSWER_AT = 0.50  # a score this high, clearly ahead of the next entry, is answered outright
AHEAD_BY = 0.08  # …and "clearly ahead" means by this much
CHOICE_AT = 0.40  # from here up, the best few entries are offered as buttons
# A weak close call is offered only when an entry shares a telling word with the question: one of the
# entry's own words that (nearly) no other entry uses, said (nearly) as the entry says it, weighs
# 1.0; "coffee" or "menu" on their own, under 0.85. Without one, the question is likely about
# something the FAQ does not know ("decaf coffee", "a kids' menu") and goes to a person. Chosen on
# the evaluation set (weakest right choice 0.92, wrong choices for uncovered questions 0.61, 0.8).
TELLING_WORD = 0.85
STEM = 5  # Russian and Polish words sharing their first letters this far…
STEM_SHARE = 0.6  # …and this share of the longer word are one word with another ending


def typos_allowed(word: str) -> int:
    """Edits (a letter missing, extra, wrong or two swapped) under which two words are one:
    none in short words, where one letter changes the meaning (`кофе`, `кафе`)."""
    if len(word) <= 4:
        return 0
    return 1 if len(word) <= 7 else 2


@dataclass(slots=True)
class _Phrase:
    entry_id: str
    words: list[str]
    text: str


@dataclass(slots=True)
class _Index:
    phrases: list[_Phrase]
    vocabulary: list[str]
    idf: dict[str, float]
    unknown_idf: float
    entry_words: dict[str, set[str]]
    answer_words: dict[str, set[str]]  # words only the answer uses: weaker evidence
    inflected: bool  # words change their endings (Russian, Polish)


class FaqMatcher:
    """Finds the FAQ entry a free-text question asks about, per language."""

    def __init__(self, faq: Faq) -> None:
        self.faq = faq
        self._indexes = {language: self._build(faq, language) for language in LANGUAGES}

    @staticmethod
    def _build(faq: Faq, language: str) -> _Index:
        phrases: list[_Phrase] = []
        entry_words: dict[str, set[str]] = {}
        for entry in faq.entries:
            text = entry.text(language)
            if text is None:
                continue
            for phrase in (text.question, *text.phrasings):
                tokens = words(phrase, language)
                if tokens:
                    phrases.append(_Phrase(entry.id, tokens, " ".join(tokens)))
                    entry_words.setdefault(entry.id, set()).update(tokens)
        answer_words: dict[str, set[str]] = {}
        for entry in faq.entries:
            text = entry.text(language)
            if text is None:
                continue
            weaker = set(words(re.sub(r"<[^>]+>", " ", text.answer), language))
            english = entry.text("en")
            if language != "en" and english is not None:
                # Customers type loanwords (wifi, blik, gold) in any language.
                weaker.update(w for phrase in (english.question, *english.phrasings) for w in words(phrase, "en"))
            answer_words[entry.id] = weaker - entry_words.get(entry.id, set())
        entries = max(len(entry_words), 1)
        document_frequency = Counter(
            w for entry_id in entry_words for w in entry_words[entry_id] | answer_words.get(entry_id, set())
        )
        idf = {w: math.log(1 + entries / n) for w, n in document_frequency.items()}
        return _Index(
            phrases=phrases,
            vocabulary=sorted(document_frequency),
            idf=idf,
            unknown_idf=math.log(1 + entries),
            entry_words=entry_words,
            answer_words=answer_words,
            inflected=language in {"ru", "pl"},
        )

    def _similar(self, word: str, index: _Index) -> dict[str, float]:
        """The index's words this word may be (itself, a typo, another ending), with a likeness."""
        found: dict[str, float] = {}
        for candidate, edits, _ in process.extract(
            word, index.vocabulary, scorer=OSA.distance, score_cutoff=typos_allowed(word), limit=8
        ):
            found[candidate] = 1.0 - 0.5 * edits / max(len(word), len(candidate))
        if index.inflected and len(word) >= STEM:
            stem = word[:STEM]
            for candidate in index.vocabulary:
                if candidate.startswith(stem) and found.get(candidate, 0) < 0.9:
                    shared = len(os.path.commonprefix([word, candidate]))
                    if shared >= STEM_SHARE * max(len(word), len(candidate)):
                        found[candidate] = 0.9
        return found

    def match(self, question: str, language: str) -> Match:
        index = self._indexes.get(language)
        tokens = words(question, language)
        if index is None or not tokens or not index.phrases:
            return Match(Verdict.NONE, ())
        likeness = {token: self._similar(token, index) for token in dict.fromkeys(tokens)}
        # A word's weight is how rare its matches are among the entries; a word the FAQ never
        # uses weighs UNKNOWN_WEIGHT of the rarest: it may be chatter, or the real subject.
        weights = {
            token: max((index.idf[w] for w in known), default=UNKNOWN_WEIGHT * index.unknown_idf)
            for token, known in likeness.items()
        }
        total = sum(weights.values())
        query_text = " ".join(tokens)
        scores: dict[str, float] = {}
        for entry_id, vocabulary in index.entry_words.items():
            in_answer = index.answer_words.get(entry_id, set())
            covered = sum(
                weight
                * max(
                    (
                        s if w in vocabulary else ANSWER_WORD * s
                        for w, s in likeness[t].items()
                        if w in vocabulary or w in in_answer
                    ),
                    default=0.0,
                )
                for t, weight in weights.items()
            )
            scores[entry_id] = RECALL_SHARE * covered / total
        best_phrase: dict[str, float] = {}
        for phrase in index.phrases:
            phrase_words = set(phrase.words)
            phrase_weight = sum(index.idf[w] for w in phrase_words)
            said = sum(
                index.idf[w] * max((likeness[t].get(w, 0.0) for t in likeness), default=0.0) for w in phrase_words
            )
            shape = fuzz.token_sort_ratio(query_text, phrase.text) / 100
            value = PRECISION_SHARE * said / phrase_weight + SHAPE_SHARE * shape
            if value > best_phrase.get(phrase.entry_id, 0.0):
                best_phrase[phrase.entry_id] = value
        for entry_id, value in best_phrase.items():
            scores[entry_id] += value
        ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:3]
        best = ranked[0][1]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        if best >= ANSWER_AT and best - runner_up >= AHEAD_BY:
            return Match(Verdict.ANSWER, tuple(ranked[:1]))
        if best >= CHOICE_AT:
            close = tuple((entry_id, score) for entry_id, score in ranked if score >= CHOICE_AT and best - score < 0.15)
            if len(close) > 1 or best < ANSWER_AT:
                weak = best < ANSWER_AT  # a strong score that two entries share is still a real choice
                if weak and max(self._telling(entry_id, likeness, index) for entry_id, _ in close) < TELLING_WORD:
                    return Match(Verdict.NONE, tuple(ranked))
                return Match(Verdict.CHOICE, close)
            return Match(Verdict.ANSWER, close)
        return Match(Verdict.NONE, tuple(ranked))

    @staticmethod
    def _telling(entry_id: str, likeness: dict[str, dict[str, float]], index: _Index) -> float:
        """How telling the question's strongest word in common with the entry's phrasings is: the
        word's rarity among the entries (1.0 for a word of this entry alone) times the likeness."""
        vocabulary = index.entry_words[entry_id]
        return (
            max(
                (index.idf[w] * s for found in likeness.values() for w, s in found.items() if w in vocabulary),
                default=0.0,
            )
            / index.unknown_idf
        )
