"""The guard holds the input to the model's max input and to its window less the answer's room
(max_tokens, else the default reservation), through the real SDK and the stand-in; the token CLI
prints the same arithmetic."""

from __future__ import annotations

import io
import json

import pytest

from handler.app import Runtime, handle
from handler.ask import guard
from handler.ask.models import DEFAULT_MODELS, ModelInfo
from handler.local import token_cli
from tests.conftest import API_KEY


@pytest.fixture
def env(standin) -> dict[str, str]:
    return {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_ALLOWED_MODELS": "qwen-turbo,qwen-max",
    }


def ask(env, context, request) -> dict:
    return json.loads(handle(json.dumps(request).encode(), context, Runtime(env=env)))


def test_the_table_cites_max_input():
    """Filled from the pages the table already cites: qwen-max 30,720, qwen-turbo 98,304; others unknown."""
    assert DEFAULT_MODELS["qwen-max"].max_input == 30_720
    assert DEFAULT_MODELS["qwen-turbo"].max_input == 98_304
    assert DEFAULT_MODELS["qwen-plus"].max_input is None


def test_qwen_max_input_above_its_max_input_is_refused_without_a_call(standin, env, context):
    """The issue's 32,721 tokens to qwen-max: under the 32,768 window, above the 30,720 max input."""
    result = ask(env, context, {"prompt": "hello " * 32_700, "model": "qwen-max"})
    assert result["status_code"] == 400 and result["code"] == "InputTooLong"
    assert "at most 30720 input tokens" in result["message"]
    assert standin.requests == []


def test_qwen_turbo_input_above_its_max_input_is_refused_without_a_call(standin, env, context):
    result = ask(env, context, {"prompt": "hello " * 100_000})
    assert result["code"] == "InputTooLong" and "at most 98304 input tokens" in result["message"]
    assert standin.requests == []


def test_just_under_the_max_input_is_sent(standin, env, context):
    result = ask(env, context, {"prompt": "hello " * 30_000, "model": "qwen-max"})
    assert result["status_code"] == 200 and len(standin.requests) == 1


def test_max_tokens_is_the_answers_room(standin, env, context):
    """With max_tokens 8,192 qwen-max keeps 8,192 for the answer: 24,576 input tokens at most."""
    env["QWEN_PARAMETERS"] = '{"max_tokens": 8192}'
    result = ask(env, context, {"prompt": "hello " * 26_000, "model": "qwen-max"})
    assert result["code"] == "InputTooLong" and "at most 24576 input tokens" in result["message"]
    assert "8192 of them kept for the answer (max_tokens)" in result["message"]
    assert standin.requests == []


def test_a_long_conversation_is_trimmed_to_the_max_input(standin, env, context):
    """A 120k-token conversation to qwen-turbo with QWEN_TRIM_HISTORY: trimmed below 98,304, then sent."""
    env["QWEN_TRIM_HISTORY"] = "true"
    turn = "hello " * 20_000
    messages = []
    for i in range(6):
        messages += [{"role": "user", "content": f"{i} {turn}"}, {"role": "assistant", "content": "ok"}]
    messages.append({"role": "user", "content": "last question"})
    result = ask(env, context, {"messages": messages})
    assert result["status_code"] == 200
    (request,) = standin.requests
    sent = request.body["input"]["messages"]
    assert sent[-1]["content"] == "last question" and len(sent) < len(messages) + 1
    assert sum(len(m["content"].split()) for m in sent) <= 98_304


@pytest.mark.parametrize(
    ("info", "max_tokens", "limit", "reserved"),
    [
        (ModelInfo(32_768, 0, 0, max_output=8_192, max_input=30_720), 0, 30_720, 2_048),
        (ModelInfo(32_768, 0, 0, max_output=8_192, max_input=30_720), 4_000, 28_768, 4_000),
        (ModelInfo(131_072, 0, 0, max_output=16_384), 0, 114_688, 16_384),
        (ModelInfo(100, 0, 0), 0, 100, 0),
        (ModelInfo(None, 0, 0, max_input=500), 0, 500, 0),
    ],
)
def test_the_budget_rule(info, max_tokens, limit, reserved):
    """min(max input, window - room); room = max_tokens, else window - max input, else max_output."""
    room = guard.budget(info, max_tokens)
    assert room is not None and (room.limit, room.reserved) == (limit, reserved)


def test_the_token_cli_prints_the_same_arithmetic(tmp_path, monkeypatch):
    monkeypatch.delenv("QWEN_PARAMETERS", raising=False)
    path = tmp_path / "q.txt"
    path.write_text("hello " * 32_700)
    out = io.StringIO()
    assert token_cli.main(["--model", "qwen-max", "--file", str(path)], out=out) == 1
    text = out.getvalue()
    assert "2,048 kept for the answer (default reservation: the context window less the max input)" in text
    assert "input budget  at most 30,720 input tokens" in text and "too long by" in text
    assert "0 kept for the answer" not in text
