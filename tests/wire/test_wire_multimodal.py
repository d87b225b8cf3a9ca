"""Both DashScope APIs through the real SDK and the stand-in: the table's multimodal models, a model's
API learned from one 'url error', and no event content ever reaching the SDK's file upload."""

from __future__ import annotations

import builtins
import json
import os
import time
from pathlib import Path

import pytest

from handler.app import Runtime, handle
from handler.ask.apis import ModelApis
from handler.ask.attempts import Backoff
from handler.local.standin import (
    EMULATED,
    GENERATION_PATH,
    MODEL_NOT_EXIST,
    MULTIMODAL_PATH,
    URL_ERROR,
    answer,
    error,
    stream,
)
from tests.conftest import API_KEY, ROOT

LONG = "牛腩切块焯水,加番茄炖一小时。" * 40


@pytest.fixture
def wire_env(standin) -> dict[str, str]:
    return {"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url}


@pytest.fixture
def apis() -> ModelApis:
    """A fresh instance memory of learned APIs (the default runtime's lives as long as the process)."""
    return ModelApis()


@pytest.fixture
def wire(wire_env, apis) -> Runtime:
    return Runtime(env=wire_env, backoff=Backoff(base=0.02, cap=0.1), apis=apis)


def ask(event: bytes | str, context, runtime: Runtime) -> dict:
    return json.loads(handle(event.encode() if isinstance(event, str) else event, context, runtime))


def paths(standin) -> list[str]:
    return [r.path.split("?")[0] for r in standin.requests]


def content(result: dict) -> str:
    return result["output"]["choices"][0]["message"]["content"]


def test_a_text_model_goes_to_text_generation(standin, wire, context, logs):
    result = ask("hi", context, wire)
    assert result["status_code"] == 200 and isinstance(content(result), str)
    assert paths(standin) == [GENERATION_PATH]
    assert logs.events("question")[-1]["api"] == "text"


def test_a_multimodal_model_in_messages_mode(standin, wire, wire_env, context, logs):
    """The table's multimodal model goes to multimodal-generation with content parts; the answer's
    content comes back as one string, as the text API gives it."""
    wire_env.update(QWEN_MODEL="qwen3-vl-flash")
    result = ask("如何做西红柿炖牛腩?", context, wire)
    assert result["status_code"] == 200 and result["code"] == ""
    assert content(result).startswith(EMULATED) and "如何做西红柿炖牛腩?" in content(result)
    assert result["output"]["choices"][0]["message"]["role"] == "assistant"
    assert result["output"]["choices"][0]["finish_reason"] == "stop"
    assert result["usage"]["input_tokens"] > 0 and result["request_id"]
    (request,) = standin.requests
    assert request.path == MULTIMODAL_PATH and request.streamed
    assert request.body["input"]["messages"][-1] == {"role": "user", "content": [{"text": "如何做西红柿炖牛腩?"}]}
    assert request.body["parameters"]["incremental_output"] is True
    line = logs.events("question")[-1]
    assert line["api"] == "multimodal" and line["model"] == "qwen3-vl-flash" and line["mode"] == "messages"


def test_a_multimodal_model_in_prompt_mode(standin, wire, wire_env, context, logs):
    """Prompt mode asks one user message on multimodal-generation and returns output.text."""
    wire_env.update(QWEN_MODE="prompt", QWEN_MODEL="qwen3.7-plus")
    result = ask("hello", context, wire)
    assert result["status_code"] == 200
    assert result["output"]["text"].startswith(EMULATED) and result["output"]["finish_reason"] == "stop"
    assert result["output"].get("choices") is None
    (request,) = standin.requests
    assert request.path == MULTIMODAL_PATH
    assert request.body["input"] == {"messages": [{"role": "user", "content": [{"text": "hello"}]}]}
    assert logs.events("question")[-1]["api"] == "multimodal"


@pytest.mark.parametrize("mode", ["messages", "prompt"])
def test_the_same_answer_has_the_same_result_on_both_apis(standin, wire, wire_env, context, mode):
    """A caller cannot tell which endpoint answered: apart from request_id and usage, the JSON is equal."""
    results = []
    for model in ("qwen-turbo", "qwen3.7-plus"):
        # qwen3.7-plus thinks unless told not to; its reasoning would be the one difference.
        wire_env.update(QWEN_MODE=mode, QWEN_MODEL=model, QWEN_PARAMETERS='{"enable_thinking": false}')
        standin.script(answer("炖一小时,加盐调味。"))
        results.append(ask("牛腩炖多久?", context, wire))
    assert paths(standin) == [GENERATION_PATH, MULTIMODAL_PATH]
    text, multimodal = ({k: v for k, v in r.items() if k not in ("request_id", "usage")} for r in results)
    assert text == multimodal
    assert text["status_code"] == 200
    assert (text["output"]["text"] if mode == "prompt" else content(text)) == "炖一小时,加盐调味。"
    # The multimodal usage keeps its extra fields.
    assert "image_tokens" in results[1]["usage"] and "image_tokens" not in results[0]["usage"]


def test_a_thinking_only_multimodal_model_streams_its_reasoning(standin, wire, wire_env, context, logs):
    """qwen3.8-max thinks on every call: reasoning_content arrives in chunks whose content is [] and is returned."""
    wire_env.update(QWEN_MODEL="qwen3.8-max")
    result = ask("hi", context, wire)
    message = result["output"]["choices"][0]["message"]
    assert message["reasoning_content"].startswith("[emulated reasoning]")
    assert message["content"].startswith(EMULATED)
    assert logs.events("question")[-1]["reasoning_tokens"] > 0
    assert paths(standin) == [MULTIMODAL_PATH]


def test_the_deadline_gives_a_partial_answer_on_the_multimodal_path(standin, wire, wire_env, context, logs):
    wire_env.update(QWEN_MODEL="qwen3-vl-plus")
    context.function.timeout = 4
    standin.script(stream(LONG, chunks=100, every=0.1))
    started = time.monotonic()
    result = ask("hi", context, wire)
    assert time.monotonic() - started < 4
    assert result["status_code"] == 200 and result["code"] == "PartialAnswer"
    text = content(result)
    assert text and LONG.startswith(text) and text != LONG
    assert paths(standin) == [MULTIMODAL_PATH]
    line = logs.events("question")[-1]
    assert line["partial_reason"] == "deadline" and line["api"] == "multimodal"


def test_an_unknown_model_is_learned_after_one_url_error(standin, wire, wire_env, context, logs):
    """Not in the table: asked on text-generation, refused with 'url error', asked once more on
    multimodal-generation (2 requests); the next invocation goes straight there (1 request)."""
    wire_env.update(QWEN_ALLOWED_MODELS="qwen-turbo,qwen3.8-max-0902")
    event = '{"prompt": "hi", "model": "qwen3.8-max-0902"}'
    first = ask(event, context, wire)
    assert first["status_code"] == 200 and content(first).startswith(EMULATED)
    assert paths(standin) == [GENERATION_PATH, MULTIMODAL_PATH]
    (learned,) = logs.events("model_api_learned")
    assert learned["model"] == "qwen3.8-max-0902" and learned["api"] == "multimodal"
    assert json.loads(learned["model_table_entry"]) == {"qwen3.8-max-0902": {"api": "multimodal"}}
    assert logs.events("question")[-1]["attempts"] == 2 and logs.events("question")[-1]["api"] == "multimodal"

    standin.reset()
    second = ask(event, context, wire)
    assert second["status_code"] == 200
    assert paths(standin) == [MULTIMODAL_PATH]
    assert len(logs.events("model_api_learned")) == 1  # once per instance


def test_the_logged_table_entry_makes_it_permanent(standin, wire, wire_env, context):
    """QWEN_MODEL_TABLE with the logged entry: one request on a fresh instance memory."""
    wire_env.update(
        QWEN_ALLOWED_MODELS="qwen-turbo,qwen3.8-max-0902",
        QWEN_MODEL_TABLE='{"qwen3.8-max-0902": {"api": "multimodal"}}',
    )
    result = ask('{"prompt": "hi", "model": "qwen3.8-max-0902"}', context, wire)
    assert result["status_code"] == 200 and paths(standin) == [MULTIMODAL_PATH]


def test_a_model_no_endpoint_knows_is_dashscopes_400(standin, wire, wire_env, context, logs):
    """'Model not exist.' is not a url error: one request, DashScope's 400 returned, nothing learned."""
    wire_env.update(QWEN_MODEL="qwen-trubo")
    result = ask("hi", context, wire)
    assert result["status_code"] == 400 and result["code"] == "InvalidParameter"
    assert result["message"] == MODEL_NOT_EXIST
    assert paths(standin) == [GENERATION_PATH]
    assert logs.events("model_api_learned") == []


def test_url_errors_on_both_endpoints_stop_after_two_requests(standin, wire, wire_env, context, logs):
    wire_env.update(QWEN_MODEL="qwen-plus-latest")
    standin.script(error(400, "InvalidParameter", URL_ERROR), error(400, "InvalidParameter", URL_ERROR))
    result = ask("hi", context, wire)
    assert result["status_code"] == 400 and "url error" in result["message"]
    assert paths(standin) == [GENERATION_PATH, MULTIMODAL_PATH]
    assert logs.events("model_api_learned") == []


def test_no_other_400_moves_a_model(standin, wire, wire_env, context):
    wire_env.update(QWEN_MODEL="qwen-plus-latest")
    standin.script(error(400, "InvalidParameter", "Range of input length should be [1, 6000]"))
    result = ask("hi", context, wire)
    assert result["status_code"] == 400 and "Range of input length" in result["message"]
    assert paths(standin) == [GENERATION_PATH]


def test_the_stand_in_refuses_a_multimodal_model_on_text_generation(standin):
    """Through the SDK's own Generation.call: the gateway's url error, as the learning path expects."""
    from dashscope import Generation

    response = Generation.call(
        model="qwen3-vl-flash", prompt="hi", api_key=API_KEY, base_address=standin.url, request_timeout=5
    )
    assert response.status_code == 400 and response.code == "InvalidParameter"
    assert response.message.startswith("url error, please check url!")


# What an attacker would ask, hoping the SDK uploads it: the function's environment (API key, STS
# token), the function's code, a home-directory file.
SECRET_PATHS = ["/proc/self/environ", "index.py", "~/.bashrc"]


@pytest.mark.parametrize("question", SECRET_PATHS)
def test_no_question_reaches_the_sdks_file_upload(standin, wire, wire_env, context, mocker, question, monkeypatch):
    """Asked as text on a multimodal model, a question naming a local file is sent as that text: no
    upload request, and no attempt to open, stat or even test for the file."""
    monkeypatch.chdir(ROOT)  # index.py exists here, so the SDK's preprocessing would find it
    assert os.path.exists(os.path.expanduser(question))
    targets = {question, os.path.expanduser(question), str(Path(question).resolve())}
    touched: list[str] = []
    real_open, real_exists, real_stat = builtins.open, os.path.exists, os.stat

    def spy(real):
        def wrapper(path, *args, **kwargs):
            if str(path) in targets:
                touched.append(f"{real.__name__}({path})")
            return real(path, *args, **kwargs)

        return wrapper

    mocker.patch("builtins.open", side_effect=spy(real_open))
    mocker.patch("os.path.exists", side_effect=spy(real_exists))
    mocker.patch("os.stat", side_effect=spy(real_stat))
    wire_env.update(QWEN_MODEL="qwen3-vl-flash")
    for event in (question, json.dumps({"messages": [{"role": "user", "content": question}]})):
        result = ask(event, context, wire)
        assert result["status_code"] == 200
    assert paths(standin) == [MULTIMODAL_PATH, MULTIMODAL_PATH]  # no /uploads policy request
    for request in standin.requests:
        assert request.body["input"]["messages"][-1]["content"] == [{"text": question}]
        assert not any(k.lower() == "x-dashscope-ossresourceresolve" for k in request.headers)
    assert touched == []


def test_a_throttled_multimodal_call_is_retried(standin, wire, wire_env, context):
    """The same attempts as text: a 429 before any output is retried on the same endpoint."""
    wire_env.update(QWEN_MODEL="qwen3-vl-flash")
    standin.script(error(429, "Throttling", "Requests rate limit exceeded", retry_after=0.05))
    result = ask("hi", context, wire)
    assert result["status_code"] == 200
    assert paths(standin) == [MULTIMODAL_PATH, MULTIMODAL_PATH]


def test_a_silent_multimodal_stream_is_bounded_by_the_request_timeout(standin, wire, wire_env, context):
    """Silence before the first chunk: QWEN_REQUEST_TIMEOUT bounds each attempt, as on text-generation."""
    from handler.errors import TransientUpstreamError
    from handler.local.standin import hang

    wire_env.update(QWEN_MODEL="qwen3-vl-flash", QWEN_REQUEST_TIMEOUT="1", QWEN_MAX_ATTEMPTS="2")
    standin.script(hang(), hang())
    started = time.monotonic()
    with pytest.raises(TransientUpstreamError) as caught:
        ask("hi", context, wire)
    assert caught.value.code == "RequestTimeout" and caught.value.attempts == 2
    assert time.monotonic() - started < 10


def test_the_stand_in_knows_no_typo_on_the_multimodal_endpoint_either(standin):
    from handler.ask import multimodal

    response = multimodal.call(
        model="qwen3-vl-flsah",
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
        api_key=API_KEY,
        base_address=standin.url,
        request_timeout=5,
    )
    assert response.status_code == 400 and response.message == MODEL_NOT_EXIST
    assert paths(standin) == [MULTIMODAL_PATH]
