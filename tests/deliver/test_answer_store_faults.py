"""The answer store's promises under lost replies and reused ids: a lost create reply is still ours, and
409 AnswerConflict holds whatever this instance remembers or refused before. Real oss2 against the stand-in,
DashScope as the fake SDK seam."""

from __future__ import annotations

import json

import pytest

from handler.deliver.memory import AnsweredRecords
from handler.errors import InvalidConfig
from tests.support.answer_store import fc, run, stored  # noqa: F401  # fixtures and helper shared with test_answer_store.py
from tests.support.events import oss_event, oss_record, topic_message
from tests.support.instances import ANSWER_BUCKET


def test_a_lost_reply_to_the_marker_create_is_still_our_marker(run, oss, fc, transport):  # noqa: F811
    """OSS stores the marker but the reply is lost: the retry's 409 finds our own marker, so we ask, once."""
    oss.lose_reply("PUT", prefix="answers/.pending/mns/")
    result = run(topic_message("lost-1", "你好"), fc)
    assert result["status_code"] == 200 and result["code"] == "", result
    assert transport.call_count == 1 and stored(oss, "answers/mns/lost-1.json") == result


def test_a_lost_reply_to_the_answer_create_is_not_someone_elses_answer(run, oss, fc, transport, logs):  # noqa: F811
    """OSS stores the answer but the reply is lost: the retry's 409 finds our own answer, asked here, once."""
    oss.lose_reply("PUT", prefix="answers/mns/")
    result = run(topic_message("lost-2", "你好"), fc)
    assert result["status_code"] == 200 and result["code"] == ""
    assert transport.call_count == 1 and stored(oss, "answers/mns/lost-2.json") == result
    (line,) = logs.events("question")
    assert "answered_by" not in line  # asked here, not superseded


def test_another_question_under_a_remembered_id_is_a_conflict_on_the_same_instance(run, oss, fc, transport):  # noqa: F811
    """Same instance, same id, a different question: 409 as on a fresh instance, not the first question's answer."""
    memory = AnsweredRecords()
    first = run(topic_message("reuse-1", "第一个问题"), fc, memory)
    again = run(topic_message("reuse-1", "另一个问题"), fc, memory)
    fresh = run(topic_message("reuse-1", "另一个问题"), fc, AnsweredRecords())
    assert again["status_code"] == fresh["status_code"] == 409 and again["code"] == "AnswerConflict"
    assert transport.call_count == 1 and stored(oss, "answers/mns/reuse-1.json") == first
    assert run(topic_message("reuse-1", "第一个问题"), fc, memory) == first  # the redelivery: from memory


def test_a_stored_refusal_is_not_served_to_a_real_question_under_the_same_id(run, oss, fc, transport):  # noqa: F811
    """An empty message's 400 is stored under its id; a real question reusing that id gets 409, not the 400."""
    refusal = run(topic_message("refused-1", "   "), fc)
    assert refusal["status_code"] == 400 and stored(oss, "answers/mns/refused-1.json") == refusal
    assert oss.get(ANSWER_BUCKET, "answers/mns/refused-1.json").metadata["payload-hash"].startswith("refused-")
    reused = run(topic_message("refused-1", "2+2=?"), fc)
    assert reused["status_code"] == 409 and reused["code"] == "AnswerConflict", reused
    assert transport.call_count == 0


def test_an_old_refusal_without_a_payload_hash_is_not_served_to_a_question(run, oss, fc, transport):  # noqa: F811
    """A record stored with an empty payload hash (a refusal of an earlier release) is not any question's answer."""
    body = json.dumps({"status_code": 400, "code": "EmptyEvent", "message": "empty", "request_id": "r"})
    oss.put(ANSWER_BUCKET, "answers/mns/old-1.json", body, status="completed", **{"payload-hash": ""})
    reused = run(topic_message("old-1", "2+2=?"), fc)
    assert reused["status_code"] == 409 and reused["code"] == "AnswerConflict", reused
    assert transport.call_count == 0


def test_the_answer_bucket_cannot_also_be_a_question_bucket(run, oss, fc, transport):  # noqa: F811
    """A question file mns/X in the answer bucket would write the store's key of MNS message X: refused as config."""
    event = oss_event(oss_record("mns/BBBB", bucket=ANSWER_BUCKET, etag="E1", size=9, region=None))
    oss.put(ANSWER_BUCKET, "mns/BBBB", "问题在这里")
    with pytest.raises(InvalidConfig) as raised:  # one configuration error, raised for the trigger
        run(event, fc, QWEN_OSS_BUCKETS=f"team-inbox, {ANSWER_BUCKET}")
    assert "QWEN_ANSWER_BUCKET" in raised.value.message and "QWEN_OSS_BUCKETS" in raised.value.message
    assert oss.requests == [] and transport.call_count == 0
    assert run(topic_message("BBBB", "2+2=?"), fc, QWEN_OSS_BUCKETS="team-inbox")["status_code"] == 200
