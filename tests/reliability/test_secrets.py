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
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.errors import TransientUpstreamError
from handler.local.standin import answer, drop, error, gateway_page, hang, truncated
from tests.conftest import ROOT
from tests.reliability.conftest import (
    API_KEY,
    STS_SECRET,
    STS_TOKEN,
    assert_no_secret_in_records,
    context,
    every_log_record,
    observed_exceptions,
    scan,
)
from tests.support.events import oss_event_bytes, oss_record


@pytest.fixture
def wire(standin, oss):
    env = {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_OSS_BUCKETS": "qwen-bkt",
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
    # This file's key is not the stand-in's, which refuses it with a 401: an account failure that is
    # raised and writes nothing (tests/ask/test_account_failures.py). Scripted, the question is answered.
    standin.script(answer())
    etag = oss.put("qwen-bkt", "questions/q.txt", "什么是STS?").etag
    event = oss_event_bytes(oss_record("questions/q.txt", bucket="qwen-bkt", etag=etag))
    scan(handle(event, context(), wire), "a result")
    assert oss.get("qwen-bkt", "answers/questions/q.txt.json") is not None  # answered, so its writes were scanned
    # oss2 did log its request headers, the STS token's among them, and the scan saw those lines (masked).
    assert any("x-oss-security-token" in r.getMessage() for r in debug_logs if r.name.startswith("oss2"))
    oss.fail_next(503, 503, 503, 503, 503, 503)
    with pytest.raises(TransientUpstreamError) as raised:
        handle(event.replace(etag.encode(), b"Y"), context(), Runtime(env=wire.env, memory=AnsweredRecords()))
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


def test_the_scan_itself_catches_a_leak(monkeypatch):
    """With masking off, the API key logged at DEBUG through oss2.http is caught by the log scan; masked, it passes."""
    leak = logging.getLogger("oss2.http")
    headers = {"authorization": f"Bearer {API_KEY}", "x-oss-security-token": STS_TOKEN}
    monkeypatch.setattr("handler.redact._masked", (API_KEY, STS_TOKEN))  # as after an invocation
    with every_log_record() as records:
        leak.debug("Request headers: %s", headers)
    assert [r.name for r in records] == ["oss2.http"] and "***" in records[0].getMessage()
    assert_no_secret_in_records(records)  # handler.app's record factory masked both values when the record was made

    monkeypatch.setattr("handler.redact._masked", ())  # as if masking had skipped this record
    with every_log_record() as records:
        leak.debug("Request headers: %s", headers)
    with pytest.raises(AssertionError, match=r"a secret reached a log record of oss2\.http"):
        assert_no_secret_in_records(records)


LEAKING_TEST = """
import logging

from tests.reliability.conftest import API_KEY, debug_logs  # noqa: F401


def test_clean(debug_logs):
    logging.getLogger("oss2.http").debug("Request headers: %s", {"date": "today"})


def test_leak(debug_logs):
    logging.getLogger("oss2.http").debug("Request headers: %s", {"authorization": "Bearer " + API_KEY})
"""


def test_a_leak_logged_in_a_test_body_fails_that_test(tmp_path):
    """A test that logs the API key through oss2.http during its body, under the debug_logs fixture, fails."""
    (tmp_path / "test_leaking.py").write_text(LEAKING_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ERROR at teardown of test_leak" in done.stdout
    assert "a secret reached a log record of oss2.http" in done.stdout
    assert "1 error" in done.stdout and "test_clean" not in done.stdout.split("short test summary")[-1]
