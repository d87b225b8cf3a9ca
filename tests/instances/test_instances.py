"""What crosses FC instances, proved with separate processes (a fresh interpreter each, empty memory)
against the DashScope and OSS stand-ins of this test process: the answer store in OSS
(QWEN_ANSWER_BUCKET) makes a delivery answered once, whichever instance receives it."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from handler.local.standin import error
from tests.support.events import oss_record, queue_batch, topic_message
from tests.support.instances import ANSWER_BUCKET, Instance, asked, instance_env

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def content(result):
    return result["output"]["choices"][0]["message"]["content"]


def answer_writes(oss):
    """Successful PUTs of answers (not markers) per key in the answer bucket."""
    return {key: n for (bucket, key), n in oss.writes.items() if bucket == ANSWER_BUCKET and "/.pending/" not in key}


def test_a_batch_redelivered_to_a_new_instance_asks_only_the_failed_record(standin, oss):
    """Record 3 of 4 keeps failing on instance A; the redelivery on a new instance B asks only that one."""
    failing = {"炖牛腩 3"}
    standin.policy = lambda request: error(500, "InternalError", "boom") if asked(request) in failing else None
    batch = queue_batch(*[(f"m-{i}", f"炖牛腩 {i}") for i in range(1, 5)])
    env = instance_env(standin, oss, QWEN_MAX_ATTEMPTS="2")
    with Instance(env) as a:
        first = a.invoke(batch)
    assert first["raised"] == "BatchIncomplete" and "mns:m-3" in first["message"]
    asked_by_a = Counter(asked(r) for r in standin.requests)
    assert asked_by_a == {"炖牛腩 1": 1, "炖牛腩 2": 1, "炖牛腩 3": 2, "炖牛腩 4": 1}

    failing.clear()
    with Instance(env) as b:
        second = b.invoke(batch)
    results = second["returned"]
    assert [content(r).endswith(f"炖牛腩 {i}") for i, r in enumerate(results, 1)] == [True] * 4
    asked_in_all = Counter(asked(r) for r in standin.requests)
    assert asked_in_all - asked_by_a == {"炖牛腩 3": 1}
    assert answer_writes(oss) == {f"answers/mns/m-{i}.json": 1 for i in range(1, 5)}
    by = {line["source"]: line.get("answered_by") for line in second["logs"] if line["event"] == "question"}
    assert by == {"mns:m-1": "stored", "mns:m-2": "stored", "mns:m-3": None, "mns:m-4": "stored"}


def test_one_message_delivered_to_two_instances_at_once_is_asked_once(standin, oss):
    """Both instances get the same message at the same moment; one asks, the other waits for its answer."""
    standin.latency = 1.5  # the first instance is still asking when the second looks
    env = instance_env(standin, oss)
    message = topic_message("dup-1", "西红柿炖牛腩要炖多久?")
    with Instance(env) as a, Instance(env) as b:
        a.send(message)
        b.send(message)
        one, two = a.receive(), b.receive()
    assert len(standin.requests) == 1
    assert one["returned"] == two["returned"] and one["returned"]["status_code"] == 200
    assert answer_writes(oss) == {"answers/mns/dup-1.json": 1}
    stored = json.loads(oss.get(ANSWER_BUCKET, "answers/mns/dup-1.json").data)
    assert stored == one["returned"]
    ways = sorted(
        line.get("answered_by", "asked") for out in (one, two) for line in out["logs"] if line["event"] == "question"
    )
    assert ways == ["asked", "waited"]


def test_a_timer_redelivery_is_answered_from_the_store(standin, oss):
    """FC retries a timer invocation on another instance: answered from the store, not asked again."""
    timer = json.dumps(
        {"triggerTime": "2026-11-27T08:00:00Z", "triggerName": "daily-question", "payload": "今天吃什么?"}
    )
    env = instance_env(standin, oss)
    with Instance(env) as a:
        first = a.invoke(timer)
    with Instance(env) as b:
        again = b.invoke(timer)
    assert first["returned"]["status_code"] == 200 and again["returned"] == first["returned"]
    assert len(standin.requests) == 1
    key = "answers/timer/daily-question/2026-11-27T08:00:00Z@b2212e7c06b13740.json"  # the payload's hash
    assert json.loads(oss.get(ANSWER_BUCKET, key).data) == first["returned"]
    assert [line.get("answered_by") for line in again["logs"] if line["event"] == "question"] == ["stored"]


def test_an_abandoned_attempt_is_taken_over_and_a_live_one_is_waited_for(standin, oss):
    """A marker past its deadline (a dead instance) is taken over; a live one makes the delivery come back later."""
    now = time.time()
    for message_id, deadline in (("dead-1", now - 5), ("live-1", now + 600)):
        oss.put(
            ANSWER_BUCKET,
            f"answers/.pending/mns/{message_id}.json",
            b"{}",
            status="in_progress",
            owner="gone-instance",
            deadline=f"{deadline:.3f}",
            generation="1",
        )
    with Instance(instance_env(standin, oss)) as a:
        taken = a.invoke(topic_message("dead-1", "接手的问题"))
        waited = a.invoke(topic_message("live-1", "正在回答的问题"), timeout=4)
    assert taken["returned"]["status_code"] == 200 and len(standin.requests) == 1
    assert any(line["event"] == "answer_taken_over" for line in taken["logs"])
    assert oss.get(ANSWER_BUCKET, "answers/.pending/mns/dead-1.json.takeover-2") is not None
    assert waited["raised"] == "TransientUpstreamError" and waited["code"] == "AnswerInProgress"
    assert "oss://qwen-answers/answers/mns/live-1.json" in waited["message"]
    assert len(standin.requests) == 1  # the live attempt's question was not asked a second time


def test_one_question_file_delivered_to_two_instances_at_once_is_asked_once(standin, oss):
    """The same OSS event reaches two instances at the same moment: one asks, the other waits for its answer file."""
    standin.latency = 1.5  # the first instance is still asking when the second looks
    bucket, key = "qwen-questions", "questions/dup.txt"
    etag = oss.put(bucket, key, "西红柿炖牛腩要炖多久?").etag
    record = oss_record(key, bucket=bucket, etag=etag, size=30)
    event = json.dumps({"events": [record]})
    env = instance_env(standin, oss, QWEN_OSS_BUCKETS=bucket)
    with Instance(env) as a, Instance(env) as b:
        a.send(event)
        b.send(event)
        one, two = a.receive(), b.receive()
    assert len(standin.requests) == 1
    assert one["returned"] == two["returned"] and one["returned"][0]["status_code"] == 200
    assert oss.writes[(bucket, "answers/questions/dup.txt.json")] == 1
    answer = oss.get(bucket, "answers/questions/dup.txt.json")
    assert json.loads(answer.data) == one["returned"][0] and answer.metadata == {"source-etag": etag}
    ways = sorted(
        line.get("answered_by", "asked") for out in (one, two) for line in out["logs"] if line["event"] == "question"
    )
    assert ways == ["asked", "waited"]
