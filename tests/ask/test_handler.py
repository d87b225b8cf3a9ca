"""The whole invocation through the SDK seam: results, retries, deadlines and the log line."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from handler.app import handle, initialize
from handler.errors import QwenError, TransientUpstreamError
from tests.conftest import API_KEY, response

RESULT_FIELDS = ["status_code", "request_id", "code", "message", "output", "usage"]


def test_a_question_is_answered_in_the_reference_shape(runtime, context, transport):
    """A plain question returns exactly DashScope's response fields, Chinese kept readable."""
    returned = handle("如何做西红柿炖牛腩?".encode(), context, runtime)
    result = json.loads(returned)
    assert list(result) == RESULT_FIELDS
    assert result["status_code"] == 200 and result["request_id"] == "ds-req-1"
    assert result["output"]["choices"][0]["message"]["content"] == "答案"
    assert result["usage"] == {"input_tokens": 15, "output_tokens": 212, "total_tokens": 227}
    assert "答案" in returned and "\\u" not in returned


def test_messages_mode_calls_the_sdk_with_messages(runtime, context, transport):
    """Messages mode sends system + user messages, result_format=message, the key and a timeout."""
    handle(b"hi", context, runtime)
    kwargs = transport.call_args.kwargs
    assert kwargs["model"] == "qwen-turbo"
    assert kwargs["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "hi"},
    ]
    assert kwargs["result_format"] == "message"
    assert kwargs["api_key"] == API_KEY
    assert 1 <= kwargs["seed"] <= 10000
    assert 0 < kwargs["request_timeout"] <= 60
    assert "timeout" not in kwargs and "prompt" not in kwargs and "base_address" not in kwargs


def test_prompt_mode_calls_the_sdk_with_prompt(runtime, context, transport, env):
    """Prompt mode sends prompt= and reads the answer from output.text."""
    env["QWEN_MODE"] = "prompt"
    transport.return_value = response(mode="prompt", text="炖一小时")
    result = json.loads(handle(b"hi", context, runtime))
    kwargs = transport.call_args.kwargs
    assert kwargs["prompt"] == "hi" and "messages" not in kwargs and "result_format" not in kwargs
    assert result["output"]["text"] == "炖一小时"


def test_an_endpoint_override_is_passed_per_call(runtime, context, transport, env):
    """DASHSCOPE_HTTP_BASE_URL reaches every call, whenever the SDK was imported."""
    env["DASHSCOPE_HTTP_BASE_URL"] = "https://dashscope-intl.aliyuncs.com/api/v1"
    handle(b"hi", context, runtime)
    assert transport.call_args.kwargs["base_address"] == "https://dashscope-intl.aliyuncs.com/api/v1"


def test_invalid_config_is_a_500_without_a_call(runtime, context, transport, env, logs):
    """A bad variable gives every invocation the same JSON error, and DashScope is never called."""
    env["QWEN_MAX_ATTEMPTS"] = "lots"
    result = json.loads(handle(b"hi", context, runtime))
    assert result["status_code"] == 500 and result["code"] == "InvalidConfig"
    assert "QWEN_MAX_ATTEMPTS" in result["message"]
    assert result["request_id"] == "fc-req-1" and result["output"] is None and result["usage"] is None
    transport.assert_not_called()
    assert logs.events("config_invalid")[0]["fc_request_id"] == "fc-req-1"


def test_bad_input_is_a_400_with_the_fc_request_id(runtime, context, transport):
    """A refused event carries FC's request id, a code and a message, and costs no call."""
    result = json.loads(handle(b"   ", context, runtime))
    assert result["status_code"] == 400 and result["code"] == "EmptyEvent"
    assert result["request_id"] == "fc-req-1"
    transport.assert_not_called()


