"""Every bench entry point answers --help and -h with its usage and runs nothing; a mistyped option is a
usage error (exit 2), not the start of a minutes-long run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow  # each bench entry point's --help in a fresh interpreter

# `python -m bench.X` for every module of bench/ with a __main__ block or a main(): found, not listed,
# so a new entry point is checked without anyone remembering to add it here.
ENTRY_POINTS = sorted(
    path.stem
    for path in (ROOT / "bench").glob("*.py")
    if re.search(r"^if __name__ == .__main__.:|^def main\(", path.read_text(), re.M)
)


def test_the_entry_points_are_found():
    assert {"run", "spec", "stream", "batch", "tokens", "reconnect", "probe"} <= set(ENTRY_POINTS)


def bench(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    # A generous bound: --help returns in well under a second; a run that started would take minutes.
    return subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_help_prints_the_usage_and_runs_nothing(name):
    for flag in ("--help", "-h"):
        done = bench(name, flag)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: "), done.stdout
        assert done.stderr == ""
    mistyped = bench(name, "--no-such-option")
    assert mistyped.returncode == 2, mistyped.stdout + mistyped.stderr
    assert "usage: " in mistyped.stderr and mistyped.stdout == ""
