"""A record's source (the delivery id or object it came from), made safe for keys and for messages;
shared by the decoder and the delivery stage so both spell a source the same way."""

from __future__ import annotations

import hashlib
import json

# Characters kept as they are in a key segment; everything else is percent-encoded (UTF-8 bytes).
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:")
MAX_SEGMENT = 200
_MAX_SHOWN_KEY = 200


def segment(text: str) -> str:
    """One key segment from event text: letters, digits and -_.: kept, every other byte of its UTF-8
    %XX-encoded (`.` and `..` entirely), so no `/`, `.`/`..` segment or control character comes from an
    event and two ids never share a key. Over 200 characters: the first 183, `~` and 16 hex digits of
    the SHA-256 of the id (no uncut segment holds a `~`)."""
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate from a JSON \ud800 escape is a byte sequence too
    if text in ("", ".", ".."):
        return "".join(f"%{b:02X}" for b in raw) or "%00"
    encoded = "".join(
        ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")) for ch in text
    )
    if len(encoded) > MAX_SEGMENT:
        digest = hashlib.sha256(raw).hexdigest()[:16]
        encoded = f"{encoded[: MAX_SEGMENT - 17]}~{digest}"
    return encoded


def timer_source(trigger_name: str, trigger_time: str, payload: object = None) -> str:
    """`timer:<name>/<time>@<16 hex digits of the payload's SHA-256>`: with the payload in it, a forged
    look-alike tick cannot take a real tick's key with another question (docs/answers-and-exactly-once.md)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, sort_keys=True)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"timer:{segment(trigger_name)}/{segment(trigger_time)}@{digest}"


def shown_object(bucket: str, key: str) -> str:
    """oss://bucket/key for a message or a plain-text log line: one line and bounded."""
    return f"oss://{plain(bucket)[:63]}/{shown_key(key)}"


def shown_key(key: str) -> str:
    """A key (or prefix) for a message: control characters escaped, at most _MAX_SHOWN_KEY characters,
    a longer one ended with a hash of the whole key so two keys stay distinguishable."""
    text = "".join(ch if ch.isprintable() else json.dumps(ch)[1:-1] for ch in key)
    if len(text) > _MAX_SHOWN_KEY:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        text = f"{text[:_MAX_SHOWN_KEY]}...{digest}"
    return text


def plain(text: str) -> str:
    """Text for a message: JSON-escaped onto one line, at most 200 characters."""
    return json.dumps(text)[1:-1][:200]
