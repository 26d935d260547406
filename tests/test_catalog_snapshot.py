"""The catalogs as a reader sees them (issue 20) match the reviewed snapshots in tests/snapshots/,
and every plural has as many distinct forms as its language has."""

from __future__ import annotations

import difflib

import pytest

from tests.render_catalogs import LANGUAGES, form, load, msgid_of, plural_rule, render_catalog, snapshot_path

DIFF_LINES = 40
# The n that reach each form: one, few, many in Russian and Polish; one, other in English.
FORMS = {"ru": (1, 2, 5), "pl": (1, 2, 5), "en": (1, 2)}
# Reviewed: after a preposition or a negation, or for "раз"/"razy" and Polish nouns in -ość, two
# forms are the same word ("около 2 минут, 5 минут", "nie przyjął 2 wiadomości, 5 wiadomości").
# A new entry here needs a reader of the language, not a quick fix of the test.
SAME_FORMS = {
    "ru": {
        "Show this code at the till. It works once, for {count} minute.",  # в течение 2/5 минут
        "Time left: about {count} minute",  # около 2/5 минут
        "Too late to undo: a cashier can undo within {count} minute. Ask the owner.",  # в течение
        "You have invited {count} friend so far. Thank you!",  # "Приглашённых друзей: {count}" for every n
        "⚠️ {staff} has added points to {customer}'s card ({card}) {count} time today. "
        "If that is not what happened at the till, check /staff.",  # 1 раз, 5 раз
        "You have written to the owner {count} time in the last 24 hours. Please write again tomorrow, "
        "or talk to our team now: /support.",  # 1 раз, 5 раз
    },
    "pl": {
        "You have written to the owner {count} time in the last 24 hours. Please write again tomorrow, "
        "or talk to our team now: /support.",  # 2 razy, 5 razy
        "It reaches {count} person.",  # do 2/5 osób
        "No purchase for {count} day",  # od 2/5 dni
        "Ratings: CSAT {csat} · average {average} of 5 · {count} answer",  # 2/5 odpowiedzi
        "Telegram did not accept {count} message.",  # nie przyjął 1/2/5 wiadomości
        "This card has been used {count} time today, which is the daily limit. Try again tomorrow.",  # 2/5 razy
        "Time left: about {count} minute",  # około 2/5 minut
        "Too late to undo: a cashier can undo within {count} minute. Ask the owner.",  # w ciągu 2/5 minut
        "{count} message was interrupted by a restart and may not have arrived; it will not be sent again.",
        "{days} day",  # 2/5 dni
        "{count}\u00a0day",  # 2/5 dni
        "⚠️ {staff} has added points to {customer}'s card ({card}) {count} time today. "
        "If that is not what happened at the till, check /staff.",  # 2/5 razy
        "📣 Broadcast #{id} is on its way to {count} person. Its progress is shown below.",  # do 2/5 osób
    },
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_matches_the_snapshot(language: str) -> None:
    expected = snapshot_path(language).read_text(encoding="utf-8")
    actual = render_catalog(language)
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), f"snapshot {language}", f"catalog {language}", lineterm=""
        )
        shown = "\n".join(list(diff)[:DIFF_LINES])
        pytest.fail(
            f"{shown}\n\nthe catalog changed: read the diff, then rewrite the snapshot with "
            "`python -m tests.render_catalogs`",
            pytrace=False,
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_plural_has_its_forms(language: str) -> None:
    """A form copied into another slot reads right for some n and wrong for the rest."""
    catalog = load(language)
    rule = plural_rule(catalog)
    assert sorted({rule(n) for n in FORMS[language]}) == list(range(len(FORMS[language])))
    same = {
        msgid_of(message)
        for message in catalog
        if message.id
        and not isinstance(message.id, str)
        and len({form(message, n, rule) for n in FORMS[language]}) != len(FORMS[language])
    }
    known = SAME_FORMS.get(language, set())
    assert not same - known, "plural forms that repeat:\n" + "\n".join(sorted(same - known))
    assert not known - same, "SAME_FORMS lists entries whose forms now differ:\n" + "\n".join(sorted(known - same))
