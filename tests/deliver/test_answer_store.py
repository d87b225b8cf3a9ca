"""The answer store's flow inside one instance: keys, the WARNING, conflicts, denied and failing
writes, the take-over race, through the real oss2 client against the local OSS stand-in (DashScope
is the fake SDK seam here; tests/instances/test_instances.py runs the whole thing across processes)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import handler.deliver.deliveries as deliveries
from handler.app import handle
from handler.ask.attempts import Backoff
from handler.deliver.answers import COMPLETED, AnswerRecord, OssAnswerStore
from handler.deliver.memory import AnsweredRecords
from handler.deliver.once import ASKED, STORED, SUPERSEDED, Once
from handler.deliver.store import Oss2Store
from handler.errors import DeploymentFailure, InvalidConfig, TransientUpstreamError
from handler.fc_context import Credentials
from handler.result import Result
from tests.conftest import echo, response
from tests.support import answer_store
from tests.support.answer_store import stored
from tests.support.events import topic_message
from tests.support.instances import ANSWER_BUCKET

fc, run = answer_store.fc, answer_store.run  # fixtures shared with test_answer_store_faults.py (tests/support)


def test_an_mns_answer_is_stored_under_its_documented_key(run, oss, fc, transport):
    """answers/mns/<messageId>.json holds the result exactly as returned; the marker sits under .pending/."""
    result = run(topic_message("m-1", "你好"), fc)
    assert result["status_code"] == 200 and stored(oss, "answers/mns/m-1.json") == result
    marker = oss.get(ANSWER_BUCKET, "answers/.pending/mns/m-1.json")
    assert marker.metadata["status"] == "in_progress" and marker.metadata["owner"].startswith("fc-req-1.")
    assert oss.get(ANSWER_BUCKET, "answers/mns/m-1.json").metadata["status"] == "completed"
    assert transport.call_count == 1


def test_a_custom_prefix_moves_the_answers(run, oss, fc):
    """QWEN_OSS_OUTPUT_PREFIX is the answer store's prefix too."""
    run(topic_message("m-2", "你好"), fc, QWEN_OSS_OUTPUT_PREFIX="qa/out")
    assert stored(oss, "qa/out/mns/m-2.json") is not None


def test_the_memory_is_the_fast_path(run, oss, fc):
    """The same message again on the same instance costs no OSS request and no call."""
    memory = AnsweredRecords()
    first = run(topic_message("m-3", "你好"), fc, memory)
    oss.requests.clear()
    assert run(topic_message("m-3", "你好"), fc, memory) == first
    assert oss.requests == []


def test_a_plain_event_never_touches_the_store(run, oss, fc):
    """No delivery id (a console test event): asked, returned, nothing stored."""
    assert run("你好", fc)["status_code"] == 200
    assert oss.requests == []


def test_the_same_message_id_with_another_question_is_a_conflict(run, oss, fc, transport):
    """A stored answer to a different body under the same id: 409 AnswerConflict, not asked, not replaced."""
    first = run(topic_message("m-4", "第一个问题"), fc)
    conflict = run(topic_message("m-4", "另一个问题"), fc)
    assert conflict["status_code"] == 409 and conflict["code"] == "AnswerConflict"
    assert "oss://qwen-answers/answers/mns/m-4.json" in conflict["message"]
    assert transport.call_count == 1 and stored(oss, "answers/mns/m-4.json") == first


def test_two_transient_answer_write_failures_then_stored(run, oss, fc, transport):
    """The answer's PUT fails twice with 503: retried, stored once, asked once, a plain 200."""
    oss.fail_next(503, 503, method="PUT", prefix="answers/mns/")
    result = run(topic_message("m-5", "你好"), fc)
    assert result["status_code"] == 200 and result["code"] == ""
    assert stored(oss, "answers/mns/m-5.json") == result and transport.call_count == 1
    assert oss.writes[(ANSWER_BUCKET, "answers/mns/m-5.json")] == 1


