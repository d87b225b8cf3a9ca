"""A delivery id's payload hash covers every part that changes the answer: the same message id and text with
another image is another question (asked again without a store, 409 AnswerConflict with one), in a batch
too; a text question's hash is what it was, so answers stored before a deploy still match. Real oss2
against the stand-in, DashScope as the fake SDK seam (echoing what it was asked)."""

from __future__ import annotations

import json

from handler.deliver.answers import payload_hash
from handler.deliver.memory import AnsweredRecords
from handler.events.decode import decode
from handler.events.question import Message, Question
from tests.support.answer_store import fc, run, stored  # noqa: F401  # fixtures and helper shared with test_answer_store.py
from tests.support.events import queue_batch, topic_message

CAT, PASSPORT = "https://example.com/cat.jpg", "https://example.com/passport.jpg"


def image_request(*parts: tuple[str, str]) -> str:
    return json.dumps({"messages": [{"role": "user", "content": [{kind: value} for kind, value in parts]}]})


def hashed(event: str) -> str:
    (question,) = decode(event).records
    assert isinstance(question, Question)
    return payload_hash(question)


def test_a_text_questions_hash_is_the_one_stored_before():
    """Answers stored by an earlier release under these hashes must still be recognised as theirs."""
    assert payload_hash(Question(text="西红柿炖牛腩要炖多久?")) == (
        "c067a94e875c2df87e88c7f08ef9c1086a5e2981e0100451fb478517d8f2f07e"
    )
    convo = Question(
        messages=(Message("system", "be brief"), Message("user", "hi")),
        model="qwen-plus",
        parameters={"temperature": 0.5},
    )
    assert payload_hash(convo) == "339dc5859c72fae9935d3b2ab5cf0f5972aa7078866c4821bca9e8d44e34c89a"
    # A list of text parts only is the same text question as its string.
    plain = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    assert (
        hashed(image_request(("text", "hi")))
        == hashed(plain)
        == payload_hash(Question(messages=(Message("user", "hi"),)))
    )


def test_the_images_and_the_order_of_the_parts_are_in_the_hash():
    cat = hashed(image_request(("image", CAT), ("text", "这是什么?")))
    assert cat != hashed(image_request(("image", PASSPORT), ("text", "这是什么?")))
    assert cat != hashed(image_request(("text", "这是什么?"), ("image", CAT)))
    assert cat != hashed(image_request(("image", CAT), ("image", CAT), ("text", "这是什么?")))
    assert cat == hashed(image_request(("image", CAT), ("text", "这是什么?")))


def test_the_same_id_and_text_with_another_image_is_a_conflict_with_a_store(run, oss, fc, transport):  # noqa: F811
    """The reviewer's case: msg-1 about cat.jpg, then msg-1 about passport.jpg: 409 on this instance and a fresh one."""
    memory = AnsweredRecords()
    first = run(topic_message("msg-1", image_request(("image", CAT), ("text", "这是什么?"))), fc, memory)
    assert first["status_code"] == 200 and CAT in first["output"]["choices"][0]["message"]["content"]
    passport = topic_message("msg-1", image_request(("image", PASSPORT), ("text", "这是什么?")))
    again = run(passport, fc, memory)
    fresh = run(passport, fc, AnsweredRecords())
    assert again["status_code"] == fresh["status_code"] == 409
    assert again["code"] == fresh["code"] == "AnswerConflict"
    assert transport.call_count == 1 and stored(oss, "answers/mns/msg-1.json") == first


def test_the_same_id_and_text_with_another_image_is_asked_again_without_a_store(run, oss, fc, transport):  # noqa: F811
    memory = AnsweredRecords()
    cat = topic_message("msg-1", image_request(("image", CAT), ("text", "这是什么?")))
    first = run(cat, fc, memory, QWEN_ANSWER_BUCKET="")
    again = run(
        topic_message("msg-1", image_request(("image", PASSPORT), ("text", "这是什么?"))),
        fc,
        memory,
        QWEN_ANSWER_BUCKET="",
    )
    assert transport.call_count == 2 and oss.requests == []
    assert PASSPORT in again["output"]["choices"][0]["message"]["content"]
    assert CAT not in again["output"]["choices"][0]["message"]["content"] and first != again


def test_a_batch_never_merges_two_records_of_one_id_with_different_images(run, oss, fc, transport):  # noqa: F811
    batch = queue_batch(
        ("msg-1", image_request(("image", CAT), ("text", "这是什么?"))),
        ("msg-1", image_request(("image", PASSPORT), ("text", "这是什么?"))),
    )
    asked = run(batch, fc, QWEN_ANSWER_BUCKET="")
    assert transport.call_count == 2
    assert [CAT in r["output"]["choices"][0]["message"]["content"] for r in asked] == [True, False]
    assert PASSPORT in asked[1]["output"]["choices"][0]["message"]["content"]

    transport.reset_mock()
    results = run(batch, fc)
    assert transport.call_count == 1
    assert sorted(r["status_code"] for r in results) == [200, 409]
    assert {r["code"] for r in results} == {"", "AnswerConflict"}
