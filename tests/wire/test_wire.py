"""The real dashscope SDK against the local stand-in of DashScope's HTTP API on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.errors import TransientUpstreamError
from handler.local.standin import EMULATED, answer, drop, error, gateway_page, hang, stream, truncated
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


def test_wrong_key_raises_an_account_failure(standin, wire, wire_env, context):
    """DashScope's 401 InvalidApiKey is the account's failure, not the question's answer: raised
    (tests/ask/test_account_failures.py), after one call, never retried within the invocation."""
    wire_env["DASHSCOPE_API_KEY"] = "sk-wrong-key-000000"
    with pytest.raises(TransientUpstreamError) as raised:
        ask(b"hi", context, wire)
    assert raised.value.code == "InvalidApiKey" and raised.value.status_code == 401 and raised.value.request_id
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


# Streaming: every call streams; these run the real SDK against the stand-in's SSE.

LONG = "".join(f"第{i}段:牛腩切块焯水,加番茄慢炖。" for i in range(40))


def test_a_short_answer_is_the_result_of_today(standin, wire, context):
    """A streamed short answer assembles into exactly the non-streamed result's output and usage."""
    standin.script(stream("牛腩炖两小时。", chunks=4))
    result = ask(b"hi", context, wire)
    assert result["code"] == "" and result["message"] == ""
    assert result["output"] == {
        "text": None,
        "finish_reason": None,
        "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "牛腩炖两小时。"}}],
    }
    assert result["usage"]["total_tokens"] == result["usage"]["input_tokens"] + result["usage"]["output_tokens"]
    body = standin.requests[0].body["parameters"]
    assert body["incremental_output"] is True


def test_an_answer_four_times_the_request_timeout_is_delivered_whole(standin, wire, wire_env, context, logs):
    """Silence, not length, is the timeout: 4 s of steady output with a 1 s timeout is one request."""
    wire_env["QWEN_REQUEST_TIMEOUT"] = "1"
    standin.script(stream(LONG, chunks=20, first=0.3, every=0.2))
    started = time.monotonic()
    result = ask(b"hi", context, wire)
    assert time.monotonic() - started >= 4  # it really took four timeouts
    assert result["status_code"] == 200 and result["code"] == ""
    assert result["output"]["choices"][0]["message"]["content"] == LONG
    assert len(standin.requests) == 1
    assert logs.events("question")[-1]["attempts"] == 1


def test_the_deadline_cuts_a_stream_that_keeps_talking(standin, wire, context, logs):
    """At the deadline the text so far comes back as a 200 PartialAnswer, once, before the timeout."""
    context.function.timeout = 4
    standin.script(stream(LONG, chunks=100, every=0.1))
    started = time.monotonic()
    result = ask(b"hi", context, wire)
    assert time.monotonic() - started < 4
    assert result["status_code"] == 200 and result["code"] == "PartialAnswer"
    text = result["output"]["choices"][0]["message"]["content"]
    assert text and LONG.startswith(text) and text != LONG
    assert "function's timeout" in result["message"] and "max_tokens" in result["message"]
    assert f"{result['usage']['output_tokens']} output tokens" in result["message"]
    assert len(standin.requests) == 1
    line = logs.events("question")[-1]
    assert line["partial_reason"] == "deadline" and line["code"] == "PartialAnswer" and line["message"]


def test_a_stall_near_the_deadline_does_not_overrun_it(standin, wire, context):
    """A stream silent for less than QWEN_REQUEST_TIMEOUT but past the deadline ends at the deadline."""
    context.function.timeout = 4  # the 60 s silence allowance must not outlast the function
    # Two seconds of output, then silence: the socket's timeout must follow the time left, not stay
    # at what was left when the request was sent.
    standin.script(stream(LONG, chunks=40, every=0.1, stall_after=20, stall=30))
    started = time.monotonic()
    result = ask(b"hi", context, wire)
    assert time.monotonic() - started < 4
    assert result["code"] == "PartialAnswer" and "function's timeout" in result["message"]


