"""A request's documents opened in the delivery stage (deliver/oss_documents.py): the bucket checked before any
read, head and tail sniffed, the size limit, each source pinned to the eTag read; the payload hash covers them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handler.config import settings_for
from handler.deliver import oss_documents
from handler.deliver.answers import payload_hash
from handler.deliver.store import ObjectReplaced, StoredObject
from handler.errors import InvalidInput, ObjectNotFound
from handler.events.question import OssRef, Question
from tests.conftest import API_KEY

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << /Root 1 0 R >>\nstartxref\n9\n%%EOF\n"


class Objects:
    """Objects in memory, each read recorded; `replaced` changes an object's eTag after its first read."""

    def __init__(self, **objects: bytes) -> None:
        self.objects = {key: (data, f'"E{i}"') for i, (key, data) in enumerate(objects.items())}
        self.reads: list[tuple[str, str, int, int | None]] = []
        self.replaced: set[str] = set()

    def read(self, bucket: str, key: str, *, max_bytes: int | None = None, start: int = 0) -> StoredObject:
        self.reads.append((bucket, key, start, max_bytes))
        if key not in self.objects:
            raise ObjectNotFound(f"oss://{bucket}/{key} is gone")
        data, etag = self.objects[key]
        if key in self.replaced and len(self.reads) > 1:
            etag = '"NEWER"'
        end = len(data) if max_bytes is None else start + max_bytes + 1
        return StoredObject(data=data[start:end], size=len(data), etag=etag)

    def stream(self, bucket: str, key: str, chunk_size: int, *, etag: str | None = None) -> Iterator[bytes]:
        data, current = self.objects[key]
        assert current.strip('"') == etag
        yield data


@pytest.fixture
def settings():
    return settings_for(
        {"DASHSCOPE_API_KEY": API_KEY, "QWEN_OSS_BUCKETS": "qwen-docs", "QWEN_OSS_MAX_DOCUMENT_BYTES": "4096"}
    )


def asking(*keys: str, bucket: str = "qwen-docs") -> Question:
    return Question(text="总结", document_refs=tuple(OssRef(bucket=bucket, key=key) for key in keys))


def test_a_pdf_is_opened_and_pinned_to_the_etag_read(settings):
    store = Objects(**{"a.pdf": PDF})
    question = oss_documents.resolve(asking("a.pdf"), store, settings)
    (source,) = question.documents
    assert (source.name, source.kind, source.size, source.etag, source.key) == (
        "oss://qwen-docs/a.pdf",
        "pdf",
        len(PDF),
        "E0",
        "a.pdf",
    )
    assert question.text == "总结" and question.document_refs == ()
    assert b"".join(source.chunks()) == PDF


def test_another_bucket_is_refused_before_any_read(settings):
    store = Objects(**{"a.pdf": PDF})
    with pytest.raises(InvalidInput) as refused:
        oss_documents.resolve(
            Question(text="x", document_refs=(OssRef("qwen-docs", "a.pdf"), OssRef("other", "a.pdf"))), store, settings
        )
    assert refused.value.code == "DocumentNotAllowed" and refused.value.status_code == 400
    assert "oss://other/a.pdf" in refused.value.message and "QWEN_OSS_BUCKETS" in refused.value.message
    assert store.reads == []


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (b"just text, not a document", "DocumentUnsupported", 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "DocumentUnsupported", 415),
        (b"", "DocumentEmpty", 400),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n", "DocumentCorrupt", 415),
        (PDF.replace(b"/Root 1 0 R", b"/Root 1 0 R /Encrypt 2 0 R"), "DocumentEncrypted", 415),
        (PDF[:-6] + b" " * 5000 + b"\n%%EOF\n", "DocumentTooLarge", 413),
    ],
)
def test_refusals_as_for_oss_files(settings, data, code, status):
    with pytest.raises(InvalidInput) as refused:
        oss_documents.resolve(asking("a.pdf"), Objects(**{"a.pdf": data}), settings)
    assert (refused.value.code, refused.value.status_code) == (code, status), refused.value.message
    assert "oss://qwen-docs/a.pdf" in refused.value.message


def test_a_missing_object_is_a_404_refusal(settings):
    with pytest.raises(InvalidInput) as refused:
        oss_documents.resolve(asking("gone.pdf"), Objects(), settings)
    assert (refused.value.code, refused.value.status_code) == ("ObjectNotFound", 404)
    assert "oss://qwen-docs/gone.pdf" in refused.value.message


def test_a_tail_read_from_a_newer_version_is_refused(settings):
    large = PDF[:-6] + b" " * (70 * 1024) + b"\n%%EOF\n"  # head and tail are two reads
    store = Objects(**{"big.pdf": large})
    store.replaced.add("big.pdf")
    settings = settings_for({"DASHSCOPE_API_KEY": API_KEY, "QWEN_OSS_BUCKETS": "qwen-docs"})
    with pytest.raises(ObjectReplaced) as replaced:
        oss_documents.resolve(asking("big.pdf"), store, settings)
    assert replaced.value.status_code == 409 and len(store.reads) == 2


def test_the_payload_hash_covers_bucket_key_and_etag(settings):
    def hashed(bucket: str, key: str, data: bytes) -> str:
        store = Objects(**{key: data})
        return payload_hash(oss_documents.resolve(asking(key, bucket=bucket), store, settings))

    settings = settings_for({"DASHSCOPE_API_KEY": API_KEY, "QWEN_OSS_BUCKETS": "qwen-docs,qwen-more"})
    first = hashed("qwen-docs", "a.pdf", PDF)
    assert first == hashed("qwen-docs", "a.pdf", PDF)
    assert first != hashed("qwen-more", "a.pdf", PDF)  # another bucket's object of the same key
    assert first != hashed("qwen-docs", "b.pdf", PDF)
    replaced = Objects(**{"x.pdf": PDF, "a.pdf": PDF})  # the same key, another eTag: another version
    assert first != payload_hash(oss_documents.resolve(asking("a.pdf"), replaced, settings))
    assert payload_hash(asking("a.pdf")) != payload_hash(asking("b.pdf"))  # unopened names are covered too
    assert payload_hash(asking("a.pdf")) != payload_hash(Question(text="总结"))
