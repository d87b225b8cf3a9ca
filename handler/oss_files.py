"""OSS question files: read the object an OSS event names, answer it, write the answer beside it.

The flow for one `OssObject` record, in order:
  under the output prefix          -> Skipped (our own answer file: the loop guard), nothing written
  answered by this instance        -> the remembered Result (written again only if it was not stored)
  answer file with the same eTag   -> the stored Result (a redelivery on another instance)
  otherwise                        -> read (size and text checked), ask, remember, write
A refused file (too large, not text, holds no question) gets its refusal written as its answer file,
so whoever uploaded it learns why. Writes are retried within the deadline; an answer that still
cannot be written is returned with code AnswerNotStored (where, and which permission is missing),
never dropped, and the instance remembers it. The OSS endpoint and credentials are the function's
own (`OssAccess`): an event names only the bucket and key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handler import redact
from handler.config import Settings
from handler.decode import decode_text
from handler.errors import InvalidInput, ObjectNotFound, QwenError
from handler.memory import AnsweredRecords
from handler.once import not_stored, with_retries
from handler.question import OssObject, Question
from handler.result import Result, dumps, loads
from handler.retry import Backoff
from handler.store import SOURCE_ETAG_META, ObjectStore, OssAccess

Ask = Callable[[Question, dict[str, Any]], tuple[Result, int]]


@dataclass
class OssQuestionFiles:
    """One invocation's OSS question files; the OSS client is shared by the records of a batch."""

    settings: Settings
    access: OssAccess
    memory: AnsweredRecords
    request_id: str
    remaining: Callable[[], float]
    sleep: Callable[[float], None]
    backoff: Backoff

    def answer(
        self, obj: OssObject, fields: dict[str, Any], ask: Ask, skipped: Callable[[str], Result]
    ) -> tuple[Result, int]:
        prefix = self.settings.oss_output_prefix
        if obj.key.startswith(prefix):
            # Our own answer file: answering it would write another answer, and so on for ever.
            return skipped(f"the object is under the output prefix {prefix} (loop guard)"), 0
        answer_key = f"{prefix}{obj.key}.json"
        fields["answer_key"] = answer_key
        store = self.access.store()
        etag = _etag(obj.etag)
        memo = f"{obj.source}@{etag}"
        attempts = 0
        remembered = self.memory.entry(memo)
        if remembered is not None:
            fields["remembered"] = True
            result = remembered.result
            if remembered.stored:
                return result, 0
        else:
            stored = self._stored_answer(store, obj.bucket, answer_key, etag)
            if stored is not None:
                fields["already_answered"] = True
                return stored, 0
            try:
                question = self._read_question(store, obj)
            except InvalidInput as refusal:
                result = Result.failure(refusal, self.request_id)
                self._write(store, obj.bucket, answer_key, result, etag)  # a refusal unwritten is only logged
                return result, 0
            result, attempts = ask(question, fields)
        problem = self._write(store, obj.bucket, answer_key, result, etag)
        self.memory.put(memo, result, stored=problem is None)
        if problem is not None:
            return not_stored(result, problem, f"oss://{obj.bucket}/{answer_key}"), attempts
        return result, attempts

    def _write(self, store: ObjectStore, bucket: str, key: str, result: Result, etag: str | None) -> QwenError | None:
        """Write the answer file, again after transient failures while the deadline allows; the problem if not."""
        data = redact.redact(dumps(result)).encode()  # as the return value: an upstream message may echo the key
        try:
            with_retries(
                lambda: store.write(bucket, key, data, metadata={SOURCE_ETAG_META: etag or ""}),
                remaining=self.remaining,
                sleep=self.sleep,
                backoff=self.backoff,
            )
        except QwenError as problem:
            return problem
        except Exception as error:  # noqa: BLE001  # whatever failed, the paid answer must still be returned
            return QwenError(f"cannot write oss://{bucket}/{key} ({type(error).__name__})", code="OssError")
        return None

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
