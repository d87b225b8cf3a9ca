"""OSS question files: read the object an OSS event names, answer it, write the answer beside it.

The flow for one `OssObject` record, in order:
  under the output prefix          -> Skipped (our own answer file: the loop guard)
  answered by this instance        -> the remembered Result
  answer file with the same eTag   -> the stored Result (a redelivery on another instance)
  otherwise                        -> read (size and text checked), ask, remember, write
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from handler import redact
from handler.config import Settings
from handler.decode import decode_text
from handler.errors import InvalidInput, ObjectNotFound, QwenError
from handler.fc_context import Credentials, Invocation
from handler.memory import AnsweredRecords
from handler.question import OssObject, Question
from handler.result import Result, dumps, loads
from handler.store import SOURCE_ETAG_META, ObjectStore, endpoint_for

Ask = Callable[[Question, dict[str, Any]], tuple[Result, int]]


@dataclass
class OssQuestionFiles:
    """One invocation's OSS question files; the stores are shared by the records of a batch."""

    settings: Settings
    invocation: Invocation
    store_factory: Callable[[Credentials, str], ObjectStore]
    memory: AnsweredRecords
    _stores: dict[str, ObjectStore] = field(default_factory=dict)
    _stores_lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(
        self, obj: OssObject, fields: dict[str, Any], ask: Ask, skipped: Callable[[str], Result]
    ) -> tuple[Result, int]:
        prefix = self.settings.oss_output_prefix
        if obj.key.startswith(prefix):
            # Our own answer file: answering it would write another answer, and so on for ever.
            return skipped(f"the object is under the output prefix {prefix} (loop guard)"), 0
        answer_key = f"{prefix}{obj.key}.json"
        fields["answer_key"] = answer_key
        store = self._store(obj.region)
        etag = _etag(obj.etag)
        memo = f"{obj.source}@{etag}"
        attempts = 0
        result = self.memory.get(memo)
        if result is not None:
            fields["remembered"] = True
        else:
            stored = self._stored_answer(store, obj.bucket, answer_key, etag)
            if stored is not None:
                fields["already_answered"] = True
                return stored, 0
            question = self._read_question(store, obj)
            result, attempts = ask(question, fields)
            self.memory.put(memo, result)
        store.write(obj.bucket, answer_key, dumps(result).encode(), metadata={SOURCE_ETAG_META: etag or ""})
        return result, attempts

    def _store(self, region: str | None) -> ObjectStore:
        endpoint = endpoint_for(region or self.invocation.region, self.settings.oss_endpoint)
        creds = self.invocation.credentials
        if creds is not None:
            # oss2 logs its request headers at DEBUG, the STS token among them.
            redact.remember([creds.access_key_secret, creds.security_token])
        if endpoint is None or creds is None:
            missing = "credentials (the function needs a role)" if creds is None else "a region or QWEN_OSS_ENDPOINT"
            raise QwenError(f"cannot reach OSS without {missing}", code="OssNotConfigured")
        with self._stores_lock:
            if endpoint not in self._stores:
                self._stores[endpoint] = self.store_factory(creds, endpoint)
            return self._stores[endpoint]

    def _stored_answer(self, store: ObjectStore, bucket: str, key: str, etag: str | None) -> Result | None:
        """The answer already written for this version of the object, if any (a redelivered event)."""
        if not etag:
            return None
        try:
            stored = store.read(bucket, key, max_bytes=None)
        except ObjectNotFound:
            return None
        if _etag(stored.metadata.get(SOURCE_ETAG_META)) != etag:
            return None
        result = loads(stored.data)
        return result if result is not None and result.ok else None

    def _read_question(self, store: ObjectStore, obj: OssObject) -> Question:
        cap = self.settings.oss_max_bytes
        too_large = InvalidInput(
            f"{obj.source} is larger than QWEN_OSS_MAX_BYTES ({cap} bytes)", code="ObjectTooLarge", status_code=413
        )
        if obj.size is not None and obj.size > cap:
            raise too_large
        stored = store.read(obj.bucket, obj.key, max_bytes=cap)
        if stored.size > cap or len(stored.data) > cap:
            raise too_large
        try:
            text = stored.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = None
        if text is None or "\x00" in text:
            raise InvalidInput(f"{obj.source} is not UTF-8 text", code="ObjectNotText", status_code=415)
        record = decode_text(text)
        if isinstance(record, InvalidInput):
            record.source = obj.source
            raise record
        if not isinstance(record, Question):
            raise InvalidInput(f"{obj.source} holds no question", code="InvalidEvent")
        return record


def _etag(value: str | None) -> str | None:
    return value.strip('"').upper() if value else None
