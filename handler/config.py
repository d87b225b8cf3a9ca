"""Settings read from the function's environment variables, checked once per read."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from handler.ask.models import ModelInfo, parse_table
from handler.errors import InvalidConfig
from handler.events import parameters
from handler.values import Value, field

Mode = Literal["messages", "prompt"]

DEFAULT_MODEL = "qwen-turbo"
DEFAULT_VISION_MODEL = "qwen3-vl-flash"  # the table's cheapest tier of a current vision model
DEFAULT_IMAGE_PROMPT = "请描述这张图片的内容;如果图片中有问题,请回答它。"
DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Image parts in one request: the guard counts text only, so this bounds what images add (docs/configuration.md).
DEFAULT_MAX_IMAGE_PARTS = 4
_32_MIB = 32 * 1024 * 1024
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
DEFAULT_DOCUMENT_MODEL = "qwen-long"  # reads documents by file id (docs/documents.md)
DEFAULT_DOCUMENT_PROMPT = "请总结这份文档的主要内容;如果文档中有问题,请回答它。"
# qwen-long's documented limit per document: larger ones are refused before any upload.
MAX_DOCUMENT_BYTES = 150 * 1024 * 1024

# What an event may set unless QWEN_EVENT_PARAMETERS says otherwise: why these, docs/configuration.md.
DEFAULT_EVENT_PARAMETERS = frozenset(
    {"temperature", "top_p", "top_k", "seed", "stop", "max_tokens", "presence_penalty", "repetition_penalty"}
)
CEILINGS = ("max_tokens", "n", "thinking_budget")  # what QWEN_EVENT_LIMITS may cap
# The reasoning a thinking call may spend when nothing set thinking_budget: max_tokens may not bound it.
DEFAULT_THINKING_BUDGET = 4096


class EventCaps(Value):
    """The operator's caps on what an event may choose (applied in handler/ask/plan.py). Ceilings come from
    QWEN_EVENT_LIMITS, else QWEN_PARAMETERS; max_tokens None means the model's max_output."""

    allowed: frozenset[str] = DEFAULT_EVENT_PARAMETERS
    max_tokens: int | None = None
    n: int = 1
    thinking_budget: int | None = None
    system_prompt: bool = False
    thinking_off: bool = True  # enable_thinking false only lowers cost: allowed unless QWEN_EVENT_PARAMETERS is none

    def ceiling(self, name: str) -> int | None:
        return getattr(self, name) if name in CEILINGS else None


