"""A `.jsonl` question file's bytes -> its lines, each a question or the refusal written in its place.

Pure: bytes in (as chunks, never the whole file), lines out. Rules for each line (numbered from 1):
  blank                         -> skipped (no question, no answer line)
  over MAX_LINE_BYTES           -> 413 LineTooLarge (its bytes are dropped as they arrive, never held)
  not UTF-8                     -> 400 InvalidEncoding
  not JSON                      -> 400 InvalidLine
  a JSON string                 -> the question
  a JSON object                 -> a request as events accept it (decode.request), plus an optional
                                   custom_id (string or integer; default: the line number)
  anything else                 -> 400 InvalidLine
  a custom_id given before      -> 400 DuplicateCustomId (among the ids given, compared as the strings they
                                   are returned as: 7 and "7" are one id); a line giving none is never
                                   refused as one, even when its number equals an id another line gave
  line MAX_LINES + 1 and after  -> 413 TooManyLines
Whole-file refusals (`file_refusal`): 0 bytes, and an image's bytes under a .jsonl name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from handler.errors import InvalidInput
from handler.events import images
from handler.events.decode import NOT_UTF8_HINT, question_text, request
from handler.events.question import Question
from handler.values import Value

MAX_LINES = 50_000  # a DashScope batch job's limit, applied to every route alike
MAX_LINE_BYTES = 6 * 1024 * 1024  # a batch input line's limit
MAX_CUSTOM_ID = 64
_BOM = b"\xef\xbb\xbf"
_NOT_JSON = 'is not JSON: write a JSON string ("...") or a request object ({"prompt": "..."})'


class Line(Value):
    """One non-blank line: its number, its custom_id and what it asks (or why it is refused)."""

    number: int
    custom_id: str
    record: Question | InvalidInput


def file_refusal(head: bytes, size: int) -> InvalidInput | None:
    """The refusal of a whole file, judged by its first bytes and size; None for a file to read line by line."""
    if size == 0:
        return InvalidInput(
            "the .jsonl file is empty (0 bytes): write one question per line, a JSON string or a request "
            'object such as {"prompt": "..."}',
            code="EmptyFile",
        )
    sniffed = images.sniff(head)
    if sniffed.kind is not None:
        return InvalidInput(
            f"the .jsonl file holds a {sniffed.kind.upper()} image, not JSON lines: upload the image under its own "
            "name to have it described, or write one question per line",
            code="NotJsonLines",
            status_code=415,
        )
    return None


def split(chunks: Iterator[bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the line break) for each line; None as the bytes of a line longer than
    `max_bytes`, whose bytes are dropped as they come so memory stays at one line."""
    number, buffer, dropping = 0, bytearray(), False
    for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not dropping:
                buffer += piece
                if len(buffer) > max_bytes:
                    buffer.clear()
                    dropping = True
            if end < 0:
                break
            number += 1
            yield number, (None if dropping else bytes(buffer))
            buffer.clear()
            dropping = False
            start = end + 1
    if buffer or dropping:
        yield number + 1, (None if dropping else bytes(buffer))


def lines(chunks: Iterator[bytes], *, max_lines: int = MAX_LINES) -> Iterator[Line]:
    """The file's non-blank lines, in order, each a question or its refusal."""
    seen: set[str] = set()
    counted = 0
    for number, data in split(chunks):
        if data is not None:
            if number == 1 and data.startswith(_BOM):
                data = data[len(_BOM) :]
            if not data.strip():
                continue
        counted += 1
        record, given = _line(data, number)
        custom_id = given or str(number)
        if counted > max_lines:
            record = InvalidInput(
                f"line {number} is past the {max_lines:,}th question of the file: a file holds at most "
                f"{max_lines:,} (one DashScope batch job's limit); split it into several files",
                code="TooManyLines",
                status_code=413,
            )
        elif given is not None and given in seen:
            record = InvalidInput(
                f"line {number}'s custom_id {given!r} is given to an earlier line; each must be unique",
                code="DuplicateCustomId",
            )
        if given is not None:
            seen.add(given)
        yield Line(number=number, custom_id=custom_id, record=record)


def _line(data: bytes | None, number: int) -> tuple[Question | InvalidInput, str | None]:
    """What the line asks (or its refusal), and the custom_id it gives (None: none given, or not readable)."""
    if data is None:
        refusal = f"line {number} is larger than {MAX_LINE_BYTES:,} bytes, a batch line's limit"
        return InvalidInput(refusal, code="LineTooLarge", status_code=413), None
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as error:
        why = f"line {number} is not UTF-8 (byte {error.start} of the line; {NOT_UTF8_HINT})"
        return InvalidInput(why, code="InvalidEncoding"), None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return _invalid(number, _NOT_JSON), None
    if isinstance(value, str):
        return _question(question_text(value), number), None
    if not isinstance(value, dict):
        kind = type(value).__name__
        return _invalid(number, f"is a JSON {kind}, neither a question string nor a request object"), None
    custom_id = _custom_id(value.pop("custom_id", None))
    if isinstance(custom_id, InvalidInput):
        return _invalid(number, custom_id.message), None
    return _question(request(value), number), custom_id


def _custom_id(value: Any) -> str | InvalidInput | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return InvalidInput("has a custom_id that is neither a string nor an integer")
    text = str(value).strip()
    if not text or len(text) > MAX_CUSTOM_ID or not text.isprintable():
        return InvalidInput(f"has a custom_id that is empty, longer than {MAX_CUSTOM_ID} characters or not printable")
    return text


def _question(record: Any, number: int) -> Question | InvalidInput:
    if isinstance(record, InvalidInput):
        return InvalidInput(f"line {number}: {record.message}", code=record.code, status_code=record.status_code)
    if not isinstance(record, Question):
        return _invalid(number, "holds no question")
    return record


def _invalid(number: int, why: str) -> InvalidInput:
    return InvalidInput(f"line {number} {why}", code="InvalidLine")
