"""`python -m handler` with the deployed environment (s.yaml) and every model of the table, offline."""

from __future__ import annotations

import json

import pytest

from handler.ask.models import DEFAULT_MODELS
from handler.local import deployed_env
from tests.support.processes import run_cli as run


def result_of(done) -> dict:
    return json.loads(done.stdout)


@pytest.mark.parametrize("model", sorted(DEFAULT_MODELS))
def test_offline_answers_with_every_default_row(model):
    done = run("--offline", "--quiet", "hi", env={"QWEN_MODEL": model, "QWEN_ALLOWED_MODELS": model})
    assert done.returncode == 0, done.stderr
    result = result_of(done)
    message = result["output"]["choices"][0]["message"]
    assert result["status_code"] == 200 and "emulated" in message["content"]
    if DEFAULT_MODELS[model].thinking == "always":
        assert message["reasoning_content"]


def test_offline_refuses_a_model_dashscope_does_not_know():
    """The stand-in answers a typo as DashScope does: 400 InvalidParameter "Model not exist."."""
    done = run("--offline", "hi", env={"QWEN_MODEL": "qwen-trubo", "QWEN_ALLOWED_MODELS": "qwen-trubo"})
    assert done.returncode == 1
    result = result_of(done)
    assert result["status_code"] == 400 and result["message"] == "Model not exist."
    assert "model_unknown" not in done.stderr.decode() or "qwen-turbo" in done.stderr.decode()


def test_the_deployed_allowlist_applies_locally():
    """s.yaml's QWEN_ALLOWED_MODELS is read: its models are allowed, others refused as on FC."""
    allowed = deployed_env.variables()["QWEN_ALLOWED_MODELS"].split(",")
    assert "qwen3.8-max" in allowed and "qwen-long-latest" not in allowed
    done = run("--offline", "--quiet", '{"prompt": "hi", "model": "qwen3.8-max"}')
    assert done.returncode == 0, done.stderr
    refused = result_of(run("--offline", "--quiet", '{"prompt": "hi", "model": "qwen-long-latest"}'))
    assert refused["status_code"] == 400 and refused["code"] == "ModelNotAllowed"
    assert "qwen3-vl-flash" in refused["message"]  # the message lists s.yaml's allowlist


def test_the_shell_overrides_s_yaml_and_no_s_yaml_skips_it():
    shell = result_of(
        run(
            "--offline",
            "--quiet",
            '{"prompt": "hi", "model": "qwen-long"}',
            env={"QWEN_ALLOWED_MODELS": "qwen-turbo,qwen-long"},
        )
    )
    assert shell["status_code"] == 200
    alone = result_of(run("--offline", "--quiet", "--no-s-yaml", '{"prompt": "hi", "model": "qwen-plus"}'))
    assert alone["status_code"] == 400 and alone["code"] == "ModelNotAllowed"  # allowed: QWEN_MODEL alone


def test_help_says_where_the_variables_come_from():
    done = run("--help")
    text = done.stdout.decode()
    assert "s.yaml" in text and "environmentVariables" in text and "overrides" in text


def test_expressions_and_pythonpath_are_not_taken_from_s_yaml():
    found = deployed_env.variables()
    assert "DASHSCOPE_API_KEY" not in found and "PYTHONPATH" not in found
    assert found["QWEN_MODEL"] == "qwen-turbo"
