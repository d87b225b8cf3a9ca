"""`python -m handler tokens`: it counts and judges exactly what the handler would send."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from handler.app import Runtime, handle
from handler.local import token_cli
from tests.conftest import ROOT, response

QUESTION = "如何做西红柿炖牛腩?"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("QWEN_", "DASHSCOPE_")):
            monkeypatch.delenv(name)


def tokens(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = token_cli.main(list(argv), out=out)
    return status, out.getvalue()


def as_sent(output: str) -> int:
    return int(re.search(r"as sent\s+([\d,]+) tokens", output).group(1).replace(",", ""))


def handler_result(env: dict[str, str], event: str = QUESTION) -> dict:
    runtime = Runtime(transport=lambda **kwargs: response(), env={"DASHSCOPE_API_KEY": "sk-test-12345678", **env})
    context = SimpleNamespace(request_id="r", function=SimpleNamespace(timeout=60))
    return json.loads(handle(event.encode(), context, runtime))


def test_the_issue_reproduction_is_refused_like_the_handler_refuses_it(monkeypatch):
    """With a 20-token window the calculator says too long at 26 tokens, as the handler does."""
    table = '{"qwen-turbo": {"context_window": 20}}'
    monkeypatch.setenv("QWEN_MODEL_TABLE", table)
    status, output = tokens(QUESTION)
    assert status == 1 and as_sent(output) == 26 and "too long by 6" in output
    refused = handler_result({"QWEN_MODEL_TABLE": table})
    assert refused["code"] == "InputTooLong" and "the input is 26 tokens" in refused["message"]
    assert refused["message"] in output


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"QWEN_SYSTEM_PROMPT": "你是一位耐心的川菜厨师, 回答要具体到克和分钟。"},
        {"QWEN_MODE": "prompt"},
        {"QWEN_PARAMETERS": '{"max_tokens": 100}'},
    ],
)
def test_the_count_is_the_handlers_count(monkeypatch, env):
    """The system prompt and the mode change the count exactly as they change the handler's guard."""
    window = 200
    table = json.dumps({"qwen-turbo": {"context_window": window}})
    for name, value in {**env, "QWEN_MODEL_TABLE": table}.items():
        monkeypatch.setenv(name, value)
    status, output = tokens(QUESTION)
    count = as_sent(output)
    # Just too small a window for that count: the handler must refuse it with the same number.
    reserved = json.loads(env.get("QWEN_PARAMETERS", "{}")).get("max_tokens", 0)
    tight = json.dumps({"qwen-turbo": {"context_window": count + reserved - 1}})
    refused = handler_result({**env, "QWEN_MODEL_TABLE": tight})
    assert refused["code"] == "InputTooLong" and f"the input is {count} tokens" in refused["message"]
    assert status == 0 and f"fits, {window - reserved - count:,} to spare" in output


def test_qwen_parameters_max_tokens_is_kept_for_the_answer(monkeypatch):
    """QWEN_PARAMETERS' max_tokens is reserved; --max-tokens overrides it as an event's parameter would."""
    monkeypatch.setenv("QWEN_MODEL_TABLE", '{"qwen-turbo": {"context_window": 40}}')
    assert tokens(QUESTION)[0] == 0
    monkeypatch.setenv("QWEN_PARAMETERS", '{"max_tokens": 20}')
    status, output = tokens(QUESTION)
    assert status == 1 and "20 kept for the answer" in output and "too long by 6" in output
    assert tokens("--max-tokens", "5", QUESTION)[0] == 0


def test_a_conversation_request_is_counted_as_a_conversation():
    """A JSON request is decoded as the handler decodes it: every message is counted."""
    request = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    request["messages"].append({"role": "user", "content": QUESTION})
    status, output = tokens(json.dumps(request, ensure_ascii=False))
    assert status == 0 and "4 messages (system prompt included)" in output


def test_a_question_the_handler_refuses_is_said_so(capsys):
    """Text the handler would refuse before counting (here broken JSON) is reported with its code, on stderr."""
    status, output = tokens('{"prompt": "x"')
    assert status == 1 and output == "" and "InvalidEvent" in capsys.readouterr().err


def test_the_token_calculator_cli():
    """`python -m handler tokens` prints the count, the fit and the input cost (moved from tests/ask/test_tokens.py)."""
    done = subprocess.run(
        [sys.executable, "-m", "handler", "tokens", "--model", "qwen-max", " hello" * 10],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith(("QWEN_", "DASHSCOPE_"))},
    )
    assert done.returncode == 0, done.stderr
    # 10 tokens of question + 6 of the default system prompt + 2 messages x 5 + 3 of the template.
    assert "as sent       29 tokens" in done.stdout and "context 32,768" in done.stdout and "fits" in done.stdout
    assert "0.00058000 CNY" in done.stdout


def test_the_token_calculator_says_when_it_does_not_fit(tmp_path):
    """With --file and --max-tokens the verdict can be 'too long', exit 1 (moved from tests/ask/test_tokens.py)."""
    path = tmp_path / "doc.txt"
    path.write_text("hello " * 100)
    status, output = tokens("--file", str(path), "--model", "qwen-plus", "--max-tokens", "131000")
    assert status == 1 and "too long by" in output
