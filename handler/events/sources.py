"""A record's source: the delivery id or object it came from, made safe for keys and for messages.

Shared by the decoder (which names each record's source) and the delivery stage (which turns a source
into an answer key, and shows OSS objects in messages), so both spell a source the same way.
"""

from __future__ import annotations

import hashlib
import json

# Characters kept as they are in a key segment; everything else is percent-encoded (UTF-8 bytes).
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:")
MAX_SEGMENT = 200


def segment(text: str) -> str:
    """One key segment from event text: letters, digits and -_.: kept, every other byte of its UTF-8
    %XX-encoded (`.` and `..` entirely).

    So no `/` (no extra folders), no `..` or `.` segment, no control character and no leading `/`
    can come from an event; the encoding is one-to-one, so two different ids never share a key.
    An encoding over 200 characters is cut to its first 183 and ends in `~` and the first 16 hex
    digits of the SHA-256 of the id's UTF-8 (no uncut segment holds a `~`)."""
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate from a JSON \ud800 escape is a byte sequence too
    if text in ("", ".", ".."):
        return "".join(f"%{b:02X}" for b in raw) or "%00"
    encoded = "".join(ch if ch in _SAFE else "".join(f"%{b:02X}" for b in _utf8(ch)) for ch in text)
    if len(encoded) > MAX_SEGMENT:
        digest = hashlib.sha256(raw).hexdigest()[:16]
        encoded = f"{encoded[: MAX_SEGMENT - 17]}~{digest}"
    return encoded


def _utf8(ch: str) -> bytes:
    return ch.encode("utf-8", "surrogatepass")


def timer_source(trigger_name: str, trigger_time: str, payload: object = None) -> str:
    """The source of a timer record, which names its answer key: name, time and the payload's hash.

    The hash makes a forged look-alike harmless: in STREAM format a topic message's body is the
    whole event, so a published `{"triggerName", "triggerTime", "payload"}` cannot be told from a
    real tick by its bytes. With the payload in the key it can only take the key of a tick with the
    very same payload, that is the same question, whose answer it then is; a look-alike with any
    other question gets a key of its own. `@` never comes out of `segment`, so keys stay one-to-one."""
    return f"timer:{segment(trigger_name)}/{segment(trigger_time)}@{payload_digest(payload)}"


def payload_digest(payload: object) -> str:
    """The first 16 hex digits of the SHA-256 of a timer payload (a string as it is, anything else as JSON)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


_MAX_SHOWN_KEY = 200


def shown_object(bucket: str, key: str) -> str:
    """oss://bucket/key as it may appear in a message or a log line (FC logs those as plain text): one
    line (control and non-ASCII characters JSON-escaped) and bounded, a long key cut and ended with a
    hash of the whole key so two keys stay distinguishable."""
    return f"oss://{plain(bucket)[:63]}/{shown_key(key)}"


def shown_key(key: str) -> str:
    """A key (or key prefix) for a message: one line, at most _MAX_SHOWN_KEY characters plus a hash."""
    # Printable characters (Chinese names too) as they are; a line break or other control character escaped.
    text = "".join(ch if ch.isprintable() else json.dumps(ch)[1:-1] for ch in key)
    if len(text) > _MAX_SHOWN_KEY:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        text = f"{text[:_MAX_SHOWN_KEY]}...{digest}"
    return text


def plain(text: str) -> str:
    """Text for a message: JSON-escaped onto one line, at most 200 characters."""
    return json.dumps(text)[1:-1][:200]
