"""`python -m handler` as a new user runs it: a fresh process, offline, no key needed."""

from __future__ import annotations

import json
import socket

import pytest

from tests.conftest import ROOT
from tests.support.processes import run_cli as run


def test_offline_answers_without_a_key():
    """--offline answers from the bundled stand-in, says it is emulated, logs a line and exits 0."""
    done = run("--offline", "如何做西红柿炖牛腩?")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    content = result["output"]["choices"][0]["message"]["content"]
    assert "emulated" in content and "如何做西红柿炖牛腩?" in content
    log = json.loads(done.stderr.decode().splitlines()[-1].split(" ", 1)[1])
    assert log["event"] == "question" and log["status_code"] == 200


# oss-binary.json is refused on purpose (tests/local/test_cli_people.py); oss.json's .png is answered as an image.
@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for p in (ROOT / "events").iterdir()
        if p.name not in ("oss-binary.json", "README.md") and p.suffix != ".jsonl"  # a .jsonl is a file, not an event
    ),
)
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
    done = run("--offline", "--quiet", "-", stdin=b'{"prompt": 5}')
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == "InvalidRequest"


@pytest.mark.parametrize(("args", "stdin"), [(("-",), b"   \n"), (("-",), b"null"), (("",), None)])
def test_an_empty_question_is_a_usage_error_without_the_s_invoke_hint(args, stdin):
    """An empty question on the command line says how to give one here, not with `s invoke -e`."""
    done = run("--offline", *args, stdin=stdin)
    assert done.returncode == 2 and done.stdout == b""
    assert b"the question is empty" in done.stderr and b"s invoke" not in done.stderr


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
    """A missing file is reported by name as missing, in one line, exit 2."""
    done = run("--offline", "--event-file", "events/nope.json")
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == ["--event-file events/nope.json: no such file"]


def test_help_shows_each_example_on_its_own_line():
    """--help lists the examples one per line, each runnable as shown."""
    done = run("--help")
    lines = [line.strip() for line in done.stdout.decode().splitlines()]
    for example in (
        'python -m handler "如何做西红柿炖牛腩?"',
        "python -m handler --offline --event-file events/question.json",
        "echo 你好 | python -m handler --offline",
        "python -m handler tokens --help",
    ):
        assert example in lines


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable() -> dict[str, str]:
    return {
        "DASHSCOPE_API_KEY": "sk-cli-test-0000",
        "DASHSCOPE_HTTP_BASE_URL": f"http://127.0.0.1:{closed_port()}/api/v1",
    }


def test_no_network_is_one_clear_line():
    """With a key but DashScope unreachable, --quiet prints exactly one line: what failed and what to try."""
    done = run("--quiet", "你好", env=unreachable())
    assert done.returncode == 1 and done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("DashScope could not be reached at http://127.0.0.1:")
    assert "--offline" in lines[0] and "DASHSCOPE_HTTP_BASE_URL" in lines[0]


def test_no_network_shows_the_handlers_line_but_no_sdk_traceback():
    """Without --quiet the handler's JSON line precedes that line; the SDK's tracebacks need --verbose."""
    done = run("你好", env=unreachable())
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1 and "Traceback" not in done.stderr.decode()
    assert lines[-1].startswith("DashScope could not be reached")
    assert all(json.loads(line.split(" ", 1)[1])["event"] for line in lines[:-1])
    verbose = run("--verbose", "你好", env=unreachable())
    assert b"Traceback (most recent call last):\n" in verbose.stderr  # as the library wrote it, not a JSON field


def test_quiet_hides_error_log_lines_too():
    """--quiet hides every log line, ERROR ones included (a bad configuration logs one)."""
    done = run("--quiet", "你好", env={"DASHSCOPE_API_KEY": "sk-cli-test-0000", "QWEN_MODE": "chat"})
    assert done.returncode == 1 and json.loads(done.stdout)["code"] == "InvalidConfig"
    assert done.stderr == b""


def test_a_bad_endpoint_is_reported_at_once_not_retried():
    """DASHSCOPE_HTTP_BASE_URL=notaurl is a 500 InvalidConfig naming it, not three attempts and a raise."""
    done = run("--quiet", "hi", env={"DASHSCOPE_API_KEY": "sk-cli-test-0000", "DASHSCOPE_HTTP_BASE_URL": "notaurl"})
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["code"] == "InvalidConfig"
    assert result["message"].startswith("DASHSCOPE_HTTP_BASE_URL must be an http(s) URL")


def test_the_unreachable_line_never_shows_a_password_in_the_endpoint():
    """A user:password in DASHSCOPE_HTTP_BASE_URL is left out of the line that names the endpoint."""
    env = {
        "DASHSCOPE_API_KEY": "sk-cli-test-0000",
        "DASHSCOPE_HTTP_BASE_URL": f"http://user:pw-SECRET-1@127.0.0.1:{closed_port()}/api/v1",
    }
    done = run("--quiet", "你好", env=env)
    assert done.returncode == 1 and b"could not be reached at http://127.0.0.1:" in done.stderr
    assert b"pw-SECRET-1" not in done.stderr


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ConnectionError", "DashScope could not be reached at"),
        ("ConnectTimeout", "DashScope could not be reached at"),
        ("RequestTimeout", "began no answer in time"),
    ],
)
def test_each_network_failure_gets_its_own_clear_line(code, expected, monkeypatch):
    """Unreachable (refused or a connect that hangs) and silent-after-connecting are told apart, in one line."""
    from handler.errors import TransientUpstreamError
    from handler.local.cli import _failure

    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", "http://127.0.0.1:9/api/v1")
    line = _failure(TransientUpstreamError("x", code=code, request_id="", attempts=3))
    assert line.startswith(expected) or expected in line
    assert "\n" not in line and "the invocation failed" not in line