class Settings(Value):
    """Everything the deployer chose; the API key is kept out of repr so it never reaches a log."""

    api_key: str = field(repr=False)
    mode: Mode = "messages"
    model: str = DEFAULT_MODEL
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    parameters: Mapping[str, Any] = field(default_factory=dict)
    allowed_models: frozenset[str] = frozenset({DEFAULT_MODEL})
    max_attempts: int = 3
    request_timeout: float = 60.0
    connect_timeout: float = 5.0
    log_content: bool = False
    base_url: str | None = None
    batch_concurrency: int = 8
    oss_output_prefix: str = "answers/"
    jsonl_realtime_max_lines: int = 20
    oss_max_bytes: int = 1024 * 1024
    oss_endpoint: str | None = None
    models: Mapping[str, ModelInfo] = field(default_factory=lambda: parse_table(""))
    trim_history: bool = False
    max_event_bytes: int = 8 * 1024 * 1024
    answer_bucket: str | None = None
    oss_buckets: frozenset[str] = frozenset()  # the only buckets whose question files are answered
    fc_destination: bool = False
    vision_model: str = DEFAULT_VISION_MODEL
    image_prompt: str = DEFAULT_IMAGE_PROMPT
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_image_parts: int = DEFAULT_MAX_IMAGE_PARTS
    event_caps: EventCaps = field(default_factory=EventCaps)
    document_model: str = DEFAULT_DOCUMENT_MODEL
    document_prompt: str = DEFAULT_DOCUMENT_PROMPT
    oss_max_document_bytes: int = MAX_DOCUMENT_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and check every variable; raise InvalidConfig naming the first bad one."""
        api_key = env.get("DASHSCOPE_API_KEY", "").strip()
        if not api_key:
            raise InvalidConfig("DASHSCOPE_API_KEY", "is not set: the function needs a DashScope API key")

        mode = env.get("QWEN_MODE", "messages").strip().lower() or "messages"
        if mode not in ("messages", "prompt"):
            raise InvalidConfig("QWEN_MODE", "must be 'messages' or 'prompt'")

        model = env.get("QWEN_MODEL", "").strip() or DEFAULT_MODEL
        allowed = frozenset(_listed(env.get("QWEN_ALLOWED_MODELS", ""))) or frozenset({model})
        if model not in allowed:
            raise InvalidConfig("QWEN_ALLOWED_MODELS", f"must include QWEN_MODEL ({model})")

        answer_bucket = _bucket(env.get("QWEN_ANSWER_BUCKET", ""))
        oss_buckets = _buckets(env.get("QWEN_OSS_BUCKETS", ""))
        if answer_bucket is not None and answer_bucket in oss_buckets:
            raise InvalidConfig(
                "QWEN_ANSWER_BUCKET",
                f"({answer_bucket}) is also listed in QWEN_OSS_BUCKETS: the answer store needs a bucket of its own, "
                "where no question files are answered (their answer files could collide with stored answers); "
                "use another bucket for one of the two",
            )

        configured = _parameters(env.get("QWEN_PARAMETERS", ""))
        models = parse_table(env.get("QWEN_MODEL_TABLE", ""))
        _check_max_tokens(configured, allowed, models)

        return cls(
            api_key=api_key,
            mode=mode,  # type: ignore[arg-type]  # checked above
            model=model,
            system_prompt=env.get("QWEN_SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
            parameters=configured,
            allowed_models=allowed,
            max_attempts=_number(env, "QWEN_MAX_ATTEMPTS", 3, low=1, high=10, integer=True),
            request_timeout=_number(env, "QWEN_REQUEST_TIMEOUT", 60.0, low=1, high=86400),
            connect_timeout=_number(env, "QWEN_CONNECT_TIMEOUT", 5.0, low=0.1, high=600),
            log_content=_flag(env, "QWEN_LOG_CONTENT"),
            base_url=_url(env, "DASHSCOPE_HTTP_BASE_URL", "https://dashscope-intl.aliyuncs.com/api/v1"),
            batch_concurrency=_number(env, "QWEN_BATCH_CONCURRENCY", 8, low=1, high=64, integer=True),
            oss_output_prefix=_prefix(env.get("QWEN_OSS_OUTPUT_PREFIX", "answers/")),
            jsonl_realtime_max_lines=_number(env, "QWEN_JSONL_REALTIME_MAX_LINES", 20, low=1, high=1000, integer=True),
            oss_max_bytes=_number(env, "QWEN_OSS_MAX_BYTES", 1024 * 1024, low=1, high=_32_MIB, integer=True),
            oss_endpoint=_url(env, "QWEN_OSS_ENDPOINT", "https://oss-cn-hangzhou-internal.aliyuncs.com"),
            models=models,
            trim_history=_flag(env, "QWEN_TRIM_HISTORY"),
            max_event_bytes=_number(env, "QWEN_MAX_EVENT_BYTES", 8 * 1024**2, low=1024, high=_32_MIB, integer=True),
            answer_bucket=answer_bucket,
            oss_buckets=oss_buckets,
            fc_destination=_flag(env, "QWEN_FC_DESTINATION"),
            vision_model=env.get("QWEN_VISION_MODEL", "").strip() or DEFAULT_VISION_MODEL,
            image_prompt=env.get("QWEN_IMAGE_PROMPT", "").strip() or DEFAULT_IMAGE_PROMPT,
            max_image_bytes=_number(
                env, "QWEN_OSS_MAX_IMAGE_BYTES", DEFAULT_MAX_IMAGE_BYTES, low=1, high=_32_MIB, integer=True
            ),
            event_caps=_event_caps(env, configured),
            max_image_parts=_number(env, "QWEN_MAX_IMAGE_PARTS", DEFAULT_MAX_IMAGE_PARTS, low=1, high=64, integer=True),
            document_model=env.get("QWEN_DOCUMENT_MODEL", "").strip() or DEFAULT_DOCUMENT_MODEL,
            document_prompt=env.get("QWEN_DOCUMENT_PROMPT", "").strip() or DEFAULT_DOCUMENT_PROMPT,
            oss_max_document_bytes=_number(
                env, "QWEN_OSS_MAX_DOCUMENT_BYTES", MAX_DOCUMENT_BYTES, low=1, high=MAX_DOCUMENT_BYTES, integer=True
            ),
        )


VARIABLES = (
    "DASHSCOPE_API_KEY",
    "DASHSCOPE_HTTP_BASE_URL",
    "QWEN_MODE",
    "QWEN_MODEL",
    "QWEN_SYSTEM_PROMPT",
    "QWEN_PARAMETERS",
    "QWEN_ALLOWED_MODELS",
    "QWEN_MAX_ATTEMPTS",
    "QWEN_REQUEST_TIMEOUT",
    "QWEN_CONNECT_TIMEOUT",
    "QWEN_LOG_CONTENT",
    "QWEN_BATCH_CONCURRENCY",
    "QWEN_OSS_OUTPUT_PREFIX",
    "QWEN_JSONL_REALTIME_MAX_LINES",
    "QWEN_OSS_MAX_BYTES",
    "QWEN_OSS_ENDPOINT",
    "QWEN_MODEL_TABLE",
    "QWEN_TRIM_HISTORY",
    "QWEN_MAX_EVENT_BYTES",
    "QWEN_ANSWER_BUCKET",
    "QWEN_OSS_BUCKETS",
    "QWEN_FC_DESTINATION",
    "QWEN_VISION_MODEL",
    "QWEN_IMAGE_PROMPT",
    "QWEN_OSS_MAX_IMAGE_BYTES",
    "QWEN_MAX_IMAGE_PARTS",
    "QWEN_EVENT_PARAMETERS",
    "QWEN_EVENT_LIMITS",
    "QWEN_EVENT_SYSTEM_PROMPT",
    "QWEN_DOCUMENT_MODEL",
    "QWEN_DOCUMENT_PROMPT",
    "QWEN_OSS_MAX_DOCUMENT_BYTES",
)
_RAW_NAMES = tuple(os.fsencode(name) for name in VARIABLES)
_parsed: dict[tuple, Settings] = {}


def settings_for(env: Mapping[str, str]) -> Settings:
    """Settings.from_env, parsed once per distinct configuration (FC's never changes in an instance); keyed
    on os.environ's undecoded bytes, which is cheaper than decoding every variable (docs/performance.md)."""
    raw = getattr(env, "_data", None) if env is os.environ else None
    key = tuple(map(raw.get, _RAW_NAMES)) if isinstance(raw, dict) else tuple(map(env.get, VARIABLES))
    settings = _parsed.get(key)
    if settings is None:
        settings = Settings.from_env(env)  # raises InvalidConfig, which is not cached
        if len(_parsed) >= 8:
            _parsed.clear()
        _parsed[key] = settings
    return settings


def _prefix(value: str) -> str:
    prefix = value.strip()
    if not prefix or prefix.startswith("/") or ".." in prefix.split("/"):
        raise InvalidConfig("QWEN_OSS_OUTPUT_PREFIX", "must be a relative key prefix such as answers/")
    return prefix if prefix.endswith("/") else prefix + "/"


# OSS bucket names: 3-63 lowercase letters, digits and hyphens, no hyphen at either end.
_BUCKET = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"


def _bucket(value: str) -> str | None:
    bucket = value.strip()
    if not bucket:
        return None
    if not re.fullmatch(_BUCKET, bucket):
        raise InvalidConfig("QWEN_ANSWER_BUCKET", "must be an OSS bucket name (3-63 lowercase letters, digits, -)")
    return bucket


def _buckets(value: str) -> frozenset[str]:
    names = _listed(value)
    for name in names:
        if not re.fullmatch(_BUCKET, name):
            raise InvalidConfig(
                "QWEN_OSS_BUCKETS",
                f"holds {name[:80]!r}, which is not an OSS bucket name (3-63 lowercase letters, digits, -); "
                "list bucket names separated by commas, such as qwen-questions,team-inbox",
            )
    return frozenset(names)


def _listed(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _json_object(name: str, text: str, example: str) -> dict[str, Any]:
    """A variable's JSON object, {} when it is blank."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidConfig(name, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidConfig(name, f"must be a JSON object such as {example}")
    return value


def _parameters(value: str) -> Mapping[str, Any]:
    parsed = _json_object("QWEN_PARAMETERS", value, '{"temperature": 0.7}')
    if found := parameters.problems(parsed):
        name, problem = found[0]
        raise InvalidConfig("QWEN_PARAMETERS", f"field '{name}' {problem}")
    return parsed


def _check_max_tokens(configured: Mapping[str, Any], allowed: frozenset[str], models: Mapping[str, ModelInfo]) -> None:
    """Refuse at startup a max_tokens above an allowed model's max_output: every event for it would fail."""
    max_tokens = configured.get("max_tokens")
    if not isinstance(max_tokens, int):
        return
    for name in sorted(allowed):
        info = models.get(name)
        if info is not None and info.max_output is not None and max_tokens > info.max_output:
            raise InvalidConfig(
                "QWEN_PARAMETERS",
                f"max_tokens {max_tokens} is more than {name} (in QWEN_ALLOWED_MODELS) can answer: at most "
                f"{info.max_output} output tokens; lower max_tokens or remove {name} from QWEN_ALLOWED_MODELS",
            )


def _event_caps(env: Mapping[str, str], configured: Mapping[str, Any]) -> EventCaps:
    """QWEN_EVENT_PARAMETERS, QWEN_EVENT_LIMITS and QWEN_EVENT_SYSTEM_PROMPT."""
    raw = env.get("QWEN_EVENT_PARAMETERS", "").strip()
    if not raw:
        allowed = DEFAULT_EVENT_PARAMETERS
    elif raw.lower() == "none":
        allowed = frozenset()
    else:
        allowed = frozenset(_listed(raw))
        unknown = sorted(allowed - set(parameters.CHECKS))
        if unknown:
            raise InvalidConfig(
                "QWEN_EVENT_PARAMETERS",
                f"names {unknown[0][:64]!r}, which is not a generation parameter; list some of: {parameters.ALLOWED} "
                "(or none)",
            )
    limits: dict[str, int] = {}
    given = _json_object("QWEN_EVENT_LIMITS", env.get("QWEN_EVENT_LIMITS", "").strip(), '{"max_tokens": 1024, "n": 1}')
    for name, value in given.items():
        if name not in CEILINGS:
            raise InvalidConfig(
                "QWEN_EVENT_LIMITS", f"has {str(name)[:64]!r}; ceilings exist for {', '.join(CEILINGS)}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidConfig("QWEN_EVENT_LIMITS", f"'{name}' must be a whole number of at least 1")
        limits[name] = value

    def ceiling(name: str) -> int | None:
        if name in limits:
            return limits[name]
        value = configured.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    thinking_budget = ceiling("thinking_budget")
    if "thinking_budget" in allowed and thinking_budget is None:
        raise InvalidConfig(
            "QWEN_EVENT_LIMITS",
            "needs a thinking_budget ceiling when QWEN_EVENT_PARAMETERS lets events set thinking_budget, "
            'such as {"thinking_budget": 4096}',
        )
    return EventCaps(
        allowed=allowed,
        max_tokens=ceiling("max_tokens"),
        n=ceiling("n") or 1,
        thinking_budget=thinking_budget,
        system_prompt=_flag(env, "QWEN_EVENT_SYSTEM_PROMPT"),
        thinking_off=raw.lower() != "none",
    )


def _number(
    env: Mapping[str, str], name: str, default: float, *, low: float, high: float, integer: bool = False
) -> Any:
    """The variable as a number within bounds (an int when `integer`, as is then its default), or `default`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise InvalidConfig(name, f"must be {kind} from {_plain(low)} to {_plain(high)}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidConfig(name, f"must be from {_plain(low)} to {_plain(high)}")
    return value


def _plain(number: float) -> str:
    """A bound as people write it: 33554432, not 3.35544e+07."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _url(env: Mapping[str, str], name: str, example: str) -> str | None:
    """An http(s) URL with a host, or None when unset; anything else fails at startup, not at each call."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    problem = f"must be an http(s) URL with a host, such as {example}"
    if any(ch.isspace() or not ch.isprintable() for ch in raw):
        raise InvalidConfig(name, problem)
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number in range
    except ValueError:
        raise InvalidConfig(name, problem) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidConfig(name, problem)
    if "{" in raw or "}" in raw:  # copied from a page showing https://{WorkspaceId}.<region>.maas...
        raise InvalidConfig(name, "still holds a {placeholder}: replace {WorkspaceId} with your workspace's ID")
    return raw


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise InvalidConfig(name, "must be true or false")
