"""What each model can take and what it costs: context window, longest answer, CNY per 1,000 tokens.

Figures come from Alibaba Cloud's own pages where a readable copy gives them, else from Dify's official
Tongyi plugin, which follows them (sources: docs/models.md); one no source gave is None (no guard for
that limit, no cost). QWEN_MODEL_TABLE, a JSON object of the same schema,
overrides or extends the table field by field, e.g. '{"qwen-max": {"input_price": 0.0024}}'.
`tiers` are the prices above a number of input tokens; `api` is the DashScope API that serves the
model ("text" | "multimodal"; None: learned, handler/ask/apis.py); `thinking` is "hybrid"
(enable_thinking switches it, off unless true), "hybrid-on" (on unless enable_thinking is false),
"always" (it only streams) or None. A row may give only these two. `document` is how the model reads a
document: "file" (uploaded, by file id) or "url" (by a URL it fetches); None: it reads none.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Mapping
from typing import Any

from handler.errors import InvalidConfig
from handler.values import Value, replace


class PriceTier(Value):
    above: int  # the prices of a call whose input is longer than this many tokens
    input_price: float
    output_price: float


class ModelInfo(Value):
    context_window: int | None  # input + output tokens; None: not known, not guarded
    input_price: float | None  # CNY per 1,000 input tokens (the first tier); None: not known
    output_price: float | None  # CNY per 1,000 output tokens, reasoning tokens included
    max_output: int | None = None  # the longest answer (max_tokens) the model allows; None: not known
    tiers: tuple[PriceTier, ...] = ()  # ascending by `above`
    api: str | None = None  # "text" | "multimodal"; None: learned per instance (handler/ask/apis.py)
    thinking: str | None = None  # "hybrid" | "hybrid-on" | "always"; None: not said
    max_input: int | None = None  # the longest input the model takes (Alibaba's "max input"); None: not known
    document: str | None = None  # "file" | "url": how it reads a document; None: it reads none

    def prices(self, input_tokens: int) -> tuple[float | None, float | None]:
        """The (input, output) prices for a call of this many input tokens: the tier it falls in."""
        chosen: tuple[float | None, float | None] = (self.input_price, self.output_price)
        for tier in self.tiers:
            if input_tokens > tier.above:
                chosen = (tier.input_price, tier.output_price)
        return chosen

    def thinks(self, enable_thinking: Any) -> bool:
        """Whether a call with this enable_thinking value reasons before answering."""
        if self.thinking == ALWAYS:
            return True
        return enable_thinking is not False if self.thinking == HYBRID_ON else enable_thinking is True

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """Estimated CNY for a call, from the token counts DashScope reported; None when unpriced."""
        input_price, output_price = self.prices(input_tokens)
        if input_price is None or output_price is None:
            return None
        return round(input_tokens * input_price / 1000 + output_tokens * output_price / 1000, 8)


TEXT, MULTIMODAL = "text", "multimodal"
HYBRID, HYBRID_ON, ALWAYS = "hybrid", "hybrid-on", "always"
FILE, URL = "file", "url"
_MULTIMODAL_NOT_FOUND = ModelInfo(None, None, None, api=MULTIMODAL)

# One source per figure is in docs/models.md; None is a figure no source gave. Tiers' `above` is the plugin's.
_FLASH_TIERS = (PriceTier(128_000, 0.0006, 0.006), PriceTier(256_000, 0.0012, 0.012))
_MAX_TIERS = (PriceTier(32_768, 0.01, 0.04), PriceTier(131_072, 0.015, 0.06))
_VL_PLUS_TIERS = (PriceTier(32_768, 0.0015, 0.015), PriceTier(131_072, 0.003, 0.03))
_MILLION = 1_000_000
DEFAULT_MODELS: Mapping[str, ModelInfo] = {
    "qwen-max": ModelInfo(32_768, 0.02, 0.06, max_output=8_192, api=TEXT, max_input=30_720),
    "qwen-plus": ModelInfo(131_072, 0.0008, 0.002, api=TEXT, thinking=HYBRID),
    "qwen-turbo": ModelInfo(131_072, 0.0003, 0.0006, max_output=16_384, api=TEXT, max_input=98_304),
    "qwen-long": ModelInfo(10_000_000, 0.0005, 0.002, max_output=32_768, api=TEXT, document=FILE),
    "qwen-long-latest": ModelInfo(10_000_000, 0.0005, 0.002, max_output=32_768, api=TEXT, document=FILE),
    "qwen-doc-turbo": ModelInfo(262_144, 0.0006, 0.001, max_output=32_768, api=TEXT, document=URL),
    "qwen-flash": ModelInfo(_MILLION, 0.00015, 0.0015, max_output=32_768, tiers=_FLASH_TIERS, api=TEXT),
    "qwen3-max": ModelInfo(262_144, 0.006, 0.024, max_output=65_536, tiers=_MAX_TIERS, api=TEXT),
    "qwq-plus": ModelInfo(131_072, 0.0016, 0.004, max_output=8_192, api=TEXT, thinking=ALWAYS),
    "qwen3-32b": ModelInfo(131_072, 0.002, 0.008, max_output=16_384, api=TEXT, thinking=HYBRID_ON),
    "qwen3.5-plus": ModelInfo(_MILLION, 0.0008, 0.0048, max_output=65_536, api=MULTIMODAL, thinking=HYBRID_ON),
    "qwen3.6-plus": ModelInfo(_MILLION, 0.002, 0.012, max_output=65_536, api=MULTIMODAL, thinking=HYBRID_ON),
    "qwen3.6-flash": ModelInfo(_MILLION, 0.0012, 0.0072, max_output=65_536, api=MULTIMODAL, thinking=HYBRID_ON),
    "qwen3.7-plus": ModelInfo(_MILLION, 0.002, 0.008, max_output=65_536, api=MULTIMODAL, thinking=HYBRID_ON),
    "qwen3.7-max": ModelInfo(_MILLION, 0.012, 0.036, max_output=65_536, api=TEXT, thinking=HYBRID_ON),
    "qwen3.8-flash": replace(_MULTIMODAL_NOT_FOUND, thinking=HYBRID_ON),
    "qwen3.8-max": ModelInfo(_MILLION, 0.012, 0.036, max_output=131_072, api=MULTIMODAL, thinking=ALWAYS),
    "qwen3-vl-plus": ModelInfo(
        262_144, 0.001, 0.01, max_output=32_768, tiers=_VL_PLUS_TIERS, api=MULTIMODAL, thinking=HYBRID
    ),
    "qwen3-vl-flash": ModelInfo(131_072, 0.0005, 0.002, max_output=32_768, api=MULTIMODAL, thinking=HYBRID),
}

_NUMBERS = {"context_window": int, "max_output": int, "max_input": int, "input_price": float, "output_price": float}
_TIER = {"above": int, "input_price": float, "output_price": float}  # PriceTier's fields, in order
_REQUIRED_FOR_NEW = ("context_window", "input_price", "output_price")
APIS = (TEXT, MULTIMODAL)
THINKING = (HYBRID, HYBRID_ON, ALWAYS)
DOCUMENTS = (FILE, URL)
_CHOICES: Mapping[str, tuple[str, ...]] = {"api": APIS, "thinking": THINKING, "document": DOCUMENTS}


def parse_table(value: str) -> Mapping[str, ModelInfo]:
    """The default table with QWEN_MODEL_TABLE's entries merged over it, field by field."""
    table = dict(DEFAULT_MODELS)
    if not value.strip():
        return table
    try:
        given = json.loads(value)
    except ValueError:
        raise InvalidConfig("QWEN_MODEL_TABLE", "is not valid JSON") from None
    if not isinstance(given, dict):
        raise InvalidConfig("QWEN_MODEL_TABLE", "must be a JSON object of model name -> {context_window, ...}")
    for name, fields in given.items():
        if not isinstance(fields, dict):
            raise InvalidConfig("QWEN_MODEL_TABLE", f"entry '{name}' must be an object")
        changes = _fields(name, fields)
        if name in table:
            table[name] = replace(table[name], **changes)
        elif all(key in changes for key in _REQUIRED_FOR_NEW) or "api" in changes:
            # Figures left out are unknown; an entry naming only its API is what model_api_learned suggests.
            table[name] = ModelInfo(**{"context_window": None, "input_price": None, "output_price": None, **changes})
        else:
            raise InvalidConfig(
                "QWEN_MODEL_TABLE",
                f"new model '{name}' needs context_window, input_price and output_price, or at least its api",
            )
    return table