def test_a_stall_after_output_is_a_partial_answer(standin, wire, wire_env, context, logs):
    """Silence longer than QWEN_REQUEST_TIMEOUT after output began returns what arrived, not asked again."""
    wire_env["QWEN_REQUEST_TIMEOUT"] = "1"
    standin.script(stream(LONG, chunks=10, stall_after=3, stall=30))
    started = time.monotonic()
    result = ask(b"hi", context, wire)
    assert 1 <= time.monotonic() - started < 10  # the silence allowance, not the 30 s stall
    assert result["code"] == "PartialAnswer" and "QWEN_REQUEST_TIMEOUT" in result["message"]
    assert LONG.startswith(result["output"]["choices"][0]["message"]["content"])
    assert len(standin.requests) == 1
    assert logs.events("question")[-1]["partial_reason"] == "silence"


def test_a_break_after_output_is_a_partial_answer(standin, wire, context, logs):
    """A connection dropped mid-answer returns the text so far and the usage last reported."""
    standin.script(stream(LONG, chunks=10, break_after=4))
    result = ask(b"hi", context, wire)
    assert result["status_code"] == 200 and result["code"] == "PartialAnswer"
    assert "connection broke" in result["message"]
    text = result["output"]["choices"][0]["message"]["content"]
    assert len(text) > 0 and LONG.startswith(text)
    assert result["usage"]["output_tokens"] > 0
    assert len(standin.requests) == 1
    assert logs.events("question")[-1]["partial_reason"] == "broken"


def test_an_error_frame_after_output_is_a_partial_answer(standin, wire, context):
    """An event:error frame in the middle of an answer ends it as a PartialAnswer naming the code."""
    standin.script(stream(LONG, chunks=10, error_after=3))
    result = ask(b"hi", context, wire)
    assert result["code"] == "PartialAnswer" and "InternalError" in result["message"]
    assert len(standin.requests) == 1


def test_a_refusal_frame_after_output_withdraws_the_text(standin, wire, context):
    """DataInspectionFailed mid-answer is returned as that 400, without the text DashScope withdrew."""
    refusal = (400, "DataInspectionFailed", "Output data may contain inappropriate content.")
    standin.script(stream(LONG, chunks=10, error_after=3, error_frame=refusal))
    result = ask(b"hi", context, wire)
    assert result["status_code"] == 400 and result["code"] == "DataInspectionFailed"
    assert result["output"] is None and "inappropriate" in result["message"]
    assert len(standin.requests) == 1


@pytest.mark.parametrize(
    ("behaviour", "attempts"),
    [
        (error(500, "InternalError", "An internal error has occured"), 2),
        (error(429, "Throttling.RateQuota", "Requests rate limit exceeded"), 2),
        (stream(LONG, error_after=0, error_frame=(500, "InternalError", "oops")), 2),
        (stream(LONG, error_after=0, error_frame=(503, "ServiceUnavailable", "busy")), 2),
    ],
    ids=["500 before the stream", "429 before the stream", "500 frame first", "503 frame first"],
)
def test_sse_errors_before_output_are_retried(standin, wire, context, logs, behaviour, attempts):
    """Error frames before any output are transient as before: asked again, then answered."""
    standin.script(behaviour)
    result = ask(b"hi", context, wire)
    assert result["status_code"] == 200 and result["code"] == ""
    assert len(standin.requests) == attempts


def test_an_sse_400_before_output_is_returned(standin, wire, context):
    """A streamed 400 error frame is the caller's answer, not retried."""
    standin.script(error(400, "InvalidParameter", "Range of input length should be [1, 6000]"))
    result = ask(b"hi", context, wire)
    assert result["status_code"] == 400 and result["code"] == "InvalidParameter"
    assert "Range of input length" in result["message"]
    assert len(standin.requests) == 1


