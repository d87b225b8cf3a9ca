"""QWEN_MAX_IMAGE_PARTS: the image parts of one request, all its messages together, are capped before any
DashScope call (the context guard counts text only); the variable is checked, and s.yaml holds its default."""

from __future__ import annotations

import pytest

from handler.ask.plan import plan
from handler.config import DEFAULT_MAX_IMAGE_PARTS, Settings
from handler.errors import InvalidConfig, InvalidInput
from handler.events.question import Message, Question
from tests.support.s_yaml import load


def images(count: int, text: str = "看") -> Message:
    urls = tuple(f"https://example.com/{text}-{i}.png" for i in range(count))
    return Message("user", text, images=urls, parts=(*(("image", u) for u in urls), ("text", text)))


def settings(**env: str) -> Settings:
    return Settings.from_env({"DASHSCOPE_API_KEY": "sk-abcdefgh12345", **env})


def test_the_image_parts_of_every_message_count_together():
    at_cap = Question(messages=(images(2), Message("assistant", "两张"), images(2)))
    assert plan(at_cap, settings()).model == "qwen3-vl-flash"
    over = Question(messages=(images(3), Message("assistant", "三张"), images(2)))
    with pytest.raises(InvalidInput) as refused:
        plan(over, settings())
    assert refused.value.status_code == 400 and refused.value.code == "TooManyImages"
    assert "5 image parts, over the limit of 4 (QWEN_MAX_IMAGE_PARTS)" in str(refused.value)
    assert plan(over, settings(QWEN_MAX_IMAGE_PARTS="5")).model == "qwen3-vl-flash"


@pytest.mark.parametrize("value", ["0", "65", "four", "2.5"])
def test_a_bad_cap_names_the_variable(value):
    with pytest.raises(InvalidConfig) as bad:
        settings(QWEN_MAX_IMAGE_PARTS=value)
    assert "QWEN_MAX_IMAGE_PARTS" in str(bad.value) and "1 to 64" in str(bad.value)


def test_s_yaml_sets_the_codes_default():
    env = load()["resources"]["qwen"]["props"]["environmentVariables"]
    assert str(env["QWEN_MAX_IMAGE_PARTS"]) == str(DEFAULT_MAX_IMAGE_PARTS) == "4"
    assert settings().max_image_parts == DEFAULT_MAX_IMAGE_PARTS
