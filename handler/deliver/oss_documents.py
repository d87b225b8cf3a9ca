"""OSS objects opened as documents: head and tail sniffed, the size limit, a `DocumentSource` streamed from OSS.

Shared by OSS document files (oss_files.py) and the documents a request names (`resolve`): a request's
`oss://bucket/key` is read only when its bucket is in QWEN_OSS_BUCKETS, checked before any request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from handler.config import Settings
from handler.deliver.store import SIGNED_URL_SECONDS, ObjectReplaced, ObjectStore, StoredObject, shown_object
from handler.errors import InvalidInput, ObjectNotFound
from handler.events import documents
from handler.events.question import DocumentSource, OssRef, Question
from handler.values import replace

STREAM_CHUNK = 1024 * 1024  # a document's bytes in flight between OSS and DashScope, at most

# What documents.sniff looks at first: a PDF header, a ZIP's first record, an OLE file's signature.
DOCUMENT_STARTS = (b"%PDF-", b"PK\x03\x04", b"PK\x05\x06", documents.OLE_SIGNATURE)


def sniff_document(
    store: ObjectStore,
    bucket: str,
    key: str,
    stored: StoredObject,
    check: Callable[[StoredObject], None],
    *,
    refuse: bool,
) -> documents.Document | None:
    """The document the head and tail show, None for no document. A refused one raises its InvalidInput
    when `refuse` (a document's name); else it is left to the caller's text and image checks. `check`
    refuses a tail read from another version than the head."""
    head = stored.data[: documents.HEAD_BYTES]
    if stored.size > 0 and not head.startswith(DOCUMENT_STARTS) and head[60:68] != b"BOOKMOBI":
        return None  # no document's signature: no tail read for text or an image
    if stored.size <= len(stored.data):
        tail = stored.data[-documents.TAIL_BYTES :] if stored.data else b""
    else:
        start = max(0, stored.size - documents.TAIL_BYTES)
        ending = store.read(bucket, key, start=start, max_bytes=stored.size - start - 1)
        check(ending)
        tail = ending.data[-documents.TAIL_BYTES :]
    found = documents.sniff(head, tail, stored.size)
    if isinstance(found, documents.Refusal):
        if refuse:
            raise found.error(shown_object(bucket, key))
        return None
    return found


def document_source(
    store: ObjectStore, bucket: str, key: str, version: str, size: int, kind: str, settings: Settings
) -> DocumentSource:
    """The document streamed from OSS as it is uploaded (pinned to `version`), within QWEN_OSS_MAX_DOCUMENT_BYTES."""
    most = settings.oss_max_document_bytes
    if size > most:
        raise InvalidInput(
            f"{shown_object(bucket, key)} is {size} bytes, larger than QWEN_OSS_MAX_DOCUMENT_BYTES ({most} bytes) "
            "for a document: nothing was uploaded; split it or raise the limit (at most qwen-long's 150 MB)",
            code="DocumentTooLarge",
            status_code=413,
        )

    def chunks() -> Iterator[bytes]:
        return store.stream(bucket, key, STREAM_CHUNK, etag=version or None)

    def signed_url() -> str:
        # The url route: this version only (checked by HeadObject), on the endpoint DashScope can reach.
        return store.sign_url(bucket, key, expires=SIGNED_URL_SECONDS, etag=version or None)

    return DocumentSource(shown_object(bucket, key), kind, size, version, key, chunks, signed_url=signed_url)


def refused(question: Question, settings: Settings) -> InvalidInput | None:
    """The refusal of a request naming an object outside QWEN_OSS_BUCKETS: made before any request."""
    for ref in question.document_refs:
        if ref.bucket not in settings.oss_buckets:
            why = (
                f"the bucket {ref.bucket} is not in QWEN_OSS_BUCKETS"
                if settings.oss_buckets
                else "QWEN_OSS_BUCKETS is not set, so no bucket's objects are read"
            )
            return InvalidInput(
                f"document {shown_object(ref.bucket, ref.key)} not read: {why}. A request may name only objects of "
                "the buckets the operator lists in QWEN_OSS_BUCKETS; nothing was read or asked",
                code="DocumentNotAllowed",
            )
    return None


def resolve(question: Question, store: ObjectStore, settings: Settings) -> Question:
    """The request's documents read by head and tail, each a DocumentSource pinned to the eTag read;
    `text` stays the instruction. Raises the refusal of the first document that cannot be asked."""
    refusal = refused(question, settings)
    if refusal is not None:
        raise refusal
    sources = tuple(_opened(store, ref, settings) for ref in question.document_refs)
    return replace(question, documents=(*question.documents, *sources), document_refs=())


def _opened(store: ObjectStore, ref: OssRef, settings: Settings) -> DocumentSource:
    try:
        stored = store.read(ref.bucket, ref.key, max_bytes=documents.HEAD_BYTES)
    except ObjectNotFound:
        # The request's input, not the record's own file: a refusal like the others, kept as its answer.
        raise InvalidInput(
            f"document {shown_object(ref.bucket, ref.key)} does not exist; check the name in 'documents'",
            code="ObjectNotFound",
            status_code=404,
        ) from None
    version = (stored.etag or "").strip('"').upper()

    def check(later: StoredObject) -> None:
        current = (later.etag or "").strip('"').upper()
        if version and current and current != version:
            raise ObjectReplaced(
                f"{shown_object(ref.bucket, ref.key)} was replaced while it was read; send the request again",
                code="ObjectReplaced",
                status_code=409,
            )

    found = sniff_document(store, ref.bucket, ref.key, stored, check, refuse=True)
    if found is None:
        raise InvalidInput(
            f"{shown_object(ref.bucket, ref.key)} is not a document: a request's documents must be PDF, Word, Excel, "
            "PowerPoint, EPUB or MOBI files (their bytes decide, not their names)",
            code="DocumentUnsupported",
            status_code=415,
        )
    return document_source(store, ref.bucket, ref.key, version, stored.size, found.kind, settings)
