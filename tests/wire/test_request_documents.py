"""Documents named in JSON requests (`"documents": ["oss://bucket/key"]`), end to end through the real SDK,
oss2 and the files API against the stand-ins: read only from QWEN_OSS_BUCKETS, refused before any request."""

from __future__ import annotations

import hashlib
import json

import pytest

from handler.app import Runtime, handle
from tests.support.documents_wire import BUCKET, CREDS, env, fc, generations, pdf, uploads, wire  # noqa: F401  # fixtures
from tests.support.events import oss_event, oss_record, topic_message

ANSWERS = "qwen-answers"


def ask(event: str, context, runtime: Runtime) -> dict:
    return json.loads(handle(event.encode(), context, runtime))


def said(result: dict) -> str:
    return result["output"]["choices"][0]["message"]["content"]


def digest(data: bytes) -> str:
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}"


@pytest.mark.parametrize("form", ["prompt", "messages"])
def test_a_named_pdf_is_answered_by_file_id(standin, oss, wire, fc, logs, form):  # noqa: F811
    data = pdf(b"<< /Size 3 /Root 1 0 R /Info (request) >>")
    oss.put(BUCKET, "contracts/lease.pdf", data)
    refs = [f"oss://{BUCKET}/contracts/lease.pdf"]
    if form == "prompt":
        body = {"prompt": "租期多长?", "documents": refs}
    else:
        body = {"messages": [{"role": "user", "content": "租期多长?", "documents": refs}]}
    result = ask(json.dumps(body, ensure_ascii=False), fc, wire)
    assert result["status_code"] == 200, result
    assert digest(data) in said(result)
    (request,) = generations(standin)
    assert request.body["model"] == "qwen-long"
    assert request.body["input"]["messages"][-1] == {"role": "user", "content": "租期多长?"}
    assert len(uploads(standin)) == 1 and standin.files.files == {}
    line = logs.events("question")[-1]
    assert line["document_parts"] == 1 and line["document_route"] == "file"


@pytest.mark.parametrize(
    ("ref", "code"),
    [
        ("oss://someone-elses/secret.pdf", "DocumentNotAllowed"),
        ("/etc/passwd", "InvalidRequest"),
        ("file:///etc/passwd", "InvalidRequest"),
        ("https://example.com/a.pdf", "InvalidRequest"),
        (f"oss://{BUCKET}/", "InvalidRequest"),
    ],
)
def test_anything_but_an_allowed_bucket_is_refused_with_no_request(standin, oss, wire, fc, ref, code):  # noqa: F811
    oss.put(BUCKET, "contracts/lease.pdf", pdf())
    oss.requests.clear()
    result = ask(json.dumps({"prompt": "总结", "documents": [f"oss://{BUCKET}/contracts/lease.pdf", ref]}), fc, wire)
    assert result["status_code"] == 400 and result["code"] == code, result
    assert ref.rstrip("/")[:20] in result["message"] or "QWEN_OSS_BUCKETS" in result["message"]
    assert oss.requests == [] and standin.requests == [] and standin.files.requests == []


def test_a_reused_message_id_with_another_document_is_not_served_the_first_answer(standin, oss, wire, env, fc):  # noqa: F811
    env["QWEN_ANSWER_BUCKET"] = ANSWERS
    first, second = pdf(b"<< /Size 3 /Root 1 0 R /Info (one) >>"), pdf(b"<< /Size 3 /Root 1 0 R /Info (two) >>")
    oss.put(BUCKET, "a.pdf", first)
    oss.put(BUCKET, "b.pdf", second)

    def message(key: str) -> str:
        return topic_message("msg-0001", json.dumps({"prompt": "总结", "documents": [f"oss://{BUCKET}/{key}"]}))

    answered = ask(message("a.pdf"), fc, wire)
    assert answered["status_code"] == 200 and digest(first) in said(answered)
    again = ask(message("a.pdf"), fc, wire)  # a redelivery: the same answer, not asked twice
    assert again["status_code"] == 200 and len(generations(standin)) == 1
    other = ask(message("b.pdf"), fc, wire)
    assert other["status_code"] == 409 and other["code"] == "AnswerConflict", other
    oss.put(BUCKET, "a.pdf", second)  # the object replaced: another question under the same id
    replaced = ask(message("a.pdf"), fc, wire)
    assert replaced["code"] == "AnswerConflict" and len(generations(standin)) == 1


