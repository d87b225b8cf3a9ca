"""Assembling streamed chunks into the result of today, and the PartialAnswer when a stream stops early."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from urllib3.exceptions import ReadTimeoutError

from handler.app import handle
from handler.ask.attempts import Deadline
from handler.ask.invokers import INVOKERS
from handler.ask.stream import PARTIAL, Partial, read
from handler.ask.transport import Transient
from tests.conftest import FakeClock


def chunk(content: str | None = "", *, finish: str = "null", reasoning: str | None = None, out: int = 1, **extra: Any):
    """One incremental messages-mode chunk as the SDK yields it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return SimpleNamespace(
        status_code=200,
        request_id="ds-stream",
        code="",
        message="",
        output={
            "text": None,
            "finish_reason": None,
            "choices": [{"finish_reason": finish, "message": message, **extra}],
        },
        usage={"input_tokens": 5, "output_tokens": out, "total_tokens": 5 + out},
        headers={},
    )


def text_chunk(text: str, *, finish: str = "null", reasoning: str | None = None) -> SimpleNamespace:
    output: dict[str, Any] = {"text": text, "finish_reason": finish, "choices": None}
    if reasoning is not None:
        output["reasoning_content"] = reasoning
    return SimpleNamespace(status_code=200, request_id="ds-p", output=output, usage={"output_tokens": 3})


def reading(chunks, mode: str = "messages", clock: FakeClock | None = None, at: float = 1e9):
    clock = clock or FakeClock()
    return read(chunks, INVOKERS[mode], Deadline(at=at, clock=clock), silence=60, function_timeout=120)


def test_pieces_are_joined_into_one_message():
    """Incremental pieces become one content; role, finish_reason, usage and request_id come from the stream."""
    got = reading([chunk("牛腩", out=1), chunk("炖", out=2), chunk("两小时", finish="stop", out=4)]).reply
    assert got.status_code == 200 and got.code == ""
    assert got.output["choices"] == [
        {"finish_reason": "stop", "message": {"role": "assistant", "content": "牛腩炖两小时"}}
    ]
    assert got.usage["output_tokens"] == 4 and got.request_id == "ds-stream"


