"""The package test skips, saying why, where no package registry is reachable; CI requires one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.support import registry

pytestmark = pytest.mark.slow  # pip config and a pytest run in a subprocess

NOWHERE = {"PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_INDEX_URL": "http://127.0.0.1:9/simple/"}


def no_registry(monkeypatch) -> None:
    monkeypatch.delenv(registry.REQUIRED, raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    for name, value in NOWHERE.items():
        monkeypatch.setenv(name, value)


def test_pip_sources_follow_pips_own_configuration(monkeypatch):
    no_registry(monkeypatch)
    assert registry.pip_sources() == ["http://127.0.0.1:9/simple/"]
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///nonexistent/simple")
    assert registry.pip_sources() == ["http://127.0.0.1:9/simple/", "file:///nonexistent/simple"]
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    assert registry.pip_sources() == ["file:///nonexistent/simple"]


def test_no_reachable_registry_is_a_reason_to_skip_unless_ci_requires_one(monkeypatch, tmp_path):
    no_registry(monkeypatch)
    reason = registry.why_unreachable()
    assert reason and "no package registry reachable" in reason and "127.0.0.1:9" in reason
    monkeypatch.setenv(registry.REQUIRED, "1")
    assert registry.why_unreachable() is None  # CI: the test runs, and fails if pip cannot build
    monkeypatch.delenv(registry.REQUIRED)
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))  # a local wheel folder is a registry too
    assert registry.why_unreachable() is None


def test_the_package_test_skips_with_its_reason_offline():
    env = {k: v for k, v in os.environ.items() if k not in (registry.REQUIRED, "PIP_EXTRA_INDEX_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "tests/project/test_package.py"],
        cwd=ROOT,
        env={**env, **NOWHERE},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 skipped" in done.stdout and "no package registry reachable" in done.stdout, done.stdout[-2000:]
