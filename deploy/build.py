"""Builds what `s deploy` uploads (s.yaml's pre-deploy action): dependencies, then bytecode FC will use.

    python3 deploy/build.py 3.10              # in the project directory, as s.yaml runs it
    python3 deploy/build.py 3.12 --project DIR

1. Installs exactly requirements-fc.txt (the run-time requirements resolved for FC, without the parts
   never imported) into ./python as wheels for FC's Linux x86_64 runtime (glibc 2.28 and newer: Debian
   10 for python3.10, Debian 11 for python3.12), whatever machine deploys: no compiler, no Docker, the
   same result from macOS, Windows or CI. oss2 is not installed: the runtimes include it.
2. Compiles the package with an interpreter of the runtime's own version. FC's /code is read-only and
   arrives through a zip, so Python can neither write __pycache__ there nor trust timestamp .pyc files
   whose sources' mtimes went through the zip's 2-second clock: every cold start would compile the SDK
   from source. The pinned dependencies get unchecked-hash .pyc (never edited, never re-read); index.py
   and handler/ get checked-hash .pyc, because FC's console editor edits index.py in place and a
   changed source must win over its bytecode.

No interpreter of that version here, nor uv to fetch one: the package ships without bytecode and this
says so; the deploy goes on. Only a failed dependency install fails it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FC_PLATFORM = ("--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64", "--implementation", "cp")
DEPENDENCIES = "python"  # ./python, on PYTHONPATH (/code/python) in s.yaml
OWN_CODE = ("index.py", "handler")
LOCAL_TOOLS = "handler/local"  # never shipped (.fcignore): no bytecode for it either
TAG_QUERY = "import sys; print(sys.implementation.cache_tag)"


def say(message: str) -> None:
    print(f"pre-deploy: {message}", flush=True)


def pip_command(version: str) -> list[str]:
    """The dependency install; `--no-compile` because pip's .pyc would be for this machine's Python."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--upgrade",
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--target",
        f"./{DEPENDENCIES}",
        *FC_PLATFORM,
        "--python-version",
        version,
        "-r",
        "requirements-fc.txt",
    ]


def cache_tag(version: str) -> str:
    return "cpython-" + version.replace(".", "")


def _tag_of(python: str) -> str | None:
    try:
        done = subprocess.run([python, "-c", TAG_QUERY], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _uv_find(uv: str, version: str) -> str | None:
    try:
        done = subprocess.run([uv, "python", "find", version], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _candidates(version: str):
    yield sys.executable
    for name in (f"python{version}", f"python{version.split('.')[0]}", "python"):
        if found := shutil.which(name):
            yield found
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    yield from (str(p) for p in sorted(pyenv.glob(f"{version}.*/bin/python"), reverse=True))
    if launcher := shutil.which("py"):  # Windows
        try:
            done = subprocess.run(
                [launcher, f"-{version}", "-c", "import sys; print(sys.executable)"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode == 0:
                yield done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass


def find_interpreter(version: str) -> str | None:
    """A Python of exactly the runtime's version (its .pyc tag), from this machine or fetched by uv."""
    wanted = cache_tag(version)
    for python in _candidates(version):
        if _tag_of(python) == wanted:
            return python
    uv = shutil.which("uv")
    if not uv:
        return None
    found = _uv_find(uv, version)
    if not (found and _tag_of(found) == wanted):
        say(f"fetching Python {version} with uv")
        try:
            subprocess.run([uv, "python", "install", version], timeout=600, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        found = _uv_find(uv, version)
    return found if found and _tag_of(found) == wanted else None


def shipped_bytecode(project: Path) -> list[Path]:
    """Every .pyc in what ships: ./python, ./__pycache__ (index.py's) and handler/."""
    places = [project / DEPENDENCIES, project / "__pycache__", project / "handler"]
    return [pyc for place in places if place.is_dir() for pyc in place.rglob("*.pyc")]


def purge(project: Path, keep_tag: str | None) -> int:
    """Removes shipped .pyc of any other Python (a local run's, an earlier runtime's): dead weight on FC."""
    removed = 0
    for pyc in shipped_bytecode(project):
        if keep_tag is None or f".{keep_tag}." not in pyc.name:
            pyc.unlink()
            removed += 1
    return removed


def compile_all(python: str, project: Path, mode: str, paths: list[str], exclude: str | None = None) -> list[str]:
    """compileall in `mode`; returns the files it could not compile (they will compile at cold start)."""
    command = [python, "-m", "compileall", "-q", "-f", "-j", "0", "--invalidation-mode", mode]
    if exclude:
        command += ["-x", exclude]
    done = subprocess.run([*command, *paths], cwd=project, capture_output=True, text=True, check=False)
    return re.findall(r"\*\*\* Error compiling '([^']+)'", done.stdout + done.stderr)


def build_bytecode(project: Path, version: str) -> bool:
    """Compiles the package for the runtime's Python; False (and a plain message) when it cannot."""
    python = find_interpreter(version)
    if python is None:
        removed = purge(project, keep_tag=None)
        why = "uv could not fetch one" if shutil.which("uv") else "no uv to fetch one"
        say(
            f"no Python {version} on this machine and {why}: shipping WITHOUT bytecode "
            f"({removed} stale .pyc removed); each cold start on FC will compile the SDK from source. "
            f"Install Python {version} or uv (https://docs.astral.sh/uv/) and deploy again to ship it."
        )
        return False
    tag = cache_tag(version)
    purge(project, keep_tag=tag)
    failed = compile_all(python, project, "unchecked-hash", [DEPENDENCIES])
    own = [path for path in OWN_CODE if (project / path).exists()]
    failed += compile_all(python, project, "checked-hash", own, exclude=re.escape(LOCAL_TOOLS.replace("/", os.sep)))
    for stray in (project / LOCAL_TOOLS).rglob("*.pyc") if (project / LOCAL_TOOLS).is_dir() else ():
        stray.unlink()
    count = len(shipped_bytecode(project))
    note = f"; {len(failed)} files Python {version} cannot compile stay source-only" if failed else ""
    say(f"bytecode for Python {version} ({tag}) from {python}: {count} .pyc{note}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("python_version", help="the runtime's Python version, e.g. 3.10 (s.yaml's vars.pythonVersion)")
    parser.add_argument("--project", type=Path, default=ROOT, help="the directory s deploy uploads (default: here)")
    parser.add_argument("--skip-install", action="store_true", help="only the bytecode step (./python already there)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python_version):
        parser.error(f"python_version must look like 3.10, not {args.python_version!r}")
    if not args.skip_install:
        subprocess.run(pip_command(args.python_version), cwd=args.project, check=True)
    try:
        build_bytecode(args.project, args.python_version)
    except Exception as error:  # noqa: BLE001 - bytecode is an optimisation: never fail the deploy over it
        purge(args.project, keep_tag=None)
        say(f"bytecode step failed ({type(error).__name__}: {error}); shipping WITHOUT bytecode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
