"""A last line of defence: known secret values are masked in log records and in returned text.

The code never puts a secret into a message on purpose; this catches the accidents (an SDK debug
line, an upstream error that echoes a header) before they leave the process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

MASK = "***"
_MIN_SECRET = 8  # shorter values would mask ordinary words
_MAX_KEPT = 32  # STS tokens rotate; keep the newest few, not every one ever seen

_lock = threading.Lock()
_secrets: list[str] = []


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


_formatter = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's final message (its arguments included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and record.exc_info[1] is not None:
                # The handler formats the traceback later, out of our reach: format it now, masked.
                trace = _formatter.formatException(record.exc_info)
                if redact(trace) != trace:
                    record.msg, record.args = f"{record.msg}\n{redact(trace)}", None
                    record.exc_info, record.exc_text = None, None
        return True


def install(*logger_names: str) -> None:
    """Attach the filter to these loggers (our own and the SDK's), once."""
    for name in logger_names:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())
