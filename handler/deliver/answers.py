"""The answer store: one record per delivery key (status, in-progress deadline, payload hash) behind four
small methods, as Powertools' idempotency persistence layer; once.py runs the protocol over it, and
`OssAnswerStore` keeps it in OSS (QWEN_ANSWER_BUCKET).

Keys, relative to QWEN_OSS_OUTPUT_PREFIX, every segment from an event made safe by `segment`:
    mns/<messageId>.json                                    MNS topic (JSON) and MNS queue messages
    timer/<triggerName>/<triggerTime>@<payload hash>.json   timer triggers (events/sources.py)
    .pending/<key>                                          the in-progress marker of every answer
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Protocol

from handler import redact
from handler.deliver.store import ObjectStore, shown_object
from handler.errors import ObjectNotFound
from handler.events.question import Message, Question
from handler.events.sources import MAX_SEGMENT, segment
from handler.result import Result, dumps, loads
from handler.values import Value

IN_PROGRESS = "in_progress"
COMPLETED = "completed"


class AnswerRecord(Value):
    """One delivery's record: in progress (owned by one invocation until `deadline`) or completed."""

    status: str
    payload_hash: str
    owner: str = ""
    deadline: float = 0.0  # epoch seconds after which an in-progress record is an abandoned attempt
    generation: int = 1  # how many times the attempt was taken over, plus one
    result: Result | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED


class AnswerStore(Protocol):
    """Four small operations; the whole guarantee rests on `put_if_absent` being atomic."""

    def where(self, key: str) -> str:
        """A human name for the key (oss://bucket/key), for messages."""
        ...

    def get(self, key: str) -> AnswerRecord | None:
        """The record under `key`, or None."""
        ...

    def put_if_absent(self, key: str, record: AnswerRecord) -> bool:
        """Store the record only if nothing is under `key`; False when something is."""
        ...

    def update(self, key: str, record: AnswerRecord) -> None:
        """Replace the record under `key` (used only by the one invocation holding its take-over lock)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the record under `key`, if any."""
        ...


# A segment as `segment` writes it (a record's source carries its id so): used as it is.
_ENCODED = r"(?:[A-Za-z0-9_.:~-]|%[0-9A-F]{2})+"


def _encoded(text: str) -> str:
    if re.fullmatch(_ENCODED, text) and text not in (".", "..") and len(text) <= MAX_SEGMENT:
        return text
    return segment(text)  # not from the decoder (a caller's own text): made safe here


def answer_key(source: str | None) -> str | None:
    """The key (under the output prefix) of a record's answer, or None for a record without a delivery id."""
    if not source:
        return None
    if source.startswith("mns:") and len(source) > 4:
        return f"mns/{_encoded(source[4:])}.json"  # the id exactly as the log line's source shows it
    if source.startswith("timer:") and len(source) > 6:
        return f"timer/{source[6:]}.json"  # built from segments already made safe
    return None


MARKERS = ".pending/"  # every in-progress marker, of every answer, lives under <QWEN_OSS_OUTPUT_PREFIX>.pending/


def pending_key(key: str) -> str:
    """Where the in-progress marker of the answer under `key` lives: one folder for all, so one DeleteObject
    grant and one lifecycle rule cover every marker."""
    return f"{MARKERS}{key}"


def payload_hash(question: Question) -> str:
    """What was asked, hashed: the same delivery id with a different question is a conflict, not a hit."""
    asked = {
        "text": question.text,
        "messages": [_hashed(m) for m in question.messages] if question.messages else None,
        "model": question.model,
        "parameters": dict(question.parameters),
    }
    if question.documents:
        # A document by its object version: the same bucket, key and eTag are the same bytes, never hashed here
        # (its name holds the bucket: another bucket's object of the same key is another question).
        asked["documents"] = [[document.name, document.key, document.etag] for document in question.documents]
    if question.document_refs:
        asked["document_refs"] = [[ref.bucket, ref.key] for ref in question.document_refs]
    canonical = json.dumps(asked, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _hashed(message: Message) -> dict[str, object]:
    """Role and text as always (stored answers of text questions keep their hash), plus the parts in order
    when there are images: another image, or another order, is another question."""
    hashed: dict[str, object] = {**message.to_dict()}
    if message.images:
        hashed["parts"] = [list(part) for part in message.ordered()]
    return hashed


def refusal_hash(refusal: Result) -> str:
    """The payload hash of a stored refusal (a malformed record, nothing asked): never equal to a question's."""
    canonical = json.dumps({"refused": refusal.code, "message": refusal.message}, sort_keys=True, ensure_ascii=False)
    return "refused-" + hashlib.sha256(canonical.encode()).hexdigest()


class OssAnswerStore:
    """Records as OSS objects: a completed one is the result JSON as returned, the other fields user metadata
    (x-oss-meta-status, -payload-hash, -owner, -deadline, -generation); put_if_absent is PutObject with
    x-oss-forbid-overwrite."""

    def __init__(self, store: ObjectStore, bucket: str, prefix: str):
        self._store = store
        self.bucket = bucket
        self.prefix = prefix

    def where(self, key: str) -> str:
        return shown_object(self.bucket, self.prefix + key)  # escaped and bounded: it goes into messages

    def get(self, key: str) -> AnswerRecord | None:
        try:
            stored = self._store.read(self.bucket, self.prefix + key, max_bytes=None)
        except ObjectNotFound:
            return None
        meta = stored.metadata
        status = meta.get("status", COMPLETED)
        result = loads(stored.data) if status == COMPLETED else None
        if status == COMPLETED and result is None:
            return None  # not one of ours (or cut short): treat as absent, never as an answer
        return AnswerRecord(
            status=status,
            payload_hash=meta.get("payload-hash", ""),
            owner=meta.get("owner", ""),
            deadline=_float(meta.get("deadline")),
            generation=int(_float(meta.get("generation")) or 1),
            result=result,
        )

    def put_if_absent(self, key: str, record: AnswerRecord) -> bool:
        return self._store.create(self.bucket, self.prefix + key, record_body(record), metadata=_metadata(record))

    def update(self, key: str, record: AnswerRecord) -> None:
        self._store.write(self.bucket, self.prefix + key, record_body(record), metadata=_metadata(record))

    def delete(self, key: str) -> None:
        self._store.delete(self.bucket, self.prefix + key)


def record_body(record: AnswerRecord) -> bytes:
    """The object's body: a completed record's result JSON, else a small in-progress note."""
    if record.status == COMPLETED and isinstance(record.result, Result):
        # Masked as the invocation's return value is: an upstream message may echo the API key.
        return redact.redact(dumps(record.result)).encode()
    return json.dumps({"status": IN_PROGRESS, "owner": record.owner, "deadline": record.deadline}).encode()


def _metadata(record: AnswerRecord) -> dict[str, str]:
    return {
        "status": record.status,
        "payload-hash": record.payload_hash,
        "owner": record.owner,
        "deadline": f"{record.deadline:.3f}",
        "generation": str(record.generation),
    }


def _float(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0
