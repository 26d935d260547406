"""Every string a person reads is in the ru, pl and en catalogs, translated, with the right plural
forms and the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.core.i18n import LOCALES_DIR

ROOT = Path(__file__).resolve().parent.parent
PLURALS = {"ru": 3, "pl": 3, "en": 2}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "__": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def _used_in_code() -> dict[str | tuple[str, str], str]:
    found: dict[str | tuple[str, str], str] = {}
    for folder in ("bot", "handlers"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            key = message if isinstance(message, str) else tuple(message[:2])
            found[key] = f"{folder}/{filename}:{lineno}"  # type: ignore[index]
    return found


def _catalog(language: str) -> Catalog:
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


USED = _used_in_code()


def test_the_code_has_strings_to_translate() -> None:
    assert len(USED) > 100
    assert ("{count} point", "{count} points") in USED


@pytest.mark.parametrize("language", sorted(PLURALS))
def test_every_string_is_translated(language: str) -> None:
    catalog = _catalog(language)
    assert catalog.num_plurals == PLURALS[language]
    problems = []
    for key, where in USED.items():
        msgid = key if isinstance(key, str) else key[0]
        message = catalog.get(msgid)
        if message is None:
            problems.append(f"missing: {msgid!r} ({where})")
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
        if isinstance(key, tuple) and len(strings) != PLURALS[language]:
            problems.append(f"wrong number of plural forms: {msgid!r}")
        if not all(strings):
            problems.append(f"untranslated: {msgid!r} ({where})")
        wanted = sorted(PLACEHOLDER.findall(key if isinstance(key, str) else key[1]))
        for text in strings:
            if (
                text
                and sorted(PLACEHOLDER.findall(text)) != wanted
                and not (isinstance(key, tuple) and set(PLACEHOLDER.findall(text)) <= set(wanted))
            ):
                problems.append(f"placeholders differ: {msgid!r} -> {text!r}")
            if text and text.count("<b>") != text.count("</b>"):
                problems.append(f"unbalanced <b>: {text!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", sorted(PLURALS))
def test_no_stale_entries(language: str) -> None:
    """Strings no longer in the code should leave the catalog (run `pybabel update`)."""
    msgids = {key if isinstance(key, str) else key[0] for key in USED}
    stale = [m.id for m in _catalog(language) if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in msgids]
    assert not stale, stale


@pytest.mark.parametrize(
    ("language", "forms"),
    [
        ("ru", {1: "1 балл", 2: "2 балла", 5: "5 баллов", 21: "21 балл", 12: "12 баллов"}),
        ("pl", {1: "1 punkt", 2: "2 punkty", 5: "5 punktów", 22: "22 punkty", 12: "12 punktów"}),
        ("en", {1: "1 point", 2: "2 points", 5: "5 points"}),
    ],
)
def test_points_plurals(language: str, forms: dict[int, str]) -> None:
    from bot.core.i18n import create_i18n
    from bot.loyalty import texts

    i18n = create_i18n("en")
    with i18n.context(), i18n.use_locale(language):
        for count, expected in forms.items():
            assert texts.points(count) == expected
