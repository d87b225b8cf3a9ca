"""The fast subset: `python -m pytest -m "not slow"` leaves out the files below, which start processes,
run the real SDK over the wire, soak or fuzz (each takes seconds; together most of the suite's time).

Loaded as a plugin from pyproject.toml (`-p tests.speed`), so the marker is set in one place and the test
files stay as they are. Starting a process is what makes a test slow here (a fresh interpreter that
imports the SDK costs a second or more on 2 cores), so the list is not kept by memory: in every run, a
test outside SLOW that starts a process fails and names this file. `SPAWNS_BUT_FAST` holds the few that
start one short interpreter on purpose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SLOW = (
    "tests/local/test_cli.py",  # a fresh interpreter per CLI run
    "tests/local/test_cli_people.py",
    "tests/local/test_cli_models.py",
    "tests/local/test_token_cli.py",
    "tests/reliability/",  # fuzzing, soaks, fault scripts over the wire, secret scans
    "tests/deliver/test_store_reserve_instances.py",  # separate processes as FC instances, OSS stand-in
    "tests/deliver/test_superseded_instances.py",
    "tests/deliver/test_takeover_instances.py",
    "tests/deliver/test_versioning_instances.py",
    "tests/deliver/test_empty_stream.py",
    "tests/deliver/test_gzip_bomb.py",
    "tests/deliver/test_internal_error.py",
    "tests/deliver/test_idle_connections.py",
    "tests/deliver/test_redact_rotation.py",
    "tests/test_wire.py",  # the real SDK against the stand-in, with slow and hung replies
    "tests/test_wire_multimodal.py",
    "tests/test_package.py",  # pip builds the deployed package
    "tests/test_build.py",
    "tests/test_instances.py",  # separate processes as FC instances
    "tests/test_images_instances.py",
    "tests/test_account_failures.py",
    "tests/test_push_formats.py",
    "tests/test_offline_oss.py",  # the CLI's --offline runs
    "tests/test_store_deadline.py",  # real OSS requests bounded by real deadlines
    "tests/test_registry.py",  # pip config and a pytest run in a subprocess
    "tests/test_preview.py",  # the Serverless Devs CLI renders s.yaml
    "tests/test_speed.py",  # collects the suite twice in subprocesses
    "tests/test_startup_collections.py",  # imports the SDK in fresh interpreters
    "tests/test_bench_cli.py",  # each bench entry point's --help in a fresh interpreter
)

# Fast tests that start one short interpreter because a fresh `sys.modules` is what they check.
SPAWNS_BUT_FAST = (
    "tests/test_import_cost.py",
    "tests/test_tokens.py",
    "tests/test_answer_store_secrets.py",
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
    sys.addaudithook(_audit)  # cannot be removed; it only appends to a list


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _where(item).startswith(SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    _spawned.clear()  # what the setup starts (a fixture's process) counts with the test's own
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    outcome = yield
    if _spawned and not _where(item).startswith(SLOW + SPAWNS_BUT_FAST):
        pytest.fail(
            f"{item.nodeid} starts a process ({_spawned[0]}) but is in the fast subset: "
            "add its file to SLOW in tests/speed.py",
            pytrace=False,
        )
    return outcome
