"""The real dashscope SDK against the local stand-in of DashScope's HTTP API on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest

from handler.app import Runtime, handle
from handler.errors import TransientUpstreamError
from handler.local.standin import EMULATED, answer, drop, error, gateway_page, hang, truncated
from handler.retry import Backoff
from tests.conftest import API_KEY


@pytest.fixture
def wire_env(standin) -> dict[str, str]:
    return {"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url}


@pytest.fixture
def wire(wire_env) -> Runtime:
    """The production seams, with short backoff steps so fault tests stay quick."""
    return Runtime(env=wire_env, backoff=Backoff(base=0.02, cap=0.1))


def ask(event: bytes, context, runtime: Runtime) -> dict:
    return json.loads(handle(event, context, runtime))


def test_messages_mode_over_the_wire(standin, wire, context):
    """The SDK posts model, messages, result_format and a seed; the answer comes back as a result."""
    result = ask("如何做西红柿炖牛腩?".encode(), context, wire)
    assert result["status_code"] == 200
    content = result["output"]["choices"][0]["message"]["content"]
    assert content.startswith(EMULATED) and "如何做西红柿炖牛腩?" in content
    assert result["usage"]["total_tokens"] == result["usage"]["input_tokens"] + result["usage"]["output_tokens"]
    (request,) = standin.requests
    assert request.authorized
    assert request.body["model"] == "qwen-turbo"
    assert request.body["input"]["messages"][-1] == {"role": "user", "content": "如何做西红柿炖牛腩?"}
    assert request.body["parameters"]["result_format"] == "message"
    assert 1 <= request.body["parameters"]["seed"] <= 10000
    assert "request_timeout" not in request.body["parameters"]


def test_prompt_mode_over_the_wire(standin, wire, wire_env, context):
    """Prompt mode posts input.prompt and reads output.text."""
    wire_env["QWEN_MODE"] = "prompt"
    result = ask(b'{"prompt": "hello", "parameters": {"temperature": 0.3}}', context, wire)
    assert result["output"]["text"].startswith(EMULATED)
    body = standin.requests[0].body
    assert body["input"] == {"prompt": "hello"} and body["parameters"]["temperature"] == 0.3


def test_wrong_key_is_a_401_result(standin, wire, wire_env, context):
    """DashScope's 401 InvalidApiKey is returned as JSON, once, never retried."""
    wire_env["DASHSCOPE_API_KEY"] = "sk-wrong-key-000000"
    result = ask(b"hi", context, wire)
    assert result["status_code"] == 401 and result["code"] == "InvalidApiKey"
    assert result["request_id"] and result["output"] is None
    assert len(standin.requests) == 1


def test_invalid_parameter_is_a_400_result(standin, wire, context):
    """A scripted 400 InvalidParameter reaches the caller with DashScope's request id."""
    standin.script(error(400, "InvalidParameter", "Range of input length should be [1, 6000]"))
    result = ask(b"hi", context, wire)
    assert result["status_code"] == 400 and result["code"] == "InvalidParameter"
    assert "Range of input length" in result["message"]
    assert len(standin.requests) == 1


def test_throttling_is_retried_after_retry_after(standin, wire, context):
    """429 with Retry-After: the next attempt waits that long, then the answer is returned."""
    standin.script(error(429, "Throttling", "Requests rate limit exceeded", retry_after=0.3))
    started = time.monotonic()
    result = ask(b"hi", context, wire)
    assert result["status_code"] == 200
    assert time.monotonic() - started >= 0.3
    assert len(standin.requests) == 2


def test_server_errors_exhaust_attempts_and_raise(standin, wire, context):
    """Three 500s: the handler raises with the code and DashScope's request id."""
    standin.script(*[error(500, "InternalError", "An internal error has occured")] * 3)
    with pytest.raises(TransientUpstreamError) as caught:
        handle(b"hi", context, wire)
    assert caught.value.code == "InternalError" and caught.value.attempts == 3
    assert caught.value.request_id and caught.value.request_id in str(caught.value)
    assert len(standin.requests) == 3


def test_a_gateway_html_page_is_transient(standin, wire, context):
    """A non-JSON 502 page is retried, and the next attempt's answer is returned."""
    standin.script(gateway_page(502))
    assert ask(b"hi", context, wire)["status_code"] == 200
    assert len(standin.requests) == 2


def test_a_truncated_200_is_transient(standin, wire, context):
    """A 200 whose body is cut short is retried rather than returned half-read."""
    standin.script(truncated())
    assert ask(b"hi", context, wire)["status_code"] == 200
    assert len(standin.requests) == 2


def test_dropped_connections_are_retried(standin, wire, context):
    """A dropped connection (the SDK resends once itself) counts as one failed attempt, then we retry."""
    standin.script(drop(), drop())
    assert ask(b"hi", context, wire)["status_code"] == 200
    assert len(standin.requests) == 3


def test_a_slow_reply_times_out_and_is_retried(standin, wire, wire_env, context):
    """A reply slower than QWEN_REQUEST_TIMEOUT is abandoned and asked again."""
    wire_env["QWEN_REQUEST_TIMEOUT"] = "1"
    standin.script(answer(delay=3))
    started = time.monotonic()
    assert ask(b"hi", context, wire)["status_code"] == 200
    assert 1 <= time.monotonic() - started < 2.5
    assert len(standin.requests) == 2


def test_a_hung_upstream_ends_before_the_function_timeout(standin, wire, wire_env, context):
    """With DashScope silent, the handler raises before context.function.timeout runs out."""
    context.function.timeout = 4
    standin.script(*[hang(10)] * 5)
    started = time.monotonic()
    with pytest.raises(TransientUpstreamError) as caught:
        handle(b"hi", context, wire)
    assert caught.value.code == "RequestTimeout"
    assert time.monotonic() - started < 4


def test_connections_are_reused_across_invocations(standin, wire, context):
    """Warm invocations reuse the SDK's pooled connection instead of opening new ones."""
    for _ in range(5):
        assert ask(b"hi", context, wire)["status_code"] == 200
    assert standin.connections <= 1
