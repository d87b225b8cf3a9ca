"""OSS question files: read the object an OSS event names, answer it, write the answer beside it.

For one `OssObject` record, in order:
  bucket not in QWEN_OSS_BUCKETS   -> 403 BucketNotAllowed, no OSS request and no DashScope call
  under the output prefix          -> Skipped (our own answer file: the loop guard); a sidecar too
  no eTag in the event             -> read, ask, write: no version to recognise a redelivery by
  answered by this instance        -> the remembered Result (written again only if it was not stored)
  otherwise, exactly once across instances (once.py) for this key and eTag: the stored answer, another
  instance's, or read (size and bytes checked), ask and write `<prefix><key>.json`
An image (by its bytes) is asked of QWEN_VISION_MODEL as a data: URI with QWEN_IMAGE_PROMPT or its
sidecar `<key>.txt`; a document (by its head and tail) is streamed to QWEN_DOCUMENT_MODEL by file id with
QWEN_DOCUMENT_PROMPT or its sidecar; a refused file gets its refusal as its answer file. The answer file's
x-oss-meta-source-etag names the version it answers; each version has its own in-progress marker
under `<prefix>.pending/` (docs/answers-and-exactly-once.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from handler import logs, redact
from handler.ask.account import is_account_level
from handler.config import Settings
from handler.deliver import budget, oss_documents, versioning
from handler.deliver.answers import COMPLETED, AnswerRecord, OssAnswerStore, pending_key, record_body
from handler.deliver.context import Ask, DeliveryContext
from handler.deliver.once import ASKED, SupersededAnswer, kept, problem_of, with_retries
from handler.deliver.store import (
    SOURCE_ETAG_META,
    ObjectStore,
    StoredObject,
    shown_object,
    store_reserve,
)
from handler.errors import InvalidInput, ObjectNotFound, QwenError
from handler.events import documents, images
from handler.events.decode import NOT_UTF8_HINT, decode_text
from handler.events.question import DocumentSource, Message, OssObject, Question
from handler.outcome import Outcome
from handler.result import Result, dumps, loads
from handler.values import replace

DOCUMENT_SUFFIXES = (".pdf", ".docx", ".xlsx", ".pptx", ".epub", ".mobi", ".doc", ".xls", ".ppt")
# After the answer: HeadObject the source, write the answer file, and on failure read and delete the marker.
STORE_REQUESTS = 4


class ReplacedSinceEvent(Exception):
    """The object was replaced since the event: the newer version's own event answers it."""


class QuestionFileAnswers(OssAnswerStore):
    """The answer store of one version (key + eTag) of a question file: the answer file, shared by the
    versions, counts as absent unless its source eTag is this one, and only this version's marker holder
    replaces it."""

    def __init__(self, store: ObjectStore, bucket: str, prefix: str, key: str, etag: str):
        super().__init__(store, bucket, prefix)
        self.etag = etag
        self.source = key
        self.answer = f"{key}.json"
        self.marker = pending_key(f"{self.answer}@{etag}")  # one per version, under the one markers folder

    def get(self, key: str) -> AnswerRecord | None:
        if key != self.answer:
            return super().get(key)
        try:
            stored = self._store.read(self.bucket, self.prefix + key, max_bytes=None)
        except ObjectNotFound:
            return None
        if _etag(stored.metadata.get(SOURCE_ETAG_META)) != self.etag:
            return None  # the answer to another version of the file
        result = loads(stored.data)
        if result is None or result.status_code >= 500 or is_account_level(result):
            # Not an answer: our own failure (written so the uploader sees it), or an account-level
            # refusal an earlier release wrote (a revoked key's 401): ask again.
            return None
        return AnswerRecord(COMPLETED, self.etag, result=result)  # this version's: its eTag is its payload hash

    def put_if_absent(self, key: str, record: AnswerRecord) -> bool:
        if key != self.answer:
            return super().put_if_absent(key, record)
        # The answer file is shared by the versions and OSS cannot make a PUT conditional on another
        # object: look at the source's eTag just before writing (one HeadObject), so a slow answer to
        # an older upload never replaces the newer one's (the window left is this HEAD's round trip).
        current = _etag(self._store.etag(self.bucket, self.source))
        if current is not None and current != self.etag:
            raise SupersededAnswer(shown_object(self.bucket, self.source), self.etag, current)
        self._store.write(self.bucket, self.prefix + key, record_body(record), metadata={SOURCE_ETAG_META: self.etag})
        return True


