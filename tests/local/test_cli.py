"""`python -m handler` as a new user runs it: a fresh process, offline, no key needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "QWEN_"))}
    return subprocess.run(
        [sys.executable, "-m", "handler", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        env={**clean, **(env or {})},
        timeout=60,
    )


def test_offline_answers_without_a_key():
    """--offline answers from the bundled stand-in, says it is emulated, logs a line and exits 0."""
    done = run("--offline", "如何做西红柿炖牛腩?")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    content = result["output"]["choices"][0]["message"]["content"]
    assert "emulated" in content and "如何做西红柿炖牛腩?" in content
    log = json.loads(done.stderr.decode().splitlines()[-1].split(" ", 1)[1])
    assert log["event"] == "question" and log["status_code"] == 200


# oss.json names a .png: a real bucket holds an image there, refused with 415 (tests/test_offline_oss.py).
@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "events").iterdir() if p.name != "oss.json"))
def test_every_sample_event_is_answered_offline(name):
    """Every sample in events/ (each trigger's published one included) is answered with --event-file."""
    done = run("--offline", "--quiet", "--event-file", f"events/{name}")
    assert done.returncode == 0, done.stderr
    returned = json.loads(done.stdout)
    results = returned if isinstance(returned, list) else [returned]
    assert results and all(r["status_code"] == 200 and r["output"] for r in results)


def test_stdin_and_overrides():
    """'-' reads the event from stdin; --mode and --model override the configuration."""
    done = run("--offline", "--quiet", "--mode", "prompt", "--model", "qwen-plus", "-", stdin="你好".encode())
    assert done.returncode == 0, done.stderr
    assert "你好" in json.loads(done.stdout)["output"]["text"]


def test_a_refused_question_exits_1():
    """A 400 result is printed as JSON and the exit status is 1."""
    done = run("--offline", "--quiet", "-", stdin=b"   ")
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == "EmptyEvent"


def test_missing_key_is_explained_without_a_traceback():
    """Without DASHSCOPE_API_KEY (and not offline) the CLI says what to do and exits 2."""
    done = run("你好")
    assert done.returncode == 2
    assert b"DASHSCOPE_API_KEY is not set" in done.stderr and b"--offline" in done.stderr
    assert b"Traceback" not in done.stderr and done.stdout == b""


@pytest.mark.parametrize("args", [(), ("--event-file", "events/question.json", "also text"), ("--mode", "chat", "x")])
def test_usage_errors_exit_2(args):
    """No question, two questions, or a bad option value are usage errors."""
    done = run("--offline", *args)
    assert done.returncode == 2 and b"Traceback" not in done.stderr


def test_a_missing_event_file_is_a_usage_error():
    """A file that cannot be read is reported by name, exit 2."""
    done = run("--offline", "--event-file", "events/nope.json")
    assert done.returncode == 2 and b"events/nope.json" in done.stderr
