"""The fast subset: `python -m pytest -m "not slow"` leaves out the tests that start processes, run the
real SDK over the wire, soak or fuzz (each takes seconds; together most of the suite's time).

Loaded as a plugin from pyproject.toml (`-p tests.speed`). Slow by folder: every test under SLOW_FOLDERS
(the CLI in fresh processes, the wire tests, FC instances as separate processes, the reliability suite).
Slow by file: any other file that starts processes says so itself, at its top:

    pytestmark = pytest.mark.slow  # why, in a few words

Starting a process is what makes a test slow here (a fresh interpreter that imports the SDK costs a second
or more on 2 cores), so this is not kept by memory: in every run, a test not marked slow that starts a
process fails and names this file. The few that start one short interpreter on purpose, because a fresh
`sys.modules` is what they check, say so with `pytestmark = pytest.mark.spawns_but_fast`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SLOW_FOLDERS = (
    "tests/local/",  # a fresh interpreter per CLI run
    "tests/wire/",  # the real SDK against the stand-in, with slow and hung replies
    "tests/instances/",  # separate processes as FC instances, against the stand-ins
    "tests/reliability/",  # fuzzing, soaks, fault scripts over the wire, secret scans
)

_SPAWNING_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.system"})
_spawned: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event in _SPAWNING_EVENTS and not _platform_probe(event, args):
        _spawned.append(event)


def _platform_probe(event: str, args: tuple) -> bool:
    """`uname -p`, which the standard library's platform module runs once per process, for whichever
    test first builds oss2's User-Agent: not a process the test starts, and it takes milliseconds."""
    if event != "subprocess.Popen" or len(args) < 2:
        return False
    argv = args[1] if isinstance(args[1], list | tuple) else [args[1]]
    return bool(argv) and os.path.basename(os.fsdecode(argv[0])) == "uname"


def _where(item: pytest.Item) -> str:
    return Path(str(item.path)).resolve().relative_to(ROOT).as_posix()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", 'slow: left out of the fast subset (python -m pytest -m "not slow")')
    config.addinivalue_line(
        "markers", "spawns_but_fast: starts one short interpreter on purpose, yet stays in the fast subset"
    )
    sys.addaudithook(_audit)  # cannot be removed; it only appends to a list


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _where(item).startswith(SLOW_FOLDERS):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    _spawned.clear()  # what the setup starts (a fixture's process) counts with the test's own
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    outcome = yield
    exempt = item.get_closest_marker("slow") or item.get_closest_marker("spawns_but_fast")
    if _spawned and not exempt:
        pytest.fail(
            f"{item.nodeid} starts a process ({_spawned[0]}) but is in the fast subset: put "
            "`pytestmark = pytest.mark.slow` at the top of its file (tests/speed.py)",
            pytrace=False,
        )
    return outcome
