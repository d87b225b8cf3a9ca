"""Fresh interpreters: the environment they start with, and `python -m handler` as a new user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from tests.conftest import API_KEY
from tests.support import ROOT


def fresh_env(standin: Any) -> dict[str, str]:
    """A fresh interpreter's environment: none of this shell's settings, the stand-in as DashScope."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "QWEN_", "ALIBABA_CLOUD_"))}
    return {**clean, "DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url, "FC_REGION": "cn-hangzhou"}


def run_cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m handler ARGS` in a fresh process from the repository, without DASHSCOPE_/QWEN_ settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "QWEN_"))}
    return subprocess.run(
        [sys.executable, "-m", "handler", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        env={**clean, **(env or {})},
        timeout=60,
    )
