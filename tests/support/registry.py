"""Whether pip can reach a package registry here: tests that build with pip skip, with the reason, when none is.

pip's own configuration says where it looks (index-url, default PyPI; extra-index-url; find-links, from
pip.conf and PIP_* variables alike, as `pip config list` shows them). A registry is reachable when one of
those answers: an http(s) index within a few seconds, a file:// index or a find-links folder that exists.
CI sets QWEN_TESTS_NEED_REGISTRY=1, so there an unreachable registry fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

PYPI = "https://pypi.org/simple/"
REQUIRED = "QWEN_TESTS_NEED_REGISTRY"


def pip_sources() -> list[str]:
    """Every index and find-links location pip would use, from `pip config list` (files and PIP_* variables)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False
    )
    # PIP_* variables win over pip.conf, as in pip itself; `pip config list` shows them as ":env:.<key>".
    settings: dict[str, tuple[bool, list[str]]] = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition("=")
        from_env, key = name.startswith(":env:"), name.rsplit(".", 1)[-1]
        if key in settings and settings[key][0] and not from_env:
            continue
        settings[key] = (from_env, " ".join(shlex.split(value)).split())
    index = settings.get("index-url", (False, []))[1]
    extra = settings.get("extra-index-url", (False, []))[1] + settings.get("find-links", (False, []))[1]
    no_index = [v.lower() for v in settings.get("no-index", (False, []))[1]][:1] in (["1"], ["true"], ["yes"], ["on"])
    return ([] if no_index else index or [PYPI]) + extra


def reachable(source: str, timeout: float = 5.0) -> bool:
    if source.startswith("file://"):
        return Path(source[len("file://") :]).exists()
    if "://" not in source:
        return Path(source).exists()  # a find-links folder
    try:
        with urllib.request.urlopen(source, timeout=timeout):  # the same proxy variables pip honours
            return True
    except Exception:  # noqa: BLE001  # unreachable for any reason: DNS, refused, TLS, 4xx/5xx
        return False


def why_unreachable() -> str | None:
    """None when pip can reach a registry (or CI requires one); else the reason to skip with."""
    if os.environ.get(REQUIRED, "").strip() in ("1", "true"):
        return None
    sources = pip_sources()
    if any(reachable(source) for source in sources):
        return None
    return f"no package registry reachable (pip would use {', '.join(sources)}); CI, which has one, runs this test"
