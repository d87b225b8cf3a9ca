"""Separate processes as FC instances (tests/support/instances.py). Slow by folder (tests/speed.py)."""

from __future__ import annotations

from tests.deliver.conftest import fresh_versioning  # noqa: F401  # autouse: each test a new instance here too
