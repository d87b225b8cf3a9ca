"""The SDK seam: the one place that calls DashScope, and what its answers and exceptions mean.

Tests replace `Transport` with a fake taking Generation.call's keyword arguments; everything else
(the invokers, the retry loop, the handler) is plain code around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from handler.invokers import Invoker
from handler.result import Result

MAX_UPSTREAM_MESSAGE = 500  # a gateway's HTML page is not a useful error message


class Transport(Protocol):
    def __call__(self, **kwargs: Any) -> Any:
        """Call Generation.call(**kwargs) and return its response object."""
        ...


def dashscope_transport(**kwargs: Any) -> Any:
    # Imported on first use, not at module import: the CLI's --offline mode and the tests point
    # DASHSCOPE_HTTP_BASE_URL elsewhere first, and questions refused by decode never pay for it.
    from dashscope import Generation

    return Generation.call(**kwargs)


@dataclass(frozen=True)
class Transient:
    """A failure that another attempt may cure."""

    code: str
    message: str
    request_id: str = ""
    retry_after: float | None = None


def classify_response(response: Any, invoker: Invoker) -> Result | Transient:
    """A response object -> a final Result (200 or a 4xx refusal) or a Transient to retry."""
    status = _int(getattr(response, "status_code", None))
    request_id = str(getattr(response, "request_id", "") or "")
    code = str(getattr(response, "code", "") or "")
    message = _short(getattr(response, "message", "") or "")

    if status == 200:
        output = getattr(response, "output", None)
        if not isinstance(output, Mapping) or invoker.answer(output) is None:
            return Transient("MalformedResponse", "DashScope answered 200 without an answer in it", request_id)
        usage = getattr(response, "usage", None)
        return Result(
            status_code=200,
            request_id=request_id,
            code=code,
            message=message,
            output=_plain(output),
            usage=_plain(usage) if isinstance(usage, Mapping) else usage,
        )
    if status == 429 or status is None or status >= 500:
        if code in ("", "Unknown"):  # the SDK's code for a body that was not DashScope's JSON
            code = "Throttling" if status == 429 else f"ServerError{status or ''}"
        return Transient(
            code,
            message or f"DashScope answered HTTP {status}",
            request_id,
            _retry_after(getattr(response, "headers", None)),
        )
    return Result(status_code=status, request_id=request_id, code=code or "Unknown", message=message)


def classify_exception(error: BaseException) -> Transient | None:
    """A transport exception -> a Transient, or None when it is not a network or parsing failure."""
    import requests  # already imported by the SDK whenever it has raised

    if isinstance(error, requests.exceptions.Timeout):
        return Transient("RequestTimeout", "DashScope did not answer in time")
    if isinstance(error, requests.exceptions.ConnectionError):
        return Transient("ConnectionError", "the connection to DashScope failed")
    if isinstance(error, ValueError):
        # requests' JSONDecodeError (a RequestException too): a 200 cut short or not JSON at all.
        return Transient("MalformedResponse", "DashScope answered with a body that is not valid JSON")
    if isinstance(error, requests.exceptions.RequestException):
        return Transient("TransportError", f"the request to DashScope failed ({type(error).__name__})")
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _short(message: Any) -> str:
    text = message if isinstance(message, str) else str(message)
    return text if len(text) <= MAX_UPSTREAM_MESSAGE else text[:MAX_UPSTREAM_MESSAGE] + "..."


def _plain(value: Any) -> Any:
    """The SDK's dict subclasses -> plain dicts and lists, so results serialize the same everywhere."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _retry_after(headers: Any) -> float | None:
    if not isinstance(headers, Mapping):
        return None
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                return None  # the HTTP-date form: fall back to our own backoff
            return seconds if seconds >= 0 else None
    return None
