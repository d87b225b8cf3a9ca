"""The CLI as a command-line tool: Ctrl-C, an answer shown as it streams, the summary line, --model's
checks, and questions piped in without '-'."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

from handler.local.standin import EMULATED, hang, stream
from tests.support import ROOT
from tests.support.processes import fresh_env
from tests.support.processes import run_cli as run

SAMPLE_PNG = str(ROOT / "handler" / "local" / "sample.png")


def _wait_for_request(standin, seconds: float = 20.0) -> None:
    until = time.monotonic() + seconds
    while not standin.requests and time.monotonic() < until:
        time.sleep(0.02)
    assert standin.requests, "the CLI never asked the stand-in"


def test_ctrl_c_says_interrupted_and_exits_130(standin):
    """A real SIGINT while the answer is awaited: one line on stderr, exit status 130, no traceback."""
    standin.script(hang(30))
    child = subprocess.Popen(
        [sys.executable, "-m", "handler", "--text", "如何做西红柿炖牛腩?"],
        cwd=ROOT,
        env=fresh_env(standin),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_request(standin)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)
    finally:
        child.kill()
    lines = err.decode().splitlines()
    assert child.returncode == 130, err.decode()
    assert len(lines) <= 2 and "interrupted" in lines[-1] and "Traceback" not in err.decode(), lines
    assert out == b""


def test_text_on_a_terminal_shows_the_answer_as_it_streams(standin):
    """The first words are on the terminal while the rest of the answer is still coming."""
    standin.script(stream("第一段。" * 5 + "最后一段。", chunks=6, every=0.6))
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "handler", "--quiet", "--text", "你好"],
        cwd=ROOT,
        env=fresh_env(standin),
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    seen = b""
    try:
        until = time.monotonic() + 20
        while "第一段".encode() not in seen and time.monotonic() < until:
            if select.select([leader], [], [], 0.1)[0]:
                seen += os.read(leader, 4096)
        first = time.monotonic()
        assert "第一段".encode() in seen, "nothing shown"
        child.wait(timeout=20)
        # The stream takes 6 x 0.6 s: the first words came long before the end, not with it.
        assert time.monotonic() - first > 1.5, "the answer was shown only once it was whole"
        while select.select([leader], [], [], 0.2)[0]:
            try:
                seen += os.read(leader, 4096)
            except OSError:
                break
    finally:
        child.kill()
        os.close(leader)
    assert child.returncode == 0
    assert seen.decode().count("最后一段") == 1  # shown once, not again at the end


def test_text_ends_with_a_summary_line_on_stderr():
    """--text: model, tokens, cost and seconds in one line on stderr; stdout keeps only the answer."""
    done = run("--offline", "--text", "你好")
    assert done.returncode == 0, done.stderr
    last = done.stderr.decode().rstrip("\n").splitlines()[-1]
    assert last.startswith("qwen-turbo") and "tokens" in last and "CNY" in last and last.endswith(" s"), last
    assert done.stdout.decode().startswith(EMULATED)


def test_a_model_s_yaml_does_not_allow_runs_locally_with_a_notice():
    done = run("--offline", "--text", "--model", "qwen-long-latest", "你好")
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    notice = [line for line in err.splitlines() if "QWEN_ALLOWED_MODELS" in line]
    assert len(notice) == 1 and "qwen-long-latest" in notice[0] and "refuse" in notice[0], err
    assert "InvalidConfig" not in err


def test_a_typo_of_a_known_model_stops_with_did_you_mean():
    done = run("--offline", "--model", "qwen-trubo", "你好")
    assert done.returncode == 2 and done.stdout == b""
    assert "did you mean qwen-turbo?" in done.stderr.decode()


def test_a_model_that_cannot_see_the_image_says_so():
    done = run("--offline", "--model", "qwen-plus", "--image", SAMPLE_PNG, "what is this?")
    assert done.returncode == 2 and done.stdout == b""
    err = done.stderr.decode()
    assert "qwen-plus" in err and "image" in err and "QWEN_VISION_MODEL" in err
    seen = run("--offline", "--quiet", "--model", "qwen3-vl-plus", "--image", SAMPLE_PNG, "what is this?")
    assert seen.returncode == 0, seen.stderr


def test_a_question_piped_in_needs_no_dash():
    done = run("--offline", "--quiet", "--text", stdin="你好".encode())
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith(EMULATED) and "你好" in done.stdout.decode()
