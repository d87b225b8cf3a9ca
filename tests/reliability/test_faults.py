"""Scripted upstream faults through the real SDK: outcome, attempts, and time within the deadline."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.errors import TransientUpstreamError
from handler.local.standin import answer, drop, error, gateway_page, hang, reset, stream, truncated
from tests.conftest import API_KEY, FakeClock, response
from tests.reliability.conftest import CASES


@dataclass(frozen=True)
class Scenario:
    name: str
    script: tuple
    outcome: str  # "answered", "refused" (a 4xx result) or "raised"
    attempts: int
    timeout: float = 20
    code: str = ""
    min_seconds: float = 0.0


def ok_html() -> Any:
    def behave(handler, request):
        handler.reply(200, b"<html>maintenance</html>", content_type="text/html")

    return behave


SCENARIOS = [
    Scenario(
        "429 storm without Retry-After", (error(429, "Throttling", "rate limit"),) * 5, "raised", 3, code="Throttling"
    ),
    Scenario(
        "429 storm with Retry-After",
        (error(429, "Throttling", "rate limit", retry_after=0.3),) * 2,
        "answered",
        3,
        min_seconds=0.6,
    ),
    Scenario(
        "Retry-After past the deadline",
        (error(429, "Throttling", "later", retry_after=60),),
        "raised",
        1,
        timeout=5,
        code="Throttling",
    ),
    Scenario(
        "5xx burst, then an answer",
        (error(500, "InternalError", "x"), error(503, "ServiceUnavailable", "y")),
        "answered",
        3,
    ),
    Scenario("5xx beyond the attempts", (error(500, "InternalError", "x"),) * 3, "raised", 3, code="InternalError"),
    Scenario(
        "non-JSON gateway pages",
        (gateway_page(502), gateway_page(504), gateway_page(502)),
        "raised",
        3,
        code="ServerError502",
    ),
    Scenario("200 with a truncated body", (truncated(),), "answered", 2),
    Scenario("200 with an HTML body", (ok_html(), ok_html(), ok_html()), "raised", 3, code="MalformedResponse"),
    Scenario("connection dropped after the request", (drop(), drop()), "answered", 2),
    Scenario("connection reset", (reset(), reset()), "answered", 2),
    Scenario(
        "a reply slower than the deadline", (answer(delay=30),) * 3, "raised", 3, timeout=4, code="RequestTimeout"
    ),
    Scenario("a hung connection", (hang(30),) * 3, "raised", 3, timeout=4, code="RequestTimeout"),
    Scenario("a 400 is final", (error(400, "InvalidParameter", "bad"),), "refused", 1, code="InvalidParameter"),
    Scenario(
        "a 401 is the account's: raised", (error(401, "InvalidApiKey", "bad key"),), "raised", 1, code="InvalidApiKey"
    ),
    Scenario("a stream that breaks before output", (stream(break_after=0),), "answered", 2),
    Scenario("a stream silent before output", (stream(stall_after=0, stall=30),), "answered", 2, min_seconds=1),
    Scenario(
        "a stream that stalls after output",
        (stream(chunks=10, stall_after=3, stall=30),),
        "answered",
        1,
        code="PartialAnswer",
    ),
    Scenario(
        "a stream that breaks after output", (stream(chunks=10, break_after=3),), "answered", 1, code="PartialAnswer"
    ),
    Scenario(
        "a stream longer than the deadline",
        (stream(chunks=100, every=0.1),),
        "answered",
        1,
        timeout=4,
        code="PartialAnswer",
    ),
]


def wire_runtime(base_url: str, **env: str) -> Runtime:
    return Runtime(
        env={"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": base_url, "QWEN_REQUEST_TIMEOUT": "1", **env},
        backoff=Backoff(base=0.05, cap=0.2),
        memory=AnsweredRecords(),
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_fault(standin, scenario, logs):
    """Each fault ends as its table says, after that many attempts, before the function's timeout."""
    standin.script(*scenario.script)
    context = SimpleNamespace(request_id="fc-fault", function=SimpleNamespace(timeout=scenario.timeout))
    started = time.monotonic()
    try:
        result = json.loads(handle(b"hi", context, wire_runtime(standin.url)))
        outcome = "answered" if result["status_code"] == 200 else "refused"
        code = result["code"]
    except TransientUpstreamError as raised:
        outcome, code = "raised", raised.code
    elapsed = time.monotonic() - started
    CASES["faults: scripted scenarios"] += 1
    assert (outcome, code or "") == (scenario.outcome, scenario.code)
    assert logs.events("question")[-1]["attempts"] == scenario.attempts
    assert scenario.min_seconds <= elapsed < scenario.timeout


