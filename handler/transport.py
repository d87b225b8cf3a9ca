"""The SDK seam: the one place that calls DashScope, and what its answers and exceptions mean.

Tests replace `Transport` with a fake taking Generation.call's keyword arguments; everything else
(the invokers, the retry loop, the handler) is plain code around it.
"""

from __future__ import annotations

import os
import threading
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


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "requests_ca_bundle", "curl_ca_bundle")
POOL_SIZE = 16  # connections kept per host: a batch's concurrent questions each reuse one


class DashScopeTransport:
    """Generation.call through one HTTP session of our own, created on first use and kept for the
    instance's life (one pooled keep-alive connection serves every warm invocation).

    The session ignores the environment when no proxy or CA-bundle variable is set: requests would
    otherwise scan every environment variable for proxy settings on each call (a tenth of a warm
    invocation here) and let a ~/.netrc replace the API key's Authorization header.
    """

    def __init__(self) -> None:
        self._generation: Any = None
        self._session: Any = None
        self._lock = threading.Lock()

    def __call__(self, **kwargs: Any) -> Any:
        if self._session is None:
            self._start()
        return self._generation.call(**kwargs, session=self._session)

    def _start(self) -> None:
        # Imported on first use, not at module import: the CLI's --offline mode and the tests point
        # DASHSCOPE_HTTP_BASE_URL elsewhere first, and questions refused by decode never pay for it.
        with self._lock:
            if self._session is not None:
                return
            import requests
            from dashscope import Generation

            try:  # the SDK's adapter adds TCP keepalive, so a connection a NAT dropped fails fast
                from dashscope.api_entities.http_request import _KeepAliveHTTPAdapter as Adapter
            except ImportError:
                from requests.adapters import HTTPAdapter as Adapter

            session = requests.Session()
            adapter = Adapter(pool_connections=4, pool_maxsize=POOL_SIZE)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.trust_env = any(os.environ.get(name) or os.environ.get(name.upper()) for name in PROXY_VARIABLES)
            self._generation, self._session = Generation, session


dashscope_transport = DashScopeTransport()


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
        if not isinstance(output, dict) or invoker.answer(output) is None:
            return Transient("MalformedResponse", "DashScope answered 200 without an answer in it", request_id)
        usage = getattr(response, "usage", None)
        # The SDK's output and usage are dict subclasses: JSON-serializable as they are, so they are
        # kept, not copied (a deep copy per answer was a tenth of the warm overhead).
        return Result(
            status_code=200,
            request_id=request_id,
            code=code,
            message=message,
            output=output,
            usage=usage if isinstance(usage, dict) else None,
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
