"""OSS documents answered by Qwen-Doc-Turbo by signed URL, end to end: the real oss2 client signs against the
OSS stand-in (which verifies V1 query signatures and expiry), the real SDK asks DashScope's stand-in, which
fetches each doc_url from the OSS stand-in and names the size and sha256 of what it got."""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

from handler.app import Runtime, handle
from handler.ask.apis import ModelApis
from handler.ask.attempts import Backoff
from handler.config import DEFAULT_DOCUMENT_PROMPT
from handler.deliver.memory import AnsweredRecords
from handler.local.standin import FILE_DOWNLOAD
from tests.support.documents_url_wire import (  # noqa: F401  # fixtures
    CREDS,
    MODEL,
    env,
    fc,
    forget_the_key,
    sent_urls,
    upload,
    wire,
)
from tests.support.documents_wire import BUCKET, EPUB, generations, office, pdf
from tests.support.ole import ole

FAMILIES = [
    ("report.pdf", pdf()),
    ("letter.docx", office("word/", "document.xml")),
    ("sheet.xlsx", office("xl/", "workbook.xml")),
    ("slides.pptx", office("ppt/", "presentation.xml")),
    ("old.doc", ole("WordDocument")),
]


def ask(event: str, context, runtime: Runtime) -> dict:
    (result,) = json.loads(handle(event.encode(), context, runtime))
    return result


def content(result: dict) -> str:
    return result["output"]["choices"][0]["message"]["content"]


def answer_file(oss, key: str) -> dict:
    stored = oss.get(BUCKET, f"answers/{key}.json")
    assert stored is not None, "no answer file"
    return json.loads(stored.data)


@pytest.mark.parametrize(("name", "data"), FAMILIES)
def test_each_family_is_answered_by_signed_url(standin, oss, wire, fc, logs, name, data):  # noqa: F811
    """DashScope fetched exactly the object's bytes by a signed URL of it; nothing was uploaded."""
    key = f"inbox/{name}"
    result = ask(upload(oss, key, data), fc, wire)
    assert result["status_code"] == 200, result
    assert f"document 1: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}" in content(result)
    (request,) = generations(standin)
    assert request.body["model"] == MODEL
    system, user = request.body["input"]["messages"]
    assert system == {"role": "system", "content": "You are a helpful assistant."}
    text, documents = user["content"]
    assert user["role"] == "user" and text == {"type": "text", "text": DEFAULT_DOCUMENT_PROMPT}
    (url,) = documents["doc_url"]
    assert documents["type"] == "doc_url" and documents["file_parsing_strategy"] == "auto"
    parts = urlsplit(url)
    assert unquote(parts.path) == f"/{BUCKET}/{key}" and set(parse_qs(parts.query)) >= {"Signature", "Expires"}
    assert int(parse_qs(parts.query)["Expires"][0]) - time.time() == pytest.approx(600, abs=30)
    assert standin.files.requests == []  # no upload, no list, no delete
    assert answer_file(oss, key)["status_code"] == 200
    line = logs.events("question")[-1]
    assert (line["document_route"], line["model"], line["document_parts"]) == ("url", MODEL, 1)
    assert "counted_input_tokens" not in line
    tokens_in, tokens_out = result["usage"]["input_tokens"], result["usage"]["output_tokens"]
    assert line["cost_cny"] == pytest.approx(tokens_in * 0.0006 / 1000 + tokens_out * 0.001 / 1000)  # its prices


def test_a_sidecar_replaces_the_prompt(standin, oss, wire, fc):  # noqa: F811
    oss.put(BUCKET, "inbox/plan.pptx.txt", "这份幻灯片的结论是什么?")
    result = ask(upload(oss, "inbox/plan.pptx", office("ppt/", "presentation.xml")), fc, wire)
    assert result["status_code"] == 200
    (request,) = generations(standin)
    assert request.body["input"]["messages"][-1]["content"][0] == {"type": "text", "text": "这份幻灯片的结论是什么?"}


def test_an_epub_by_url_is_415_naming_qwen_long(standin, oss, wire, fc):  # noqa: F811
    result = ask(upload(oss, "inbox/book.epub", EPUB), fc, wire)
    assert (result["status_code"], result["code"]) == (415, "DocumentUnsupported")
    assert "EPUB" in result["message"] and "qwen-long" in result["message"] and MODEL in result["message"]
    assert answer_file(oss, "inbox/book.epub")["code"] == "DocumentUnsupported"
    assert standin.requests == [] and standin.files.requests == []


def expire_urls(oss) -> None:
    later = time.time() + 3600  # the OSS stand-in's clock moved past every URL's Expires
    oss.clock = lambda: later


