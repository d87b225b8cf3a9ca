"""The CLIs read the deployment's configuration as the handler does: s.yaml's variables, the handler's own
checks and normalisations, its InvalidConfig message."""

from __future__ import annotations

import json

from tests.conftest import ROOT
from tests.support.processes import run_cli as run

SAMPLE = str(ROOT / "handler" / "local" / "sample.png")
DEPLOYED_MODEL_REQUEST = '{"prompt": "hi", "model": "qwen3.8-max"}'  # in s.yaml's QWEN_ALLOWED_MODELS only


def test_the_token_cli_reads_s_yaml_as_the_main_cli_does():
    """A model s.yaml allows is counted, as `python -m handler` answers it; --no-s-yaml: the shell's alone."""
    answered = run("--offline", "--quiet", DEPLOYED_MODEL_REQUEST)
    assert answered.returncode == 0, answered.stderr
    counted = run("tokens", DEPLOYED_MODEL_REQUEST)
    assert counted.returncode == 0 and b"ModelNotAllowed" not in counted.stderr, counted.stderr
    assert b"qwen3.8-max" in counted.stdout
    alone = run("tokens", "--no-s-yaml", DEPLOYED_MODEL_REQUEST)
    assert alone.returncode == 1 and b"ModelNotAllowed" in alone.stderr
    shell = run("tokens", DEPLOYED_MODEL_REQUEST, env={"QWEN_ALLOWED_MODELS": "qwen-turbo"})
    assert shell.returncode == 1 and b"ModelNotAllowed" in shell.stderr  # the shell overrides s.yaml


def test_an_image_limit_that_is_not_a_number_is_the_handlers_invalid_config():
    """QWEN_OSS_MAX_IMAGE_BYTES=10MB: --image prints the handler's InvalidConfig message, no traceback."""
    env = {"QWEN_OSS_MAX_IMAGE_BYTES": "10MB"}
    plain = json.loads(run("--offline", "--quiet", "hi", env=env).stdout)
    assert plain["code"] == "InvalidConfig" and "QWEN_OSS_MAX_IMAGE_BYTES" in plain["message"]
    done = run("--offline", "--image", SAMPLE, "what is this?", env=env)
    assert done.returncode == 1 and done.stdout == b""
    assert b"Traceback" not in done.stderr and b"ValueError" not in done.stderr
    assert f"InvalidConfig: {plain['message']}" in done.stderr.decode()


def test_an_oss_file_finds_its_answer_under_a_prefix_without_a_slash(tmp_path):
    """QWEN_OSS_OUTPUT_PREFIX=out: the handler writes out/questions/<name>.json, and the CLI reads it there."""
    question = tmp_path / "q.txt"
    question.write_text("你好", encoding="utf-8")
    done = run("--offline", "--oss-file", str(question), env={"QWEN_OSS_OUTPUT_PREFIX": "out"})
    assert done.returncode == 0, done.stderr
    assert b"answer file: oss://qwen-questions/out/questions/q.txt.json" in done.stderr
    assert json.loads(done.stdout)["status_code"] == 200
