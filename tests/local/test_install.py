"""The project as an installed package: `pip install -e .` gives a `qwen-fc` command that runs from any
directory, with s.yaml and events/ found in the project."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from handler.local.standin import EMULATED
from tests.support import ROOT
from tests.support.registry import why_unreachable


@pytest.fixture(scope="module")
def qwen_fc(tmp_path_factory) -> Path:
    """A fresh venv with this project installed editable; its dependencies come from the test's own
    site-packages (a .pth file), and pip's build backend (setuptools, wheel) from the package registry."""
    if reason := why_unreachable():
        pytest.skip(reason)
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "parent-site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [str(python), "-m", "pip", "install", "--no-deps", "-e", str(ROOT)]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin" / "qwen-fc"


def clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "QWEN_", "PYTHONPATH"))}


def test_qwen_fc_answers_from_another_directory(qwen_fc, tmp_path):
    done = subprocess.run(
        [str(qwen_fc), "--offline", "--text", "你好"], cwd=tmp_path, capture_output=True, env=clean_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith(EMULATED)
    assert str(ROOT / "s.yaml") in done.stderr.decode()  # it says which s.yaml it read


def test_qwen_fc_reads_a_piped_question(qwen_fc, tmp_path):
    done = subprocess.run(
        [str(qwen_fc), "--offline", "--quiet", "--text"],
        cwd=tmp_path,
        input="你好".encode(),
        capture_output=True,
        env=clean_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith(EMULATED) and "你好" in done.stdout.decode()


def test_qwen_fc_finds_the_project_s_sample_events(qwen_fc, tmp_path):
    done = subprocess.run(
        [str(qwen_fc), "--offline", "--quiet", "--text", "--event-file", "events/conversation.json"],
        cwd=tmp_path,
        capture_output=True,
        env=clean_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith(EMULATED)