def test_a_denied_answer_store_returns_the_answer_and_remembers_it(run, oss, fc, transport, logs):
    """403 on the answer bucket: the paid answer comes back with where and what to grant; not asked twice."""
    oss.deny("PUT", "answers/")
    memory = AnsweredRecords()
    result = run(topic_message("m-6", "你好"), fc, memory)
    assert result["status_code"] == 200 and result["output"] is not None
    assert (
        result["code"] == "AnswerNotStored"
        and "oss:PutObject on acs:oss:*:*:qwen-answers/answers/" in result["message"]
    )
    assert logs.events("answer_not_stored")
    again = run(topic_message("m-6", "你好"), fc, memory)
    assert again["output"] == result["output"] and transport.call_count == 1


def test_an_answer_write_denied_after_asking_is_not_lost(run, oss, fc, transport):
    """The marker could be written, the answer not (a grant on .pending/ only): returned, remembered, marker freed."""
    oss.deny("PUT", "answers/mns/")
    memory = AnsweredRecords()
    result = run(topic_message("m-7", "你好"), fc, memory)
    assert result["code"] == "AnswerNotStored" and result["output"] is not None
    assert oss.get(ANSWER_BUCKET, "answers/.pending/mns/m-7.json") is None
    oss.reset()
    again = run(topic_message("m-7", "你好"), fc, memory)  # the grant fixed: the redelivery stores it, no ask
    assert again["code"] == "" and stored(oss, "answers/mns/m-7.json") == again and transport.call_count == 1


def test_oss_down_before_asking_raises_without_asking(run, oss, fc, transport):
    """If the store cannot be read, nothing is paid for yet: raise, so the message comes again."""
    oss.fail_next(503, 503, 503, 503, 503, 503, method="GET")
    with pytest.raises(TransientUpstreamError, match="OssUnavailable"):
        run(topic_message("m-8", "你好"), fc)
    transport.assert_not_called()


def test_a_failed_ask_frees_the_marker_and_stores_nothing(run, oss, fc, transport):
    """DashScope stays down: the handler raises, and the redelivery need not wait for the marker's deadline."""
    transport.side_effect = None
    transport.return_value = response(503, code="ServiceUnavailable")
    with pytest.raises(TransientUpstreamError):
        run(topic_message("m-9", "你好"), fc)
    assert oss.get(ANSWER_BUCKET, "answers/.pending/mns/m-9.json") is None
    assert oss.get(ANSWER_BUCKET, "answers/mns/m-9.json") is None


def test_our_own_5xx_is_not_kept(run, oss, fc, transport):
    """An SDK bug's 500 is raised for the trigger, neither stored nor remembered: a redelivery tries again."""
    transport.side_effect = RuntimeError("sdk bug")
    memory = AnsweredRecords()
    with pytest.raises(DeploymentFailure) as raised:
        run(topic_message("m-10", "你好"), fc, memory)
    assert raised.value.status_code == 500 and raised.value.code == "InternalError"
    assert oss.get(ANSWER_BUCKET, "answers/mns/m-10.json") is None
    transport.side_effect = echo
    assert run(topic_message("m-10", "你好"), fc, memory)["status_code"] == 200  # not remembered either


# Once's seams for these tests: FC request id, a 60 s function, 30 s left, no sleeping.
ONCE = {
    "request_id": "fc",
    "timeout": 60,
    "remaining": lambda: 30,
    "sleep": lambda s: None,
    "backoff": Backoff(0.01, 0.02),
}


def test_a_slow_attempt_cannot_overwrite_the_answer_of_the_one_that_took_over(oss):
    """A is past its deadline, B takes over and stores first; A's late answer is not written: A gets B's."""
    store = OssAnswerStore(Oss2Store(Credentials("id", "secret"), oss.url), ANSWER_BUCKET, "answers/")
    now = [1000.0]

    def once(owner: str) -> Once:
        return Once(store, SimpleNamespace(**ONCE, wall=lambda: now[0]), owner=owner)

    def slow_ask():
        now[0] += 120  # A is stuck past its marker's deadline; meanwhile B takes over and answers
        b = once("B").answer("mns/x.json", "h", lambda: Result(200, "ds-b", output={"text": "B"}))
        assert b.how == ASKED
        return Result(200, "ds-a", output={"text": "A"})

    a = once("A").answer("mns/x.json", "h", slow_ask)
    assert a.how == SUPERSEDED and a.result.output == {"text": "B"}
    assert json.loads(oss.get(ANSWER_BUCKET, "answers/mns/x.json").data)["output"] == {"text": "B"}
    assert oss.writes[(ANSWER_BUCKET, "answers/mns/x.json")] == 1
    assert oss.get(ANSWER_BUCKET, "answers/.pending/mns/x.json").metadata["owner"] == "B"
    assert store.get("mns/x.json") == AnswerRecord(
        COMPLETED, "h", "B", store.get("mns/x.json").deadline, 2, Result(200, "ds-b", output={"text": "B"})
    )
    assert once("C").answer("mns/x.json", "h", lambda: pytest.fail("asked again")).how == STORED


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(deliveries, "_warned", False)