@pytest.mark.parametrize(
    ("model", "parameters"),
    [("qwq-plus", {}), ("qwen3-32b", {}), ("qwen-plus", {"enable_thinking": True})],
)
def test_thinking_models_are_answered_with_their_reasoning(standin, wire, wire_env, context, logs, model, parameters):
    """QwQ (stream-only), open Qwen3 (thinks by default) and enable_thinking on qwen-plus all answer,
    with the reasoning in message.reasoning_content and its token count in the log line."""
    wire_env["QWEN_ALLOWED_MODELS"] = f"qwen-turbo,{model}"
    wire_env["QWEN_EVENT_PARAMETERS"] = "enable_thinking"  # off for events unless the operator allows it
    event = json.dumps({"prompt": "牛腩要炖多久?", "model": model, "parameters": parameters}).encode()
    result = ask(event, context, wire)
    assert result["status_code"] == 200 and result["code"] == ""
    message = result["output"]["choices"][0]["message"]
    assert message["content"].startswith(EMULATED)
    assert message["reasoning_content"].startswith("[emulated reasoning]")
    line = logs.events("question")[-1]
    assert line["reasoning_tokens"] == result["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


def test_thinking_turned_off_has_no_reasoning(standin, wire, wire_env, context, logs):
    """qwen3-32b with enable_thinking false answers without reasoning_content or reasoning tokens."""
    wire_env["QWEN_ALLOWED_MODELS"] = "qwen-turbo,qwen3-32b"
    wire_env["QWEN_EVENT_PARAMETERS"] = "enable_thinking"  # off for events unless the operator allows it
    event = b'{"prompt": "hi", "model": "qwen3-32b", "parameters": {"enable_thinking": false}}'
    result = ask(event, context, wire)
    assert "reasoning_content" not in result["output"]["choices"][0]["message"]
    assert "reasoning_tokens" not in logs.events("question")[-1]


def test_prompt_mode_keeps_the_reasoning_beside_the_text(standin, wire, wire_env, context):
    """In prompt mode the answer is output.text and the reasoning output.reasoning_content."""
    wire_env.update(QWEN_MODE="prompt", QWEN_MODEL="qwq-plus")
    standin.script(stream("答案。", reasoning="先想一想。", chunks=3))
    result = ask(b"hi", context, wire)
    assert result["output"]["text"] == "答案。"
    assert result["output"]["reasoning_content"] == "先想一想。"
    assert result["output"]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("model", "parameters", "message"),
    [
        ("qwq-plus", {}, "This model only support stream mode"),
        ("qwen3-32b", {}, "parameter.enable_thinking must be set to false for non-streaming calls"),
    ],
)
def test_the_standin_refuses_non_streamed_calls_to_stream_only_models(standin, model, parameters, message):
    """As DashScope does: a non-streamed call to a stream-only model is a 400 InvalidParameter."""
    from dashscope import Generation

    reply = Generation.call(
        model=model, prompt="hi", api_key=API_KEY, base_address=standin.url, request_timeout=5, **parameters
    )
    assert reply.status_code == 400 and reply.code == "InvalidParameter"
    assert message in reply.message


def test_the_standin_streams_dashscope_frames(standin):
    """The stand-in's SSE is DashScope's: id, event, :HTTP_STATUS comment and data lines, chunked."""
    import requests

    standin.script(stream("abcdef", chunks=3))
    reply = requests.post(
        standin.url + "/services/aigc/text-generation/generation",
        json={"model": "qwen-turbo", "input": {"prompt": "hi"}, "parameters": {"incremental_output": True}},
        headers={"Authorization": f"Bearer {API_KEY}", "X-DashScope-SSE": "enable"},
        timeout=5,
    )
    assert reply.headers["Transfer-Encoding"] == "chunked"
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    frames = reply.text.strip().split("\n\n")
    assert len(frames) == 3
    first = frames[0].split("\n")
    assert first[:3] == ["id:1", "event:result", ":HTTP_STATUS/200"] and first[3].startswith("data:{")
    assert [json.loads(f.split("data:", 1)[1])["output"]["text"] for f in frames] == ["ab", "cd", "ef"]


def test_silence_before_the_first_chunk_is_a_request_timeout(standin, wire, wire_env, context, logs):
    """A stream that never begins, every attempt, is RequestTimeout (silence), not a failed connection."""
    wire_env["QWEN_REQUEST_TIMEOUT"] = "1"
    standin.script(*[stream(LONG, chunks=10, stall_after=0, stall=30)] * 3)
    with pytest.raises(TransientUpstreamError) as raised:
        ask(b"hi", context, wire)
    assert raised.value.code == "RequestTimeout" and raised.value.attempts == 3
    assert "sent nothing for 1 s" in raised.value.message


@pytest.mark.parametrize("mode", ["messages", "prompt"])
def test_a_partial_answers_finish_reason_is_null(standin, wire, wire_env, context, mode):
    """DashScope's "null" string (still going) becomes JSON null in a PartialAnswer, in both modes."""
    wire_env["QWEN_MODE"] = mode
    standin.script(stream(LONG, chunks=10, break_after=4))
    result = ask(b"hi", context, wire)
    assert result["code"] == "PartialAnswer"
    output = result["output"]
    finish = output["choices"][0]["finish_reason"] if mode == "messages" else output["finish_reason"]
    assert finish is None
