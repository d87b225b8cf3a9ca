"""The folder list reads as the flow, and no import runs back up it.

Stages, in order: handler/events (bytes -> records), handler/ask (record -> Result), handler/deliver
(Result -> returned, stored, written). A stage imports the shared core and the stages before it,
never one after it. The core (errors, result, logs, redact, fc_context, internal, values, outcome) imports
no stage; config reads the model table and the parameter rules; app composes everything.
Under tests/, builders and fixtures are shared through tests/support/, so no file imports a test module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

HANDLER = ROOT / "handler"
TESTS = ROOT / "tests"
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


def _is_test_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" and any(part.startswith("test_") for part in parts[1:])


def _imported_test_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) for each import of a test module (tests.<folder>.test_*) in `source`, a module of `package`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # `from .test_x import y` inside tests/wire is tests.wire.test_x
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            if _is_test_module(base):
                found.append((node.lineno, base))
            else:
                named = (f"{base}.{alias.name}" for alias in node.names)
                found += [(node.lineno, name) for name in named if _is_test_module(name)]
    return found


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from tests.wire.test_documents_file_route import BUCKET, pdf", "tests.wire.test_documents_file_route"),
        ("from tests.events import test_documents", "tests.events.test_documents"),
        ("import tests.wire.test_jsonl_submit as submit", "tests.wire.test_jsonl_submit"),
        ("from .test_documents_url_route import fc", "tests.wire.test_documents_url_route"),
        ("from . import test_jsonl_submit", "tests.wire.test_jsonl_submit"),
    ],
)
def test_each_form_of_importing_a_test_module_is_seen(source, module):
    assert _imported_test_modules(source, "tests.wire") == [(1, module)]


def test_support_conftest_and_handler_imports_are_not_test_modules():
    source = "from tests.support.documents_wire import pdf\nfrom tests.conftest import API_KEY\nimport handler.app\n"
    assert _imported_test_modules(source, "tests.wire") == []


def test_no_test_module_imports_another_test_module():
    """A shared builder or fixture lives in tests/support/, never in a test module another one imports."""
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 100  # the whole tree was read
    wrong = []
    for path in files:
        package = ".".join(path.relative_to(ROOT).parent.parts)
        for line, module in _imported_test_modules(path.read_text(), package):
            wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "share these through tests/support/ instead:\n" + "\n".join(wrong)