def test_answers_kept_nowhere_log_one_warning(fresh_warning, runtime, context, logs):
    """No store, no destination, no content logging: the first timer or MNS answer warns, once per instance."""
    handle(topic_message("w-1", "你好").encode(), context, runtime)
    handle(json.dumps({"triggerTime": "t", "triggerName": "n", "payload": "q"}).encode(), context, runtime)
    (warning,) = logs.events("answers_kept_nowhere")
    assert "QWEN_ANSWER_BUCKET" in warning["message"] and "destinationConfig" in warning["message"]


@pytest.mark.parametrize("setting", [{"QWEN_FC_DESTINATION": "true"}, {"QWEN_LOG_CONTENT": "true"}])
def test_no_warning_when_answers_are_kept(fresh_warning, runtime, context, env, logs, setting):
    """A destination (declared) or logged content keeps the answer: no warning."""
    env.update(setting)
    handle(topic_message("w-2", "你好").encode(), context, runtime)
    assert logs.events("answers_kept_nowhere") == []


def test_no_warning_for_a_console_question(fresh_warning, runtime, context, logs):
    """A synchronous test event's answer is returned to the caller: nothing to warn about."""
    handle(b"hello", context, runtime)
    assert logs.events("answers_kept_nowhere") == []


def test_an_invalid_answer_bucket_is_a_config_error(runtime, context, env, transport):
    """QWEN_ANSWER_BUCKET is checked as a bucket name (it becomes part of a host name); raised for a trigger."""
    env["QWEN_ANSWER_BUCKET"] = "evil.example.com/#"
    with pytest.raises(InvalidConfig) as raised:
        handle(topic_message("c-1", "你好").encode(), context, runtime)
    assert raised.value.status_code == 500 and "QWEN_ANSWER_BUCKET" in raised.value.message
    transport.assert_not_called()


def test_a_malformed_message_gets_its_refusal_stored(run, oss, fc, transport):
    """An empty MNS message is a 400 EmptyEvent, kept under its message id like an answer; not asked."""
    result = run(topic_message("bad-1", "   "), fc)
    assert result["status_code"] == 400 and result["code"] == "EmptyEvent"
    assert stored(oss, "answers/mns/bad-1.json") == result
    transport.assert_not_called()


class BrokenAfterClaim:
    """An AnswerStore whose answer write fails with an unexpected exception (a bug, a library error)."""

    def __init__(self) -> None:
        self.records: dict[str, AnswerRecord] = {}

    def where(self, key):
        return f"mem://{key}"

    def get(self, key):
        return self.records.get(key)

    def put_if_absent(self, key, record):
        if record.completed:
            raise RuntimeError("library bug")
        if key in self.records:
            return False
        self.records[key] = record
        return True

    def update(self, key, record):
        self.records[key] = record

    def delete(self, key):
        self.records.pop(key, None)


def test_an_unexpected_store_error_after_asking_keeps_the_answer():
    """The answer was paid for: an unexpected error writing it gives the answer back, with the problem."""
    store = BrokenAfterClaim()
    once = Once(store, SimpleNamespace(**ONCE, wall=lambda: 1000.0), owner="A")
    outcome = once.answer("mns/y.json", "h", lambda: Result(200, "ds", output={"text": "paid"}))
    assert outcome.result.output == {"text": "paid"} and outcome.problem is not None
    assert store.records == {}  # and the marker was released for the redelivery
