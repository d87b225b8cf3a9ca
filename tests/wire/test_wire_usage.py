"""Usage DashScope did not report, through the real SDK: dashscope 1.27.8 turns a 200 frame without
`usage` into zeros (GenerationUsage(input_tokens=0, output_tokens=0)), which are not what was billed.
Unknown usage is logged as unknown, never as zero, and the largest usage reported is kept."""

from __future__ import annotations

import json

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.ask.models import DEFAULT_MODELS
from handler.local.standin import stream
from tests.conftest import API_KEY

LONG = "".join(f"第{i}段:牛腩切块焯水,加番茄慢炖。" for i in range(40))
THOUGHT = "".join(f"第{i}步:先想火候,再想时间。" for i in range(30))


def ask(standin, context, *behaviours, **env: str) -> dict:
    standin.script(*behaviours)
    wire = Runtime(
        env={"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url, **env},
        backoff=Backoff(base=0.02, cap=0.1),
    )
    return json.loads(handle(b"hi", context, wire))


@pytest.mark.parametrize("model", ["qwen-turbo", "qwen3-vl-flash"])  # MultiModalConversationUsage adds characters=0
def test_a_stream_without_usage_is_unknown_not_free(standin, context, logs, model):
    """No frame carries usage: the result's usage is null, the line says usage_known false, no zero cost."""
    result = ask(standin, context, stream("牛腩炖两小时。", chunks=4, usage_frames=0), QWEN_MODEL=model)
    assert result["status_code"] == 200 and result["code"] == ""
    assert result["usage"] is None
    line = logs.events("question")[-1]
    assert line["usage_known"] is False
    assert line["input_tokens"] is None and line["output_tokens"] is None and line["total_tokens"] is None
    assert line["cost_cny"] is None and "usage" in line["cost_note"]


def test_a_last_frame_without_usage_keeps_the_usage_before_it(standin, context, logs):
    """The last frame lacks usage: the usage reported before it (reasoning included) is kept and priced."""
    result = ask(standin, context, stream(LONG, reasoning=THOUGHT, chunks=8, usage_frames=-1))
    usage = result["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > usage["output_tokens_details"]["reasoning_tokens"] > 0
    line = logs.events("question")[-1]
    assert line["output_tokens"] == usage["output_tokens"] and line["reasoning_tokens"] > 0
    assert "usage_known" not in line
    assert line["cost_cny"] == DEFAULT_MODELS["qwen-turbo"].cost(usage["input_tokens"], usage["output_tokens"]) > 0


def test_an_error_frame_after_output_keeps_the_usage_reported(standin, context, logs):
    """Output, a frame without usage, then an error frame: the PartialAnswer keeps the tokens reported."""
    result = ask(standin, context, stream(LONG, chunks=10, error_after=3, usage_frames=2))
    assert result["code"] == "PartialAnswer"
    assert result["usage"]["output_tokens"] > 0
    assert f"{result['usage']['output_tokens']} output tokens" in result["message"]
    line = logs.events("question")[-1]
    assert line["output_tokens"] == result["usage"]["output_tokens"] and line["cost_cny"] > 0