def test_a_model_not_allowed_is_a_400_without_a_call(runtime, context, transport):
    """An event choosing a model outside QWEN_ALLOWED_MODELS is refused before any call."""
    result = json.loads(handle(b'{"prompt": "x", "model": "qwen-max"}', context, runtime))
    assert result["code"] == "ModelNotAllowed"
    transport.assert_not_called()


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "InvalidParameter"), (400, "DataInspectionFailed")],
)
def test_upstream_4xx_is_returned_not_retried(runtime, context, transport, status, code):
    """DashScope's refusals come back as the JSON error, after exactly one call."""
    transport.return_value = response(status, code=code, message="nope", request_id="ds-err")
    result = json.loads(handle(b"hi", context, runtime))
    assert result == {
        "status_code": status,
        "request_id": "ds-err",
        "code": code,
        "message": "nope",
        "output": None,
        "usage": None,
    }
    assert transport.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        response(429, code="Throttling", message="Requests rate limit exceeded"),
        response(500, code="InternalError", message="oops"),
        response(502, code="Unknown", message="<html>bad gateway</html>"),
        response(200, text=None),  # a 200 without an answer in it
        requests.exceptions.ConnectionError("connection reset"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.JSONDecodeError("Expecting value", "", 0),
    ],
)
def test_transient_failures_are_retried_then_answered(runtime, context, transport, clock, logs, failure):
    """One transient failure then a 200: the caller gets the answer and the log says 2 attempts."""
    transport.side_effect = [failure, response()]
    result = json.loads(handle(b"hi", context, runtime))
    assert result["status_code"] == 200
    assert transport.call_count == 2 and len(clock.sleeps) == 1
    assert logs.events("question")[0]["attempts"] == 2


def test_persistent_failure_raises_with_code_and_request_id(runtime, context, transport, clock, logs):
    """After QWEN_MAX_ATTEMPTS transient failures the handler raises so FC retries the event."""
    transport.return_value = response(503, code="ServiceUnavailable", message="busy", request_id="ds-503")
    with pytest.raises(TransientUpstreamError) as caught:
        handle(b"hi", context, runtime)
    message = str(caught.value)
    assert "ServiceUnavailable" in message and "ds-503" in message and "attempts=3" in message
    assert API_KEY not in message
    assert transport.call_count == 3
    assert len(clock.sleeps) == 2 and clock.sleeps[1] > clock.sleeps[0] / 2
    line = logs.events("question")[0]
    assert line["code"] == "ServiceUnavailable" and line["attempts"] == 3 and line["status_code"] is None


def test_max_attempts_is_configurable(runtime, context, transport, env):
    """QWEN_MAX_ATTEMPTS=1 means no retry at all."""
    env["QWEN_MAX_ATTEMPTS"] = "1"
    transport.return_value = response(500, code="InternalError")
    with pytest.raises(TransientUpstreamError):
        handle(b"hi", context, runtime)
    assert transport.call_count == 1


def test_backoff_grows_and_is_jittered(runtime, context, transport, clock, env):
    """Waits double per failure (with jitter) between attempts."""
    env["QWEN_MAX_ATTEMPTS"] = "5"
    transport.return_value = response(500, code="InternalError")
    with pytest.raises(TransientUpstreamError):
        handle(b"hi", context, runtime)
    assert len(clock.sleeps) == 4
    for failures, pause in enumerate(clock.sleeps, start=1):
        step = 0.5 * 2 ** (failures - 1)
        assert step / 2 <= pause <= step


def test_retry_after_is_honoured(runtime, context, transport, clock):
    """A 429 with Retry-After waits at least that long before the next attempt."""
    transport.side_effect = [response(429, code="Throttling", headers={"Retry-After": "7"}), response()]
    handle(b"hi", context, runtime)
    assert clock.sleeps == [7.0]


def test_retry_after_past_the_deadline_gives_up_without_sleeping(runtime, context, transport, clock):
    """When the wait asked for would pass the deadline, the handler raises at once instead."""
    context.function.timeout = 20
    transport.return_value = response(429, code="Throttling", headers={"retry-after": "120"})
    with pytest.raises(TransientUpstreamError):
        handle(b"hi", context, runtime)
    assert transport.call_count == 1 and clock.sleeps == []


def test_attempts_never_run_past_the_function_deadline(runtime, context, transport, clock):
    """Each attempt's timeout is capped by the time left, and no attempt starts without time for it."""
    context.function.timeout = 10
    timeouts: list[float] = []

    def slow_failure(**kwargs):
        timeouts.append(kwargs["request_timeout"])
        clock.now += kwargs["request_timeout"]  # the call uses all the time it was given
        raise requests.exceptions.ReadTimeout("read timed out")

    transport.side_effect = slow_failure
    started = clock.now
    with pytest.raises(TransientUpstreamError) as caught:
        handle(b"hi", context, runtime)
    assert caught.value.code == "RequestTimeout"
    assert timeouts and timeouts[0] < 10
    assert clock.now - started < 10