def test_reasoning_is_kept_beside_the_content():
    """reasoning_content pieces are joined on their own; a message without reasoning has no such key."""
    chunks = [chunk(reasoning="想"), chunk(reasoning="一想"), chunk("答", reasoning=""), chunk("案", finish="stop")]
    message = reading(chunks).reply.output["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "答案", "reasoning_content": "想一想"}
    plain = reading([chunk("答", reasoning=""), chunk("案", finish="stop", reasoning="")]).reply
    assert "reasoning_content" not in plain.output["choices"][0]["message"]


def test_prompt_mode_joins_text_and_reasoning():
    """Prompt mode: output.text joined, output.reasoning_content beside it."""
    chunks = [text_chunk("", reasoning="嗯"), text_chunk("好"), text_chunk("的", finish="stop")]
    output = reading(chunks, "prompt").reply.output
    assert output["text"] == "好的" and output["reasoning_content"] == "嗯" and output["finish_reason"] == "stop"


def test_several_choices_and_logprobs_are_assembled_per_index():
    """With n > 1 each choice index gets its own text, and logprobs content lists are concatenated."""
    chunks = [
        chunk("a", index=0, logprobs={"content": [{"token": "a"}]}),
        chunk("x", index=1),
        chunk("b", index=0, finish="stop", logprobs={"content": [{"token": "b"}]}),
        chunk("y", index=1, finish="stop"),
    ]
    choices = reading(chunks).reply.output["choices"]
    assert [c["message"]["content"] for c in choices] == ["ab", "xy"]
    assert choices[0]["logprobs"] == {"content": [{"token": "a"}, {"token": "b"}]}


def test_a_stream_without_any_answer_is_transient():
    """A 200 stream that never carried a text field is retried, as a 200 without an answer was."""
    got = reading([chunk(None, finish="stop")]).reply
    assert isinstance(got, Transient) and got.code == "MalformedResponse"


def test_a_stream_that_ends_unfinished_is_a_partial_answer():
    """Output that stops without a finish_reason is returned as PartialAnswer, not asked again."""
    got = reading([chunk("半", out=7), chunk("句", out=9)])
    assert got.reply.code == PARTIAL and got.partial.reason == "ended"
    assert "9 output tokens" in got.reply.message
    assert got.reply.output["choices"][0]["message"]["content"] == "半句"


def test_the_deadline_cuts_between_chunks():
    """When the deadline passes mid-answer, the reader stops there and closes the stream."""
    clock = FakeClock()
    closed = []

    def chunks():
        try:
            for piece in "abcdef":
                clock.now += 1
                yield chunk(piece)
        finally:
            closed.append(True)

    got = reading(chunks(), clock=clock, at=clock.now + 2.5)
    assert got.partial.reason == "deadline"
    assert got.reply.output["choices"][0]["message"]["content"] == "abc"
    assert closed == [True]


def test_a_failure_before_output_is_raised_for_the_attempts():
    """Before any text, a network failure propagates (transient, retried); after it, it is a PartialAnswer."""

    def failing(pieces):
        yield from (chunk(p) for p in pieces)
        raise requests.exceptions.ChunkedEncodingError("connection broken")

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        reading(failing(["", ""]))
    got = reading(failing(["a"]))
    assert got.reply.code == PARTIAL and got.partial.reason == "broken"


def test_an_unknown_exception_mid_stream_is_not_hidden():
    """A bug (not a network failure) after output began still surfaces, as before, as an internal error."""

    def buggy():
        yield chunk("a")
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        reading(buggy())


def test_a_partial_answer_through_the_handler_is_logged_once(runtime, context, transport, logs):
    """The handler returns the PartialAnswer with one attempt, and its log line carries the reason."""
    transport.return_value = [chunk("半", out=3)]
    result = json.loads(handle(b"hi", context, runtime))
    assert result["status_code"] == 200 and result["code"] == PARTIAL
    assert transport.call_count == 1
    line = logs.events("question")[-1]
    assert line["partial_reason"] == "ended" and line["attempts"] == 1 and "3 output tokens" in line["message"]


SILENT_READS = [
    requests.exceptions.ReadTimeout("read timed out"),
    requests.exceptions.ConnectionError(ReadTimeoutError(None, "/", "Read timed out.")),  # as requests wraps it
    requests.exceptions.ConnectionError(TimeoutError("timed out")),
]


@pytest.mark.parametrize("error", SILENT_READS, ids=lambda e: f"{type(e).__name__}({type(e.args[0]).__name__})")
def test_a_read_that_timed_out_is_silence_not_a_broken_connection(error):
    """Matched by class in the transport's failure table: before output a RequestTimeout, after it `silence`."""

    def silent(pieces):
        yield from (chunk(p) for p in pieces)
        raise error

    before = reading(silent([""])).reply
    assert (
        isinstance(before, Transient) and before.code == "RequestTimeout" and "sent nothing for 60 s" in before.message
    )
    assert reading(silent(["a"])).partial.reason == "silence"


def test_a_connection_that_broke_is_not_silence():
    def broken():
        yield chunk("a")
        raise requests.exceptions.ConnectionError(ConnectionResetError("reset by peer"))

    assert reading(broken()).partial == Partial("broken", "ConnectionError")


def sdk_frame(content: str, *, finish: str = "null", usage: dict[str, Any] | None = None, reasoning: str = ""):
    """A frame exactly as dashscope 1.27.8 yields it: a 200 without usage gets GenerationUsage zeros."""
    from dashscope.api_entities.dashscope_response import DashScopeAPIResponse, GenerationResponse

    message = {"role": "assistant", "content": content, "reasoning_content": reasoning}
    output = {"choices": [{"finish_reason": finish, "message": message}]}
    raw = DashScopeAPIResponse(request_id="ds-u", status_code=200, code="", message="", output=output, usage=usage)
    return GenerationResponse.from_api_response(raw)


def billed(output_tokens: int, reasoning_tokens: int = 0) -> dict[str, Any]:
    details = {"output_tokens_details": {"reasoning_tokens": reasoning_tokens}} if reasoning_tokens else {}
    return {"input_tokens": 40, "output_tokens": output_tokens, "total_tokens": 40 + output_tokens, **details}


def test_the_sdks_zeros_for_a_frame_without_usage_are_not_usage():
    """No frame reported usage: the SDK's zeros are unknown usage (None), not a free answer."""
    zeros = sdk_frame("答", finish="stop")
    assert dict(zeros.usage) == {"input_tokens": 0, "output_tokens": 0}  # what the SDK invents
    assert reading([sdk_frame("牛腩"), zeros]).reply.usage is None


def test_the_largest_usage_is_kept_when_the_last_frame_has_none():
    """Usage is cumulative: a last frame without it (or a smaller one) does not replace the largest."""
    frames = [
        sdk_frame("", reasoning="想", usage=billed(900, 900)),
        sdk_frame("牛腩", usage=billed(3000, 900)),
        sdk_frame("", usage=billed(12)),  # smaller than what was already reported
        sdk_frame("炖", finish="stop"),
    ]
    assert reading(frames).reply.usage == billed(3000, 900)


def test_a_partial_answer_keeps_the_usage_before_an_error_frame():
    """Output with usage, a frame without, then an error frame: the PartialAnswer counts the tokens reported."""
    error = SimpleNamespace(status_code=500, request_id="ds-u", code="InternalError", message="oops", usage=None)
    reply = reading([sdk_frame("牛腩", usage=billed(30)), sdk_frame("炖"), error]).reply
    assert reply.code == PARTIAL and reply.usage == billed(30)
    assert "30 output tokens" in reply.message