class OssQuestionFiles:
    """One invocation's OSS question files; the OSS client is shared by the records of a batch."""

    def __init__(self, ctx: DeliveryContext) -> None:
        self.ctx = ctx

    def answer(self, obj: OssObject, outcome: Outcome, ask: Ask) -> Result:
        refused = self._not_answered(obj)
        if refused is not None:
            return refused
        if obj.key.lower().endswith(".jsonl"):
            from handler.deliver import jsonl_files  # a file of questions, one a line: its own route

            return jsonl_files.answer(self.ctx, obj, outcome, ask)
        answer_key = f"{self.ctx.settings.oss_output_prefix}{obj.key}.json"
        outcome.note(answer_key=_where(obj, answer_key))
        store = self.ctx.access.store()
        versioning.check(store, obj.bucket, "QWEN_OSS_BUCKETS")  # before anything is asked (see versioning.py)
        etag = _etag(obj.etag)

        def asked() -> Result:
            # The file's memory is held from before its bytes are read until its answer is done.
            most = max(self.ctx.settings.oss_max_bytes, self.ctx.settings.max_image_bytes)
            with budget.INSTANCE.held(budget.COST_PER_BYTE * (most if obj.size is None else min(obj.size, most))):
                return self._read_and_ask(store, obj, etag, outcome, ask)

        if etag is None:
            # Without a version there is no telling a redelivery from a new upload: answered each time.
            result = asked()
            return kept(result, self._write(store, obj.bucket, answer_key, result, None), _where(obj, answer_key))
        return self._answer_version(store, obj, etag, outcome, asked)

    def _not_answered(self, obj: OssObject) -> Result | None:
        """The refusal or skip of an object that is not a question to answer here; None for one that is."""
        if obj.bucket not in self.ctx.settings.oss_buckets:
            # Checked before any request: the bucket becomes the host the signed requests go to.
            return Result.failure(_not_allowed(obj, self.ctx.settings), self.ctx.request_id)
        prefix = self.ctx.settings.oss_output_prefix
        if obj.key.startswith(prefix):
            # Our own answer file: answering it would write another answer, and so on for ever.
            return Result.skipped(f"the object is under the output prefix {prefix} (loop guard)", self.ctx.request_id)
        if obj.key.lower().endswith(_SIDECARS):
            # photo.jpg.txt is photo.jpg's instruction (report.pdf.txt report.pdf's), read when that file is answered.
            image = obj.key[: -len(".txt")]
            why = f"the object is the instruction sidecar of {image}, read when that file is answered"
            return Result.skipped(why, self.ctx.request_id)
        return None

    def _answer_version(
        self, store: ObjectStore, obj: OssObject, etag: str, outcome: Outcome, asked: Callable[[], Result]
    ) -> Result:
        """One version (key + eTag) of a question file: remembered, stored, or asked once across instances."""
        files = QuestionFileAnswers(store, obj.bucket, self.ctx.settings.oss_output_prefix, obj.key, etag)
        once = self.ctx.once(files)
        where = files.where(files.answer)
        memo = f"{obj.source}@{etag}"
        remembered = self.ctx.memory.entry(memo)
        if remembered is not None:
            outcome.note(remembered=True)
            return once.recall(self.ctx.memory, memo, files.answer, etag, remembered)
        try:
            answered = once.answer(files.answer, etag, asked, marker=files.marker)
        except ReplacedSinceEvent as newer:
            return Result.skipped(str(newer), self.ctx.request_id)
        if answered.how != ASKED:
            outcome.note(answered_by=answered.how)  # stored, waited or superseded: not asked here
        result, problem = answered.result, answered.problem
        if not answered.claimed and problem is not None:
            # Answered without exactly-once: say so, or a missing grant would only ever cost double asks.
            logs.emit(
                "answer_marker_unavailable",
                level=logging.WARNING,
                answer_key=files.where(files.marker),
                code=problem.code,
                message=problem.message,
            )
        if answered.how == ASKED and (not answered.claimed or result.status_code >= 500):
            # No marker could be made (the store refused before we asked), or our own failure, which
            # once.py does not keep: the answer file is still written so the uploader finds it.
            problem = self._write(store, obj.bucket, f"{files.prefix}{files.answer}", result, etag)
            if result.status_code >= 500:
                problem = None  # not a paid answer: a redelivery asks again, nothing to remember
        if result.status_code < 500:
            # A superseded version has nothing more to write, ever: remembered as stored.
            stored = problem is None or isinstance(problem, SupersededAnswer)
            self.ctx.memory.put(memo, result, stored=stored)
        return kept(result, problem, where)

    def _read_and_ask(self, store: ObjectStore, obj: OssObject, etag: str | None, outcome: Outcome, ask: Ask) -> Result:
        """Apart from asked(): its question is gone when the budget frees the garbage the file left."""
        try:
            question = self._read_question(store, obj, etag)
        except InvalidInput as refusal:
            return Result.failure(refusal, self.ctx.request_id)
        if not question.documents:
            return ask(question, outcome, reserve=store_reserve(STORE_REQUESTS))
        try:
            return ask(question, outcome, reserve=store_reserve(STORE_REQUESTS))
        except InvalidInput as refusal:
            # A document refused on the way (its model, its kind, its parsing): the answer file says why.
            return Result.failure(refusal, self.ctx.request_id)

    def _write(self, store: ObjectStore, bucket: str, key: str, result: Result, etag: str | None) -> QwenError | None:
        """Write the answer file, again after transient failures while the deadline allows; the problem if not."""
        data = redact.redact(dumps(result)).encode()  # as the return value: an upstream message may echo the key
        try:
            with_retries(lambda: store.write(bucket, key, data, metadata={SOURCE_ETAG_META: etag or ""}), self.ctx)
        except Exception as error:  # noqa: BLE001  # whatever failed, the paid answer must still be returned
            return problem_of(error, f"cannot write {shown_object(bucket, key)}")
        return None

    def _read_question(self, store: ObjectStore, obj: OssObject, etag: str | None) -> Question:
        cap = self.ctx.settings.oss_max_bytes
        named_document = obj.key.lower().endswith(DOCUMENT_SUFFIXES)
        image_cap = self.ctx.settings.max_image_bytes
        too_large = InvalidInput(
            f"{_shown(obj)} is larger than QWEN_OSS_MAX_BYTES ({cap} bytes)", code="ObjectTooLarge", status_code=413
        )
        image_too_large = InvalidInput(
            f"{_shown(obj)} is larger than QWEN_OSS_MAX_IMAGE_BYTES ({image_cap} bytes) for an image",
            code="ImageTooLarge",
            status_code=413,
        )
        # The bytes decide what a file is; the name only decides how much may be read to find out:
        # an image suffix up to the image limit, any other name up to the text limit (so a large
        # file is still refused by its announced size before any read).
        pictured = obj.key.lower().endswith(images.SUFFIXES)
        limit = max(cap, image_cap) if pictured else cap
        too_much = image_too_large if pictured and image_cap >= cap else too_large
        if obj.size is not None and obj.size > limit and not named_document:
            raise too_much
        # A document's name lets its head be read whatever its size; the bytes then say what it is.
        stored = store.read(obj.bucket, obj.key, max_bytes=documents.HEAD_BYTES if named_document else limit)
        _check_version(obj, etag, stored)
        if stored.size > 0 or named_document:
            document = oss_documents.sniff_document(
                store,
                obj.bucket,
                obj.key,
                stored,
                lambda later: _check_version(obj, etag, later),
                refuse=named_document,
            )
            if document is not None:
                return self._document_question(store, obj, etag, stored, document)
        if stored.size > len(stored.data) and named_document:
            # Named as a document, holding none: read as the text or image it is, within their limits.
            if stored.size > limit:
                raise too_much
            stored = store.read(obj.bucket, obj.key, max_bytes=limit)
            _check_version(obj, etag, stored)
        sniffed = images.sniff(stored.data)
        if sniffed.kind is not None and not sniffed.corrupt:
            if stored.size > image_cap or len(stored.data) > image_cap:
                raise image_too_large
            if stored.size > limit or len(stored.data) > limit:
                raise too_large  # an image under another name, larger than the text limit it was read to
            uri = images.encoded(stored.data, sniffed)
            del stored  # the only reference to the object's bytes: freed before the URI's text is made
            return self._image_question(store, obj, uri)
        if sniffed.corrupt:
            raise InvalidInput(
                f"{_shown(obj)} starts like a {sniffed.kind.upper()} image but its header is broken",
                code="ImageCorrupt",
                status_code=415,
            )
        if stored.size > cap or len(stored.data) > cap:
            raise too_large
        try:
            text = stored.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = None
        if text is None or "\x00" in text:
            # Bytes without NUL that are not UTF-8 are most often text saved as GBK: say how to convert it.
            hint = f" ({NOT_UTF8_HINT})" if text is None and b"\x00" not in stored.data else ""
            raise InvalidInput(
                f"{_shown(obj)} is neither UTF-8 text nor a PNG, JPEG, WEBP, GIF or BMP image{hint}",
                code="ObjectNotText",
                status_code=415,
            )
        record = decode_text(text)
        if isinstance(record, InvalidInput):
            record.source = obj.source
            raise record
        if not isinstance(record, Question):
            raise InvalidInput(f"{_shown(obj)} holds no question", code="InvalidEvent")
        if record.document_refs:
            return oss_documents.resolve(record, store, self.ctx.settings)  # a request file naming documents
        if record.text == text.lstrip("\ufeff").strip():
            # The file's own text is the question: kept as a `txt` document for when it outgrows the text model.
            asked, version = record.text, etag or _etag(stored.etag) or ""
            size = len(asked.encode())  # encoded again only if it is uploaded: one copy of the text is held

            def chunks() -> Iterator[bytes]:
                return iter((asked.encode(),))

            source = DocumentSource(_shown(obj), "txt", size, version, obj.key, chunks)
            return replace(record, text_document=source)
        return record

    def _document_question(
        self, store: ObjectStore, obj: OssObject, etag: str | None, stored: StoredObject, document: documents.Document
    ) -> Question:
        """The document, streamed from OSS as it is uploaded, and its instruction (sidecar or QWEN_DOCUMENT_PROMPT)."""
        version = etag or _etag(stored.etag) or ""
        settings = self.ctx.settings
        source = oss_documents.document_source(
            store, obj.bucket, obj.key, version, stored.size, document.kind, settings
        )
        instruction = self._sidecar(store, obj) or settings.document_prompt
        return Question(text=instruction, documents=(source,))

    def _image_question(self, store: ObjectStore, obj: OssObject, uri: bytearray) -> Question:
        """The image and its instruction: the sidecar `<key>.txt` if it holds text, else QWEN_IMAGE_PROMPT."""
        image = uri.decode("ascii")
        uri.clear()  # the text is what is sent: one copy of the image's base64 stays, not two
        instruction = self._sidecar(store, obj) or self.ctx.settings.image_prompt
        return Question(messages=(Message("user", instruction, images=(image,)),))

    def _sidecar(self, store: ObjectStore, obj: OssObject) -> str | None:
        """The text of the instruction sidecar `<key>.txt`, None when there is none or it holds no text."""
        try:
            sidecar = store.read(obj.bucket, obj.key + ".txt", max_bytes=self.ctx.settings.oss_max_bytes)
        except ObjectNotFound:
            return None
        if len(sidecar.data) > self.ctx.settings.oss_max_bytes:
            return None
        try:
            text = sidecar.data.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            return None
        return text if text and "\x00" not in text else None