@pytest.mark.parametrize("breaks", [expire_urls, forget_the_key])
def test_a_url_oss_refuses_comes_back_as_a_clear_refusal(standin, oss, wire, fc, logs, breaks):  # noqa: F811
    """The OSS stand-in refuses DashScope's fetch (403); the refusal names the object, never the URL."""
    breaks(oss)
    try:
        result = ask(upload(oss, "inbox/refused.pdf", pdf()), fc, wire)
    finally:
        oss.clock = time.time
    assert (result["status_code"], result["code"]) == (400, FILE_DOWNLOAD)
    message = result["message"]
    assert f"<the signed URL of oss://{BUCKET}/inbox/refused.pdf>" in message and "HTTP 403" in message
    assert "oss:GetObject" in message and "Signature" not in message and "http" not in message
    assert answer_file(oss, "inbox/refused.pdf")["message"] == message
    (url,) = sent_urls(standin)
    signature = parse_qs(urlsplit(url).query)["Signature"][0]
    assert signature not in logs.text and quote(signature, safe="") not in logs.text


def test_an_object_replaced_before_signing_gets_no_url(standin, oss, wire, fc, monkeypatch):  # noqa: F811
    """The event's version is checked (HeadObject) as the URL is signed: a newer upload gets no URL under the old
    eTag, nothing is asked, and the refusal is not written over the newer version's answer."""
    from handler.deliver.store import Oss2Store

    event = upload(oss, "inbox/moved.pdf", pdf())
    sign = Oss2Store.sign_url

    def replaced_first(self, bucket, key, **kwargs):
        oss.put(BUCKET, key, pdf(b"<< /Size 4 /Root 1 0 R >>"))  # a new upload between the read and the signing
        return sign(self, bucket, key, **kwargs)

    monkeypatch.setattr(Oss2Store, "sign_url", replaced_first)
    result = ask(event, fc, wire)
    assert (result["status_code"], result["code"]) == (409, "ObjectReplaced")
    assert generations(standin) == [] and oss.get(BUCKET, "answers/inbox/moved.pdf.json") is None


# -- file ids refused for the key: the file route's account-level failure ---------------------------------


@pytest.fixture
def file_route(env) -> Runtime:  # noqa: F811
    env["QWEN_DOCUMENT_MODEL"] = "qwen-long"
    env["QWEN_ALLOWED_MODELS"] = "qwen-turbo,qwen-long"
    return Runtime(env=env, backoff=Backoff(base=0.01, cap=0.02), apis=ModelApis(), memory=AnsweredRecords())


@pytest.mark.parametrize(("status", "code"), [(403, "AccessDenied"), (401, "InvalidApiKey")])
def test_a_key_the_files_api_refuses_is_raised_naming_the_url_route(standin, oss, file_route, fc, logs, status, code):  # noqa: F811
    """A RAM user's key: one AccountFailure naming the cause and QWEN_DOCUMENT_MODEL=qwen-doc-turbo, no answer file."""
    from handler.errors import AccountFailure

    standin.files.fail_next((status, code, "the key may not use this API"))
    with pytest.raises(AccountFailure) as raised:
        ask(upload(oss, "inbox/ram.pdf", pdf()), fc, file_route)
    error = raised.value
    assert (error.code, error.status_code) == ("FileIdsRefused", status)
    assert "RAM user" in error.message and "QWEN_DOCUMENT_MODEL=qwen-doc-turbo" in error.message
    assert "QWEN_DOCUMENT_MODEL=qwen-doc-turbo" in error.fix
    assert oss.get(BUCKET, "answers/inbox/ram.pdf.json") is None
    (line,) = logs.events("account_failure")
    assert line["code"] == "FileIdsRefused" and "qwen-doc-turbo" in line["fix"]
    assert generations(standin) == []


def test_a_base_url_outside_beijing_is_raised_before_any_upload(oss, env, file_route, fc, logs):  # noqa: F811
    from handler.errors import AccountFailure

    env["DASHSCOPE_HTTP_BASE_URL"] = "https://dashscope-intl.aliyuncs.com/api/v1"
    with pytest.raises(AccountFailure) as raised:
        ask(upload(oss, "inbox/intl.pdf", pdf()), fc, file_route)
    error = raised.value
    assert error.code == "FileIdsNotInRegion" and "Singapore" in error.message
    assert "China (Beijing)" in error.message and "QWEN_DOCUMENT_MODEL=qwen-doc-turbo" in error.message
    assert oss.get(BUCKET, "answers/inbox/intl.pdf.json") is None and "nothing was uploaded" in error.message
