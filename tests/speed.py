"""The fast subset: `python -m pytest -m "not slow"` leaves out the files below, which start processes,
run the real SDK over the wire, soak or fuzz (each takes seconds; together most of the suite's time).

Loaded as a plugin from pyproject.toml (`-p tests.speed`), so the marker is set in one place and the test
files stay as they are. A new file that spawns processes or runs for more than a second or so belongs here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SLOW = (
    "tests/local/test_cli.py",  # a fresh interpreter per CLI run
    "tests/local/test_cli_people.py",
    "tests/reliability/",  # fuzzing, soaks, fault scripts over the wire, secret scans
    "tests/test_wire.py",  # the real SDK against the stand-in, with slow and hung replies
    "tests/test_package.py",  # pip builds the deployed package
    "tests/test_instances.py",  # separate processes as FC instances
    "tests/test_store_deadline.py",  # real OSS requests bounded by real deadlines
    "tests/test_registry.py",  # pip config and a pytest run in a subprocess
    "tests/test_preview.py",  # the Serverless Devs CLI renders s.yaml
    "tests/test_speed.py",  # collects the suite twice in subprocesses
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", 'slow: left out of the fast subset (python -m pytest -m "not slow")')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
        if where.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
