"""A local stand-in for DashScope's text-generation HTTP API, on 127.0.0.1.

It serves `--offline` runs of the CLI (answers say they are emulated), the wire-level tests and the
benchmarks. Faults are scripted: each request takes the next behaviour from the script, and falls
back to an emulated answer when the script is empty.

    with DashScopeStandIn(api_key="sk-test") as standin:
        standin.script(error(429, "Throttling", "slow down"), answer())
        os.environ["DASHSCOPE_HTTP_BASE_URL"] = standin.url
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GENERATION_PATH = "/api/v1/services/aigc/text-generation/generation"
EMULATED = "[emulated answer from the local DashScope stand-in]"


@dataclass(frozen=True)
class Request:
    """What the stand-in received: the JSON body and the headers (Authorization left out)."""

    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    authorized: bool = True


Behaviour = Callable[["_Handler", Request], None]


def answer(text: str | None = None, *, delay: float = 0.0) -> Behaviour:
    """A 200 with an emulated answer (in the shape the request's result_format asks for)."""

    def behave(handler: _Handler, request: Request) -> None:
        if delay:
            handler.server.stopping.wait(delay)
        handler.reply(200, _answer_body(request, text))

    return behave


def error(status: int, code: str, message: str, *, retry_after: float | None = None) -> Behaviour:
    """DashScope's JSON error body with this status (401 InvalidApiKey, 429 Throttling, 500, ...)."""

    def behave(handler: _Handler, request: Request) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = {"request_id": _request_id(), "code": code, "message": message}
        handler.reply(status, body, headers=headers)

    return behave


def gateway_page(status: int = 502) -> Behaviour:
    """An HTML page from a gateway in front of the service, not JSON."""

    def behave(handler: _Handler, request: Request) -> None:
        page = f"<html><head><title>{status} Bad Gateway</title></head><body>gateway</body></html>"
        handler.reply(status, page.encode(), content_type="text/html")

    return behave


def truncated() -> Behaviour:
    """A 200 whose JSON body is cut short."""

    def behave(handler: _Handler, request: Request) -> None:
        raw = json.dumps(_answer_body(request, None)).encode()
        handler.reply(200, raw[: len(raw) // 2])

    return behave


def drop() -> Behaviour:
    """Close the connection after reading the request, without answering."""

    def behave(handler: _Handler, request: Request) -> None:
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    return behave


def reset() -> Behaviour:
    """Abort the connection with a TCP reset, as a crashed front end does."""

    def behave(handler: _Handler, request: Request) -> None:
        import struct

        handler.close_connection = True
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()

    return behave


def hang(seconds: float = 3600.0) -> Behaviour:
    """Say nothing until `seconds` pass or the stand-in stops."""

    def behave(handler: _Handler, request: Request) -> None:
        handler.server.stopping.wait(seconds)
        handler.close_connection = True

    return behave


class DashScopeStandIn:
    """A scriptable local DashScope; `url` is what DASHSCOPE_HTTP_BASE_URL should be set to."""

    def __init__(self, *, api_key: str | None = None, latency: float = 0.0, port: int = 0):
        self.api_key = api_key
        self.latency = latency
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.standin = self
        self._script: deque[Behaviour] = deque()
        # Decides per request when the script is empty (soak tests: faults that follow the request,
        # not the order in which concurrent requests happen to arrive). None: the default answer.
        self.policy: Callable[[Request], Behaviour | None] | None = None
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.keep_requests = True  # soak runs turn this off so the stand-in's memory stays flat
        self.connections = 0
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/v1"

    def start(self) -> DashScopeStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, name="dashscope-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> DashScopeStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order."""
        with self._lock:
            self._script.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.connections = 0
            self.policy = None
            self.keep_requests = True

    def _next(self, request: Request) -> Behaviour:
        with self._lock:
            if self.keep_requests:
                self.requests.append(request)
            if self._script:
                return self._script.popleft()
        if not request.authorized:
            return error(401, "InvalidApiKey", "Invalid API-key provided.")
        if self.policy is not None and (chosen := self.policy(request)) is not None:
            return chosen
        return answer(delay=self.latency)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: DashScopeStandIn

    def __init__(self, *args: Any, **kwargs: Any):
        self.stopping = threading.Event()
        super().__init__(*args, **kwargs)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as DashScope's front end does
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.standin._connected()

    def do_POST(self) -> None:  # http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        standin = self.server.standin
        expected = f"Bearer {standin.api_key}" if standin.api_key else None
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        request = Request(
            path=self.path,
            body=body,
            headers=headers,
            authorized=expected is None or self.headers.get("Authorization") == expected,
        )
        if self.path.split("?")[0] != GENERATION_PATH:
            standin.requests.append(request)
            self.reply(404, {"request_id": _request_id(), "code": "NotFound", "message": "no such API"})
            return
        if not isinstance(body, dict):
            self.reply(400, {"request_id": _request_id(), "code": "InvalidParameter", "message": "bad body"})
            return
        standin._next(request)(self, request)

    def reply(
        self, status: int, body: Any, *, headers: dict[str, str] | None = None, content_type: str = "application/json"
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type if not isinstance(body, dict) else "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except OSError:
            self.close_connection = True  # the client gave up (its read timeout); nothing to tell

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: the CLI's stdout is the answer


def _request_id() -> str:
    return str(uuid.uuid4())


def _tokens(text: str) -> int:
    # Roughly what Qwen's tokenizer gives for mixed Chinese and English; enough for emulated usage.
    return max(1, len(text.encode()) // 3)


def _answer_body(request: Request, text: str | None) -> dict[str, Any]:
    body = request.body
    source = body.get("input", {}) if isinstance(body, dict) else {}
    params = body.get("parameters", {}) if isinstance(body, dict) else {}
    messages = source.get("messages") or []
    question = source.get("prompt") or (messages[-1].get("content", "") if messages else "")
    asked = " ".join(str(m.get("content", "")) for m in messages) or str(question)
    reply = text if text is not None else f"{EMULATED} You asked: {question}"
    usage_in, usage_out = _tokens(asked), _tokens(reply)
    if params.get("result_format") == "message":
        output: dict[str, Any] = {
            "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": reply}}]
        }
    else:
        output = {"text": reply, "finish_reason": "stop"}
    return {
        "output": output,
        "usage": {"input_tokens": usage_in, "output_tokens": usage_out, "total_tokens": usage_in + usage_out},
        "request_id": _request_id(),
    }
