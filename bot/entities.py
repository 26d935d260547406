"""Telegram's HTML parse mode: turn HTML into text and entities, as Telegram does. The sender
splits a long HTML text through it (`bot/sender.py`); the sandbox's fake Telegram parses with it."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.entities: list[dict[str, Any]] = []
        self._open: list[tuple[str, int, dict[str, Any]]] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = _TAGS.get(tag)
        if kind is None:
            self.error = f'Unsupported start tag "{tag}"'
            return
        extra: dict[str, Any] = {}
        if tag == "a":
            extra["url"] = dict(attrs).get("href") or ""
        self._open.append((tag, utf16_len(self.text), {"type": kind, **extra}))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                _, start, entity = self._open.pop(index)
                length = utf16_len(self.text) - start
                if length > 0:
                    self.entities.append({**entity, "offset": start, "length": length})
                return
        self.error = f'Unmatched end tag "{tag}"'

    def handle_data(self, data: str) -> None:
        self.text += data


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Text and entities; raises ValueError like Telegram's "can't parse entities"."""
    parser = _Parser()
    parser.feed(source)
    parser.close()
    if parser.error or parser._open:
        raise ValueError(parser.error or f'Can\'t find end tag corresponding to start tag "{parser._open[-1][0]}"')
    parser.entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return parser.text, parser.entities
