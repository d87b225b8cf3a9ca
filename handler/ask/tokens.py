"""Counting Qwen tokens: a free byte bound first, the SDK's local tokenizer only when it cannot decide.

Every Qwen token is at least one UTF-8 byte, so a text of N bytes has at most N tokens: an input
whose bytes fit the budget fits, and ordinary questions never load the tokenizer (about 0.35 s and
tens of MB). Loaded once per instance, under a lock, when a large input needs an exact count.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

# Qwen's chat template: <|im_start|>{role}\n{content}<|im_end|>\n is content + 5 tokens per message,
# and the reply is primed with <|im_start|>assistant\n (3 tokens).
PER_MESSAGE = 5
REPLY_PRIMER = 3
_CHUNK = 100_000  # tiktoken recurses per piece; the SDK splits long text the same way
_SLICE = 256 * 1024

_lock = threading.Lock()
_tokenizer: Any = None


def tokenizer() -> Any:
    """The SDK's local Qwen tokenizer (tiktoken and a bundled vocabulary), loaded once."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                from dashscope import get_tokenizer

                _tokenizer = get_tokenizer("qwen-turbo")  # one vocabulary for every Qwen model
    return _tokenizer


def loaded() -> bool:
    return _tokenizer is not None


def count(text: str) -> int:
    """The exact number of tokens in `text`, counted chunk by chunk so memory stays small."""
    if not text:
        return 0
    encode = tokenizer().encode
    return sum(len(encode(chunk)) for chunk in _chunks(text))


def template_overhead(messages: int) -> int:
    return messages * PER_MESSAGE + REPLY_PRIMER


def byte_bound(texts: Iterable[str]) -> int:
    """An upper bound on the tokens of `texts`: their UTF-8 length."""
    return sum(_utf8_length(t) for t in texts)


def _utf8_length(text: str) -> int:
    if text.isascii():
        return len(text)
    if not unicodedata.is_normalized("NFC", text):
        # The tokenizer counts the NFC form, which a few scripts make longer than the text given.
        text = unicodedata.normalize("NFC", text)
    # In slices: a whole 10 MB document encoded at once would be one more full copy at peak.
    return sum(len(text[i : i + _SLICE].encode("utf-8", "surrogatepass")) for i in range(0, len(text), _SLICE))


def _chunks(text: str) -> Iterator[str]:
    try:
        from dashscope.tokenizers.qwen_tokenizer import QwenTokenizer

        # Split exactly as the SDK's own encode() does, so the count equals its count.
        yield from QwenTokenizer._split_text(text)
    except (ImportError, AttributeError):
        for start in range(0, len(text), _CHUNK):
            yield text[start : start + _CHUNK]
