"""s.yaml shows where async answers go (FC destinations, the answer store) and caps concurrency."""

from __future__ import annotations

import yaml

from handler.config import Settings
from tests.conftest import API_KEY, ROOT


def props() -> dict:
    return yaml.safe_load((ROOT / "s.yaml").read_text())["resources"]["qwen"]["props"]


def test_the_destinations_are_ready_to_uncomment():
    """Uncommenting destinationConfig gives onSuccess and onFailure MNS queues under asyncInvokeConfig."""
    lines = (ROOT / "s.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# destinationConfig:")
    indent = lines[start].index("#")
    block = []
    for line in lines[start:]:
        if not line.strip().startswith("#"):
            break
        block.append(line[:indent] + line[indent + 2 :])
    config = yaml.safe_load("\n".join(line[indent:] for line in block))["destinationConfig"]
    assert set(config) == {"onSuccess", "onFailure"}
    assert all(c["destination"].startswith("acs:mns:") and "/queues/" in c["destination"] for c in config.values())
    assert "asyncInvokeConfig" in props()


def test_the_function_concurrency_is_capped():
    """fc3's concurrencyConfig.reservedConcurrency holds a burst at FC instead of DashScope's 429s."""
    cap = props()["concurrencyConfig"]["reservedConcurrency"]
    assert isinstance(cap, int) and 1 <= cap <= 100


def test_the_answer_bucket_line_is_valid_as_shipped():
    """QWEN_ANSWER_BUCKET and QWEN_FC_DESTINATION are in the environment; as shipped they parse (store off)."""
    env = {k: str(v) for k, v in props()["environmentVariables"].items()}
    settings = Settings.from_env({**env, "DASHSCOPE_API_KEY": API_KEY})
    assert settings.answer_bucket is None and settings.fc_destination is False
    assert Settings.from_env({**env, "DASHSCOPE_API_KEY": API_KEY, "QWEN_ANSWER_BUCKET": "qwen-ans"}).answer_bucket
