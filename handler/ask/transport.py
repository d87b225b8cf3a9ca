"""The SDK seam: the one place that calls DashScope, and what its answers and exceptions mean.

A transport is called with a Request's SDK arguments as keywords plus `api=` and `bounds=`, and
returns a streamed answer's chunks: so a test's fake is any function of **kwargs. Every call streams,
and three limits hold for each attempt, whatever the SDK does inside it:
- connecting waits at most QWEN_CONNECT_TIMEOUT, never past the deadline (the SDK's own resend too);
- silence, before the first chunk and between chunks, lasts at most QWEN_REQUEST_TIMEOUT, never past
  the deadline: the socket's timeout is set again before each read near the deadline;
- a stream that keeps talking is cut by the reader at the deadline, not here.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from handler.ask.invokers import Invoker
from handler.errors import InvalidConfig
from handler.result import Result
from handler.values import Value

if TYPE_CHECKING:
    from handler.ask.attempts import Deadline

MAX_UPSTREAM_MESSAGE = 500  # a gateway's HTML page is not a useful error message
TIMEOUT_FLOOR = 0.01  # a socket timeout of 0 would mean "non-blocking", not "no time"


class Bounds(Value):
    """How long one attempt may wait: for a connection, for the next chunk, and in all."""

    deadline: Deadline
    connect: float
    silence: float

    def connect_timeout(self) -> float:
        return max(TIMEOUT_FLOOR, min(self.connect, self.deadline.remaining()))

    def read_timeout(self) -> float:
        return max(TIMEOUT_FLOOR, min(self.silence, self.deadline.remaining()))


class Transport(Protocol):
    """Calls `api`'s endpoint with the SDK's `arguments` (stream=True) within `bounds`; returns its chunks."""

    def __call__(self, *, api: str = "text", bounds: Bounds | None = None, **arguments: Any) -> Iterable[Any]: ...


class Request(Value):
    """One call to DashScope: the API that serves the model, the SDK's keyword arguments, the bounds."""

    api: str
    arguments: Mapping[str, Any]
    bounds: Bounds | None = None

    def send(self, transport: Transport, **more: Any) -> Iterable[Any]:  # `more`: this attempt's arguments only
        return transport(**self.arguments, **more, api=self.api, bounds=self.bounds)


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "requests_ca_bundle", "curl_ca_bundle")
POOL_SIZE = 16  # connections kept per host: a batch's concurrent questions each reuse one
# Pooled connections idle longer are closed, not reused: a NAT may have dropped them while FC froze the instance.
MAX_IDLE_SECONDS = 20.0


def trusts_environment() -> bool:
    """Whether a session of ours reads the environment: only when a proxy or CA-bundle variable is set."""
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in PROXY_VARIABLES)


# The attempt running on this thread: the adapter reads its bounds on every send (the SDK's own
# resend included) and leaves the live response here for the stream to bound each read.
_attempt = threading.local()


