"""Secrets never reach a log line or a table: the bot token is cut out of every log record (its
message, its arguments and its traceback) and of every error the inbox stores.

Telegram's file URLs carry the token (`…/file/bot<TOKEN>/…`), and so do the exceptions aiohttp
raises for them: a failed photo download once put the token into `processed_updates.error` and
the log. The log is covered where records are made (`logging.setLogRecordFactory`), so every
logger and every handler (a file, journald, pytest's capture) gets records already scrubbed.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

REDACTED = "<redacted>"

_secrets: list[str] = []  # longest first: the whole token goes before its part
_installed = False


def redact(text: str) -> str:
    """`text` with every known secret replaced."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def add_secret(token: str) -> None:
    """Keep this secret (and its part after the bot id, which identifies the bot on its own) out
    of logs and stored errors from now on."""
    for part in (token, token.partition(":")[2]):
        if len(part) >= 16 and part not in _secrets:  # never a short, common string
            _secrets.append(part)
    _secrets.sort(key=len, reverse=True)
    _install()


def _install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if not _secrets:
            return record
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's to report
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(text)  # handlers print exc_text as it is
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(scrubbed)
