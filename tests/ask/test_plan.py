"""Deciding the call: mode, model, parameters, system prompt and seed."""

from __future__ import annotations

import random

import pytest

from handler.ask.plan import plan
from handler.config import EventCaps, Settings
from handler.errors import InvalidInput
from handler.events.question import Message, Question

SYSTEM = Message("system", "You are a helpful assistant.")


def settings(**changes) -> Settings:
    return Settings(api_key="sk-abcdefgh12345", **changes)


def test_messages_mode_wraps_text_with_the_system_prompt_and_a_seed():
    """Plain text in messages mode becomes [system, user] with a random seed in 1..10000."""
    call = plan(Question(text="你好"), settings(), rng=random.Random(1))
    assert call.mode == "messages" and call.model == "qwen-turbo"
    assert call.messages == (SYSTEM, Message("user", "你好"))
    assert 1 <= call.parameters["seed"] <= 10000


def test_seeds_vary_between_calls():
    """Each call draws its own seed, as the reference does."""
    seeds = {plan(Question(text="x"), settings()).parameters["seed"] for _ in range(30)}
    assert len(seeds) > 1


def test_a_configured_seed_is_kept():
    """QWEN_PARAMETERS' seed replaces the random one."""
    call = plan(Question(text="x"), settings(parameters={"seed": 42}))
    assert call.parameters["seed"] == 42


def test_prompt_mode_sends_the_text_alone_without_a_seed():
    """Prompt mode sends only the text and the configured parameters."""
    call = plan(Question(text="你好"), settings(mode="prompt", parameters={"top_p": 0.5}))
    assert call.mode == "prompt" and call.prompt == "你好" and call.messages == ()
    assert call.parameters == {"top_p": 0.5}


def test_conversations_always_use_messages_and_get_the_system_prompt():
    """A conversation goes to the messages invoker even in prompt mode, with the system prompt added."""
    convo = (Message("user", "hi"), Message("assistant", "hello"), Message("user", "bye"))
    call = plan(Question(messages=convo), settings(mode="prompt"))
    assert call.mode == "messages" and call.messages == (SYSTEM, *convo)


def test_a_conversation_with_its_own_system_message_keeps_it_when_the_operator_allows_it():
    """With QWEN_EVENT_SYSTEM_PROMPT on, the configured system prompt is not added when the event brings one."""
    convo = (Message("system", "be terse"), Message("user", "hi"))
    caps = EventCaps(system_prompt=True)
    assert plan(Question(messages=convo), settings(event_caps=caps)).messages == convo


def test_event_parameters_merge_over_configured_ones():
    """Event parameters win over QWEN_PARAMETERS key by key."""
    call = plan(
        Question(text="x", parameters={"temperature": 0.1}),
        settings(mode="prompt", parameters={"temperature": 0.9, "top_p": 0.8}),
    )
    assert call.parameters == {"temperature": 0.1, "top_p": 0.8}


def test_an_allowed_model_is_used():
    """An event may pick any model in QWEN_ALLOWED_MODELS."""
    allowed = frozenset({"qwen-turbo", "qwen-max"})
    assert plan(Question(text="x", model="qwen-max"), settings(allowed_models=allowed)).model == "qwen-max"


def test_a_model_outside_the_allowlist_is_refused():
    """Any other model is a 400 ModelNotAllowed that lists what is allowed."""
    with pytest.raises(InvalidInput) as caught:
        plan(Question(text="x", model="qwen-max"), settings())
    assert caught.value.code == "ModelNotAllowed"
    assert caught.value.message == "model 'qwen-max' is not allowed here; QWEN_ALLOWED_MODELS allows: qwen-turbo"
