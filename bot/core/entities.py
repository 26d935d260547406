"""Telegram's HTML parse mode and its length rule: turn HTML into text and entities, refusing what
Telegram refuses, and count a text the way Telegram does. The sender splits a long HTML text
through it (`bot/core/sender.py`); the fake Telegrams of the tests and the sandbox parse with it."""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT = 4096  # a message, counted after the formatting is parsed
MAX_CAPTION = 1024  # a photo's, video's or document's caption
MAX_TOPIC_NAME = 128  # a forum topic's name

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
    "span": "spoiler",  # only as <span class="tg-spoiler">
    "tg-emoji": "custom_emoji",
    "blockquote": "blockquote",
}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")
_TAG_NAME = re.compile(r"[^\s>/]*")
_ATTRIBUTE = re.compile(r"""\s*([a-zA-Z0-9_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")


def telegram_length(text: str) -> int:
    """How long Telegram finds a text: in UTF-16 code units, so 🙂 counts as 2."""
    return len(text.encode("utf-16-le")) // 2


def cut_to_length(text: str, limit: int) -> str:
    """The longest start of `text` within `limit` UTF-16 units (never half a character)."""
    if telegram_length(text) <= limit:
        return text
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


def _offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _decode_entity(source: str, index: int) -> tuple[str, int]:
    """The character an `&…;` at `index` stands for and where it ends. Like Telegram, an `&` that
    starts none of `&lt;` `&gt;` `&amp;` `&quot;` `&#NN;` `&#xNN;` stays a plain `&`."""
    found = _ENTITY.match(source, index)
    if found is not None:
        decimal, hexadecimal, name = found.groups()
        if name is not None and name in _NAMED:
            return _NAMED[name], found.end()
        if name is None:
            code = int(decimal) if decimal is not None else int(hexadecimal, 16)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), found.end()
    return "&", index + 1


def _unescape(source: str, value: str) -> str:
    out, index = [], 0
    while index < len(value):
        if value[index] == "&":
            char, index = _decode_entity(value, index)
            out.append(char)
        else:
            out.append(value[index])
            index += 1
    return "".join(out)


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Text and entities (offsets in UTF-16 units), as Telegram's HTML parse mode makes them.

    Raises ValueError, with Telegram's wording, where Telegram answers "can't parse entities": an
    unknown tag, a tag left open or closed out of order, or a bare `<` (as in "<3"). A bare `&`
    is shown as it is, as Telegram does.
    """
    text: list[str] = []
    length = 0  # of the text so far, in UTF-16 units
    entities: list[dict[str, Any]] = []
    open_tags: list[tuple[str, int, dict[str, Any]]] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "&":
            char, index = _decode_entity(source, index)
            text.append(char)
            length += telegram_length(char)
            continue
        if char != "<":
            text.append(char)
            length += 2 if ord(char) > 0xFFFF else 1
            index += 1
            continue
        start = index
        close = source.find(">", index)
        if close < 0:
            raise ValueError(f"Unclosed start tag at byte offset {_offset(source, start)}")
        if source.startswith("</", index):
            name = source[index + 2 : close].strip().lower()
            if not open_tags:
                raise ValueError(f'Unexpected end tag "{name}" at byte offset {_offset(source, start)}')
            tag, begin, opened = open_tags.pop()
            if name != tag:
                raise ValueError(
                    f'Unmatched end tag at byte offset {_offset(source, start)}, expected "</{tag}>", found "</{name}>"'
                )
            if length > begin:
                entities.append({**opened, "offset": begin, "length": length - begin})
            index = close + 1
            continue
        name_match = _TAG_NAME.match(source, index + 1)
        assert name_match is not None
        name = name_match.group().lower()
        if name not in _TAGS:
            raise ValueError(f'Unsupported start tag "{name}" at byte offset {_offset(source, start)}')
        attributes: dict[str, str] = {}
        position = name_match.end()
        body = source[position:close].rstrip().removesuffix("/")
        for attribute in _ATTRIBUTE.finditer(body):
            key, *values = attribute.groups()
            value = next((v for v in values if v is not None), "")
            attributes[key.lower()] = _unescape(source, value)
        leftover = _ATTRIBUTE.sub("", body).strip()
        if leftover:
            raise ValueError(f'Wrong attribute of tag "{name}" at byte offset {_offset(source, start)}')
        entity: dict[str, Any] = {"type": _TAGS[name]}
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise ValueError(f'Tag "span" must have class "tg-spoiler" at byte offset {_offset(source, start)}')
        if name == "a":
            entity["url"] = attributes.get("href", "")
        if name == "tg-emoji":
            if not re.fullmatch(r"[0-9]+", attributes.get("emoji-id", "")):
                where = _offset(source, start)
                raise ValueError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {where}')
            entity["custom_emoji_id"] = attributes["emoji-id"]
        if name == "blockquote" and "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
        open_tags.append((name, length, entity))
        index = close + 1
    if open_tags:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(text), entities
