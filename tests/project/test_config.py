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
        ({"DASHSCOPE_HTTP_BASE_URL": "notaurl"}, "DASHSCOPE_HTTP_BASE_URL"),
        ({"DASHSCOPE_HTTP_BASE_URL": "dashscope-intl.aliyuncs.com/api/v1"}, "DASHSCOPE_HTTP_BASE_URL"),
        ({"DASHSCOPE_HTTP_BASE_URL": "ftp://dashscope.aliyuncs.com"}, "DASHSCOPE_HTTP_BASE_URL"),
        ({"DASHSCOPE_HTTP_BASE_URL": "https://"}, "DASHSCOPE_HTTP_BASE_URL"),
        ({"DASHSCOPE_HTTP_BASE_URL": "https://host:99999/api/v1"}, "DASHSCOPE_HTTP_BASE_URL"),
        ({"DASHSCOPE_HTTP_BASE_URL": "https://dash scope.aliyuncs.com"}, "DASHSCOPE_HTTP_BASE_URL"),
        ({"QWEN_OSS_ENDPOINT": "oss-cn-hangzhou-internal.aliyuncs.com"}, "QWEN_OSS_ENDPOINT"),
        ({"QWEN_OSS_ENDPOINT": "file:///etc/passwd"}, "QWEN_OSS_ENDPOINT"),
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


@pytest.mark.parametrize(
    "url", ["https://dashscope-intl.aliyuncs.com/api/v1", "http://127.0.0.1:8123/api/v1", "HTTPS://Example.com"]
)
def test_http_urls_with_a_host_are_accepted(url):
    """The documented endpoints and the local stand-ins' http://127.0.0.1:PORT URLs stay valid."""
    settings = Settings.from_env({**KEY, "DASHSCOPE_HTTP_BASE_URL": url, "QWEN_OSS_ENDPOINT": url})
    assert settings.base_url == url and settings.oss_endpoint == url


def test_a_bad_url_names_the_variable_and_what_it_must_be():
    """The message says what a valid value looks like, and does not echo the value itself."""
    with pytest.raises(InvalidConfig) as caught:
        Settings.from_env({**KEY, "DASHSCOPE_HTTP_BASE_URL": "https://user:secret-pass@"})
    assert caught.value.message.startswith("DASHSCOPE_HTTP_BASE_URL must be an http(s) URL with a host")
    assert "secret-pass" not in caught.value.message


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("QWEN_MAX_EVENT_BYTES", "1", "QWEN_MAX_EVENT_BYTES must be from 1024 to 33554432"),
        ("QWEN_OSS_MAX_BYTES", "x", "QWEN_OSS_MAX_BYTES must be a whole number from 1 to 33554432"),
        ("QWEN_REQUEST_TIMEOUT", "0.5", "QWEN_REQUEST_TIMEOUT must be from 1 to 86400"),
    ],
)
def test_bounds_are_written_as_plain_numbers(variable, value, message):
    """Range messages show the bounds as written in docs/configuration.md, never in scientific notation."""
    with pytest.raises(InvalidConfig) as caught:
        Settings.from_env({**KEY, variable: value})
    assert caught.value.message == message


def test_a_bad_endpoint_is_a_config_error_without_a_call():
    """DASHSCOPE_HTTP_BASE_URL=notaurl gives 500 InvalidConfig naming it, and DashScope is never called."""
    import json
    from types import SimpleNamespace

    from handler.app import Runtime, handle

    calls = []
    runtime = Runtime(
        transport=lambda **kwargs: calls.append(kwargs),
        env={**KEY, "DASHSCOPE_HTTP_BASE_URL": "notaurl"},
        sleep=lambda seconds: None,
    )
    context = SimpleNamespace(request_id="fc-1", function=SimpleNamespace(timeout=60))
    result = json.loads(handle(b"hi", context, runtime))
    assert result["status_code"] == 500 and result["code"] == "InvalidConfig"
    assert result["message"].startswith("DASHSCOPE_HTTP_BASE_URL") and calls == []


def test_an_unknown_parameter_lists_the_allowed_ones():
    """A name outside the allowlist in QWEN_PARAMETERS is named with the allowed names, not as "an event"."""
    with pytest.raises(InvalidConfig) as caught:
        Settings.from_env({**KEY, "QWEN_PARAMETERS": '{"temprature": 0.5}'})
    message = caught.value.message
    assert message.startswith("QWEN_PARAMETERS field 'temprature' is not an allowed generation parameter; allowed: ")
    assert "temperature" in message and "max_tokens" in message and "event" not in message
