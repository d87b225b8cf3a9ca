"""Reading and checking the environment variables."""

from __future__ import annotations

import pytest

from handler.config import Settings
from handler.errors import InvalidConfig

KEY = {"DASHSCOPE_API_KEY": "sk-abcdefgh12345"}


def test_defaults():
    """Only the key is required; everything else has the documented default."""
    settings = Settings.from_env(KEY)
    assert settings.mode == "messages"
    assert settings.model == "qwen-turbo"
    assert settings.system_prompt == "You are a helpful assistant."
    assert settings.parameters == {}
    assert settings.allowed_models == {"qwen-turbo"}
    assert settings.max_attempts == 3
    assert settings.request_timeout == 60
    assert settings.log_content is False
    assert settings.base_url is None


def test_every_variable_is_read():
    """Each documented variable changes its setting."""
    settings = Settings.from_env(
        {
            **KEY,
            "QWEN_MODE": "PROMPT",
            "QWEN_MODEL": "qwen-plus",
            "QWEN_SYSTEM_PROMPT": "你是厨师",
            "QWEN_PARAMETERS": '{"temperature": 0.2, "seed": 7}',
            "QWEN_ALLOWED_MODELS": "qwen-plus, qwen-max,,",
            "QWEN_MAX_ATTEMPTS": "5",
            "QWEN_REQUEST_TIMEOUT": "12.5",
            "QWEN_LOG_CONTENT": "true",
            "DASHSCOPE_HTTP_BASE_URL": "https://dashscope-intl.aliyuncs.com/api/v1",
        }
    )
    assert settings.mode == "prompt"
    assert settings.model == "qwen-plus"
    assert settings.system_prompt == "你是厨师"
    assert settings.parameters == {"temperature": 0.2, "seed": 7}
    assert settings.allowed_models == {"qwen-plus", "qwen-max"}
    assert settings.max_attempts == 5
    assert settings.request_timeout == 12.5
    assert settings.log_content is True
    assert settings.base_url == "https://dashscope-intl.aliyuncs.com/api/v1"


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"DASHSCOPE_API_KEY": "  "}, "DASHSCOPE_API_KEY"),
        ({"QWEN_MODE": "chat"}, "QWEN_MODE"),
        ({"QWEN_PARAMETERS": "{temperature: 1}"}, "QWEN_PARAMETERS"),
        ({"QWEN_PARAMETERS": "[1]"}, "QWEN_PARAMETERS"),
        ({"QWEN_PARAMETERS": '{"stream": true}'}, "QWEN_PARAMETERS"),
        ({"QWEN_PARAMETERS": '{"api_key": "x"}'}, "QWEN_PARAMETERS"),
        ({"QWEN_MAX_ATTEMPTS": "three"}, "QWEN_MAX_ATTEMPTS"),
        ({"QWEN_MAX_ATTEMPTS": "0"}, "QWEN_MAX_ATTEMPTS"),
        ({"QWEN_MAX_ATTEMPTS": "2.5"}, "QWEN_MAX_ATTEMPTS"),
        ({"QWEN_REQUEST_TIMEOUT": "nan"}, "QWEN_REQUEST_TIMEOUT"),
        ({"QWEN_REQUEST_TIMEOUT": "-1"}, "QWEN_REQUEST_TIMEOUT"),
        ({"QWEN_LOG_CONTENT": "maybe"}, "QWEN_LOG_CONTENT"),
        ({"QWEN_MODEL": "qwen-max", "QWEN_ALLOWED_MODELS": "qwen-turbo"}, "QWEN_ALLOWED_MODELS"),
    ],
)
def test_invalid_values_name_the_variable(variables, named):
    """A bad value raises InvalidConfig (500) whose message starts with the variable's name."""
    with pytest.raises(InvalidConfig) as caught:
        Settings.from_env({**KEY, **variables})
    assert caught.value.status_code == 500 and caught.value.code == "InvalidConfig"
    assert caught.value.message.startswith(named)


def test_the_key_is_not_in_repr():
    """Printing the settings, as a debugger or a careless log line would, does not show the key."""
    assert "sk-abcdefgh12345" not in repr(Settings.from_env(KEY))
