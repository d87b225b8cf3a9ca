"""The fast subset named in the README (`python -m pytest -m "not slow"`) leaves out exactly tests/speed.py's SLOW."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT
from tests.speed import SLOW


def collected(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", *args],  # one -q comes from pyproject.toml: ids listed
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_the_fast_subset_leaves_out_the_slow_files_and_keeps_the_rest():
    everything, fast = collected(), collected("-m", "not slow")
    assert fast and not [test for test in fast if test.startswith(SLOW)]
    assert sorted(test for test in everything if not test.startswith(SLOW)) == sorted(fast)
    for slow in SLOW:
        assert any(test.startswith(slow) for test in everything), f"{slow} names no test file"
    assert any(test.startswith("tests/test_decode.py::") for test in fast)
