"""deploy/build.py and deploy/package.py: the package `s deploy` uploads carries bytecode FC's runtime uses."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import build, package
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # pip builds for the runtime

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"  # this interpreter plays the runtime's
TAG = sys.implementation.cache_tag
UNCHECKED_HASH, CHECKED_HASH = 0b01, 0b11  # PEP 552 flags in a .pyc header


def flags(pyc: Path) -> int:
    return int.from_bytes(pyc.read_bytes()[4:8], "little")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A code directory shaped like this one: own code, local tools, installed dependencies, stale .pyc."""
    root = tmp_path / "code"
    for relative, text in {
        "index.py": "from handler import mod\n",
        "handler/__init__.py": "",
        "handler/mod.py": "VALUE = 1\n",
        "handler/local/__init__.py": "",
        "handler/local/tool.py": "TOOL = 1\n",
        "python/dep/__init__.py": "from dep import inner\n",
        "python/dep/inner.py": "DEP = 2\n",
        "tests/test_x.py": "",
        "deploy/build.py": "",
        "handler/__pycache__/mod.cpython-39.pyc": "stale, another Python's",
        "python/dep/__pycache__/inner.cpython-39.pyc": "stale, pip's for the deploying machine",
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    shutil.copy2(ROOT / ".fcignore", root / ".fcignore")
    return root


def every_pyc(root: Path) -> list[Path]:
    return sorted(root.rglob("*.pyc"))


def test_dependencies_get_unchecked_and_own_code_checked_hash_bytecode(project: Path):
    """./python is compiled unchecked-hash, index.py and handler/ checked-hash, local tools not at all."""
    assert build.build_bytecode(project, VERSION)
    found = {pyc.relative_to(project).as_posix(): flags(pyc) for pyc in every_pyc(project)}
    assert found == {
        f"python/dep/__pycache__/__init__.{TAG}.pyc": UNCHECKED_HASH,
        f"python/dep/__pycache__/inner.{TAG}.pyc": UNCHECKED_HASH,
        f"__pycache__/index.{TAG}.pyc": CHECKED_HASH,
        f"handler/__pycache__/__init__.{TAG}.pyc": CHECKED_HASH,
        f"handler/__pycache__/mod.{TAG}.pyc": CHECKED_HASH,
    }


def test_fcignore_ships_the_bytecode_and_leaves_out_local_tools(project: Path):
    """Every shipped module has its .pyc in the upload; handler/local, tests and deploy/ stay behind."""
    build.build_bytecode(project, VERSION)
    shipped = {path.as_posix() for path in package.shipped(project)}
    assert {"index.py", "handler/mod.py", "python/dep/inner.py"} <= shipped
    assert {f"__pycache__/index.{TAG}.pyc", f"python/dep/__pycache__/inner.{TAG}.pyc"} <= shipped
    assert f"handler/__pycache__/mod.{TAG}.pyc" in shipped
    assert not [path for path in shipped if path.startswith(("handler/local", "tests", "deploy", ".fcignore"))]


def test_a_read_only_copy_imports_from_the_bytecode_without_compiling(project: Path, tmp_path: Path):
    """Zipped, unzipped (2-second mtimes) and made read-only, the package imports with no compile event."""
    build.build_bytecode(project, VERSION)
    package.write_zip(project, tmp_path / "code.zip")
    code = tmp_path / "fc-code"
    package.extract(tmp_path / "code.zip", code)
    for path in code.rglob("*"):
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    probe = (
        "import sys; compiled = []\n"
        "sys.addaudithook(lambda e, a: compiled.append(a[1]) if e == 'compile' and str(a[1]).endswith('.py') else 0)\n"
        "import index, dep\n"
        "print(dep.inner.DEP + index.mod.VALUE, compiled)"
    )
    env = {"PYTHONPATH": f"{code}{os.pathsep}{code / 'python'}", "PYTHONDONTWRITEBYTECODE": "1"}
    run = [sys.executable, "-S", "-c", probe]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "3 []"


def test_an_edited_source_wins_over_its_checked_bytecode(project: Path, tmp_path: Path):
    """The console editor changes handler code in place: checked-hash .pyc make Python use the new source."""
    build.build_bytecode(project, VERSION)
    (project / "handler" / "mod.py").write_text("VALUE = 41\n")
    env = {"PYTHONPATH": str(project), "PYTHONDONTWRITEBYTECODE": "1"}
    probe = "from handler import mod; print(mod.VALUE)"
    run = [sys.executable, "-S", "-c", probe]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "41"


def test_without_the_runtimes_python_it_ships_source_and_says_so(
    project: Path, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
):
    """No Python 3.99 and no uv: exit 0, a plain message, and no stale .pyc left to mislead FC."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no uv, no python3.99
    assert build.main(["3.99", "--project", str(project), "--skip-install"]) == 0
    assert "WITHOUT bytecode" in capsys.readouterr().out
    assert every_pyc(project) == []


FAKE_UV = """
import sys
from pathlib import Path

here = Path(sys.argv[0]).parent
with open(here / "uv.log", "a") as log:
    print(*sys.argv[1:], file=log)
if sys.argv[1:3] == ["python", "install"]:
    if here.joinpath("uv-can-install").exists():
        here.joinpath("installed").touch()
        sys.exit(0)
    sys.exit(1)  # no network
if sys.argv[1:3] == ["python", "find"] and here.joinpath("installed").exists():
    print(sys.executable)
    sys.exit(0)
sys.exit(2)
"""


def fake_uv(directory: Path, installs: bool) -> None:
    """A `uv` that finds this interpreter only after `uv python install` works (or never), logging its calls."""
    (directory / "uv").write_text(f"#!{sys.executable}\n{FAKE_UV}")
    (directory / "uv").chmod(0o755)
    if installs:
        (directory / "uv-can-install").touch()


@pytest.mark.parametrize("installs", [True, False])
def test_uv_fetches_the_runtimes_python_when_none_is_here(
    project: Path, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str], installs: bool
):
    """With no matching interpreter, `uv python install` is asked for one; if uv fails, source only, exit 0."""
    monkeypatch.setattr(build, "_candidates", lambda version: iter(()))
    fake_uv(tmp_path, installs)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert build.main([VERSION, "--project", str(project), "--skip-install"]) == 0
    assert f"python install {VERSION}" in (tmp_path / "uv.log").read_text()
    output = capsys.readouterr().out
    if installs:
        assert f"bytecode for Python {VERSION}" in output and flags(project / "__pycache__" / f"index.{TAG}.pyc")
    else:
        assert "WITHOUT bytecode" in output and every_pyc(project) == []


def test_a_broken_bytecode_step_never_fails_the_deploy(project: Path, monkeypatch, capsys):
    """compileall blowing up is reported and the package ships as source; the deploy goes on."""

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(build, "compile_all", broken)
    assert build.main([VERSION, "--project", str(project), "--skip-install"]) == 0
    assert "WITHOUT bytecode" in capsys.readouterr().out and every_pyc(project) == []


def test_a_failed_dependency_install_fails_the_deploy(project: Path, monkeypatch):
    """Unlike bytecode, missing dependencies would break every invocation: pip's failure stops the deploy."""
    monkeypatch.setattr(build, "pip_command", lambda version: [sys.executable, "-c", "raise SystemExit(1)"])
    with pytest.raises(subprocess.CalledProcessError):
        build.main([VERSION, "--project", str(project)])
