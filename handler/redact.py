"""A last line of defence: known secret values are masked in every log record and in returned text.

The code never puts a secret into a message on purpose; this catches the accidents (oss2's debug
lines print request headers, the STS token among them; an upstream error that echoes a header)
before they leave the process. It works at record creation, so it covers every logger, children
included (oss2.http, dashscope), whatever handlers FC's runtime installs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"
_MIN_SECRET = 8  # shorter values would mask ordinary words
_MAX_KEPT = 32  # STS tokens rotate; keep the newest few, not every one ever seen

_lock = threading.Lock()
_secrets: list[str] = []
_installed = False
_formatter = logging.Formatter()


def remember(values: Iterable[str | None]) -> None:
    """Add secret values (API key, STS credentials) to mask from now on."""
    with _lock:
        for value in values:
            if value and len(value) >= _MIN_SECRET and value not in _secrets:
                _secrets.append(value)
        del _secrets[:-_MAX_KEPT]


def redact(text: str) -> str:
    """`text` with every remembered secret replaced by ***."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_record(record: logging.LogRecord) -> None:
    """Mask secrets in a record's final message and in its traceback, in place."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001  # a malformed record is the logging module's to report
        return
    masked = redact(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[1] is not None and _chain_has_secret(record.exc_info[1]):
        # The handler formats the traceback later, out of our reach: format it now, masked.
        trace = redact(_formatter.formatException(record.exc_info))
        record.msg, record.args = f"{record.msg}\n{trace}", None
        record.exc_info, record.exc_text = None, None


def _chain_has_secret(error: BaseException) -> bool:
    """Whether an exception or its causes say a secret (frames show source lines, not values)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        text = f"{current!s} {current!r}"
        if redact(text) != text:
            return True
        current = current.__cause__ or current.__context__
    return False


def install() -> None:
    """Wrap the log record factory once, so every record made from now on is masked."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if _secrets:
                mask_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