class DashScopeTransport:
    """The SDK's calls through one HTTP session of our own, made on first use and kept for the instance's
    life; it ignores the environment unless a proxy or CA-bundle variable is set (else requests scans
    every variable on each call, and a ~/.netrc could replace the API key's Authorization header)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._calls: dict[str, Callable[..., Any]] = {}
        self._session: Any = None
        self._lock = threading.Lock()
        self.clock = clock
        self._busy = 0  # calls in flight: their connections are not idle
        self._idle_since: float | None = None  # when the last call in flight ended

    def __call__(self, *, api: str = "text", bounds: Bounds | None = None, **arguments: Any) -> Iterable[Any]:
        if self._session is None:
            self._start()
        call = self._calls[api]
        return _BoundedStream(lambda: call(**arguments, session=self._session), bounds, self)

    def begin(self) -> None:
        """A call starts: when every pooled connection has been idle past MAX_IDLE_SECONDS, close them first."""
        with self._lock:
            idle = self._idle_since is not None and self.clock() - self._idle_since > MAX_IDLE_SECONDS
            if self._busy == 0 and idle and self._session is not None:
                for adapter in self._session.adapters.values():
                    adapter.close()  # closes the pooled sockets; the next send opens a new connection
            self._busy += 1

    def end(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy == 0:
                self._idle_since = self.clock()

    def _start(self) -> None:
        # On first use: the SDK reads DASHSCOPE_HTTP_BASE_URL at its import, and refused questions never pay for it.
        with self._lock:
            if self._session is not None:
                return
            import requests
            from dashscope import Generation

            from handler.ask import multimodal  # never MultiModalConversation.call: see that module

            session = requests.Session()
            adapter = _bounded_adapter()(pool_connections=4, pool_maxsize=POOL_SIZE)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.trust_env = trusts_environment()
            self._calls, self._session = {"text": Generation.call, "multimodal": multimodal.call}, session


def _bounded_adapter() -> type:
    """An HTTP adapter that gives every send (connect, read) timeouts from the attempt's bounds,
    whatever scalar the SDK passes, and keeps the response so its reads can be bounded too."""
    import requests

    try:  # the SDK's adapter adds TCP keepalive, so a connection a NAT dropped fails fast
        from dashscope.api_entities.http_request import _KeepAliveHTTPAdapter as Base
    except ImportError:
        from requests.adapters import HTTPAdapter as Base

    class BoundedAdapter(Base):  # type: ignore[misc,valid-type]
        def send(self, request: Any, stream: bool = False, timeout: Any = None, **kwargs: Any) -> Any:
            bounds: Bounds | None = getattr(_attempt, "bounds", None)
            if bounds is not None:
                if bounds.deadline.remaining() <= TIMEOUT_FLOOR:
                    raise requests.exceptions.ConnectTimeout("no time left to reach DashScope", request=request)
                timeout = (bounds.connect_timeout(), bounds.read_timeout())
            response = super().send(request, stream=stream, timeout=timeout, **kwargs)
            if bounds is not None:
                _attempt.response = response
            return response

    return BoundedAdapter


class _BoundedStream:
    """The SDK's chunk generator, read with the socket's timeout reset to the bounds before each
    chunk; closing it (or leaving it early) closes the HTTP response, so nothing keeps streaming."""

    def __init__(self, call: Any, bounds: Bounds | None, pool: DashScopeTransport | None = None) -> None:
        self._call = call
        self._bounds = bounds
        self._pool = pool

    def __iter__(self) -> Iterator[Any]:
        bounds = self._bounds
        _attempt.bounds, _attempt.response = bounds, None
        chunks: Any = None
        socket: Any = None
        if self._pool is not None:
            self._pool.begin()
        try:
            chunks = iter(self._call())  # the request is sent on the first next(), under the bounds
            # The timeout set at the send holds until less than the silence allowance is left; then it shrinks.
            at, silence, clock = (bounds.deadline.at, bounds.silence, bounds.deadline.clock) if bounds else (0, 0, None)
            while True:
                if socket is not None and clock is not None and (left := at - clock()) < silence:
                    socket.settimeout(max(TIMEOUT_FLOOR, left))
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                if socket is None:
                    socket = _socket_of(getattr(_attempt, "response", None))
                yield chunk
        finally:
            response = getattr(_attempt, "response", None)
            _attempt.bounds = _attempt.response = None
            if chunks is not None and hasattr(chunks, "close"):
                chunks.close()
            if response is not None:
                response.close()  # a stream left early is dropped, not returned to the pool half-read
            if self._pool is not None:
                self._pool.end()


def _socket_of(response: Any) -> Any:
    """The socket under a streamed requests response (urllib3 2: raw.connection.sock), or None."""
    connection = getattr(getattr(response, "raw", None), "connection", None)
    return getattr(connection, "sock", None)


dashscope_transport = DashScopeTransport()


class Transient(Value):
    """A failure that another attempt may cure."""

    code: str
    message: str
    request_id: str = ""
    retry_after: float | None = None


# An error frame inside a stream carries its HTTP status only in an SSE comment (":HTTP_STATUS/500"),
# which the SDK skips: it reports every such frame as 400. These codes are DashScope's for 429/5xx.
_TRANSIENT_PREFIXES = ("Throttling", "InternalError")
_TRANSIENT_CODES = frozenset({"ServiceUnavailable", "SystemError", "ModelUnavailable", "ModelServingError"})


def classify_response(response: Any, invoker: Invoker) -> Result | Transient:
    """A response object -> a final Result (200 or a 4xx refusal) or a Transient to retry."""
    status = _int(getattr(response, "status_code", None))
    request_id = str(getattr(response, "request_id", "") or "")
    code = str(getattr(response, "code", "") or "")
    message = _short(getattr(response, "message", "") or "")

    if status == 200:
        output = getattr(response, "output", None)
        if not isinstance(output, dict) or invoker.answer_text(output) is None:
            return Transient("MalformedResponse", "DashScope answered 200 without an answer in it", request_id)
        usage = getattr(response, "usage", None)  # the SDK's dict subclasses serialize as they are: not copied
        return Result(200, request_id, code, message, output, usage if isinstance(usage, dict) else None)
    transient_code = code in _TRANSIENT_CODES or code.startswith(_TRANSIENT_PREFIXES)
    if status == 429 or status is None or status >= 500 or (status == 400 and transient_code):
        if code in ("", "Unknown"):  # the SDK's code for a body that was not DashScope's JSON
            code = "Throttling" if status == 429 else f"ServerError{status or ''}"
        retry_after = _retry_after(getattr(response, "headers", None))
        return Transient(code, message or f"DashScope answered HTTP {status}", request_id, retry_after)
    return Result(status_code=status, request_id=request_id, code=code or "Unknown", message=message)


class Failure(NamedTuple):
    """A row of `failures()`: an exception class (and the cause it wraps), and what it means here."""

    kind: type[BaseException] | tuple[type[BaseException], ...]
    code: str  # a Transient's code, or INVALID_URL for a final Result
    message: str  # {name}: the exception's class name
    silence: bool = False  # a read that timed out: the stream went silent, the connection did not fail
    cause: tuple[type[BaseException], ...] | None = None  # what args[0] must be for the row to match


INVALID_URL = "InvalidConfig"


@functools.cache
def failures() -> tuple[Failure, ...]:
    """The transport's exceptions -> outcomes, the first matching row deciding; built on first use, not at import."""
    from requests import exceptions as e
    from urllib3.exceptions import ReadTimeoutError

    timed_out, failed = "DashScope did not answer in time", "the connection to DashScope failed"
    return (
        # The URL is ours, not the network's: every attempt would fail the same way, so none is retried.
        Failure(
            (e.MissingSchema, e.InvalidSchema, e.InvalidURL),
            INVALID_URL,
            "(or a proxy variable) is not a URL DashScope can be reached at ({name}); "
            "use an http(s) URL such as https://dashscope.aliyuncs.com/api/v1",
        ),
        Failure(e.ConnectTimeout, "ConnectTimeout", "no connection to DashScope could be made in time"),
        Failure(e.ReadTimeout, "RequestTimeout", timed_out, silence=True),
        Failure(e.Timeout, "RequestTimeout", timed_out),
        # A read that timed out mid-stream: requests wraps urllib3's (or the socket's) in a ConnectionError.
        Failure(e.ConnectionError, "ConnectionError", failed, silence=True, cause=(ReadTimeoutError, TimeoutError)),
        Failure(e.ConnectionError, "ConnectionError", failed),
        # requests' JSONDecodeError (a RequestException too): a 200 cut short or not JSON at all.
        Failure(ValueError, "MalformedResponse", "DashScope answered with a body that is not valid JSON"),
        Failure(e.RequestException, "TransportError", "the request to DashScope failed ({name})"),
    )


def failure_of(error: BaseException) -> Failure | None:
    """The first row of `failures()` that `error` matches; None when it is no transport failure."""
    cause = error.args[0] if error.args else None
    for failure in failures():
        if isinstance(error, failure.kind) and (failure.cause is None or isinstance(cause, failure.cause)):
            return failure
    return None


def classify_exception(error: BaseException) -> Transient | Result | None:
    """A transport exception -> a Transient, a final Result (a bad URL), or None: no transport failure."""
    failure = failure_of(error)
    if failure is None:
        return None
    message = failure.message.format(name=type(error).__name__)
    if failure.code == INVALID_URL:
        return Result.failure(InvalidConfig("DASHSCOPE_HTTP_BASE_URL", message), "")
    return Transient(failure.code, message)


def is_read_timeout(error: BaseException) -> bool:
    return getattr(failure_of(error), "silence", False)


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
