"""Batches: answered concurrently, each answer in its own record's slot, nothing lost on failure."""

from __future__ import annotations

import json
import threading
import time

import pytest

from handler.app import handle
from handler.deliver.batch import BatchIncomplete
from handler.errors import TransientUpstreamError
from tests.conftest import echo, response


def queue_batch(*bodies: str) -> bytes:
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "type": "mns:Queue:SendMessage",
                "id": f"event-{i}",
                "data": {"messageId": f"msg-{i}", "messageBody": body, "requestId": f"req-{i}"},
            }
            for i, body in enumerate(bodies)
        ]
    ).encode()


def contents(results):
    return [r["output"]["choices"][0]["message"]["content"] if r["status_code"] == 200 else r["code"] for r in results]


def test_answers_go_to_their_own_records(runtime, context, transport):
    """Each result is the answer to its own record, in the order of the records."""
    transport.side_effect = echo
    bodies = [f"问题 {i}" for i in range(20)]
    results = json.loads(handle(queue_batch(*bodies), context, runtime))
    assert contents(results) == [f"answer to {b}" for b in bodies]
    assert [r["request_id"] for r in results] == [f"ds-{b}" for b in bodies]


def test_records_are_answered_concurrently_up_to_the_limit(runtime, context, transport, env):
    """Eight slow questions overlap instead of queueing, and never more than QWEN_BATCH_CONCURRENCY."""
    env["QWEN_BATCH_CONCURRENCY"] = "4"
    lock, running, peak = threading.Lock(), [0], [0]

    def slow(**kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return echo(**kwargs)

    transport.side_effect = slow
    results = json.loads(handle(queue_batch(*[str(i) for i in range(8)]), context, runtime))
    assert len(results) == 8 and peak[0] == 4


def test_malformed_records_are_4xx_results_not_a_redelivery(runtime, context, transport):
    """A bad record gets its 400 in place; the good ones are answered; nothing is raised."""
    transport.side_effect = echo
    results = json.loads(handle(queue_batch("a", "", "c"), context, runtime))
    assert contents(results) == ["answer to a", "EmptyEvent", "answer to c"]


def test_a_transient_failure_raises_after_the_others_and_names_the_record(runtime, context, transport, logs):
    """One record keeps failing: the others finish, then the handler raises naming that record."""

    def flaky(**kwargs):
        if kwargs["messages"][-1]["content"] == "bad":
            return response(500, code="InternalError", request_id="ds-500")
        return echo(**kwargs)

    transport.side_effect = flaky
    with pytest.raises(BatchIncomplete) as caught:
        handle(queue_batch("a", "bad", "c"), context, runtime)
    error = caught.value
    assert isinstance(error, TransientUpstreamError)
    assert "1 of 3 records" in str(error) and "record 1 (mns:msg-1)" in str(error) and "ds-500" in str(error)
    lines = {line["source"]: line for line in logs.events("question")}
    assert lines["mns:msg-0"]["status_code"] == 200 and lines["mns:msg-2"]["status_code"] == 200
    assert lines["mns:msg-1"]["code"] == "InternalError"


def test_a_redelivery_asks_only_what_failed(runtime, context, transport):
    """Records answered before the failure are not asked (nor charged) again when the batch returns."""
    failing = {"bad"}

    def flaky(**kwargs):
        if kwargs["messages"][-1]["content"] in failing:
            return response(503, code="ServiceUnavailable")
        return echo(**kwargs)

    transport.side_effect = flaky
    with pytest.raises(BatchIncomplete):
        handle(queue_batch("a", "bad", "c"), context, runtime)
    asked_first = transport.call_count
    failing.clear()
    results = json.loads(handle(queue_batch("a", "bad", "c"), context, runtime))
    assert contents(results) == ["answer to a", "answer to bad", "answer to c"]
    assert transport.call_count == asked_first + 1


def test_the_memory_is_bounded(runtime, context, transport):
    """The redelivery memory keeps a bounded number of records, however many messages pass."""
    transport.side_effect = echo
    for start in range(0, 600, 50):
        handle(
            queue_batch(*[f"m{start + i}" for i in range(50)]).replace(b"msg-", f"b{start}-".encode()), context, runtime
        )
    assert len(runtime.memory) == 256


def test_a_single_cloud_event_raises_its_own_error(runtime, context, transport):
    """A single message that keeps failing raises the plain transient error, as any single question."""
    transport.return_value = response(500, code="InternalError")
    with pytest.raises(TransientUpstreamError) as caught:
        handle(queue_batch("x")[1:-1], context, runtime)
    assert not isinstance(caught.value, BatchIncomplete)