def test_request_timeout_is_the_configured_one_when_time_allows(runtime, context, transport, env):
    """With time to spare, each attempt gets QWEN_REQUEST_TIMEOUT."""
    env["QWEN_REQUEST_TIMEOUT"] = "15"
    context.function.timeout = 300
    handle(b"hi", context, runtime)
    assert transport.call_args.kwargs["request_timeout"] == 15


def test_an_unexpected_sdk_exception_is_a_500_not_a_crash(runtime, context, transport):
    """An SDK bug becomes a 500 InternalError result naming the exception type, not retried."""
    transport.side_effect = RuntimeError(f"boom {API_KEY}")
    returned = handle(b"hi", context, runtime)
    result = json.loads(returned)
    assert result["status_code"] == 500 and result["code"] == "InternalError"
    assert "RuntimeError" in result["message"] and API_KEY not in returned
    assert transport.call_count == 1


def test_the_log_line_has_every_field(runtime, context, logs):
    """One JSON line per question with ids, model, mode, status, attempts, latency and tokens."""
    handle(b"hi", context, runtime)
    (line,) = logs.events("question")
    expected = {
        "fc_request_id": "fc-req-1",
        "request_id": "ds-req-1",
        "model": "qwen-turbo",
        "mode": "messages",
        "status_code": 200,
        "code": "",
        "attempts": 1,
        "input_tokens": 15,
        "output_tokens": 212,
        "total_tokens": 227,
    }
    assert {k: line[k] for k in expected} == expected
    assert isinstance(line["latency_ms"], int)
    assert "question" not in line and "answer" not in line


def test_content_is_logged_only_when_enabled(runtime, context, env, logs):
    """QWEN_LOG_CONTENT=true adds the question and the answer text to the line."""
    env["QWEN_LOG_CONTENT"] = "true"
    handle("炖牛腩?".encode(), context, runtime)
    (line,) = logs.events("question")
    assert line["question"] == "炖牛腩?" and line["answer"] == "答案"


def test_question_text_cannot_forge_log_lines(runtime, context, env, logs):
    """Newlines, fake JSON and Unicode line separators in a question stay inside one line."""
    env["QWEN_LOG_CONTENT"] = "true"
    forged = 'hi"}\n{"event":"question","status_code":200}\u2028INFO fake\r\n'
    handle(forged.encode(), context, runtime)
    messages = [r.getMessage() for r in logs.records if r.name == "qwen"]
    assert len(messages) == 1
    assert not any(ch in messages[0] for ch in "\n\r\u2028\u2029\u0085")
    assert json.loads(messages[0])["question"] == forged.strip()


def test_a_secret_echoed_by_upstream_is_masked(runtime, context, transport, logs):
    """If DashScope ever echoed the key in an error, neither the result nor the log shows it."""
    transport.return_value = response(400, code="InvalidParameter", message=f"bad key {API_KEY}")
    returned = handle(b"hi", context, runtime)
    assert API_KEY not in returned and "***" in returned
    transport.return_value = response(401, code="InvalidApiKey", message=f"bad key {API_KEY}")
    with pytest.raises(QwenError) as raised:
        handle(b"hi", context, runtime)
    assert API_KEY not in str(raised.value) and "***" in str(raised.value)
    assert API_KEY not in logs.text


def test_a_handler_without_an_fc_context_still_answers(runtime, transport):
    """A bare call (no context attributes) uses a local request id and a default timeout."""
    result = json.loads(handle(b"hi", object(), runtime))
    assert result["status_code"] == 200
    assert 0 < transport.call_args.kwargs["request_timeout"] <= 60


def test_initialize_reports_bad_config_without_raising(runtime, context, env, logs):
    """The initializer logs an invalid configuration and returns, so invocations answer with JSON."""
    env["QWEN_MODE"] = "chat"
    initialize(context, runtime)
    (line,) = logs.events("config_invalid")
    assert "QWEN_MODE" in line["message"]
    assert logs.records[-1].levelno == logging.ERROR


def test_initialize_with_good_config_logs_it(runtime, context, logs):
    """A good configuration is acknowledged once at start-up."""
    initialize(context, runtime)
    assert logs.events("initialized")[0]["fc_request_id"] == "fc-req-1"
