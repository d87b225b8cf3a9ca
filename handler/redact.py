"""A last line of defence: known secret values are masked in every log record and in returned text.

It catches accidents (oss2's debug lines print request headers, an upstream error echoes one) at record
creation, so it covers every logger, children included, whatever handlers FC's runtime installs. The same
factory makes a library's record one project JSON line first (handler/logs.py `library_line`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from handler import logs

MASK = "***"
_MIN_SECRET = 8  # shorter values would mask ordinary words
_MAX_KEPT = 32  # STS tokens rotate: keep the newest few

_lock = threading.Lock()
_secrets: list[str] = []  # the newest remembered values, oldest first
# The values in use now, by role: always masked however many rotated ones pass through `_secrets`.
_pinned: dict[str, tuple[str, ...]] = {}
_masked: tuple[str, ...] = ()  # pinned then remembered: what `redact` replaces, rebuilt on each change
_installed = False
_formatter = logging.Formatter()

# A signed OSS URL grants a read to whoever holds it: its signing parameters are masked wherever they are
# found, pinned or not (oss2's V1 and V2 query forms, the V4 form of newer SDKs, and V4's header fields).
_SIGNING = re.compile(
    r"(?<![A-Za-z0-9_-])(x-oss-signature|x-oss-credential|x-oss-security-token|x-oss-access-key-id|signature"
    r"|ossaccesskeyid|security-token|securitytoken|credential)(=|%3D)(?:(?!%26)[^&\s\"'<>\\,]|\\/)+",
    re.IGNORECASE,
)
# Substring tests, far cheaper than the pattern, that gate it: each name above, in its usual spellings or
# upper case, holds one of them.
_HINTS = (
    *("ignature", "ccessKeyId", "ccesskeyid", "ccess-key-id", "ecurity", "redential"),
    *("IGNATURE", "CCESSKEYID", "CCESS-KEY-ID", "ECURITY", "REDENTIAL"),
)


def pin(role: str, values: Iterable[str | None]) -> None:
    """The values in use now for `role` ("api_key", "credentials"); those they replace are remembered."""
    global _masked
    kept = tuple(v for v in values if v and len(v) >= _MIN_SECRET)
    with _lock:
        previous = _pinned.get(role, ())
        if previous == kept:
            return  # the warm path: the same key and credentials as the last invocation
        _pinned[role] = kept
        _secrets.extend(v for v in dict.fromkeys(previous) if v not in kept and v not in _secrets)
        del _secrets[:-_MAX_KEPT]
        pinned = [v for values in _pinned.values() for v in values]
        # Longest first: a secret that contains another is masked whole.
        _masked = tuple(sorted(dict.fromkeys(pinned + _secrets), key=len, reverse=True))


def redact(text: str) -> str:
    """`text` with every pinned and remembered secret, and every signed URL's signing values, replaced by ***."""
    for secret in _masked:
        if secret in text:
            text = text.replace(secret, MASK)
    for hint in _HINTS:
        if hint in text:
            return _SIGNING.sub(_masked_parameter, text)
    return text


def _masked_parameter(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{MASK}"


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
            logs.library_line(record)  # before masking: the line it makes is masked like any other
            mask_record(record)  # always: a signed URL is a secret nobody pinned
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
