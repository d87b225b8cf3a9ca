"""One JSON object per log line, with fields bound for the length of an invocation. FC's runtime owns
the root logger's handlers (they prefix the request id): this module only creates records."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

logger = logging.getLogger("qwen")
if logger.level == logging.NOTSET:
    # FC's root logger may sit at WARNING; the per-question line is INFO and must not vanish.
    logger.setLevel(logging.INFO)

_bound: ContextVar[Mapping[str, Any]] = ContextVar("qwen_log_context", default=MappingProxyType({}))

# Line breaks to some log viewers that ensure_ascii=False leaves as they are: no forged lines.
_LINE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add fields to every line emitted inside the block (and its copied contexts); drop them after."""
    token = _bound.set({**_bound.get(), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def render(fields: Mapping[str, Any]) -> str:
    """The line for an event dict: compact JSON, one physical line whatever the values hold."""
    line = _ENCODER.encode(fields)
    if not line.isascii():
        for char, escaped in _LINE_BREAKS.items():
            line = line.replace(char, escaped)
    return line


def emit(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event dict made of the bound context and `fields`."""
    if logger.isEnabledFor(level):
        # makeRecord + handle: no stack walk for a caller's file and line the line does not need.
        line = render({"event": event, **_bound.get(), **fields})
        logger.handle(logger.makeRecord(logger.name, level, "qwen", 0, line, (), None))
