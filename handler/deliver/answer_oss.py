"""The answer store in an OSS bucket (QWEN_ANSWER_BUCKET), over the ObjectStore seam.

A completed record's object is the result JSON exactly as the invocation returned it, so it can be
read, listed and fed to other services as it is; the record's other fields travel as user metadata
(x-oss-meta-status, -payload-hash, -owner, -deadline, -generation), never event text.
`put_if_absent` is PutObject with `x-oss-forbid-overwrite: true` (409 FileAlreadyExists when the
key exists): https://www.alibabacloud.com/help/en/oss/developer-reference/putobject
"""

from __future__ import annotations

import json

from handler import redact
from handler.deliver.answers import COMPLETED, IN_PROGRESS, AnswerRecord
from handler.deliver.store import ObjectStore, shown_object
from handler.errors import ObjectNotFound
from handler.result import Result, dumps, loads


class OssAnswerStore:
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
