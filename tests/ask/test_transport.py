"""The SDK seam's own HTTP session, and the per-instance caches that keep warm invocations cheap."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import requests
from urllib3.exceptions import ReadTimeoutError

from handler.app import Runtime, handle, initialize
from handler.ask.transport import (
    PROXY_VARIABLES,
    DashScopeTransport,
    Request,
    Transient,
    classify_exception,
    is_read_timeout,
)
from handler.config import settings_for
from handler.deliver.memory import AnsweredRecords
from handler.errors import InvalidConfig
from tests.conftest import API_KEY


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def ask(transport, standin) -> dict:
    runtime = Runtime(
        transport=transport,
        env={"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url},
        memory=AnsweredRecords(),
    )
    context = SimpleNamespace(request_id="r", function=SimpleNamespace(timeout=30))
    return json.loads(handle(b"hi", context, runtime))


def test_one_session_serves_every_call(standin, no_proxy_env):
    """The transport's session is made once and reused: one connection for many invocations."""
    transport = DashScopeTransport()
    for _ in range(5):
        assert ask(transport, standin)["status_code"] == 200
    first = transport._session
    assert ask(transport, standin)["status_code"] == 200
    assert transport._session is first
    assert standin.connections == 1


def test_the_environment_is_not_scanned_without_proxies(standin, no_proxy_env):
    """With no proxy or CA-bundle variable, requests' per-call environment scan is switched off."""
    transport = DashScopeTransport()
    ask(transport, standin)
    assert transport._session.trust_env is False


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "REQUESTS_CA_BUNDLE"])
def test_proxy_settings_are_honoured(standin, no_proxy_env, monkeypatch, name):
    """A deployment that sets a proxy or a CA bundle keeps requests' environment handling."""
    monkeypatch.setenv(name, "127.0.0.1" if "PROXY" in name.upper() else "/etc/ssl/certs/ca-certificates.crt")
    transport = DashScopeTransport()
    ask(transport, standin)
    assert transport._session.trust_env is True


def test_settings_are_parsed_once_per_configuration():
    """The same environment gives the same Settings object; a changed one is read again."""
    env = {"DASHSCOPE_API_KEY": "sk-cache-000000001", "QWEN_MODEL": "qwen-turbo"}
    first = settings_for(env)
    assert settings_for(dict(env)) is first
    changed = settings_for({**env, "QWEN_MAX_ATTEMPTS": "2"})
    assert changed is not first and changed.max_attempts == 2


def test_an_invalid_configuration_is_not_cached():
    """Fixing a bad variable takes effect on the next invocation."""
    env = {"DASHSCOPE_API_KEY": "sk-cache-000000002", "QWEN_MODE": "chat"}
    with pytest.raises(InvalidConfig):
        settings_for(env)
    env["QWEN_MODE"] = "prompt"
    assert settings_for(env).mode == "prompt"


