"""A request's `documents`: oss://bucket/key names checked for form by the pure decoder, never read there."""

from __future__ import annotations

import json

import pytest

from handler.errors import InvalidInput
from handler.events.decode import MAX_DOCUMENTS, decode
from handler.events.question import OssRef, Question


def one(body: object):
    (record,) = decode(json.dumps(body, ensure_ascii=False)).records
    return record


def refusal(body: object) -> InvalidInput:
    record = one(body)
    assert isinstance(record, InvalidInput), record
    assert record.status_code == 400 and record.code == "InvalidRequest"
    return record


def test_a_prompt_with_documents():
    record = one({"prompt": "租期多长?", "documents": ["oss://qwen-docs/合同/lease.pdf", "oss://qwen-docs/b.docx"]})
    assert record == Question(
        text="租期多长?",
        document_refs=(OssRef(bucket="qwen-docs", key="合同/lease.pdf"), OssRef(bucket="qwen-docs", key="b.docx")),
    )
    assert record.document_refs[0].source == "oss://qwen-docs/合同/lease.pdf"


def test_the_same_in_a_conversations_only_user_message():
    body = {"messages": [{"role": "user", "content": [{"text": "总结"}], "documents": ["oss://qwen-docs/a.pdf"]}]}
    assert one(body) == Question(text="总结", document_refs=(OssRef(bucket="qwen-docs", key="a.pdf"),))


@pytest.mark.parametrize(
    "ref",
    [
        "/etc/passwd",
        "report.pdf",
        "file:///etc/passwd",
        "https://example.com/a.pdf",
        "http://127.0.0.1:8080/a.pdf",
        "OSS://qwen-docs/a.pdf",
        "oss://qwen-docs",
        "oss://qwen-docs/",
        "oss://Qwen_Docs/a.pdf",
        "oss://qwen-docs.evil.com:80/a.pdf",
        "oss://qwen-docs//etc/passwd",
        "oss://qwen-docs/a/../../b.pdf",
        "oss://qwen-docs/a\\b.pdf",
        "oss://qwen-docs/a\nb.pdf",
        "oss://qwen-docs/" + "k" * 1024,
    ],
)
def test_anything_but_an_oss_name_is_refused(ref):
    message = refusal({"prompt": "总结", "documents": ["oss://qwen-docs/a.pdf", ref]}).message
    assert message.startswith("documents[1]") and "oss://bucket/key" in message and "never read" in message


@pytest.mark.parametrize(
    ("documents", "said"),
    [
        ([], "non-empty list"),
        ("oss://qwen-docs/a.pdf", "non-empty list"),
        ({"a": "oss://qwen-docs/a.pdf"}, "non-empty list"),
        ([None], "documents[0] must be"),
        ([["oss://qwen-docs/a.pdf"]], "documents[0] must be"),
        (["oss://qwen-docs/a.pdf", "oss://qwen-docs/a.pdf"], "a second time"),
        ([f"oss://qwen-docs/{i}.pdf" for i in range(MAX_DOCUMENTS + 1)], f"at most {MAX_DOCUMENTS}"),
    ],
)
def test_the_list_itself_is_checked(documents, said):
    assert said in refusal({"prompt": "总结", "documents": documents}).message


def test_ten_documents_are_allowed():
    record = one({"prompt": "总结", "documents": [f"oss://qwen-docs/{i}.pdf" for i in range(MAX_DOCUMENTS)]})
    assert isinstance(record, Question) and len(record.document_refs) == MAX_DOCUMENTS


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"prompt": "总结", "model": "qwen-plus", "documents": ["oss://qwen-docs/a.pdf"]}, "leave out 'model'"),
        (
            {
                "messages": [
                    {"role": "user", "content": "你好"},
                    {"role": "assistant", "content": "你好!"},
                    {"role": "user", "content": "总结", "documents": ["oss://qwen-docs/a.pdf"]},
                ]
            },
            "one user message",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "总结", "documents": ["oss://qwen-docs/a.pdf"]},
                    {"role": "assistant", "content": "好"},
                    {"role": "user", "content": "再说"},
                ]
            },
            "only the last message",
        ),
        (
            {
                "messages": [{"role": "user", "content": "总结", "documents": ["oss://qwen-docs/a.pdf"]}],
                "documents": ["oss://qwen-docs/b.pdf"],
            },
            "name the documents once",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"image": "https://example.com/a.png"}, {"text": "看"}],
                        "documents": ["oss://qwen-docs/a.pdf"],
                    }
                ]
            },
            "cannot hold images",
        ),
        ({"messages": [{"role": "user", "content": "x", "documents": ["/etc/passwd"]}]}, "messages[0].documents[0]"),
    ],
)
def test_what_a_document_question_may_not_carry(body, said):
    assert said in refusal(body).message


def test_a_request_with_documents_is_never_taken_for_an_envelope():
    """`documents` is a request's key: such an object is decoded as a request, not a trigger's envelope."""
    decoded = decode(json.dumps({"question": "总结", "documents": ["oss://qwen-docs/a.pdf"]}))
    assert not decoded.envelope and isinstance(decoded.records[0], Question)
