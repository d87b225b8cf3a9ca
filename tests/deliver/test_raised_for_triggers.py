"""A broken deployment is raised for the events nobody waits on, so FC retries and dead-letters them and
EventBridge does not count them delivered; a direct invocation still gets the JSON error. A raised error's
text begins with the project's result JSON (FC's runtime puts it in errorMessage), and the project logs
one ERROR line for it."""

from __future__ import annotations

import json
import logging

import pytest

from handler.app import handle
from handler.errors import InvalidConfig, QwenError, TransientUpstreamError
from tests.conftest import echo, response
from tests.support.events import queue_batch

TRIGGERS = ["timer.json", "oss.json", "mns-queue-event.json", "mns-queue-batch.json", "mns-topic-json.json"]


def result_in(error: BaseException) -> dict:
    """The result JSON the raised error's text begins with."""
    value, _ = json.JSONDecoder().raw_decode(str(error))
    return value


def error_lines(logs) -> list[dict]:
    return [json.loads(r.getMessage()) for r in logs.records if r.name == "qwen" and r.levelno >= logging.ERROR]


@pytest.mark.parametrize("name", TRIGGERS)
def test_a_missing_key_is_raised_for_a_trigger(runtime, context, env, event_file, logs, name):
    del env["DASHSCOPE_API_KEY"]
    with pytest.raises(InvalidConfig) as raised:
        handle(event_file(name), context, runtime)
    result = result_in(raised.value)
    assert result["status_code"] == 500 and result["code"] == "InvalidConfig"
    assert "DASHSCOPE_API_KEY" in result["message"] and result["request_id"] == "fc-req-1"
    (line,) = error_lines(logs)
    assert line["event"] == "config_invalid" and "DASHSCOPE_API_KEY" in line["message"]


@pytest.mark.parametrize("event", [b"hi", b'{"prompt": "hi"}', b'{"messages": [{"role": "user", "content": "hi"}]}'])
def test_a_missing_key_is_returned_to_a_direct_caller(runtime, context, env, event):
    del env["DASHSCOPE_API_KEY"]
    result = json.loads(handle(event, context, runtime))
    assert result["status_code"] == 500 and result["code"] == "InvalidConfig"


def test_an_unexpected_error_is_raised_for_a_trigger_with_one_error_line(runtime, context, transport, event_file, logs):
    transport.side_effect = RuntimeError("boom")
    with pytest.raises(TransientUpstreamError) as raised:
        handle(event_file("timer.json"), context, runtime)
    result = result_in(raised.value)
    assert result["status_code"] == 500 and result["code"] == "InternalError" and "boom" in result["message"]
    (line,) = error_lines(logs)
    assert line["event"] == "question" and line["code"] == "InternalError"
    assert line["error"] == "RuntimeError" and "boom" in line["traceback"]


def test_an_unexpected_error_still_answers_a_plain_question(runtime, context, transport):
    transport.side_effect = RuntimeError("boom")
    result = json.loads(handle(b"hi", context, runtime))
    assert result["status_code"] == 500 and result["code"] == "InternalError"


def test_a_batch_raises_after_its_other_records_are_answered(runtime, context, transport, logs):
    def answer(**kwargs):
        if kwargs["messages"][-1]["content"] == "broken":
            raise RuntimeError("boom")
        return echo(**kwargs)

    transport.side_effect = answer
    batch = queue_batch(("m-1", "one"), ("m-2", "broken"), ("m-3", "three")).encode()
    with pytest.raises(TransientUpstreamError) as raised:
        handle(batch, context, runtime)
    assert result_in(raised.value)["code"] == "InternalError" and "m-2" in result_in(raised.value)["message"]
    assert transport.call_count == 3
    assert {line["code"] for line in logs.events("question")} == {"", "InternalError"}


def test_a_transient_failure_raised_says_the_result_json(runtime, context, transport, event_file, logs):
    transport.return_value = response(503, code="ServiceUnavailable", message="busy", request_id="ds-9")
    with pytest.raises(TransientUpstreamError) as raised:
        handle(event_file("timer.json"), context, runtime)
    result = result_in(raised.value)
    assert result["status_code"] == 503 and result["code"] == "ServiceUnavailable" and result["message"]
    assert raised.value.message == result["message"]  # the message itself is unchanged
    (line,) = error_lines(logs)
    assert line["event"] == "question"


def test_an_account_failure_raised_has_one_error_line(runtime, context, transport, logs):
    transport.return_value = response(401, code="InvalidApiKey", message="Invalid API-key provided.")
    with pytest.raises(QwenError) as raised:
        handle(b"hi", context, runtime)
    assert result_in(raised.value)["code"] == "InvalidApiKey"
    (line,) = error_lines(logs)
    assert line["event"] == "account_failure"
