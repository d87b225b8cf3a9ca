"""Unexpected exceptions: each one that becomes a result leaves one masked `internal_error` ERROR record
(type, module raised in, traceback) and a result message naming the exception's text, bounded and escaped.
Inside `held()` the record's fields are kept for the caller's own line instead (a raised error's one line).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from handler import logs, redact
from handler.errors import QwenError

MAX_TEXT = 300  # of the exception's text in a result message
MAX_TRACEBACK = 8000  # of the traceback in the log record: the innermost frames are kept

_held: ContextVar[dict[str, Any] | None] = ContextVar("qwen_internal_held", default=None)


@contextmanager
def held() -> Iterator[dict[str, Any]]:
    """Inside the block, an internal error's fields fill the dict yielded instead of logging their own line."""
    fields: dict[str, Any] = {}
    token = _held.set(fields)
    try:
        yield fields
    finally:
        _held.reset(token)


def internal_error(error: BaseException, doing: str, **fields: Any) -> QwenError:
    """Log `error` as one internal_error record; return the 500 to answer with, `doing` saying what failed."""
    kind = type(error)
    frames = traceback.extract_tb(error.__traceback__)
    where = _module(frames[-1].filename) if frames else None
    trace = redact.redact("".join(traceback.format_exception(kind, error, error.__traceback__)))
    if len(trace) > MAX_TRACEBACK:
        trace = "..." + trace[-MAX_TRACEBACK:]
    extra = {"missing_module": error.name} if isinstance(error, ImportError) and error.name else {}
    record = {**fields, "error": kind.__name__, "error_module": kind.__module__, "raised_in": where, **extra}
    record["traceback"] = trace
    if (keep := _held.get()) is not None:
        keep.update(record)
    else:
        logs.emit("internal_error", level=logging.ERROR, **record)
    text = shown(str(error))
    return QwenError(f"{doing} ({kind.__name__}{': ' + text if text else ''})")


def shown(text: str) -> str:
    """An exception's text for a message: masked, control characters escaped, at most MAX_TEXT characters."""
    text = redact.redact(text)
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return escaped if len(escaped) <= MAX_TEXT else escaped[:MAX_TEXT] + "..."


def _module(filename: str) -> str:
    """A frame's file as a dotted module path (.../site-packages/dashscope/x.py -> dashscope.x)."""
    parts = filename.replace("\\", "/").removesuffix(".py").split("/")
    for anchor in ("site-packages", "dist-packages"):
        if anchor in parts:
            return ".".join(parts[parts.index(anchor) + 1 :])
    if "handler" in parts:
        return ".".join(parts[len(parts) - 1 - parts[::-1].index("handler") :])
    return parts[-1]
