"""The deployment files: s.yaml deploys what the docs promise and never holds a secret."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT
from tests.support.s_yaml import commented_triggers, load


def test_the_function_is_an_event_function_with_its_initializer():
    """fc3 component, python3 runtime, index.handler and index.initialize, room for an LLM call."""
    resource = load()["resources"]["qwen"]
    props = resource["props"]
    assert resource["component"] == "fc3"
    assert props["runtime"].startswith("${vars.runtime}") or props["runtime"].startswith("python3")
    assert load()["vars"]["runtime"] in ("python3.10", "python3.12")
    assert props["handler"] == "index.handler"
    assert props["instanceLifecycleConfig"]["initializer"]["handler"] == "index.initialize"
    assert props["timeout"] >= 60 and props["logConfig"] == "auto"


def test_the_key_comes_from_the_deployers_environment():
    """DASHSCOPE_API_KEY is read at deploy time; no sk- value is written anywhere in the file."""
    text = (ROOT / "s.yaml").read_text()
    env = load()["resources"]["qwen"]["props"]["environmentVariables"]
    assert env["DASHSCOPE_API_KEY"] == "${env('DASHSCOPE_API_KEY')}"
    assert not re.search(r"sk-[A-Za-z0-9]{8,}", text)


def test_dependencies_are_built_for_the_runtime():
    """The pre-deploy step runs deploy/build.py, which installs requirements-fc.txt as FC's wheels for its Python."""
    from deploy import build  # the script the step runs; imported here, where the step is checked

    steps = load()["resources"]["qwen"]["actions"]["pre-deploy"]
    assert [step["run"] for step in steps] == ["python3 deploy/build.py ${vars.pythonVersion}"]
    assert steps[0]["path"] == "./"
    step = " ".join(build.pip_command(load()["vars"]["pythonVersion"])[1:])
    assert "-r requirements-fc.txt" in step and "--no-deps" in step and "--target ./python" in step
    assert f"--python-version {load()['vars']['pythonVersion']}" in step and "--only-binary=:all:" in step
    assert "--platform manylinux_2_28_x86_64" in step and "--implementation cp" in step
    assert load()["vars"]["runtime"] == f"python{load()['vars']['pythonVersion']}"
    assert load()["resources"]["qwen"]["props"]["environmentVariables"]["PYTHONPATH"] == "/code/python"


def test_the_commented_trigger_examples_are_valid_yaml():
    """Uncommenting the trigger block gives the six documented triggers, each well formed."""
    triggers = commented_triggers()
    assert [t["triggerType"] for t in triggers] == ["timer", "oss", "mns_topic", "eventbridge", "oss", "timer"]
    assert triggers[4]["triggerConfig"]["filter"]["key"]["suffix"] == ".jsonl"
    assert json.loads(triggers[5]["triggerConfig"]["payload"]) == {"collect": "batches"}
    oss = triggers[1]["triggerConfig"]
    assert not oss["filter"]["key"]["prefix"].startswith("answers/")
    mns = triggers[3]["triggerConfig"]["eventSourceConfig"]
    assert mns["eventSourceType"] == "MNS"


def test_the_oss_trigger_filter_follows_the_fc3_schema():
    """fc3's OSS trigger takes filter.key.prefix and filter.key.suffix, lower case (devsapp/fc3 docs/zh/yaml)."""
    config = commented_triggers()[1]["triggerConfig"]
    assert set(config["filter"]) == {"key"} and set(config["filter"]["key"]) == {"prefix", "suffix"}


def test_the_queue_trigger_keeps_what_fails():
    """EventBridge drops a failed batch under errorsTolerance ALL unless a dead-letter queue takes it."""
    options = commented_triggers()[3]["triggerConfig"]["runOptions"]
    assert options["errorsTolerance"] == "NONE" or options["deadLetterQueue"]["Arn"].startswith("acs:mns:")


def test_the_batch_concurrency_comment_states_the_pool_size():
    """The s.yaml comment on QWEN_BATCH_CONCURRENCY names the pool size handler/ask/transport.py uses."""
    from handler.ask.transport import POOL_SIZE

    text = (ROOT / "s.yaml").read_text()
    comment = text[: text.index("QWEN_BATCH_CONCURRENCY:")].rsplit("QWEN_REQUEST_TIMEOUT", 1)[1]
    assert f"Up to {POOL_SIZE} reuse" in comment and "<= 10" not in comment


def pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            package, version = line.split("==")
            found[package.split("[")[0].lower().replace("_", "-")] = version
    return found


def test_the_deployed_pins_agree_with_the_requirements():
    """requirements-fc.txt ships the same dashscope and tiktoken that requirements.txt installs."""
    fc, local = pins("requirements-fc.txt"), pins("requirements.txt")
    for package in ("dashscope", "tiktoken"):
        assert fc[package] == local[package]
    # aiohttp needs async-timeout below Python 3.11, and pip does not evaluate markers for the target.
    assert "async-timeout" in fc


def test_a_local_install_runs_every_sample_but_the_package_leaves_oss2_to_fc():
    """requirements.txt (the README's first command) brings oss2 for the OSS samples; the deployed package
    (requirements-fc.txt, what s.yaml installs) does not, since FC's runtimes include it; dev adds no second pin."""
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt && .venv/bin/python -m handler --offline" in readme
    assert pins("requirements.txt")["oss2"] == "2.16.0"
    assert "oss2" not in pins("requirements-fc.txt")
    assert (
        "oss2" not in pins("requirements-dev.txt")
        and "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    )
    from deploy import build  # what s.yaml's pre-deploy step runs

    assert "requirements-fc.txt" in build.pip_command(load()["vars"]["pythonVersion"])


def test_the_package_leaves_out_what_fc_does_not_need():
    """.fcignore keeps tests, benchmarks and virtualenvs out of the deployed code."""
    ignored = (ROOT / ".fcignore").read_text().split()
    for entry in ("tests", "bench", ".venv", ".git"):
        assert entry in ignored


def test_the_documented_role_policy_is_least_privilege_for_the_oss_example():
    """The OSS inbox recipe's role policy reads only the trigger's prefix and the answers, and writes only answers."""
    recipe = (ROOT / "docs" / "recipes" / "oss-inbox.md").read_text()
    block = recipe[recipe.index("least-privilege policy") :]
    policy = json.loads(block[block.index("```json") + 7 : block.index("```", block.index("```json") + 7)])
    trigger = commented_triggers()[1]
    bucket = trigger["sourceArn"].rsplit(":", 1)[1]
    watched = trigger["triggerConfig"]["filter"]["key"]["prefix"]
    output = load()["resources"]["qwen"]["props"]["environmentVariables"]["QWEN_OSS_OUTPUT_PREFIX"]
    grants: dict[str, list[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        grants.setdefault(statement["Action"], []).extend(resources)
    assert set(grants) == {
        "oss:GetObject",
        "oss:PutObject",
        "oss:DeleteObject",
        "oss:GetBucketVersioning",
        "log:PostLogStoreLogs",
    }
    answers = f"acs:oss:*:*:{bucket}/{output}{watched}*"
    # Every in-progress marker lives in the one markers folder <prefix>.pending/, by the question's key.
    markers = f"acs:oss:*:*:{bucket}/{output}.pending/{watched}*"
    assert sorted(grants["oss:PutObject"]) == sorted([answers, markers])
    # Only the markers, which a failed attempt removes (handler/deliver/once.py).
    assert grants["oss:DeleteObject"] == [markers]
    assert grants["oss:GetBucketVersioning"] == [f"acs:oss:*:*:{bucket}"]  # a versioned bucket is refused
    assert sorted(grants["oss:GetObject"]) == sorted([f"acs:oss:*:*:{bucket}/{watched}*", answers, markers])


def test_the_operators_cost_controls_are_in_s_yaml_at_the_codes_defaults():
    """What an event may choose is set where a deployer looks, and s.yaml's values change nothing by themselves."""
    from handler.config import EventCaps, Settings

    env = load()["resources"]["qwen"]["props"]["environmentVariables"]
    for name in ("QWEN_ALLOWED_MODELS", "QWEN_PARAMETERS", "QWEN_EVENT_PARAMETERS", "QWEN_EVENT_LIMITS"):
        assert name in env, name
    assert "QWEN_EVENT_SYSTEM_PROMPT" in env
    given = {name: str(value) for name, value in env.items() if name.startswith("QWEN_")}
    settings = Settings.from_env({**given, "DASHSCOPE_API_KEY": "sk-test"})
    assert settings.event_caps == EventCaps()
