"""The deployed function's environment for `python -m handler`: s.yaml's environmentVariables.

A local run then allows the models, and uses the settings, that `s deploy` gives the function;
a variable already set in the shell wins. Values that are Serverless Devs expressions (`${...}`,
such as the API key read from the deployer's environment) are left to the shell, and PYTHONPATH
is FC's (/code/python), not this machine's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]  # the checkout, for a run from it or an editable install
S_YAML = PROJECT / "s.yaml"
_SKIPPED = frozenset({"PYTHONPATH"})


def project_file(name: str) -> Path | None:
    """`name` (s.yaml, events/...) in the current directory or one above it, else in the project, so
    `qwen-fc` run from anywhere finds the project's; None when neither has it."""
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / name).exists():
            return folder / name
    return PROJECT / name if (PROJECT / name).exists() else None


def variables(path: Path | None = None) -> dict[str, str]:
    """Every literal environment variable the s.yaml resources set (empty when there is no s.yaml)."""
    path = path or project_file("s.yaml")
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    import yaml

    document: Any = yaml.safe_load(text) or {}
    found: dict[str, str] = {}
    resources = document.get("resources") if isinstance(document, dict) else None
    for resource in (resources or {}).values():
        props = resource.get("props") if isinstance(resource, dict) else None
        env = props.get("environmentVariables") if isinstance(props, dict) else None
        for name, value in (env or {}).items():
            text_value = "" if value is None else str(value)
            if name in _SKIPPED or "${" in text_value:
                continue
            found[str(name)] = text_value
    return found


def apply(environ: MutableMapping[str, str], given: Mapping[str, str]) -> list[str]:
    """Set each of `given` that `environ` lacks; the names set, for the log."""
    added = [name for name in given if name not in environ]
    for name in added:
        environ[name] = given[name]
    return added


def setting(name: str, attribute: str) -> Any:
    """The handler's own reading of one variable of this environment (its checks and normalisation), so the
    CLI never reads it another way; raises the handler's InvalidConfig when the handler would refuse it."""
    from handler.config import Settings

    given = {name: os.environ[name]} if name in os.environ else {}
    return getattr(Settings.from_env({"DASHSCOPE_API_KEY": "sk-unused-for-one-setting", **given}), attribute)