def test_nothing_listening_is_a_transient_failure(logs):
    """A connection refused (nothing on the port) is retried and then raised, quickly."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = SimpleNamespace(request_id="fc-refused", function=SimpleNamespace(timeout=10))
    with pytest.raises(TransientUpstreamError) as raised:
        handle(b"hi", context, wire_runtime(f"http://127.0.0.1:{port}/api/v1"))
    assert raised.value.code == "ConnectionError" and raised.value.attempts == 3


faults = st.lists(
    st.one_of(
        st.builds(
            lambda ra: response(429, code="Throttling", headers={"Retry-After": str(ra)} if ra else {}),
            st.one_of(st.none(), st.integers(0, 90)),
        ),
        st.just(response(500, code="InternalError")),
        st.just(response(400, code="InvalidParameter")),
        st.just(response()),
        st.sampled_from(["timeout", "connection"]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    faults=faults,
    timeout=st.integers(3, 120),
    attempts=st.integers(1, 6),
    request_timeout=st.integers(1, 60),
    latency=st.floats(0, 30),
)
def test_retries_never_outlast_the_deadline(faults, timeout, attempts, request_timeout, latency):
    """Whatever the faults: attempts <= QWEN_MAX_ATTEMPTS, Retry-After honoured, done before the timeout."""
    import requests

    CASES["faults: retry timing properties"] += 1
    clock, calls = FakeClock(), []

    def transport(**kwargs):
        calls.append(kwargs["request_timeout"])
        fault = faults[min(len(calls), len(faults)) - 1]
        clock.now += min(latency, kwargs["request_timeout"])  # a call never outlives its own timeout
        if fault == "timeout":
            raise requests.exceptions.ReadTimeout("read timed out")
        if fault == "connection":
            raise requests.exceptions.ConnectionError("reset")
        return fault

    runtime = Runtime(
        transport=transport,
        env={
            "DASHSCOPE_API_KEY": API_KEY,
            "QWEN_MAX_ATTEMPTS": str(attempts),
            "QWEN_REQUEST_TIMEOUT": str(request_timeout),
        },
        sleep=clock.sleep,
        clock=clock,
        memory=AnsweredRecords(),
    )
    started = clock.now
    with contextlib.suppress(TransientUpstreamError):
        handle(b"hi", SimpleNamespace(request_id="r", function=SimpleNamespace(timeout=timeout)), runtime)
    assert len(calls) <= attempts
    assert clock.now - started < timeout
    assert all(0 < t <= request_timeout for t in calls)
    for index, pause in enumerate(clock.sleeps):
        asked = faults[min(index, len(faults) - 1)]
        retry_after = getattr(asked, "headers", {}).get("Retry-After") if not isinstance(asked, str) else None
        if retry_after:
            assert pause >= float(retry_after)


@contextlib.contextmanager
def never_accepting() -> Any:
    """A port on 127.0.0.1 whose listener never accepts: backlog 0, its one queue slot taken, so
    every further SYN is dropped and a connect hangs (a black-holed host)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=1):  # fills the accept queue
            with socket.socket() as probe:  # and the queue is full: a connect hangs
                probe.settimeout(0.2)
                with pytest.raises(TimeoutError):
                    probe.connect(("127.0.0.1", port))
            yield f"http://127.0.0.1:{port}/api/v1"


def test_a_hanging_connect_ends_before_the_function_timeout(logs):
    """Against a host that never accepts, the SDK's own resend included, the handler raises before
    context.function.timeout (6 s, with the default 60 s QWEN_REQUEST_TIMEOUT)."""
    context = SimpleNamespace(request_id="fc-blackhole", function=SimpleNamespace(timeout=6))
    with never_accepting() as url:
        started = time.monotonic()
        with pytest.raises(TransientUpstreamError) as raised:
            handle(b"hi", context, wire_runtime(url, QWEN_REQUEST_TIMEOUT="60"))
        elapsed = time.monotonic() - started
    CASES["faults: scripted scenarios"] += 1
    assert raised.value.code == "ConnectTimeout"
    assert elapsed < 6


def test_the_connect_timeout_is_its_own(logs):
    """QWEN_CONNECT_TIMEOUT bounds each connect (and the SDK's resend), not QWEN_REQUEST_TIMEOUT."""
    context = SimpleNamespace(request_id="fc-blackhole", function=SimpleNamespace(timeout=30))
    with never_accepting() as url:
        started = time.monotonic()
        with pytest.raises(TransientUpstreamError) as raised:
            handle(b"hi", context, wire_runtime(url, QWEN_REQUEST_TIMEOUT="60", QWEN_CONNECT_TIMEOUT="0.5"))
        elapsed = time.monotonic() - started
    assert raised.value.code == "ConnectTimeout" and raised.value.attempts == 3
    assert 3 * 2 * 0.5 <= elapsed < 3 * 2 * 0.5 + 2  # three attempts of a connect and its resend
