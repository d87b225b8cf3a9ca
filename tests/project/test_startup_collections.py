"""Importing the handler and the SDK runs no garbage collection (index.py, handler/app.py's _import_sdk).

A fresh interpreter each time, with bytecode as FC runs the package; slow (it imports the SDK twice),
so outside the fast subset.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.processes import fresh_env

pytestmark = pytest.mark.slow  # imports the SDK in fresh interpreters

COLLECTIONS = """
import gc, json, os, sys
from types import SimpleNamespace
ours = (os.sep + "handler" + os.sep, os.sep + "dashscope" + os.sep)
during = []  # (generation, the innermost of our frames) of every collection that ran inside our code

def seen(phase, info):
    frame = sys._getframe(1)
    while frame is not None and phase == "start":
        name = frame.f_code.co_filename
        if name.endswith("index.py") or any(part in name for part in ours):
            during.append((info["generation"], name, frame.f_lineno))
            return
        frame = frame.f_back

gc.callbacks.append(seen)
import index
after_import = list(during)
index.initialize(SimpleNamespace(request_id="init", function=SimpleNamespace(timeout=30), credentials=None))
print(json.dumps({"import": after_import, "init": during[len(after_import):], "enabled": gc.isenabled(),
                  "frozen": gc.get_freeze_count(), "sdk": "dashscope" in sys.modules}))
"""


def test_importing_the_handler_and_the_sdk_runs_no_garbage_collection(standin: Any, tmp_path: Any) -> None:
    """What both imports create lives as long as the instance: collecting meanwhile frees nothing.
    The collector is on again afterwards, with the imported objects frozen out of its generations."""
    env = fresh_env(standin)
    # With bytecode, as FC runs the package: compiling index.py itself would allocate (and collect)
    # before its first line runs. The first run writes the bytecode, the second is measured.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path)
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", COLLECTIONS],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["sdk"] and seen["enabled"]
    assert seen["import"] == [] and seen["init"] == []
    assert seen["frozen"] > 10_000  # the SDK's objects
