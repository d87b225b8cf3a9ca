"""Thinking under s.yaml's settings, through the real SDK and the stand-in: an event may turn thinking
off (it only lowers cost) but not on unless the operator allows it, and a call that thinks has a
thinking budget even when nothing set one, as `max_tokens` may not bound the reasoning."""

from __future__ import annotations

import json

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.ask.models import DEFAULT_MODELS, HYBRID_ON
from handler.config import DEFAULT_THINKING_BUDGET
from tests.conftest import API_KEY
from tests.support.s_yaml import load


@pytest.fixture
def env(standin) -> dict[str, str]:
    """s.yaml's environmentVariables, with the stand-in for DashScope."""
    variables = load()["resources"]["qwen"]["props"]["environmentVariables"]
    shipped = {k: str(v) for k, v in variables.items() if k.startswith("QWEN_")}
    return {**shipped, "DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url}


def ask(env, context, model: str, parameters: dict | None = None) -> dict:
    request = {"prompt": "牛腩要炖多久?", "model": model, **({"parameters": parameters} if parameters else {})}
    runtime = Runtime(env=env, backoff=Backoff(base=0.01, cap=0.05))
    return json.loads(handle(json.dumps(request).encode(), context, runtime))


def sent(standin) -> dict:
    return standin.requests[-1].body["parameters"]


def reasoning_of(result: dict) -> str | None:
    return result["output"]["choices"][0]["message"].get("reasoning_content")


@pytest.mark.parametrize("model", ["qwen-turbo", "qwen3.7-plus", "qwen3-vl-flash"])
def test_an_event_may_turn_thinking_off(standin, env, context, model):
    """With s.yaml's settings, {"enable_thinking": false} is sent as asked and the answer has no reasoning."""
    result = ask(env, context, model, {"enable_thinking": False})
    assert result["status_code"] == 200, result
    assert sent(standin)["enable_thinking"] is False and "thinking_budget" not in sent(standin)
    assert reasoning_of(result) is None


def test_an_event_may_not_turn_thinking_on_unless_allowed(standin, env, context):
    """true adds billed reasoning: 400 ParameterNotAllowed naming QWEN_EVENT_PARAMETERS, no call."""
    result = ask(env, context, "qwen-plus", {"enable_thinking": True})
    assert result["code"] == "ParameterNotAllowed" and "QWEN_EVENT_PARAMETERS" in result["message"]
    assert standin.requests == []


def test_none_allows_no_parameter_at_all(standin, env, context):
    """QWEN_EVENT_PARAMETERS=none: turning thinking off is refused as well."""
    env["QWEN_EVENT_PARAMETERS"] = "none"
    result = ask(env, context, "qwen3.7-plus", {"enable_thinking": False})
    assert result["code"] == "ParameterNotAllowed" and standin.requests == []


@pytest.mark.parametrize("model", ["qwen3.7-plus", "qwen3.6-flash", "qwen3.7-max"])
def test_models_that_think_by_default_get_the_default_budget(standin, env, context, logs, model):
    """The current hybrid models think unless told not to: the stand-in reasons, the budget is sent."""
    assert DEFAULT_MODELS[model].thinking == HYBRID_ON
    result = ask(env, context, model)
    assert result["status_code"] == 200, result
    assert sent(standin)["thinking_budget"] == DEFAULT_THINKING_BUDGET
    assert reasoning_of(result)
    assert logs.events("question")[-1]["reasoning_tokens"] > 0


def test_a_model_that_does_not_think_gets_no_budget(standin, env, context):
    ask(env, context, "qwen-turbo")
    assert "thinking_budget" not in sent(standin) and "enable_thinking" not in sent(standin)


def test_an_event_that_turns_thinking_on_gets_the_operators_ceiling_as_its_budget(standin, env, context):
    """Allowed to think, no budget of its own: the ceiling of QWEN_EVENT_LIMITS is the budget."""
    env.update(QWEN_EVENT_PARAMETERS="enable_thinking,thinking_budget", QWEN_EVENT_LIMITS='{"thinking_budget": 500}')
    result = ask(env, context, "qwen-plus", {"enable_thinking": True})
    assert result["status_code"] == 200 and reasoning_of(result)
    assert sent(standin)["thinking_budget"] == 500
    assert ask(env, context, "qwen-plus", {"enable_thinking": True, "thinking_budget": 200})["status_code"] == 200
    assert sent(standin)["thinking_budget"] == 200  # the event's own, within the ceiling
    refused = ask(env, context, "qwen-plus", {"enable_thinking": True, "thinking_budget": 501})
    assert refused["code"] == "ParameterNotAllowed" and "QWEN_EVENT_LIMITS" in refused["message"]


def test_thinking_allowed_without_a_budget_parameter_gets_the_default(standin, env, context):
    """enable_thinking allowed, thinking_budget not: the default budget bounds the reasoning."""
    env["QWEN_EVENT_PARAMETERS"] = "enable_thinking"
    assert ask(env, context, "qwen-plus", {"enable_thinking": True})["status_code"] == 200
    assert sent(standin)["thinking_budget"] == DEFAULT_THINKING_BUDGET


def test_the_operators_own_budget_is_kept(standin, env, context):
    env["QWEN_PARAMETERS"] = '{"thinking_budget": 1000}'
    ask(env, context, "qwen3.7-plus")
    assert sent(standin)["thinking_budget"] == 1000
