"""The package `s deploy` ships, built from requirements-fc.txt with --no-deps, imports and answers on its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handler.local.standin import EMULATED
from tests.conftest import API_KEY, ROOT
from tests.support.registry import why_unreachable

pytestmark = pytest.mark.slow  # pip builds the deployed package

# Run in the function's code directory with only the package on the path, as FC runs /code with
# PYTHONPATH=/code/python; -S keeps every site-packages directory out.
PROBE = """
import json, sys, sysconfig
from types import SimpleNamespace

import index

context = SimpleNamespace(request_id="fc-package", function=SimpleNamespace(timeout=30), region="cn-hangzhou")
index.initialize(context)
result = json.loads(index.handler("如何做西红柿炖牛腩?".encode(), context))
allowed = (sys.argv[1], sys.argv[2], sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"))
files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
print(json.dumps({
    "result": result,
    "outside": sorted(name for name, file in files.items() if file and not file.startswith(allowed)),
    "files": {name: files.get(name) for name in ("dashscope", "requests", "urllib3", "certifi", "aiohttp")},
}))
"""


def build(package: Path) -> None:
    """pip install --no-deps --target, as s.yaml's pre-deploy step does, for the running Python."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--target",
            str(package),
            "-r",
            str(ROOT / "requirements-fc.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def code_directory(code: Path) -> None:
    """What .fcignore lets up to FC besides the package: index.py and handler/ without the local tools."""
    code.mkdir()
    shutil.copy2(ROOT / "index.py", code)
    shutil.copytree(ROOT / "handler", code / "handler", ignore=shutil.ignore_patterns("__pycache__", "local"))


def test_the_deployed_package_answers_a_question_from_itself_alone(tmp_path, standin):
    """Only the built package, index.py and handler/ on the path: the handler imports and answers via the SDK."""
    reason = why_unreachable()
    if reason:
        pytest.skip(reason)
    package, code = tmp_path / "python", tmp_path / "code"
    build(package)
    code_directory(code)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(package),
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
    }
    done = subprocess.run(
        [sys.executable, "-S", "-c", PROBE, str(code), str(package)],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["result"]["status_code"] == 200, seen["result"]
    assert EMULATED in json.dumps(seen["result"]["output"], ensure_ascii=False), seen["result"]
    assert len(standin.requests) == 1 and standin.requests[0].authorized
    assert seen["outside"] == [], seen["outside"]  # nothing imported from beyond the package and the stdlib
    for name, file in seen["files"].items():
        assert file and file.startswith(str(package)), (name, file)
