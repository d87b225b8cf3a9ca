"""A pooled connection idle past MAX_IDLE_SECONDS is never reused: real sockets against a DashScope stand-in
that silences every connection after an idle spell (as a NAT that dropped it without a reset); the idle
age comes from an injected clock, so the test need not wait 30 s."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.ask.transport import MAX_IDLE_SECONDS, DashScopeTransport
from handler.local.standin import DashScopeStandIn
from tests.conftest import API_KEY

pytestmark = pytest.mark.slow  # real sockets against the stand-ins, idle timeouts


@pytest.fixture
def standin() -> Iterator[DashScopeStandIn]:
    """A stand-in of its own: `drop_idle` silences every connection to it, other tests' pooled ones too."""
    with DashScopeStandIn(api_key=API_KEY) as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def questions(logs):
    return [line for line in logs.lines if line.get("event") == "question"]


def test_a_connection_idle_past_the_limit_is_not_reused(standin, context, logs):
    clock = Clock()
    transport = DashScopeTransport(clock=clock)
    env = {"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url, "QWEN_REQUEST_TIMEOUT": "4"}
    runtime = Runtime(transport=transport, env=env, backoff=Backoff(base=0.01, cap=0.02))
    assert json.loads(handle(b"hi", context, runtime))["status_code"] == 200
    assert json.loads(handle(b"hi again", context, runtime))["status_code"] == 200
    assert standin.connections == 1  # a warm call reuses the pooled connection
    standin.drop_idle()  # the instance sat frozen; the network forgot the connection
    clock.now += 30.0
    assert MAX_IDLE_SECONDS < 30.0
    result = json.loads(handle(b"after a pause", context, runtime))
    assert result["status_code"] == 200
    assert standin.dead_requests == 0  # nothing was written to the dead connection
    assert questions(logs)[-1]["attempts"] == 1
    assert standin.connections == 2


def test_a_connection_idle_within_the_limit_is_reused(standin, context):
    clock = Clock()
    transport = DashScopeTransport(clock=clock)
    env = {"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url}
    runtime = Runtime(transport=transport, env=env)
    handle(b"hi", context, runtime)
    clock.now += MAX_IDLE_SECONDS - 1
    handle(b"hi again", context, runtime)
    assert standin.connections == 1
