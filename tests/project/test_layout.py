"""The folder list reads as the flow, and no import runs back up it.

Stages, in order: handler/events (bytes -> records), handler/ask (record -> Result), handler/deliver
(Result -> returned, stored, written). A stage imports the shared core and the stages before it,
never one after it. The core (errors, result, logs, redact, fc_context, internal, values, outcome) imports
no stage; config reads the model table and the parameter rules; app composes everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

HANDLER = ROOT / "handler"
STAGES = ["events", "ask", "deliver"]
CORE = {"errors", "result", "logs", "redact", "fc_context", "internal", "values", "outcome"}
# config reads QWEN_MODEL_TABLE and QWEN_PARAMETERS with the stages' own parsers.
CONFIG_MAY = {"handler.ask.models", "handler.events.parameters"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("handler"):
            # `from handler.ask import models` imports handler.ask.models; `from handler.ask.models
            # import X` imports handler.ask.models: a stage package itself has nothing to import.
            package = node.module.count(".") == 1 and node.module.split(".")[1] in STAGES
            if package:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("handler"))
    return found


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_no_stage_imports_a_later_stage():
    wrong = []
    for stage in STAGES:
        for path in (HANDLER / stage).rglob("*.py"):
            for module in _imports(path):
                other = _stage(module)
                if other is not None and STAGES.index(other) > STAGES.index(stage):
                    wrong.append(f"{path.relative_to(HANDLER)} imports {module}")
                if module in ("handler.app", "handler.local") or module.startswith("handler.local."):
                    wrong.append(f"{path.relative_to(HANDLER)} imports {module}")
    assert wrong == []


def test_the_core_imports_no_stage():
    wrong = []
    for name in sorted(CORE | {"config"}):
        allowed = CONFIG_MAY if name == "config" else set()
        for module in _imports(HANDLER / f"{name}.py"):
            if _stage(module) and module not in allowed and module.rsplit(".", 1)[0] not in allowed:
                wrong.append(f"{name}.py imports {module}")
    assert wrong == []


def test_the_top_level_is_the_core_and_the_stages():
    top = {p.stem for p in HANDLER.glob("*.py")} - {"__init__", "__main__"}
    assert top == CORE | {"config", "app"}
    folders = {p.name for p in HANDLER.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(STAGES) | {"local"}
