"""s.yaml as the real Serverless Devs CLI renders it (`s preview`, offline) deploys what the code expects.

`.ci/run` installs the CLI into .ci/s (npm install --prefix .ci/s @serverless-devs/s); elsewhere an `s` on
PATH is used, and without either the test skips saying so (CI, which sets QWEN_TESTS_NEED_REGISTRY=1,
fails instead). The props checked are the ones a wrong edit of s.yaml would break silently: the entry
points, the runtime and the pinned Python it is built for, and the environment variables' names.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import index
from handler.config import VARIABLES, Settings
from tests.conftest import ROOT
from tests.support.registry import REQUIRED

pytestmark = pytest.mark.slow  # the Serverless Devs CLI renders s.yaml

CI_CLI = ROOT / ".ci" / "s" / "node_modules" / ".bin" / "s"
PREVIEW_KEY = "sk-preview-not-a-key"  # s.yaml reads the key from the deployer's environment
RUNTIMES = {"python3.10": "3.10", "python3.12": "3.12"}  # FC runtimes the package is built and tested for


def s_cli() -> Path | None:
    if CI_CLI.exists():
        return CI_CLI
    found = shutil.which("s")
    return Path(found) if found else None


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Any]:
    cli = s_cli()
    if cli is None:
        if os.environ.get(REQUIRED, "").strip() in ("1", "true"):
            pytest.fail(f"the Serverless Devs CLI is not at {CI_CLI}: .ci/run installs it before the tests")
        pytest.skip("the Serverless Devs CLI is not installed here (.ci/run installs it into .ci/s)")
    home = tmp_path_factory.mktemp("s-home")  # s keeps its config and logs under ~/.s
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "DASHSCOPE_API_KEY": PREVIEW_KEY}
    done = subprocess.run(
        [str(cli), "preview", "-t", "s.yaml", "-o", "json", "--silent"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    # s prints a warning line before the JSON when run as root.
    start = done.stdout.index("\n{") + 1 if not done.stdout.startswith("{") else 0
    return json.loads(done.stdout[start:])


def props(rendered: dict[str, Any]) -> dict[str, Any]:
    return rendered["resources"]["qwen"]["props"]


def entry_point(name: str) -> Any:
    module, _, function = name.partition(".")
    assert module == "index", name  # FC loads index.py from /code
    return getattr(index, function, None)


def test_the_entry_points_are_the_codes(rendered):
    """handler and initializer name index.py's functions, with FC's (event, context) and (context) signatures."""
    p = props(rendered)
    handler = entry_point(p["handler"])
    initializer = entry_point(p["instanceLifecycleConfig"]["initializer"]["handler"])
    assert handler is index.handler and list(inspect.signature(handler).parameters) == ["event", "context"]
    assert initializer is index.initialize and list(inspect.signature(initializer).parameters) == ["context"]


def test_the_runtime_is_the_one_the_package_is_built_for(rendered):
    """The runtime is a python3 runtime the project supports, and pre-deploy builds for its exact Python."""
    p, variables = props(rendered), rendered["vars"]
    assert p["runtime"] in RUNTIMES
    assert str(variables["pythonVersion"]) == RUNTIMES[p["runtime"]]
    steps = rendered["resources"]["qwen"]["actions"]["pre-deploy"]
    assert [s["run"] for s in steps] == [f"python3 deploy/build.py {RUNTIMES[p['runtime']]}"]


def test_the_environment_holds_only_variables_the_code_reads(rendered):
    """Every QWEN_*/DASHSCOPE_* name is one handler/config.py reads; the key comes from the deployer's shell."""
    env = props(rendered)["environmentVariables"]
    names = set(env) - {"PYTHONPATH"}
    assert names <= set(VARIABLES), sorted(names - set(VARIABLES))
    assert env["DASHSCOPE_API_KEY"] == PREVIEW_KEY
    assert env["PYTHONPATH"] == "/code/python"  # where deploy/build.py installs the dependencies (./python)
    # The rendered values, as FC hands them to the function (strings), are a valid configuration.
    settings = Settings.from_env({name: str(value) for name, value in env.items()})
    assert settings.model == env["QWEN_MODEL"] and settings.mode == env["QWEN_MODE"]