def _not_allowed(obj: OssObject, settings: Settings) -> QwenError:
    if settings.oss_buckets:
        why = f"the bucket {obj.bucket} is not in QWEN_OSS_BUCKETS"
    else:
        why = "QWEN_OSS_BUCKETS is not set, so no bucket's question files are answered"
    return QwenError(
        f"{_shown(obj)} not read: {why}. The function reads and writes only the buckets its configuration "
        f"lists; add {obj.bucket} to QWEN_OSS_BUCKETS (comma-separated bucket names) to answer files uploaded there",
        code="BucketNotAllowed",
        status_code=403,
    )


def _where(obj: OssObject, answer_key: str) -> str:
    return shown_object(obj.bucket, answer_key)


_SIDECARS = tuple(f"{suffix}.txt" for suffix in (*images.SUFFIXES, *DOCUMENT_SUFFIXES))


def _check_version(obj: OssObject, etag: str | None, stored: StoredObject) -> None:
    """Answering a newer version under this event's eTag would mislabel it, and could replace the answer
    the newer version's event writes."""
    current = _etag(stored.etag)
    if etag and current and current != etag:
        raise ReplacedSinceEvent(
            f"{_shown(obj)} now has eTag {current}, not this event's {etag}: it was replaced since, and the new "
            "upload's own event answers it; nothing asked or written"
        )


def _etag(value: str | None) -> str | None:
    return value.strip('"').upper() if value else None


def _shown(obj: OssObject) -> str:
    return shown_object(obj.bucket, obj.key)
