"""The generation parameters an event or the deployment may set, and how each is checked. An allowlist:
anything else (api_key, headers, stream, base_address, ...) would change where or how DashScope is called."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], str | None]  # returns what is wrong, or None


def _number(low: float | None = None, high: float | None = None, *, high_open: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return "must be a number"
        if low is not None and value < low:
            return f"must be at least {low}"
        if high is not None and (value >= high if high_open else value > high):
            return f"must be {'below' if high_open else 'at most'} {high}"
        return None

    return check


def _integer(low: int, high: int | None = None) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if value < low or (high is not None and value > high):
            return f"must be between {low} and {high}" if high is not None else f"must be at least {low}"
        return None

    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be a JSON object"


def _stop(value: Any) -> str | None:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(s, str) for s in value)):
        return None
    return "must be a string or a list of strings"


CHECKS: Mapping[str, Check] = {
    "temperature": _number(0, 2, high_open=True),
    "top_p": _number(0, 1),
    "top_k": _integer(0),
    "max_tokens": _integer(1),
    "seed": _integer(0, 2**31 - 1),
    "stop": _stop,
    "presence_penalty": _number(-2, 2),
    "repetition_penalty": _number(0),
    "enable_search": _boolean,
    "search_options": _object,
    "response_format": _object,
    "enable_thinking": _boolean,
    "thinking_budget": _integer(1),
    "n": _integer(1, 4),
    "logprobs": _boolean,
    "top_logprobs": _integer(0, 5),
}

ALLOWED = ", ".join(sorted(CHECKS))


def problems(parameters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (name, what is wrong) in `parameters`, in their order; empty when all are allowed."""
    found = []
    for name, value in parameters.items():
        check = CHECKS.get(name)
        if check is None:
            found.append((name, f"is not an allowed generation parameter; allowed: {ALLOWED}"))
        elif (problem := check(value)) is not None:
            found.append((name, problem))
    return found
