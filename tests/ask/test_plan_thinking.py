"""The thinking parameters a call is planned with: turning thinking off is the event's to choose, a call
that thinks always has a thinking budget, and the table says which models think unless told not to."""

from __future__ import annotations

import pytest

from handler.ask.models import parse_table
from handler.ask.plan import plan
from handler.config import DEFAULT_THINKING_BUDGET, EventCaps, Settings
from handler.errors import InvalidConfig
from handler.events.question import Question

MODELS = frozenset({"qwen-turbo", "qwen-plus", "qwq-plus", "qwen3.7-plus"})


def budget_of(model: str, parameters: dict | None = None, **changes) -> int | None:
    settings = Settings(api_key="sk-abcdefgh12345", allowed_models=MODELS, **changes)
    return plan(Question(text="x", model=model, parameters=parameters or {}), settings).parameters.get(
        "thinking_budget"
    )


@pytest.mark.parametrize(
    ("model", "parameters", "budget"),
    [
        ("qwen-turbo", {}, None),
        ("qwen-plus", {}, None),  # hybrid, off unless asked
        ("qwen-plus", {"enable_thinking": True}, DEFAULT_THINKING_BUDGET),
        ("qwen3.7-plus", {}, DEFAULT_THINKING_BUDGET),  # thinks unless told not to
        ("qwen3.7-plus", {"enable_thinking": False}, None),
        ("qwq-plus", {}, DEFAULT_THINKING_BUDGET),  # always thinks
        ("qwen-unlisted", {"enable_thinking": True}, DEFAULT_THINKING_BUDGET),
    ],
)
def test_a_call_that_thinks_has_a_budget(model, parameters, budget):
    caps = EventCaps(allowed=frozenset({"enable_thinking"}))
    allowed = MODELS | {"qwen-unlisted"}
    settings = Settings(api_key="sk-abcdefgh12345", allowed_models=allowed, event_caps=caps)
    call = plan(Question(text="x", model=model, parameters=parameters), settings)
    assert call.parameters.get("thinking_budget") == budget


def test_the_operators_ceiling_is_the_budget_when_none_is_set():
    caps = EventCaps(allowed=frozenset({"enable_thinking", "thinking_budget"}), thinking_budget=800)
    assert budget_of("qwen-plus", {"enable_thinking": True}, event_caps=caps) == 800
    assert budget_of("qwen-plus", {"enable_thinking": True, "thinking_budget": 300}, event_caps=caps) == 300
    assert budget_of("qwen3.7-plus", event_caps=caps) == 800
    assert budget_of("qwen3.7-plus", parameters={"seed": 1}, event_caps=EventCaps()) == DEFAULT_THINKING_BUDGET


def test_prompt_mode_gets_the_budget_too():
    settings = Settings(api_key="sk-abcdefgh12345", mode="prompt", model="qwq-plus", allowed_models=MODELS)
    call = plan(Question(text="x"), settings)
    assert call.mode == "prompt" and call.parameters["thinking_budget"] == DEFAULT_THINKING_BUDGET


def test_the_table_takes_hybrid_on():
    table = parse_table('{"qwen3.9-plus": {"api": "multimodal", "thinking": "hybrid-on"}}')
    assert table["qwen3.9-plus"].thinks(None) and not table["qwen3.9-plus"].thinks(False)
    with pytest.raises(InvalidConfig, match="hybrid-on"):
        parse_table('{"qwen3.9-plus": {"api": "multimodal", "thinking": "on"}}')
