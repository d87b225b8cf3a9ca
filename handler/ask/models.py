"""What each model can take and what it costs: context window, longest answer, CNY per 1,000 tokens.

The first four rows keep the reference's context windows and prices. Every other figure comes from
Alibaba Cloud's own documentation (help.aliyun.com, alibabacloud.com/help), cited beside its row
with the date it was read; a figure no official page gave is None and said so, never taken from a
third-party copy (None: no guard for that limit, no cost when a price is missing). Prices and limits
change, so QWEN_MODEL_TABLE (a JSON object of the same schema) overrides or extends the table
without a code change, e.g. with the figures of the Model Studio console (illustrative values):

    QWEN_MODEL_TABLE='{"qwen-max": {"input_price": 0.0024}, "my-model": {"context_window": 100000,
                       "max_output": 8000, "input_price": 0.001, "output_price": 0.002}}'

Several models are billed by the length of the call's input: `tiers` lists the prices that apply
above a number of input tokens, e.g. [{"above": 131072, "input_price": 0.0006, "output_price": 0.006}];
`input_price` and `output_price` are the prices below the first tier.

Each row also says which DashScope API serves the model (`api`): "text" is text-generation
(dashscope.Generation), "multimodal" is multimodal-generation (MultiModalConversation's endpoint),
and None (not said) means it is learned: asked on text-generation first, and on multimodal-generation
once more when DashScope answers its "url error" 400 (handler/ask/apis.py). `thinking` says whether
the model reasons: "hybrid" (enable_thinking switches it), "always" (it always thinks and only
streams), None (not said). A row of QWEN_MODEL_TABLE may give only these two, e.g.
{"qwen3.9-plus": {"api": "multimodal"}}: its figures are then unknown.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from handler.errors import InvalidConfig
from handler.values import Value, replace


class PriceTier(Value):
    """The prices of a call whose input is longer than `above` tokens."""

    above: int
    input_price: float
    output_price: float


class ModelInfo(Value):
    context_window: int | None  # input + output tokens; None: not known, not guarded
    input_price: float | None  # CNY per 1,000 input tokens (the first tier); None: not known
    output_price: float | None  # CNY per 1,000 output tokens, reasoning tokens included
    max_output: int | None = None  # the longest answer (max_tokens) the model allows; None: not known
    tiers: tuple[PriceTier, ...] = ()  # ascending by `above`
    api: str | None = None  # "text" | "multimodal"; None: learned per instance (handler/ask/apis.py)
    thinking: str | None = None  # "hybrid" | "always"; None: not said
    max_input: int | None = None  # the longest input the model takes (Alibaba's "max input"); None: not known

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


# The stored copies of the pages below were read on 2026-11-27 through the project's search tool; a
# copy is not the live page, and its own date is given where the copy shows one.
TEXT, MULTIMODAL = "text", "multimodal"
HYBRID, ALWAYS = "hybrid", "always"
_NOT_FOUND = ModelInfo(None, None, None)
_TEXT_NOT_FOUND = replace(_NOT_FOUND, api=TEXT)
_MULTIMODAL_NOT_FOUND = replace(_NOT_FOUND, api=MULTIMODAL)

DEFAULT_MODELS: Mapping[str, ModelInfo] = {
    # api: the rows down to qwen3-32b are text-generation models (the API reference's text models, the
    # reference's Generation calls; the seed served them all through dashscope.Generation).
    # Context windows and prices: the reference's, unchanged. max_output of qwen-max read 2026-11-27
    # from Model Studio's model list (Chinese), stored as
    # https://help.aliyun.com/zh/model-studio/developer-reference/billing-for-applied-computer-vision
    # (no page date in the copy; its qwen-max row reads "currently equal to qwen-max-2024-09-19"):
    # qwen-max stable, context 32,768, max input 30,720, max output 8,192, 0.02 / 0.06 CNY per 1K.
    "qwen-max": ModelInfo(32_768, 0.02, 0.06, max_output=8_192, api=TEXT, max_input=30_720),
    # The same page's flagship summary gives qwen-plus 131,072 and 0.0008 / 0.002 CNY per 1K (as the
    # reference); its qwen-plus row with the max output was not in the readable copy, so None.
    "qwen-plus": ModelInfo(131_072, 0.0008, 0.002, api=TEXT),
    # max_output read 2026-11-27 from https://help.aliyun.com/en/model-studio/qwen-turbo and
    # https://www.alibabacloud.com/help/en/model-studio/qwen-turbo (no page date in the copies; the
    # page says qwen-turbo equals the snapshot qwen-turbo-2025-04-28): Context Window 131072, Max
    # Input Length 98304, Max Output Length 16384. (The older model list above gave qwen-turbo a
    # 1,000,000 context; the reference's 131,072, which the per-model page also gives, is kept.)
    "qwen-turbo": ModelInfo(131_072, 0.0003, 0.0006, max_output=16_384, api=TEXT, max_input=98_304),
    # 10,000,000 context confirmed 2026-11-27 by
    # https://help.aliyun.com/zh/model-studio/developer-reference/qwen-long-api and
    # https://www.alibabacloud.com/help/tc/model-studio/long-context-qwen-long (copy "updated Jan 01,
    # 2026"); the max output was not in the readable copies, so None. Third-party copies of that
    # page disagree (8,192 on lryc.cn, 6,000 on aws.yunbaozi.com): not used.
    "qwen-long": ModelInfo(10_000_000, 0.0005, 0.002, api=TEXT),
    # qwen-flash: Alibaba's OpenAI-compatible page lists it (qwen-flash, qwen-flash-2025-07-28;
    # https://www.alibabacloud.com/help/ja/model-studio/compatibility-of-openai-with-dashscope, copy
    # "updated Jan 06, 2026"), but no official page with its limits or prices could be read on
    # 2026-11-27: every figure is None. Corroboration only, not used: a third-party copy of its
    # model page (bare-IP GitLab, 47.109.151.80) reads 1M context, 32K max output, tiers by input.
    "qwen-flash": _TEXT_NOT_FOUND,
    # qwen3-max: listed on the same OpenAI-compatible page; no official page with its limits or
    # prices could be read on 2026-11-27: every figure is None. Corroboration only, not used: the
    # same GitLab copy and vercel.com/ai-gateway read 256K (262,144) context and 64K (65,536) output.
    "qwen3-max": _TEXT_NOT_FOUND,
    # qwq-plus: its official page https://www.alibabacloud.com/help/en/model-studio/qwq-plus.md was
    # found on 2026-11-27, but the readable copy ends before its limits and prices: every figure
    # is None. Stream-only: always answered by streaming (handler/ask/invokers.py).
    "qwq-plus": replace(_TEXT_NOT_FOUND, thinking=ALWAYS),
    # Open Qwen3 sizes (think unless enable_thinking is false): no official Model Studio page with
    # their limits or prices could be read on 2026-11-27, for qwen3-32b nor for qwen3-235b-a22b,
    # qwen3-30b-a3b, qwen3-14b or qwen3-8b: qwen3-32b is listed with every figure None and the
    # others are left to QWEN_MODEL_TABLE. (A news site's 128K for qwen3-32b is not used.)
    "qwen3-32b": replace(_TEXT_NOT_FOUND, thinking=HYBRID),
    # --- The current generation (looked for again on 2026-12-01 through the search tool) ---
    # Which API: Alibaba's DashScope API reference (help.aliyun.com/en/model-studio/qwen-api-via-dashscope,
    # as quoted in this project's issue 16) gives qwen3.7-plus, qwen3.5-plus and qwen3-vl-plus as its
    # multimodal-generation examples; the SDK's own provider (dashscope 1.27.8,
    # dashscope/acli/providers/tongyi.py) says its default qwen3.8-max and "the vl/omni family live"
    # on multimodal-generation, and its guide (acli/examples/dashscope-sdk-expert/.acli/skills/
    # multimodal.md) asks qwen3-vl-flash and qwen3-vl-plus through MultiModalConversation.
    # Alibaba's vision page (alibabacloud.com/help/en/model-studio/vision, copy "Last Updated: Jun 23,
    # 2026") answers an image with qwen3.7-plus. qwen3.8-flash: no Alibaba page read says which API
    # serves it; it is the flash tier of the same multimodal generation (third-party model pages,
    # vercel.com/ai-gateway/models/qwen3.8-flash, call it multimodal: corroboration only), so it is
    # "multimodal" here, and a QWEN_MODEL_TABLE entry {"qwen3.8-flash": {"api": "text"}} overrides it.
    # Figures: no Alibaba page with the limits or prices of these five could be read on 2026-12-01
    # (the stored copies of alibabacloud.com's model list and vision pages end before their tables;
    # the figures found are third-party: vercel.com, docs.venice.ai, a bare-IP GitLab copy of model
    # data): every figure is None, to be filled from the Model Studio console (QWEN_MODEL_TABLE).
    # Thinking: qwen3.8-max thinks always (issue 16: "thinking only"; the SDK's provider probes its
    # reasoning tokens on every call); the others switch with enable_thinking ("hybrid", as the
    # Qwen3 generation does; the GitLab copy's qwen3-vl-plus/-flash intros read 实现思考模式和非思考模式的有效融合).
    "qwen3.7-plus": replace(_MULTIMODAL_NOT_FOUND, thinking=HYBRID),
    "qwen3.8-flash": replace(_MULTIMODAL_NOT_FOUND, thinking=HYBRID),
    "qwen3.8-max": replace(_MULTIMODAL_NOT_FOUND, thinking=ALWAYS),
    "qwen3-vl-plus": replace(_MULTIMODAL_NOT_FOUND, thinking=HYBRID),
    "qwen3-vl-flash": replace(_MULTIMODAL_NOT_FOUND, thinking=HYBRID),
}

_NUMBERS = {"context_window": int, "max_output": int, "max_input": int, "input_price": float, "output_price": float}
_REQUIRED_FOR_NEW = ("context_window", "input_price", "output_price")
APIS = (TEXT, MULTIMODAL)
THINKING = (HYBRID, ALWAYS)
_CHOICES: Mapping[str, tuple[str, ...]] = {"api": APIS, "thinking": THINKING}


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
            # Figures left out are unknown (None); an entry naming only its API is what the learning
            # log line suggests, so it must be accepted as it is written there.
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
            continue
        if key in _CHOICES:
            if value is not None and value not in _CHOICES[key]:
                allowed = " or ".join(f'"{choice}"' for choice in _CHOICES[key])
                raise InvalidConfig("QWEN_MODEL_TABLE", f"'{name}.{key}' must be {allowed} (or null)")
            changes[key] = value
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


def likely_meant(name: str, table: Mapping[str, ModelInfo]) -> str | None:
    """The table's model `name` is within two edits of (a typo such as qwen-trubo), or None: when the
    name is in the table, or no listed name is that close."""
    if name in table:
        return None
    best: tuple[int, str] | None = None
    for known in table:
        distance = _edits(name, known, limit=2)
        if distance <= 2 and (best is None or (distance, known) < best):
            best = (distance, known)
    return best[1] if best is not None else None


def _edits(a: str, b: str, *, limit: int) -> int:
    """Levenshtein distance (insert, delete, substitute; a swap of neighbours counts as one), or
    limit + 1 once it is known to exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]
