"""Today's rows of the model table: every model s.yaml ships is guarded and priced (sources: docs/models.md)."""

from __future__ import annotations

import pytest

from handler.ask.models import DEFAULT_MODELS, MULTIMODAL, TEXT, PriceTier
from tests.support import s_yaml


def shipped_models() -> set[str]:
    """QWEN_MODEL, every name of QWEN_ALLOWED_MODELS and QWEN_VISION_MODEL, as s.yaml ships them."""
    env = s_yaml.load()["resources"]["qwen"]["props"]["environmentVariables"]
    allowed = {name.strip() for name in env["QWEN_ALLOWED_MODELS"].split(",") if name.strip()}
    return allowed | {env["QWEN_MODEL"], env["QWEN_VISION_MODEL"]}


@pytest.mark.parametrize("model", sorted(shipped_models()))
def test_every_shipped_model_has_a_window_and_prices(model):
    """A model the deployed function may answer with gets the context guard and a cost in its log line."""
    info = DEFAULT_MODELS[model]
    assert info.context_window is not None and info.input_price is not None and info.output_price is not None
    assert info.cost(1000, 1000) is not None


@pytest.mark.parametrize(
    ("model", "window", "max_output", "prices"),
    [
        ("qwen3.5-plus", 1_000_000, 65_536, (0.0008, 0.0048)),
        ("qwen3.6-plus", 1_000_000, 65_536, (0.002, 0.012)),
        ("qwen3.6-flash", 1_000_000, 65_536, (0.0012, 0.0072)),
        ("qwen3.7-plus", 1_000_000, 65_536, (0.002, 0.008)),
        ("qwen3.7-max", 1_000_000, 65_536, (0.012, 0.036)),
        ("qwen3.8-max", 1_000_000, 131_072, (0.012, 0.036)),
        ("qwen3-max", 262_144, 65_536, (0.006, 0.024)),
        ("qwen-flash", 1_000_000, 32_768, (0.00015, 0.0015)),
        ("qwen-long", 10_000_000, 32_768, (0.0005, 0.002)),
        ("qwen3-vl-plus", 262_144, 32_768, (0.001, 0.01)),
        ("qwen3-vl-flash", 131_072, 32_768, (0.0005, 0.002)),
        ("qwq-plus", 131_072, 8_192, (0.0016, 0.004)),
        ("qwen3-32b", 131_072, 16_384, (0.002, 0.008)),
    ],
)
def test_todays_rows_have_the_plugins_figures(model, window, max_output, prices):
    info = DEFAULT_MODELS[model]
    assert (info.context_window, info.max_output, (info.input_price, info.output_price)) == (window, max_output, prices)


def test_tiered_rows():
    """qwen-flash, qwen3-max and qwen3-vl-plus are billed by the input's length."""
    assert DEFAULT_MODELS["qwen-flash"].tiers == (PriceTier(128_000, 0.0006, 0.006), PriceTier(256_000, 0.0012, 0.012))
    assert DEFAULT_MODELS["qwen3-max"].tiers == (PriceTier(32_768, 0.01, 0.04), PriceTier(131_072, 0.015, 0.06))
    assert DEFAULT_MODELS["qwen3-vl-plus"].tiers == (PriceTier(32_768, 0.0015, 0.015), PriceTier(131_072, 0.003, 0.03))
    assert DEFAULT_MODELS["qwen-flash"].prices(200_000) == (0.0006, 0.006)


def test_the_api_follows_whether_the_model_sees():
    """Models that take images are asked on the multimodal API, the others on the text one (as Dify's plugin does)."""
    multimodal = {"qwen3.5-plus", "qwen3.6-plus", "qwen3.6-flash", "qwen3.7-plus", "qwen3.8-max"}
    multimodal |= {"qwen3-vl-plus", "qwen3-vl-flash"}
    text = {"qwen3.7-max", "qwen3-max", "qwen-flash", "qwen-long", "qwen-turbo", "qwen-plus", "qwen-max", "qwq-plus"}
    assert {m: DEFAULT_MODELS[m].api for m in multimodal | text} == {
        **{m: MULTIMODAL for m in multimodal},
        **{m: TEXT for m in text},
    }


def test_thinking_values_are_kept():
    """The rows that had a thinking value keep it; the new Qwen3.5-and-later rows think unless told not to."""
    thinking = {name: info.thinking for name, info in DEFAULT_MODELS.items()}
    assert thinking["qwen-plus"] == "hybrid" and thinking["qwq-plus"] == "always"
    assert thinking["qwen3-32b"] == thinking["qwen3.7-plus"] == thinking["qwen3.8-flash"] == "hybrid-on"
    assert thinking["qwen3.8-max"] == "always"
    assert thinking["qwen3-vl-plus"] == thinking["qwen3-vl-flash"] == "hybrid"
    assert thinking["qwen-turbo"] is thinking["qwen-max"] is thinking["qwen-flash"] is thinking["qwen3-max"] is None
    assert {thinking[m] for m in ("qwen3.5-plus", "qwen3.6-plus", "qwen3.6-flash", "qwen3.7-max")} == {"hybrid-on"}
