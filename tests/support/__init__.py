"""Builders and helpers shared by test files (no tests here): a test imports from tests.support, never from
another test file. `ROOT` is the repository, wherever the importing file sits."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
