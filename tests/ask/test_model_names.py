"""Names checked where it helps (typos warned at initialization), every region's base URL, and the
one sentence a wrong-region key gets."""

from __future__ import annotations

import pytest

from handler.app import handle, initialize
from handler.ask.models import DEFAULT_MODELS, likely_meant
from handler.config import Settings
from handler.errors import AccountFailure, InvalidConfig
from tests.conftest import API_KEY, response


@pytest.mark.parametrize(
    ("name", "meant"),
    [("qwen-trubo", "qwen-turbo"), ("qwen3.8-maxx", "qwen3.8-max"), ("qwen3-vl-flsah", "qwen3-vl-flash")],
)
def test_a_typo_of_a_listed_model_names_the_model_meant(name, meant):
    assert likely_meant(name, DEFAULT_MODELS) == meant


@pytest.mark.parametrize("name", ["qwen-turbo", "qwen3.8-max", "my-own-model", "deepseek-v3"])
def test_listed_or_distant_names_are_not_typos(name):
    assert likely_meant(name, DEFAULT_MODELS) is None


def test_initialization_warns_of_a_likely_typo(runtime, env, context, logs):
    """QWEN_MODEL and allowlisted names within two edits of a table row: one WARNING each, naming it."""
    env.update(QWEN_MODEL="qwen-trubo", QWEN_ALLOWED_MODELS="qwen-trubo,qwen3.8-maxx,qwen-plus,my-own-model")
    initialize(context, runtime)
    warned = {line["model"]: line["likely"] for line in logs.events("model_unknown")}
    assert warned == {"qwen-trubo": "qwen-turbo", "qwen3.8-maxx": "qwen3.8-max"}
    assert all(r.levelname == "WARNING" for r in logs.records if "model_unknown" in r.getMessage())
    assert logs.events("initialized")  # only a warning: the function still starts


def test_initialization_is_quiet_for_table_models(runtime, env, context, logs):
    env.update(QWEN_ALLOWED_MODELS="qwen-turbo,qwen3.7-plus,qwen3-vl-flash")
    initialize(context, runtime)
    assert logs.events("model_unknown") == []


@pytest.mark.parametrize(
    "url",
    [
        "https://ws-8a1b2c3d.ap-southeast-1.maas.aliyuncs.com/api/v1",
        "https://llm-abc123.us-east-1.maas.aliyuncs.com/api/v1",
        "https://dashscope-us.aliyuncs.com/api/v1",
    ],
)
def test_workspace_domains_are_accepted(url):
    settings = Settings.from_env({"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": url})
    assert settings.base_url == url


def test_a_placeholder_left_in_the_base_url_is_refused():
    with pytest.raises(InvalidConfig) as caught:
        Settings.from_env(
            {
                "DASHSCOPE_API_KEY": API_KEY,
                "DASHSCOPE_HTTP_BASE_URL": "https://{WorkspaceId}.ap-southeast-1.maas.aliyuncs.com/api/v1",
            }
        )
    assert "WorkspaceId" in caught.value.message and caught.value.variable == "DASHSCOPE_HTTP_BASE_URL"


REFUSED = "Invalid API-key provided."


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://dashscope-intl.aliyuncs.com/api/v1", "Singapore (ap-southeast-1)"),
        ("https://ws-8a1b2c3d.ap-southeast-1.maas.aliyuncs.com/api/v1", "Singapore (ap-southeast-1)"),
        ("https://dashscope-us.aliyuncs.com/api/v1", "US (Virginia) (us-east-1)"),
        ("https://ws-1.eu-central-1.maas.aliyuncs.com/api/v1", "Germany (Frankfurt) (eu-central-1)"),
    ],
)
def test_a_401_outside_beijing_says_keys_are_per_region(runtime, env, context, transport, url, region):
    env["DASHSCOPE_HTTP_BASE_URL"] = url
    transport.return_value = response(401, code="InvalidApiKey", message=REFUSED)
    # Account-level: raised for redelivery, and its message carries the region sentence.
    with pytest.raises(AccountFailure) as raised:
        handle(b"hi", context, runtime)
    assert raised.value.code == "InvalidApiKey" and REFUSED in raised.value.message
    assert "API keys are region-specific" in raised.value.message and region in raised.value.message
    assert transport.call_count == 1


@pytest.mark.parametrize("url", [None, "https://dashscope.aliyuncs.com/api/v1", "http://127.0.0.1:9/api/v1"])
def test_beijing_and_unknown_hosts_keep_dashscopes_message(runtime, env, context, transport, url):
    """Beijing: no key prefix tells an international key apart, so nothing is guessed; a proxy or a
    stand-in is no region at all."""
    if url:
        env["DASHSCOPE_HTTP_BASE_URL"] = url
    transport.return_value = response(401, code="InvalidApiKey", message=REFUSED)
    with pytest.raises(AccountFailure) as raised:
        handle(b"hi", context, runtime)
    assert f"): {REFUSED}; fix:" in raised.value.message and "region-specific" not in raised.value.message


def test_only_invalid_api_key_gets_the_hint(runtime, env, context, transport):
    env["DASHSCOPE_HTTP_BASE_URL"] = "https://dashscope-intl.aliyuncs.com/api/v1"
    transport.return_value = response(403, code="AccessDenied", message="denied")
    with pytest.raises(AccountFailure) as raised:
        handle(b"hi", context, runtime)
    assert "): denied; fix:" in raised.value.message and "region-specific" not in raised.value.message


def test_the_model_table_takes_api_and_thinking():
    from handler.ask.models import parse_table

    table = parse_table(
        '{"qwen3.9-plus": {"api": "multimodal", "thinking": "hybrid"}, "qwen-turbo": {"api": "multimodal"}}'
    )
    assert (table["qwen3.9-plus"].api, table["qwen3.9-plus"].thinking) == ("multimodal", "hybrid")
    assert table["qwen3.9-plus"].context_window is None  # figures not given: unknown
    assert table["qwen-turbo"].api == "multimodal" and table["qwen-turbo"].context_window == 131_072


@pytest.mark.parametrize(
    "value",
    ['{"x": {"api": "vision"}}', '{"qwen-turbo": {"thinking": "sometimes"}}', '{"x": {"thinking": "always"}}'],
)
def test_a_bad_api_or_thinking_names_the_variable(value):
    from handler.ask.models import parse_table

    with pytest.raises(InvalidConfig) as caught:
        parse_table(value)
    assert caught.value.variable == "QWEN_MODEL_TABLE"
