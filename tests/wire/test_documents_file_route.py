"""OSS documents answered by Qwen-Long by file id, end to end: the real oss2 client against the OSS
stand-in, the real SDK and the files API against DashScope's stand-in (which serves both)."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest

from handler.app import Runtime, handle
from handler.ask.files import upload_name
from handler.config import DEFAULT_DOCUMENT_PROMPT
from handler.local.standin import MULTIMODAL_PATH, error
from handler.local.standin_files import PATH as FILES_PATH
from tests.support.documents_wire import BUCKET, CREDS, EPUB, archive, env, fc, generations, office, pdf, uploads, wire  # noqa: F401  # fixtures
from tests.support.events import oss_event as event_text
from tests.support.events import oss_record

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


FAMILIES = [
    ("report.pdf", pdf()),
    ("letter.docx", office("word/", "document.xml")),
    ("sheet.xlsx", office("xl/", "workbook.xml")),
    ("slides.pptx", office("ppt/", "presentation.xml")),
    ("book.epub", EPUB),
]


def ask(event: str, context, runtime: Runtime) -> dict:
    (result,) = json.loads(handle(event.encode(), context, runtime))
    return result


def upload(oss, key: str, data: bytes) -> str:
    stored = oss.put(BUCKET, key, data)
    return event_text(oss_record(key, bucket=BUCKET, etag=stored.etag, size=len(data)))


def content(result: dict) -> str:
    return result["output"]["choices"][0]["message"]["content"]


def answer_file(oss, key: str) -> dict:
    stored = oss.get(BUCKET, f"answers/{key}.json")
    assert stored is not None, "no answer file"
    return json.loads(stored.data)


@pytest.mark.parametrize(("name", "data"), FAMILIES)
def test_each_family_is_answered_by_file_id(standin, oss, wire, fc, logs, name, data):  # noqa: F811
    """The bytes arrive whole at the files API, the model reads them by file id, the file is deleted."""
    key = f"inbox/{name}"
    result = ask(upload(oss, key, data), fc, wire)
    assert result["status_code"] == 200, result
    said = content(result)
    assert f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}" in said
    (request,) = generations(standin)
    assert request.body["model"] == "qwen-long"
    system, files, user = request.body["input"]["messages"]
    assert system == {"role": "system", "content": "You are a helpful assistant."}
    assert files["role"] == "system" and files["content"].startswith("fileid://file-fe-")
    assert user == {"role": "user", "content": DEFAULT_DOCUMENT_PROMPT}
    (sent,) = uploads(standin)
    assert sent.fields["purpose"] == "file-extract"
    assert standin.files.files == {} and standin.files.deleted == [files["content"][len("fileid://") :]]
    assert answer_file(oss, key)["status_code"] == 200
    line = logs.events("question")[-1]
    assert line["document_parts"] == 1 and line["document_route"] == "file" and line["model"] == "qwen-long"
    assert "counted_input_tokens" not in line and line["cost_cny"] > 0


def test_the_upload_is_named_by_key_and_etag(standin, oss, wire, fc):  # noqa: F811
    data = pdf()
    stored = oss.put(BUCKET, "inbox/named.pdf", data)
    ask(event_text(oss_record("inbox/named.pdf", bucket=BUCKET, etag=stored.etag, size=len(data))), fc, wire)
    (sent,) = uploads(standin)
    assert sent.fields == {"purpose": "file-extract"}
    assert any(r.method == "GET" and r.path == FILES_PATH for r in standin.files.requests)  # looked for it first
    assert standin.files.deleted  # and removed it after
    assert upload_name("inbox/named.pdf", stored.etag, "pdf").endswith(".pdf")


def test_an_earlier_upload_of_the_same_version_is_reused(standin, oss, wire, fc):  # noqa: F811
    """A redelivery after a timeout finds its upload by name: nothing is uploaded twice."""
    data = pdf()
    stored = oss.put(BUCKET, "inbox/again.pdf", data)
    earlier = standin.files._store(
        upload_name("inbox/again.pdf", stored.etag.upper(), "pdf"), "file-extract", len(data), "0" * 64
    )
    result = ask(event_text(oss_record("inbox/again.pdf", bucket=BUCKET, etag=stored.etag, size=len(data))), fc, wire)
    assert result["status_code"] == 200 and f"file {earlier.id}" in content(result)
    assert uploads(standin) == [] and standin.files.deleted == [earlier.id]


def test_a_sidecar_replaces_the_prompt_and_is_not_answered_itself(standin, oss, wire, fc):  # noqa: F811
    oss.put(BUCKET, "inbox/plan.docx.txt", "这份计划的预算是多少?")
    result = ask(upload(oss, "inbox/plan.docx", office("word/", "document.xml")), fc, wire)
    assert result["status_code"] == 200
    assert generations(standin)[0].body["input"]["messages"][-1]["content"] == "这份计划的预算是多少?"
    standin.reset()
    skipped = ask(event_text(oss_record("inbox/plan.docx.txt", bucket=BUCKET, etag="ABC123")), fc, wire)
    assert skipped["code"] == "Skipped" and "sidecar" in skipped["message"] and standin.requests == []


@pytest.mark.parametrize(
    "failure",
    [
        error(500, "InternalError", "oops"),
        error(400, "InvalidParameter", "Range of input length should be [1, 10000000]"),
    ],
)
def test_the_file_is_deleted_after_a_failed_answer(standin, oss, wire, env, fc, failure):  # noqa: F811
    env["QWEN_MAX_ATTEMPTS"] = "1"
    standin.script(failure)
    try:
        result = ask(upload(oss, "inbox/failed.pdf", pdf()), fc, wire)
    except Exception:  # noqa: BLE001  # a 500 that stays is raised for redelivery
        result = None
    assert result is None or result["status_code"] == 400
    assert len(uploads(standin)) == 1 and standin.files.files == {} and len(standin.files.deleted) == 1


def test_a_delete_that_fails_is_logged_and_the_answer_stands(standin, oss, wire, fc, logs, monkeypatch):  # noqa: F811
    data = pdf()
    event = upload(oss, "inbox/kept.pdf", data)
    original = standin.files._next_failure

    def failing_delete():
        # Only the DELETE is failed: the list, upload and retrieve before it pass.
        last = standin.files.requests[-1] if standin.files.requests else None
        return (500, "InternalError", "down") if last is not None and last.method == "DELETE" else original()

    monkeypatch.setattr(standin.files, "_next_failure", failing_delete)
    result = ask(event, fc, wire)
    assert result["status_code"] == 200
    (warning,) = logs.events("document_delete_failed")
    assert warning["file_id"].startswith("file-fe-")


def test_parsing_in_progress_twice_then_answered(standin, oss, wire, fc, logs):  # noqa: F811
    standin.files.parsing = 2
    data = office("xl/", "workbook.xml")
    result = ask(upload(oss, "inbox/slow.xlsx", data), fc, wire)
    assert result["status_code"] == 200 and f"{len(data)} bytes" in content(result)
    assert len(generations(standin)) == 3 and standin.files.files == {}
    assert logs.events("question")[-1]["attempts"] == 3


def test_processing_is_awaited_before_asking(standin, oss, wire, fc):  # noqa: F811
    standin.files.processing = 2
    result = ask(upload(oss, "inbox/wait.pdf", pdf()), fc, wire)
    assert result["status_code"] == 200
    retrieves = [r for r in standin.files.requests if r.method == "GET" and r.path != FILES_PATH]
    assert len(retrieves) == 3 and len(generations(standin)) == 1


def zip_bomb() -> bytes:
    return archive({"[Content_Types].xml": b"<Types/>", "word/document.xml": bytes(8 * 1024 * 1024)})


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("empty.pdf", b"", 400, "DocumentEmpty"),
        ("cut.docx", office("word/", "document.xml")[:-30], 415, "DocumentCorrupt"),
        ("bomb.docx", zip_bomb(), 415, "ZipBomb"),
        ("locked.pdf", pdf(b"<< /Size 6 /Root 1 0 R /Encrypt 5 0 R >>"), 415, "DocumentEncrypted"),
    ],
)
def test_refusals_are_written_as_the_answer_file(standin, oss, wire, fc, name, data, status, code):  # noqa: F811
    key = f"inbox/{name}"
    result = ask(upload(oss, key, data), fc, wire)
    assert (result["status_code"], result["code"]) == (status, code)
    assert answer_file(oss, key)["code"] == code
    assert standin.requests == [] and standin.files.requests == []


def test_a_document_over_the_limit_is_413_without_an_upload(standin, oss, wire, env, fc):  # noqa: F811
    env["QWEN_OSS_MAX_DOCUMENT_BYTES"] = "1000"
    data = pdf(b"<< /Size 3 /Root 1 0 R >>" + b" " * 2000)
    result = ask(upload(oss, "inbox/big.pdf", data), fc, wire)
    assert (result["status_code"], result["code"]) == (413, "DocumentTooLarge")
    assert (
        "QWEN_OSS_MAX_DOCUMENT_BYTES" in result["message"] and answer_file(oss, "inbox/big.pdf")["status_code"] == 413
    )
    assert standin.requests == [] and standin.files.requests == []


def test_a_large_document_is_read_by_head_and_tail_and_streamed(standin, oss, wire, fc):  # noqa: F811
    """A document larger than the text limit: two ranged reads to decide, one streamed read to upload."""
    data = pdf(b"<< /Size 3 /Root 1 0 R >>" + b"%" + bytes(range(256)) * 12_000)  # ~3 MB of binary comment
    result = ask(upload(oss, "inbox/large.pdf", data), fc, wire)
    assert result["status_code"] == 200 and hashlib.sha256(data).hexdigest()[:16] in content(result)
    reads = [r for r in oss.requests if r.method == "GET" and r.key == "inbox/large.pdf"]
    assert [{k.lower(): v for k, v in r.headers.items()}.get("range") for r in reads] == [
        "bytes=0-65536",
        f"bytes={len(data) - 256 * 1024}-{len(data) - 1}",
        None,
    ]


def test_a_pdf_that_is_really_a_png_is_answered_as_an_image(standin, oss, wire, fc):  # noqa: F811
    result = ask(upload(oss, "inbox/photo.pdf", PNG), fc, wire)
    assert result["status_code"] == 200
    (request,) = standin.requests
    assert request.path == MULTIMODAL_PATH and standin.files.requests == []


def test_the_document_model_must_be_allowed(standin, oss, wire, env, fc):  # noqa: F811
    env["QWEN_ALLOWED_MODELS"] = "qwen-turbo"
    result = ask(upload(oss, "inbox/x.pdf", pdf()), fc, wire)
    assert (result["status_code"], result["code"]) == (403, "ModelNotAllowed")
    assert "QWEN_DOCUMENT_MODEL" in result["message"] and "QWEN_ALLOWED_MODELS" in result["message"]
    assert standin.files.requests == [] and answer_file(oss, "inbox/x.pdf")["status_code"] == 403


def test_an_unknown_file_id_is_a_clear_400(standin):
    """The stand-in's own refusal, for a file id it never saw."""
    import requests

    body = {
        "model": "qwen-long",
        "input": {
            "messages": [{"role": "system", "content": "fileid://file-fe-999999"}, {"role": "user", "content": "?"}]
        },
        "parameters": {"result_format": "message"},
    }
    reply = requests.post(standin.url + "/services/aigc/text-generation/generation", json=body, timeout=5)
    assert reply.status_code == 400 and reply.json()["code"] == "InvalidParameter.FileNotFound"


