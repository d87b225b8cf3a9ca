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

# Libraries whose records FC's runtime (root logger at INFO) would print as plain text among our JSON lines.
LIBRARIES = ("oss2", "urllib3", "dashscope", "requests")
_as_lines = True
_formatter = logging.Formatter()


def quiet_libraries(quiet: bool = True) -> None:
    """Quiet: the libraries log WARNING and above only, each record one project JSON line. Not quiet (the
    CLI's --verbose): every record they make, as they word it."""
    global _as_lines
    _as_lines = quiet
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)


def library_line(record: logging.LogRecord) -> None:
    """Rewrite a library's record in place as one `library_log` JSON line, its traceback a field of it."""
    if not _as_lines or record.name.partition(".")[0] not in LIBRARIES:
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001  # a malformed record is the logging module's to report
        return
    fields = {"event": "library_log", **_bound.get(), "logger": record.name, "level": record.levelname}
    fields["message"] = message
    if record.exc_info and record.exc_info[1] is not None:
        fields["traceback"] = _formatter.formatException(record.exc_info)[-8000:]  # the innermost frames
    record.msg, record.args = render(fields), None
    record.exc_info = record.exc_text = record.stack_info = None


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

# FC's runtime frames a record of at most 128 KiB and cuts a longer one mid-character: half of it is ours.
MAX_LINE_BYTES = 64 * 1024
_KEPT = frozenset({"event", "truncated", "original_lengths"})  # never cut: they say what a line is


def render(fields: Mapping[str, Any]) -> str:
    """The line for an event dict: compact JSON, one physical line, at most MAX_LINE_BYTES of UTF-8."""
    line = _encode(fields)
    # A character is at most 4 bytes of UTF-8: a line this short fits without being encoded.
    if len(line) * 4 <= MAX_LINE_BYTES or _size(line) <= MAX_LINE_BYTES:
        return line
    return _fit(dict(fields), line)


def _encode(fields: Mapping[str, Any]) -> str:
    line = _ENCODER.encode(fields)
    if not line.isascii():
        for char, escaped in _LINE_BREAKS.items():
            line = line.replace(char, escaped)
    return line


def _size(text: str) -> int:
    # surrogatepass: a lone surrogate must be measured, not raise here.
    return len(text.encode("utf-8", "surrogatepass"))


def _fit(fields: dict[str, Any], line: str) -> str:
    """Cut the largest field until the line fits; `truncated` and the cut fields' original lengths say so."""
    original: dict[str, int] = {}
    for _ in range(64):
        over = _size(line) - MAX_LINE_BYTES
        if over <= 0:
            return line
        sizes = sorted(((_size(_encode({k: v})), k) for k, v in fields.items() if k not in _KEPT), reverse=True)
        if not sizes or sizes[0][0] <= 64:
            break
        (largest, name), second = sizes[0], (sizes[1][0] if len(sizes) > 1 else 0)
        value = fields[name]
        original.setdefault(name, len(value) if isinstance(value, str | list | tuple) else largest)
        # Down to the next largest at most, and by a quarter at least: big fields share the cut.
        fields[name] = _cut(value, max(largest - over - 64, min(second, largest * 3 // 4)))
        fields.update(truncated=True, original_lengths=original)
        line = _encode(fields)
    return _encode({"event": fields.get("event"), "truncated": True, "original_lengths": original})


def _cut(value: Any, budget: int) -> Any:
    """`value` shortened so its JSON takes about `budget` bytes: a string at a character boundary, a list
    by its last items, anything else as its JSON text cut."""
    if not isinstance(value, str | list | tuple):
        value = _encode({"": value})[4:-1]  # its JSON text
    keep = len(value)
    while keep > 0:
        size = _size(_encode({"": value[:keep]}))
        if size <= budget:
            break
        keep = min(keep - 1, int(keep * budget / size))
    return value[: max(keep, 0)]


def emit(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event dict made of the bound context and `fields`."""
    if logger.isEnabledFor(level):
        # makeRecord + handle: no stack walk for a caller's file and line the line does not need.
        line = render({"event": event, **_bound.get(), **fields})
        logger.handle(logger.makeRecord(logger.name, level, "qwen", 0, line, (), None))


quiet_libraries()
