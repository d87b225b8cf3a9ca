"""An unexpected exception leaves one masked ERROR record (internal_error: type, module, traceback) and a
result message naming the exception's text; the CLI's --verbose prints the traceback. Reproduced as the
issue did: `python -m handler --offline hi` where the SDK cannot be imported (a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from handler.internal import MAX_TEXT, shown
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # fresh interpreters

CHILD = textwrap.dedent(
    """
    import runpy, sys

    class NoSdk:  # as a Python without the dashscope package installed
        def find_spec(self, name, path=None, target=None):
            if name == "dashscope" or name.startswith("dashscope."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoSdk())
    sys.argv = ["handler", *sys.argv[1:]]
    runpy.run_module("handler", run_name="__main__")
    """
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("verbose", [False, True])
def test_a_missing_module_is_named_and_logged_with_its_traceback(verbose):
    done = cli("--offline", *(["--verbose"] if verbose else []), "hi")
    result = json.loads(done.stdout)
    assert result["status_code"] == 500 and result["code"] == "InternalError"
    assert "ModuleNotFoundError: No module named 'dashscope'" in result["message"], result["message"]
    lines = [json.loads(line[len("ERROR ") :]) for line in done.stderr.splitlines() if line.startswith("ERROR {")]
    (record,) = [line for line in lines if line["event"] == "internal_error"]
    assert record["error"] == "ModuleNotFoundError" and record["missing_module"] == "dashscope"
    assert record["raised_in"] and record["stage"] == "ask"
    if verbose:
        assert "Traceback (most recent call last)" in done.stderr and "handler/ask/transport.py" in done.stderr
    else:
        assert record["traceback"] == "run with --verbose to print it"
        assert "Traceback (most recent call last)" not in done.stderr


def test_the_cli_help_says_verbose_prints_the_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "handler", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "traceback of an internal_error" in " ".join(done.stdout.split())


def test_an_exceptions_text_is_bounded_and_escaped():
    text = shown("bad\x00line\nbreak " + "x" * 1000)
    assert "\\x00" in text and "\\n" in text and "\n" not in text
    assert len(text) == MAX_TEXT + 3