def test_the_stream_is_pinned_to_the_events_version_and_bounded(oss):
    from handler.deliver.store import ObjectReplaced, Oss2Store
    from handler.errors import TransientUpstreamError
    from handler.fc_context import Credentials

    data = bytes(range(256)) * 100
    stored = oss.put(BUCKET, "inbox/pinned.pdf", data)
    left = [60.0]
    store = Oss2Store(Credentials("STS.PIN0001", "pin-secret-0001"), oss.url, lambda: left[0])
    chunks = list(store.stream(BUCKET, "inbox/pinned.pdf", 4096, etag=f'"{stored.etag.lower()}"'))
    assert b"".join(chunks) == data and max(map(len, chunks)) == 4096
    with pytest.raises(ObjectReplaced, match="replaced since"):
        list(store.stream(BUCKET, "inbox/pinned.pdf", 4096, etag="0123ABCD"))
    streamed = store.stream(BUCKET, "inbox/pinned.pdf", 4096, etag=stored.etag)
    next(streamed)
    left[0] = 0.1  # the deadline's margin reached mid-stream: the read stops
    with pytest.raises(TransientUpstreamError, match="no time left"):
        next(streamed)


def test_the_payload_hash_covers_a_document_by_key_and_etag():
    from handler.deliver.answers import payload_hash
    from handler.events.question import DocumentSource, Question

    def document(key: str, etag: str) -> DocumentSource:
        return DocumentSource("oss://b/" + key, "pdf", 10, etag, key, lambda: iter(()))

    asked = Question(text="总结", documents=(document("a.pdf", "E1"),))
    assert payload_hash(asked) == payload_hash(Question(text="总结", documents=(document("a.pdf", "E1"),)))
    assert payload_hash(asked) != payload_hash(Question(text="总结", documents=(document("a.pdf", "E2"),)))
    assert payload_hash(asked) != payload_hash(Question(text="总结", documents=(document("b.pdf", "E1"),)))
    assert payload_hash(asked) != payload_hash(Question(text="总结"))


def test_parsing_past_the_deadline_is_raised_for_redelivery(standin, oss, wire, fc, logs):  # noqa: F811
    """A file still parsed at the deadline: TransientUpstreamError, so FC delivers the event again."""
    from handler.errors import TransientUpstreamError

    fc.function = SimpleNamespace(timeout=3, name="qwen", handler="index.handler")
    standin.files.processing = 10**6
    with pytest.raises(TransientUpstreamError, match="DocumentNotReady"):
        ask(upload(oss, "inbox/never.pdf", pdf()), fc, wire)
    # The upload stays for the redelivery, which finds it by name (tests/instances/test_documents_instances.py).
    assert generations(standin) == [] and len(standin.files.files) == 1 and standin.files.deleted == []
