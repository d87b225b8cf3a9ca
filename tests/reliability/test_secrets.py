"""No secret ever leaves: recognizable API key and STS credentials, every scenario, everything
observable scanned (DEBUG log records with tracebacks, results, exceptions and their causes, the
OSS objects written, the CLI's output)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from handler.app import Runtime, handle
from handler.errors import TransientUpstreamError
from handler.local.standin import drop, error, gateway_page, hang, truncated
from handler.memory import AnsweredRecords
from handler.retry import Backoff
from tests.conftest import ROOT
from tests.reliability.conftest import API_KEY, CASES, SECRETS, STS_SECRET, STS_TOKEN, context

FORMATTER = logging.Formatter("%(levelname)s %(name)s %(message)s")


def observed_exceptions(error: BaseException | None) -> str:
    """An exception, its message, repr and every chained cause or context, as text."""
    parts, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        parts += [str(error), repr(error), *map(str, error.args)]
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


def scan(text: str, where: str) -> None:
    CASES["secrets: observables scanned"] += 1
    for secret in SECRETS:
        assert secret not in text, f"a secret reached {where}"


@pytest.fixture
def debug_logs(caplog):
    """Every record at DEBUG, from every logger (ours, dashscope, oss2, urllib3)."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    scan("\n".join(FORMATTER.format(r) for r in caplog.records), "a log record")


@pytest.fixture
def wire(standin, oss):
    env = {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_REQUEST_TIMEOUT": "1",
        "QWEN_LOG_CONTENT": "true",
    }
    return Runtime(env=env, backoff=Backoff(base=0.01, cap=0.05), memory=AnsweredRecords())


SCENARIOS = {
    "answered": (),
    "401 that echoes the key": (error(401, "InvalidApiKey", f"Invalid API-key provided: {API_KEY}"),),
    "429 then answered": (error(429, "Throttling", "slow down", retry_after=0.05),),
    "500s until raised": (error(500, "InternalError", f"upstream saw Bearer {API_KEY}"),) * 3,
    "gateway pages until raised": (gateway_page(),) * 3,
    "truncated then answered": (truncated(),),
    "dropped connections": (drop(), drop()),
    "hung until raised": (hang(5),) * 3,
}


@pytest.mark.parametrize("script", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_no_secret_in_any_upstream_scenario(standin, wire, debug_logs, script):
    """Whatever DashScope does (even echoing the key), results, logs and exceptions hold no secret."""
    standin.script(*script)
    question = json.dumps({"prompt": f"is {STS_TOKEN[:6]} a secret?"}).encode()
    try:
        returned = handle(question, context(timeout=5), wire)
    except TransientUpstreamError as raised:
        scan(observed_exceptions(raised), "an exception")
    else:
        scan(returned, "a result")


def test_no_secret_in_the_oss_flow(standin, oss, wire, debug_logs):
    """oss2's DEBUG lines print request headers (the STS token among them): masked; objects clean."""
    oss.put("qwen-bkt", "questions/q.txt", "什么是STS?")
    event = json.dumps(
        {
            "events": [
                {
                    "eventName": "ObjectCreated:PutObject",
                    "eventSource": "acs:oss",
                    "region": "cn-hangzhou",
                    "oss": {"bucket": {"name": "qwen-bkt"}, "object": {"key": "questions/q.txt", "eTag": "X"}},
                }
            ]
        }
    ).encode()
    scan(handle(event, context(), wire), "a result")
    assert any(r.name.startswith("oss2") for r in debug_logs.records)  # oss2 did log its headers
    oss.fail_next(503, 503, 503, 503, 503, 503)
    with pytest.raises(TransientUpstreamError) as raised:
        handle(event.replace(b'"X"', b'"Y"'), context(), Runtime(env=wire.env, memory=AnsweredRecords()))
    scan(observed_exceptions(raised.value), "an exception")
    for stored in oss.objects.values():
        scan(stored.data.decode(errors="replace") + json.dumps(stored.metadata), "an OSS object")


def test_no_secret_in_the_cli_output(standin):
    """The CLI, pointed at the stand-in with the recognizable key, prints none of the secrets."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "QWEN_", "ALIBABA_CLOUD_"))},
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.ID0001",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS_SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": STS_TOKEN,
    }
    for script in ((), (error(401, "InvalidApiKey", f"bad key {API_KEY}"),), (error(500, "E", API_KEY),) * 3):
        standin.script(*script)
        done = subprocess.run(
            [sys.executable, "-m", "handler", "--timeout", "10", "你好"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        scan(done.stdout + done.stderr, "the CLI's output")


def test_the_scan_itself_catches_a_leak(caplog):
    """A deliberately leaked key is caught by the same scan, so the checks above can fail."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("qwen.test").warning("leaking %s", "sk-not-remembered-" + "x" * 8)
    with pytest.raises(AssertionError):
        scan(f"oops {API_KEY}", "a deliberate leak")
