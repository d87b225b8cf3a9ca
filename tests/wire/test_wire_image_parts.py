"""Image parts of a request through the real SDK against the stand-in: the parts reach multimodal-generation
in the order the event gave them, and more image parts than QWEN_MAX_IMAGE_PARTS are refused before any call."""

from __future__ import annotations

import json

import pytest

from handler.app import Runtime, handle
from handler.ask.apis import ModelApis
from handler.ask.attempts import Backoff
from handler.config import DEFAULT_MAX_IMAGE_PARTS
from handler.local.standin import MULTIMODAL_PATH
from tests.conftest import API_KEY

ORDERED = [{"text": "compare"}, {"image": "https://a/1.png"}, {"text": "with"}, {"image": "https://a/2.png"}]


@pytest.fixture
def wire_env(standin) -> dict[str, str]:
    return {"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url}


@pytest.fixture
def wire(wire_env) -> Runtime:
    return Runtime(env=wire_env, backoff=Backoff(base=0.02, cap=0.1), apis=ModelApis())


def ask(body: dict, context, runtime: Runtime) -> dict:
    return json.loads(handle(json.dumps(body).encode(), context, runtime))


def conversation(content: list[dict]) -> dict:
    return {"messages": [{"role": "user", "content": content}]}


def test_text_and_image_parts_reach_dashscope_in_the_events_order(standin, wire, context, logs):
    result = ask(conversation(ORDERED), context, wire)
    assert result["status_code"] == 200, result
    (request,) = standin.requests
    assert request.path == MULTIMODAL_PATH
    assert request.body["input"]["messages"][-1] == {"role": "user", "content": ORDERED}
    assert "[2 image parts received]" in result["output"]["choices"][0]["message"]["content"]
    assert logs.events("question")[-1]["image_parts"] == 2


def test_an_image_without_text_is_followed_by_the_image_prompt(standin, wire, wire_env, context):
    wire_env["QWEN_IMAGE_PROMPT"] = "describe it"
    parts = [{"image": "https://a/1.png"}, {"text": "  "}, {"image": "https://a/2.png"}]
    assert ask(conversation(parts), context, wire)["status_code"] == 200
    sent = standin.requests[0].body["input"]["messages"][-1]["content"]
    assert sent == [{"image": "https://a/1.png"}, {"image": "https://a/2.png"}, {"text": "describe it"}]


def test_more_image_parts_than_the_cap_are_400_before_any_call(standin, wire, wire_env, context):
    over = [{"image": f"https://a/{i}.png"} for i in range(DEFAULT_MAX_IMAGE_PARTS + 1)] + [{"text": "which?"}]
    refused = ask(conversation(over), context, wire)
    assert refused["status_code"] == 400 and refused["code"] == "TooManyImages"
    assert f"{DEFAULT_MAX_IMAGE_PARTS + 1} image parts" in refused["message"]
    assert "QWEN_MAX_IMAGE_PARTS" in refused["message"] and standin.requests == []
    wire_env["QWEN_MAX_IMAGE_PARTS"] = str(DEFAULT_MAX_IMAGE_PARTS + 1)
    assert ask(conversation(over), context, wire)["status_code"] == 200
    assert len(standin.requests) == 1
