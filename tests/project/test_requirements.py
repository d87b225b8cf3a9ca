"""A plain install (requirements.txt) brings every package the handler and its local tools import:
the README's first command runs the CLI from that install alone."""

from __future__ import annotations

import ast
import re
import sys

from tests.conftest import ROOT

# import name -> the distribution that provides it
# (requests and urllib3 come with dashscope and oss2, which both need them)
DISTRIBUTIONS = {"yaml": "pyyaml", "requests": "dashscope", "urllib3": "dashscope"}


def _imported_packages() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "index.py", *(ROOT / "handler").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("handler", "index")}


def test_requirements_txt_brings_every_imported_package():
    pinned = {
        re.split(r"[\[=<>]", line, maxsplit=1)[0].strip().lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    imported = _imported_packages()
    assert "yaml" in imported and "dashscope" in imported  # the scan sees the CLI's and the SDK's imports
    assert sorted(n for n in imported if DISTRIBUTIONS.get(n, n) not in pinned) == []
