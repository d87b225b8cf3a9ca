"""What `import index` leaves out: code an event does not need is imported at its first use.

At a small spec every millisecond of CPU at start is multiplied (0.05 vCPU: 20 x), so the handler's
own import stays small (its figure is in bench.run). Not timed here: each check names the modules a
fresh interpreter has loaded (sys.modules), after `import index` and after a plain question.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.events import oss_record
from tests.support.processes import fresh_env

pytestmark = pytest.mark.spawns_but_fast  # a fresh sys.modules is what it checks

# Only events that may be a trigger envelope, or questions with images, need these.
ENVELOPES_AND_IMAGES = ("handler.events.triggers", "handler.events.images")
# Only OSS events, records with a delivery id or an answer bucket need these.
EXACTLY_ONCE = ("handler.deliver.once", "handler.deliver.oss_files")
# The SDKs: dashscope is imported by the initializer, oss2 by the first OSS request.
SDKS = ("dashscope", "oss2", "requests")
# Code generated at import: `dataclasses` compiles each class's methods with exec (handler/values.py
# says why the handler's value objects do without it); `inspect` came with it.
GENERATES_CODE = ("dataclasses", "inspect")

SCRIPT = """
import json, sys
from types import SimpleNamespace
import index
loaded = {"import": sorted(sys.modules)}
context = SimpleNamespace(request_id="fc-1", function=SimpleNamespace(timeout=30), credentials=None)
for name, event in json.loads(sys.argv[1]):
    returned = json.loads(index.handler(event.encode(), context))
    loaded[name] = {"modules": sorted(sys.modules), "returned": returned}
print(json.dumps(loaded))
"""

OSS_EVENT = {"events": [oss_record("questions/q.txt", bucket="not-allowed-bucket", etag="abc")]}


def _fresh(standin: Any, *events: tuple[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(events)],
        cwd=ROOT,
        env=fresh_env(standin),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_import_index_leaves_out_what_an_event_may_not_need(standin: Any) -> None:
    loaded = set(_fresh(standin)["import"])
    assert "handler.app" in loaded  # the check sees the handler's modules at all
    assert [m for m in (*EXACTLY_ONCE, *ENVELOPES_AND_IMAGES, *SDKS, *GENERATES_CODE) if m in loaded] == []
    assert [m for m in loaded if m.startswith("handler.local")] == []


def test_a_plain_question_never_imports_the_oss_and_exactly_once_code(standin: Any) -> None:
    request = json.dumps({"prompt": "你好", "parameters": {"temperature": 0.5}}, ensure_ascii=False)
    seen = _fresh(standin, ("plain", "如何做西红柿炖牛腩?"), ("request", request), ("oss", json.dumps(OSS_EVENT)))
    plain = seen["plain"]
    assert plain["returned"]["status_code"] == 200
    assert "dashscope" in plain["modules"]  # answered through the real SDK
    assert [m for m in (*EXACTLY_ONCE, *ENVELOPES_AND_IMAGES) if m in plain["modules"]] == []
    assert seen["request"]["returned"]["status_code"] == 200
    assert [m for m in (*EXACTLY_ONCE, *ENVELOPES_AND_IMAGES) if m in seen["request"]["modules"]] == []
    # The first OSS record imports the OSS question files on demand, and is answered as before.
    oss = seen["oss"]
    assert "handler.deliver.oss_files" in oss["modules"] and "handler.events.triggers" in oss["modules"]
    assert [r["code"] for r in oss["returned"]] == ["BucketNotAllowed"]


def test_the_deployed_package_carries_every_handler_module_but_the_local_tools() -> None:
    """.fcignore's top-level names (the sample `events/`) never drop a stage such as handler/events."""
    from deploy import package

    shipped = {path.as_posix() for path in package.shipped(ROOT)}
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "handler").rglob("*.py")
        if "local" not in path.relative_to(ROOT).parts and "__pycache__" not in path.parts
    }
    assert "handler/events/decode.py" in modules
    assert sorted(modules - shipped) == []
    assert "events/plain.txt" not in shipped and "index.py" in shipped
