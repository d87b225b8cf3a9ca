"""What each model can take and what it costs: context window and CNY per 1,000 tokens.

The defaults are the reference's table. Prices and limits change, so QWEN_MODEL_TABLE (a JSON
object) overrides or extends it without a code change:

    QWEN_MODEL_TABLE='{"qwen-max": {"input_price": 0.0024}, "qwen3-max": {"context_window": 262144,
                       "input_price": 0.006, "output_price": 0.024}}'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from handler.errors import InvalidConfig


@dataclass(frozen=True)
class ModelInfo:
    context_window: int
    input_price: float  # CNY per 1,000 input tokens
    output_price: float  # CNY per 1,000 output tokens

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Estimated CNY for a call, from the token counts DashScope reported."""
        return round(input_tokens * self.input_price / 1000 + output_tokens * self.output_price / 1000, 8)


DEFAULT_MODELS: Mapping[str, ModelInfo] = {
    "qwen-max": ModelInfo(32_768, 0.02, 0.06),
    "qwen-plus": ModelInfo(131_072, 0.0008, 0.002),
    "qwen-turbo": ModelInfo(131_072, 0.0003, 0.0006),
    "qwen-long": ModelInfo(10_000_000, 0.0005, 0.002),
}

_FIELDS = {"context_window": int, "input_price": float, "output_price": float}


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
        elif set(changes) == set(_FIELDS):
            table[name] = ModelInfo(**changes)
        else:
            raise InvalidConfig(
                "QWEN_MODEL_TABLE", f"new model '{name}' needs context_window, input_price and output_price"
            )
    return table


def _fields(name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        kind = _FIELDS.get(key)
        if kind is None:
            raise InvalidConfig("QWEN_MODEL_TABLE", f"entry '{name}' has unknown field '{key}'")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
            raise InvalidConfig("QWEN_MODEL_TABLE", f"'{name}.{key}' must be a non-negative number")
        if kind is int and (not float(value).is_integer() or value < 1):
            raise InvalidConfig("QWEN_MODEL_TABLE", f"'{name}.{key}' must be a whole number of tokens")
        changes[key] = kind(value)
    return changes
