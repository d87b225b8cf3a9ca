"""CI runs the README's test command in a fresh environment, and any failing step fails the run."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT

# Flags CI adds to the README's steps without changing what they do on a clean clone: a fresh venv
# (--clear), quieter pip (-q).
CI_ONLY_FLAGS = {"--clear", "-q"}


def ci_steps() -> list[str]:
    return [s for line in (ROOT / ".ci" / "run").read_text().splitlines() if (s := line.strip()) and s[0] != "#"]


def readme_test_command() -> str:
    """The command of the README's bash block right after "Run the tests"."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"Run the tests[^\n]*\n+```bash\n(.+?)\n```", readme, re.S)
    assert found, "the README has no test command block"
    return found.group(1).strip()


def test_every_step_fails_the_run():
    """Errexit, nounset and pipefail are on, and no step hides in a list or pipeline where set -e would miss it."""
    steps = ci_steps()
    assert steps[0] == "set -euo pipefail"
    for step in steps:
        assert not re.search(r"&&|\|\||;|\|(?!\|)|\bif\b|!\s", step), f"a failure here would not stop CI: {step}"


def test_ci_runs_the_readmes_test_command_in_a_fresh_environment():
    """Each step of the README's test command is a CI step of its own, in order; the venv is made with --clear."""
    readme_steps = [shlex.split(step) for step in readme_test_command().split(" && ")]
    ci = [shlex.split(step) for step in ci_steps()]
    as_readme = [[word for word in step if word not in CI_ONLY_FLAGS] for step in ci]
    start = as_readme.index(readme_steps[0])
    assert as_readme[start : start + len(readme_steps)] == readme_steps
    assert "--clear" in ci[start], "CI must not reuse a .venv left by an earlier run"
    assert ["ruff", "check", "."] in [[step[0].split("/")[-1], *step[1:]] for step in ci]
    assert ["ruff", "format", "--check", "."] in [[step[0].split("/")[-1], *step[1:]] for step in ci]


def test_ci_renders_s_yaml_with_the_real_cli_installed_outside_the_repo_root():
    """npm installs @serverless-devs/s into .ci/s (gitignored), s preview renders s.yaml, all before pytest,
    which then checks the rendered props (tests/project/test_preview.py) and must not skip what needs a registry."""
    ci = [shlex.split(step) for step in ci_steps()]
    installs = [i for i, step in enumerate(ci) if step[:2] == ["npm", "install"]]
    assert len(installs) == 1, "one npm install of the Serverless Devs CLI"
    install = ci[installs[0]]
    assert install[install.index("--prefix") + 1] == ".ci/s" and any(
        w.startswith("@serverless-devs/s@") for w in install
    )
    assert ["rm", "-rf", ".ci/s"] in ci[: installs[0]], "a fresh CLI every run"
    preview = next(i for i, step in enumerate(ci) if ".ci/s/node_modules/.bin/s" in step and "preview" in step)
    pytest_step = next(i for i, step in enumerate(ci) if step[-2:] == ["-m", "pytest"])
    assert installs[0] < preview < pytest_step
    assert ["export", "QWEN_TESTS_NEED_REGISTRY=1"] in ci[:pytest_step]
    assert "/.ci/s/" in (ROOT / ".gitignore").read_text().split()