def test_a_text_file_longer_than_the_window_is_answered_as_a_document(standin, oss, wire, env, fc, logs):  # noqa: F811
    """An OSS text file over the text model's window goes to qwen-long as a txt file, not 413 InputTooLong."""
    env["QWEN_MODEL"] = "qwen-turbo"
    env["QWEN_MODEL_TABLE"] = '{"qwen-turbo": {"context_window": 400, "max_input": 300, "max_output": 100}}'
    text = "请总结下面的会议记录。\n" + "第{}项:预算讨论,结论待定。\n".format("一") * 200
    stored = oss.put(BUCKET, "inbox/minutes.txt", text)
    event = oss_event(oss_record("inbox/minutes.txt", bucket=BUCKET, etag=stored.etag, size=len(text.encode())))
    (result,) = ask(event, fc, wire)
    assert result["status_code"] == 200, result
    assert digest(text.strip().encode()) in said(result)
    (request,) = generations(standin)
    assert request.body["model"] == "qwen-long"
    assert len(uploads(standin)) == 1 and standin.files.files == {}
    line = logs.events("question")[-1]
    assert line["document_reason"] == "longer than qwen-turbo's 400-token window"
    assert line["document_parts"] == 1 and line["model"] == "qwen-long"


def test_a_short_text_file_stays_a_text_question(standin, oss, wire, fc):  # noqa: F811
    stored = oss.put(BUCKET, "inbox/short.txt", "西红柿炖牛腩要炖多久?")
    (result,) = ask(oss_event(oss_record("inbox/short.txt", bucket=BUCKET, etag=stored.etag, size=33)), fc, wire)
    assert result["status_code"] == 200 and uploads(standin) == []
    assert generations(standin)[0].body["model"] == "qwen-turbo"


def test_an_oss_question_file_may_name_documents(standin, oss, wire, fc):  # noqa: F811
    data = pdf(b"<< /Size 3 /Root 1 0 R /Info (file) >>")
    oss.put(BUCKET, "library/q3.pdf", data)
    for key, documents in (("inbox/ok.json", ["library/q3.pdf"]), ("inbox/other.json", None)):
        refs = [f"oss://{BUCKET}/{name}" for name in documents] if documents else ["oss://someone-elses/q3.pdf"]
        body = json.dumps({"prompt": "要点是什么?", "documents": refs}, ensure_ascii=False)
        stored = oss.put(BUCKET, key, body)
        (result,) = ask(oss_event(oss_record(key, bucket=BUCKET, etag=stored.etag, size=len(body.encode()))), fc, wire)
        written = json.loads(oss.get(BUCKET, f"answers/{key}.json").data)
        if documents:
            assert result["status_code"] == 200 and digest(data) in said(result), result
        else:
            assert result["code"] == "DocumentNotAllowed" and written["code"] == "DocumentNotAllowed", result
    assert len(generations(standin)) == 1 and len(uploads(standin)) == 1


def test_without_the_document_model_a_long_text_file_stays_input_too_long(standin, oss, wire, env, fc, logs):  # noqa: F811
    env["QWEN_ALLOWED_MODELS"] = "qwen-turbo"  # documents not enabled by the operator
    env["QWEN_MODEL_TABLE"] = '{"qwen-turbo": {"context_window": 400, "max_input": 300, "max_output": 100}}'
    text = "请总结下面的会议记录。\n" + "第一项:预算讨论,结论待定。\n" * 200
    stored = oss.put(BUCKET, "inbox/minutes.txt", text)
    event = oss_event(oss_record("inbox/minutes.txt", bucket=BUCKET, etag=stored.etag, size=len(text.encode())))
    (result,) = ask(event, fc, wire)
    assert result["code"] == "InputTooLong" and standin.requests == [] and standin.files.requests == []
    assert "document_reason" not in logs.events("question")[-1]


def test_a_missing_or_non_document_object_is_refused_without_asking(standin, oss, wire, fc):  # noqa: F811
    oss.put(BUCKET, "notes.txt", "只是文字")
    for key, code, status in (("gone.pdf", "ObjectNotFound", 404), ("notes.txt", "DocumentUnsupported", 415)):
        result = ask(json.dumps({"prompt": "总结", "documents": [f"oss://{BUCKET}/{key}"]}), fc, wire)
        assert (result["code"], result["status_code"]) == (code, status), result
        assert key in result["message"]
    assert standin.requests == [] and standin.files.requests == []