def test_settings_follow_os_environ(monkeypatch):
    """Read from os.environ (production), a changed variable is seen at the next invocation."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-cache-000000003")
    monkeypatch.setenv("QWEN_MODEL", "qwen-turbo")
    import os

    assert settings_for(os.environ).model == "qwen-turbo"
    monkeypatch.setenv("QWEN_MODEL", "qwen-plus")
    monkeypatch.setenv("QWEN_ALLOWED_MODELS", "qwen-plus")
    assert settings_for(os.environ).model == "qwen-plus"


def test_initialize_freezes_what_it_imported(mocker, context):
    """After importing the SDK, the initializer moves startup objects out of the GC's generations."""
    freeze = mocker.patch("gc.freeze")
    initialize(context, Runtime(env={"DASHSCOPE_API_KEY": API_KEY}))
    freeze.assert_called_once()


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.MissingSchema("Invalid URL 'notaurl/services': No scheme supplied"),
        requests.exceptions.InvalidSchema("No connection adapters were found for 'ftp://x'"),
        requests.exceptions.InvalidURL("Failed to parse: http://127.0.0.1:99999"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_misconfigured_url_is_invalid_config_not_retried(runtime, context, transport, error):
    """requests' URL errors mean the deployment is wrong: 500 InvalidConfig naming the variable, one call."""
    transport.side_effect = error
    result = json.loads(handle(b"hi", context, runtime))
    assert result["status_code"] == 500 and result["code"] == "InvalidConfig"
    assert result["message"].startswith("DASHSCOPE_HTTP_BASE_URL")
    assert transport.call_count == 1


def test_an_unusable_base_url_through_the_sdk_is_invalid_config(context, logs):
    """A URL the SDK cannot use (port out of range) gives InvalidConfig after one attempt, no retry.

    Settings refuse such a value up front; this drives the real SDK past that check to pin the
    classification of requests' InvalidURL itself (the last line of defence)."""
    from handler.ask.transport import dashscope_transport

    def unusable(**kwargs):
        return dashscope_transport(**{**kwargs, "base_address": "http://127.0.0.1:99999/api/v1"})

    runtime = Runtime(env={"DASHSCOPE_API_KEY": API_KEY}, memory=AnsweredRecords(), transport=unusable)
    result = json.loads(handle(b"hi", context, runtime))
    assert result["status_code"] == 500 and result["code"] == "InvalidConfig"
    assert "DASHSCOPE_HTTP_BASE_URL" in result["message"]
    assert logs.events("question")[-1]["attempts"] == 1


def test_every_send_gets_the_bounds_timeouts(mocker):
    """The adapter replaces the SDK's scalar timeout with (connect, read), each capped by the time left."""
    from requests.adapters import HTTPAdapter

    from handler.ask.attempts import Deadline
    from handler.ask.transport import Bounds, _attempt, _bounded_adapter

    sent = mocker.patch.object(HTTPAdapter, "send", return_value="response")
    adapter = _bounded_adapter()()
    now = [0.0]
    _attempt.bounds = Bounds(Deadline(at=10.0, clock=lambda: now[0]), connect=5.0, silence=60.0)
    try:
        adapter.send("request", stream=True, timeout=60)
        assert sent.call_args.kwargs["timeout"] == (5.0, 10.0)
        now[0] = 8.0  # the SDK's resend, later: only the time left
        adapter.send("request", stream=True, timeout=60)
        assert sent.call_args.kwargs["timeout"] == (2.0, 2.0)
        now[0] = 10.0
        with pytest.raises(requests.exceptions.ConnectTimeout):
            adapter.send("request", stream=True, timeout=60)
    finally:
        _attempt.bounds = _attempt.response = None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), "ConnectTimeout"),
        (requests.exceptions.ReadTimeout("read timed out"), "RequestTimeout"),
        (requests.exceptions.ConnectionError(ReadTimeoutError(None, "/", "Read timed out.")), "ConnectionError"),
        (requests.exceptions.ConnectionError("reset"), "ConnectionError"),
        (requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0), "MalformedResponse"),
        (requests.exceptions.ChunkedEncodingError("connection broken"), "TransportError"),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_each_transport_failure_is_transient_with_its_code(error, code):
    """One table maps requests' and urllib3's failures to the codes a retry is decided on."""
    assert classify_exception(error) == Transient(code, classify_exception(error).message)
    assert classify_exception(error).code == code


@pytest.mark.parametrize("error", [RuntimeError("bug"), TimeoutError("raw"), ReadTimeoutError(None, "/", "raw")])
def test_what_the_table_does_not_name_is_no_transport_failure(error):
    """An exception no row names (a bug, a timeout requests did not wrap) is not hidden as a retry."""
    assert classify_exception(error) is None and not is_read_timeout(error)


def test_the_api_travels_beside_the_sdk_arguments_not_in_them(transport):
    """A Request sends its arguments as keywords, with api= and bounds= beside them; the invoker's
    arguments (what the SDK receives) never carry the api."""
    from handler.ask.invokers import MULTIMODAL_INVOKERS
    from handler.ask.plan import Call
    from handler.events.question import Message

    call = Call(mode="messages", model="qwen3-vl-flash", messages=(Message("user", "hi"),))
    arguments = MULTIMODAL_INVOKERS["messages"].arguments(call)
    assert "api" not in arguments
    Request("multimodal", arguments).send(transport, request_timeout=5)
    sent = transport.call_args.kwargs
    assert sent["api"] == "multimodal" and sent["bounds"] is None and sent["request_timeout"] == 5
    assert sent["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