def _fields(name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "tiers":
            changes[key] = _tiers(name, value)
        elif key in _CHOICES:
            if value is not None and value not in _CHOICES[key]:
                allowed = " or ".join(f'"{choice}"' for choice in _CHOICES[key])
                raise InvalidConfig("QWEN_MODEL_TABLE", f"'{name}.{key}' must be {allowed} (or null)")
            changes[key] = value
        elif key in _NUMBERS:
            changes[key] = _number(f"{name}.{key}", value, _NUMBERS[key])
        else:
            raise InvalidConfig("QWEN_MODEL_TABLE", f"entry '{name}' has unknown field '{key}'")
    return changes


def _number(where: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
        raise InvalidConfig("QWEN_MODEL_TABLE", f"'{where}' must be a non-negative number")
    if kind is int and (not float(value).is_integer() or value < 1):
        raise InvalidConfig("QWEN_MODEL_TABLE", f"'{where}' must be a whole number of tokens")
    return kind(value)


def _tiers(name: str, value: Any) -> tuple[PriceTier, ...]:
    if not isinstance(value, list):
        raise InvalidConfig("QWEN_MODEL_TABLE", f"'{name}.tiers' must be a list of tiers")
    tiers = []
    for position, tier in enumerate(value):
        where = f"{name}.tiers[{position}]"
        if not isinstance(tier, dict) or set(tier) != set(_TIER):
            raise InvalidConfig("QWEN_MODEL_TABLE", f"'{where}' must be exactly {{above, input_price, output_price}}")
        tiers.append(PriceTier(*(_number(f"{where}.{key}", tier[key], kind) for key, kind in _TIER.items())))
    if any(a.above >= b.above for a, b in itertools.pairwise(tiers)):
        raise InvalidConfig("QWEN_MODEL_TABLE", f"'{name}.tiers' must be in ascending order of 'above'")
    return tuple(tiers)


def likely_meant(name: str, table: Mapping[str, ModelInfo]) -> str | None:
    """The table's model `name` is a typo of (qwen-trubo: qwen-turbo), or None: when the name is in the
    table, or no listed name is that close (a 0.85 similarity ratio, about two edits of a model name)."""
    matches = [] if name in table else difflib.get_close_matches(name, table, n=1, cutoff=0.85)
    return matches[0] if matches else None
