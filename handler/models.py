"""What each model can take and what it costs: context window, longest answer, CNY per 1,000 tokens.

The first four rows are the reference's table, with the reference's values. The others were read
from published pages on the date given beside each; a figure that could not be found is None and
said so (None: no guard for that limit, no cost when a price is missing). Prices and limits
change, so QWEN_MODEL_TABLE (a JSON object of the same schema) overrides or extends the table
without a code change:

    QWEN_MODEL_TABLE='{"qwen-max": {"input_price": 0.0024}, "qwen3-32b": {"context_window": 131072,
                       "max_output": 16384, "input_price": 0.002, "output_price": 0.008}}'

Several models are billed by the length of the call's input: `tiers` lists the prices that apply
above a number of input tokens, e.g. [{"above": 131072, "input_price": 0.0006, "output_price": 0.006}];
`input_price` and `output_price` are the prices below the first tier.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from handler.errors import InvalidConfig

K = 1024  # DashScope's pages write limits and tiers in K of 1,024 tokens


@dataclass(frozen=True)
class PriceTier:
    """The prices of a call whose input is longer than `above` tokens."""

    above: int
    input_price: float
    output_price: float


@dataclass(frozen=True)
class ModelInfo:
    context_window: int | None  # input + output tokens; None: not known, not guarded
    input_price: float | None  # CNY per 1,000 input tokens (the first tier); None: not known
    output_price: float | None  # CNY per 1,000 output tokens, reasoning tokens included
    max_output: int | None = None  # the longest answer (max_tokens) the model allows; None: not known
    tiers: tuple[PriceTier, ...] = ()  # ascending by `above`

    def prices(self, input_tokens: int) -> tuple[float | None, float | None]:
        """The (input, output) prices for a call of this many input tokens: the tier it falls in."""
        chosen: tuple[float | None, float | None] = (self.input_price, self.output_price)
        for tier in self.tiers:
            if input_tokens > tier.above:
                chosen = (tier.input_price, tier.output_price)
        return chosen

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """Estimated CNY for a call, from the token counts DashScope reported; None when unpriced."""
        input_price, output_price = self.prices(input_tokens)
        if input_price is None or output_price is None:
            return None
        return round(input_tokens * input_price / 1000 + output_tokens * output_price / 1000, 8)


DEFAULT_MODELS: Mapping[str, ModelInfo] = {
    # The reference's four rows, as the reference has them (its values, not today's price list).
    "qwen-max": ModelInfo(32_768, 0.02, 0.06),
    "qwen-plus": ModelInfo(131_072, 0.0008, 0.002),
    "qwen-turbo": ModelInfo(131_072, 0.0003, 0.0006),
    "qwen-long": ModelInfo(10_000_000, 0.0005, 0.002),
    # Read 2026-11-27 from a copy of Model Studio's qwen-flash page (China/Beijing prices):
    # http://47.109.151.80:15030/Maas2-group/Maas-Model-platform/raw/master/backend/parsed_json/qwen-flash.json
    # context "1M" (written 1,000,000 here), max output 32K, tiers <=128K, 128K-256K, 256K-1M.
    "qwen-flash": ModelInfo(
        1_000_000,
        0.00015,
        0.0015,
        max_output=32 * K,
        tiers=(PriceTier(128 * K, 0.0006, 0.006), PriceTier(256 * K, 0.0012, 0.012)),
    ),
    # Read 2026-11-27 from a copy of Model Studio's qwen3-max page (China/Beijing prices):
    # http://47.109.151.80:15030/Maas2-group/Maas-Model-platform/raw/master/backend/parsed_json/qwen3-max.json
    # context 256K, max input 252K, max output 64K, tiers <=32K, 32K-128K, 128K-256K.
    "qwen3-max": ModelInfo(
        256 * K,
        0.0025,
        0.01,
        max_output=64 * K,
        tiers=(PriceTier(32 * K, 0.004, 0.016), PriceTier(128 * K, 0.007, 0.028)),
    ),
    # qwq-plus: Model Studio's page https://www.alibabacloud.com/help/en/model-studio/qwq-plus.md
    # (searched 2026-11-27) shows its capabilities, but its limits and prices were not in the text
    # that could be read: no figure is given here rather than a guessed one. Set them with
    # QWEN_MODEL_TABLE. Stream-only: always answered by streaming (handler/invokers.py).
    "qwq-plus": ModelInfo(None, None, None),
    # Open Qwen3 sizes (think unless enable_thinking is false). Searched 2026-11-27: a tutorial,
    # https://www.nodebyt.com/news/qwen-3-32b-api-curl-python-node-js-260424-en, gives qwen3-32b a
    # 128K context; no official page with their limits or prices could be read, so prices and max
    # output are not given. Other sizes (qwen3-235b-a22b, qwen3-30b-a3b, qwen3-14b, qwen3-8b, ...)
    # are added the same way through QWEN_MODEL_TABLE.
    "qwen3-32b": ModelInfo(128 * K, None, None),
}

_NUMBERS = {"context_window": int, "max_output": int, "input_price": float, "output_price": float}
_REQUIRED_FOR_NEW = ("context_window", "input_price", "output_price")


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
        elif all(key in changes for key in _REQUIRED_FOR_NEW):
            table[name] = ModelInfo(**changes)
        else:
            raise InvalidConfig(
                "QWEN_MODEL_TABLE", f"new model '{name}' needs context_window, input_price and output_price"
            )
    return table


def _fields(name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "tiers":
            changes[key] = _tiers(name, value)
            continue
        kind = _NUMBERS.get(key)
        if kind is None:
            raise InvalidConfig("QWEN_MODEL_TABLE", f"entry '{name}' has unknown field '{key}'")
        changes[key] = _number(f"{name}.{key}", value, kind)
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
        if not isinstance(tier, dict) or set(tier) != {"above", "input_price", "output_price"}:
            raise InvalidConfig("QWEN_MODEL_TABLE", f"'{where}' must be exactly {{above, input_price, output_price}}")
        tiers.append(
            PriceTier(
                _number(f"{where}.above", tier["above"], int),
                _number(f"{where}.input_price", tier["input_price"], float),
                _number(f"{where}.output_price", tier["output_price"], float),
            )
        )
    if any(a.above >= b.above for a, b in itertools.pairwise(tiers)):
        raise InvalidConfig("QWEN_MODEL_TABLE", f"'{name}.tiers' must be in ascending order of 'above'")
    return tuple(tiers)
