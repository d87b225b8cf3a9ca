"""The fast subset named in the README (`python -m pytest -m "not slow"`) leaves out exactly the slow tests of
tests/speed.py's rule: every test under SLOW_FOLDERS, and every test of a file that marks itself slow."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.speed import SLOW_FOLDERS

pytestmark = pytest.mark.slow  # collects the suite twice in subprocesses

# `pytestmark = pytest.mark.slow` or a list holding it, at the top level of a test file.
MARKS_ITSELF_SLOW = re.compile(r"^pytestmark = (\[[^\]]*)?\bpytest\.mark\.slow\b", re.M)


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


def marks_itself_slow(path: str) -> bool:
    return bool(MARKS_ITSELF_SLOW.search((ROOT / path).read_text()))


def slow(test: str) -> bool:
    path = test.split("::", 1)[0]
    return path.startswith(SLOW_FOLDERS) or marks_itself_slow(path)


def test_the_fast_subset_leaves_out_the_slow_files_and_keeps_the_rest():
    everything, fast = collected(), collected("-m", "not slow")
    assert fast and not [test for test in fast if slow(test)]
    assert sorted(test for test in everything if not slow(test)) == sorted(fast)
    for folder in SLOW_FOLDERS:
        assert any(test.startswith(folder) for test in everything), f"{folder} holds no test"
    files_marked = {test.split("::", 1)[0] for test in everything if not test.startswith(SLOW_FOLDERS) and slow(test)}
    assert "tests/project/test_package.py" in files_marked  # a file outside the folders marks itself
    assert any(test.startswith("tests/events/test_decode.py::") for test in fast)
