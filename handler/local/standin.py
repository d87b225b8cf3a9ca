"""A local stand-in for DashScope's two generation HTTP APIs (text-generation and
multimodal-generation), on 127.0.0.1.

It serves `--offline` runs of the CLI (answers say they are emulated), the wire-level tests and the
benchmarks. Faults are scripted: each request takes the next behaviour from the script, and falls
back to an emulated answer when the script is empty.

    with DashScopeStandIn(api_key="sk-test") as standin:
        standin.script(error(429, "Throttling", "slow down"), stream("a long answer", every=0.02))
        os.environ["DASHSCOPE_HTTP_BASE_URL"] = standin.url

Streamed requests (the SDK's `X-DashScope-SSE: enable`) are answered as DashScope does: HTTP 200,
`text/event-stream`, chunked transfer, one frame per chunk of the answer:

    id:1
    event:result
    :HTTP_STATUS/200
    data:{"output":{...},"usage":{...},"request_id":"..."}

and errors as `event:error` frames (`:HTTP_STATUS/4xx|5xx`), with that HTTP status when nothing was
streamed yet. multimodal-generation's chunks carry `content: [{"text": ...}]` (`[]` while the model
thinks), and its answers say how many image parts the request held ("[N image parts received]",
usage.image_tokens), so a test can see an image arrive.

The files endpoints (`/compatible-mode/v1/files`, handler/local/standin_files.py) and the Batch API's
(`/compatible-mode/v1/batches`, handler/local/standin_batches.py) are served on the same server (`files`,
`batches`). A text-generation call whose system message names `fileid://` files answers with each
file's size and sha256 prefix, 400 "File parsing in progress" while a file's `parsing` count lasts, and
400 InvalidParameter for an unknown file id.

Models are checked as DashScope checks them: a name it does not know (`models`, by default the
project's model table plus a few models DashScope serves that the table does not list, see
UNLISTED) gets 400 InvalidParameter "Model not exist." on both endpoints, and a known model asked on
the endpoint that does not serve it gets the gateway's 400 InvalidParameter "url error, please check
url! ...", so the project's learning of a model's API is tested through the real SDK. Like the
service, it refuses non-streamed calls to stream-only models: QwQ models, and open Qwen3 models
while thinking (they think unless `enable_thinking` is false).

A request whose messages hold `{"type": "doc_url", "doc_url": [...]}` parts (Qwen-Doc-Turbo) is answered
by fetching each URL, as DashScope downloads them: only http(s) URLs on 127.0.0.1, at most 10. The answer
names each document's size and sha256 prefix; a failed fetch is 400 InvalidParameter.FileDownload, a code
this stand-in invents (DashScope's own words for it are not documented).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from handler.local import standin_batches, standin_files

GENERATION_PATH = "/api/v1/services/aigc/text-generation/generation"
MULTIMODAL_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
_APIS = {GENERATION_PATH: "text", MULTIMODAL_PATH: "multimodal"}
MODEL_NOT_EXIST = "Model not exist."
URL_ERROR = (
    "url error, please check url! For details, see: https://help.aliyun.com/zh/model-studio/error-code#error-url"
)
# Models DashScope serves that the project's table does not list: the learning path's test subjects.
# qwen3.8-max-0902 is a dated snapshot; qwen3.5-plus is multimodal on its API page.
UNLISTED: dict[str, str] = {"qwen3.8-max-0902": "multimodal", "qwen3.5-plus": "multimodal", "qwen-plus-latest": "text"}
EMULATED = "[emulated answer from the local DashScope stand-in]"
DOC_URL_LIMIT = 10  # URLs per request, as Qwen-Doc-Turbo's page says
FILE_DOWNLOAD = "InvalidParameter.FileDownload"  # the stand-in's invention: DashScope's code is not documented
# No proxy from the environment: the documents are on this machine.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
EMULATED_REASONING = "[emulated reasoning]"
SSE_CONTENT_TYPE = "text/event-stream;charset=UTF-8"
# DashScope's refusals of a non-streamed call to a stream-only model (400 InvalidParameter).
STREAM_ONLY = "This model only support stream mode, please enable the stream parameter to access the model. "
THINKING_NOT_STREAMED = "parameter.enable_thinking must be set to false for non-streaming calls"
_OPEN_QWEN3 = re.compile(r"qwen3-\d+(\.\d+)?b(-a\d+(\.\d+)?b)?")


@dataclass(frozen=True)
class Request:
    """What the stand-in received: the JSON body and the headers (Authorization left out)."""

    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    authorized: bool = True
    files: str = ""  # what the default answer says of the `fileid://` files the request names

    @property
    def streamed(self) -> bool:
        """The SDK asks for SSE with this header when stream=True."""
        return any(k.lower() == "x-dashscope-sse" and v.lower() == "enable" for k, v in self.headers.items())


Behaviour = Callable[["_Handler", Request], None]


def answer(text: str | None = None, *, delay: float = 0.0) -> Behaviour:
    """A 200 with an emulated answer (in the shape the request's result_format asks for): streamed
    at once in a few chunks when the request streams, after `delay` seconds of silence."""

    def behave(handler: _Handler, request: Request) -> None:
        if delay:
            handler.server.stopping.wait(delay)
        if request.streamed:
            handler.stream(request, _plan(request, text, None, chunks=None))
        else:
            handler.reply(200, _answer_body(request, text))

    return behave


def stream(
    text: str | None = None,
    *,
    chunks: int | None = None,
    first: float = 0.0,
    every: float = 0.0,
    reasoning: str | None = None,
    stall_after: int | None = None,
    stall: float = 3600.0,
    break_after: int | None = None,
    error_after: int | None = None,
    error_frame: tuple[int, str, str] = (500, "InternalError", "An internal error has occured"),
    usage_frames: int | None = None,
) -> Behaviour:
    """A scripted stream: the answer (after `reasoning`, when given) in `chunks` frames, the first
    after `first` seconds and the others `every` seconds apart. After `stall_after` frames it falls
    silent for `stall` seconds; after `break_after` frames it drops the connection mid-answer; after
    `error_after` frames it sends an `event:error` frame (`error_frame`: status, code, message).
    Only `frames[:usage_frames]` carry usage (0: none, -1: all but the last; None: all)."""

    def behave(handler: _Handler, request: Request) -> None:
        frames = _plan(request, text, reasoning, chunks=chunks)
        if usage_frames is not None:
            for frame in frames[len(frames[:usage_frames]) :]:
                del frame["usage"]
        handler.stream(
            request,
            frames,
            first=first,
            every=every,
            stall_after=stall_after,
            stall=stall,
            break_after=break_after,
            error_after=error_after,
            error_frame=error_frame,
        )

    return behave


def error(status: int, code: str, message: str, *, retry_after: float | None = None) -> Behaviour:
    """DashScope's error with this status (401 InvalidApiKey, 429 Throttling, 500, ...): a JSON body,
    or for a streamed request one `event:error` frame, as the service sends them."""

    def behave(handler: _Handler, request: Request) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = {"request_id": _request_id(), "code": code, "message": message}
        if request.streamed:
            handler.sse_error(status, body, headers=headers)
        else:
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


def empty_stream() -> Behaviour:
    """A 200 stream that ends cleanly with no text, no reasoning and no finish_reason: an answer that never began."""

    def behave(handler: _Handler, request: Request) -> None:
        frames = _plan(request, "", None, chunks=1)
        for frame in frames:
            output = frame["output"]
            for choice in output.get("choices", [output]):
                choice["finish_reason"] = "null"
        handler.stream(request, frames)

    return behave


def hang(seconds: float = 3600.0) -> Behaviour:
    """Say nothing until `seconds` pass or the stand-in stops."""

    def behave(handler: _Handler, request: Request) -> None:
        handler.server.stopping.wait(seconds)
        handler.close_connection = True

    return behave


class DashScopeStandIn:
    """A scriptable local DashScope; `url` is what DASHSCOPE_HTTP_BASE_URL should be set to."""

    def __init__(
        self, *, api_key: str | None = None, latency: float = 0.0, port: int = 0, processing: int = 0, parsing: int = 0
    ):
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
        self._open: list[_Handler] = []  # the connections' handlers, for `drop_idle`
        self.dead_requests = 0  # requests that arrived on a connection `drop_idle` made silent
        self._thread: threading.Thread | None = None
        # model -> "text" | "multimodal": what this DashScope serves, and on which endpoint.
        self.models: dict[str, str] = default_models()
        # Served by this server; `processing`: retrieves answered "processing", `parsing`: model calls answered
        # "File parsing in progress", per file (both settable later as files.processing, files.parsing).
        self.files = standin_files.FilesStandIn(api_key=api_key, processing=processing, parsing=parsing, listen=False)
        self.batches = standin_batches.BatchesStandIn(self.files, known=_batch_model(self))  # and this one

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
        self.files.close()

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
            self.dead_requests = 0
            self.policy = None
            self.keep_requests = True
            self.models = default_models()
        self.files.reset()
        self.batches.reset()

    def _record(self, request: Request) -> None:
        with self._lock:
            if self.keep_requests:
                self.requests.append(request)

    def _next(self, request: Request) -> Behaviour:
        self._record(request)
        with self._lock:
            if self._script:
                return self._script.popleft()
        if not request.authorized:
            return error(401, "InvalidApiKey", "Invalid API-key provided.")
        if urls := doc_urls(request.body):
            return read_documents(urls)
        if self.policy is not None and (chosen := self.policy(request)) is not None:
            return chosen
        return answer(delay=self.latency)

    def served(self, model: str) -> str | None:
        """The endpoint that serves `model` ("text" | "multimodal"), or None: DashScope knows no such model."""
        with self._lock:
            known = self.models.get(model)
        if known is not None:
            return known
        if _OPEN_QWEN3.fullmatch(model) or model.startswith("qwq"):
            return "text"  # the open Qwen3 sizes and QwQ models (stream-only behaviour below)
        return None

    def _connected(self, handler: _Handler) -> None:
        with self._lock:
            self.connections += 1
            self._open.append(handler)

    def _closed(self, handler: _Handler) -> None:
        with self._lock:
            if handler in self._open:
                self._open.remove(handler)

    def drop_idle(self) -> None:
        """Every connection open now goes silent, as a NAT or load balancer that dropped it after an idle
        spell without a reset: a request written to it is read and never answered (new ones are fine)."""
        with self._lock:
            for handler in self._open:
                handler.dead = True
            self._open.clear()


def _batch_model(standin: DashScopeStandIn) -> Callable[[str], bool]:
    """Whether a batch job's model is one this DashScope serves (or the Batch API's own test model)."""
    return lambda model: model == "batch-test-model" or standin.served(model) is not None


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
        self.dead = False
        self.server.standin._connected(self)

    def finish(self) -> None:
        super().finish()
        self.server.standin._closed(self)  # a closed connection is no longer one `drop_idle` can silence

    def do_GET(self) -> None:  # http.server's naming
        self._files("GET")

    def do_DELETE(self) -> None:
        self._files("DELETE")

    def _files(self, method: str) -> bool:
        """Serve a files- or batch-API request (True), or answer 404 for another GET or DELETE path."""
        path = self.path.split("?")[0]
        if path.startswith((standin_files.PATH, standin_batches.PATH)):
            self.server.standin.batches.counted(method, path)
        if path.startswith(standin_files.PATH):
            standin_files.serve(self, self.server.standin.files, method)
            return True
        if path.startswith(standin_batches.PATH):
            standin_batches.serve(self, self.server.standin.batches, method)
            return True
        if method != "POST":
            self.reply(404, {"request_id": _request_id(), "code": "NotFound", "message": "no such API"})
        return False

    def do_POST(self) -> None:  # http.server's naming
        if self._files("POST"):
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if getattr(self, "dead", False):
            with self.server.standin._lock:
                self.server.standin.dead_requests += 1
            self.server.stopping.wait(120)  # silence: the client's read timeout is all that ends it
            self.close_connection = True
            return
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
        endpoint = _APIS.get(self.path.split("?")[0])
        if endpoint is None:
            standin.requests.append(request)
            self.reply(404, {"request_id": _request_id(), "code": "NotFound", "message": "no such API"})
            return
        if not isinstance(body, dict):
            self.reply(400, {"request_id": _request_id(), "code": "InvalidParameter", "message": "bad body"})
            return
        served = standin.served(str(body.get("model") or ""))
        if served != endpoint:
            # The service's own refusals, before any scripted behaviour: no such model, or not here.
            standin._record(request)
            error(400, "InvalidParameter", MODEL_NOT_EXIST if served is None else URL_ERROR)(self, request)
            return
        if not request.streamed and (refusal := _stream_only(body)) is not None:
            standin._record(request)
            self.reply(400, {"request_id": _request_id(), "code": "InvalidParameter", "message": refusal})
            return
        if (refusal := _file_refusal(standin, body)) is not None:
            standin._record(request)
            error(400, *refusal)(self, request)
            return
        request = replace(request, files=_files_seen(standin, body))
        standin._next(request)(self, request)

    def stream(
        self,
        request: Request,
        frames: list[dict[str, Any]],
        *,
        first: float = 0.0,
        every: float = 0.0,
        stall_after: int | None = None,
        stall: float = 3600.0,
        break_after: int | None = None,
        error_after: int | None = None,
        error_frame: tuple[int, str, str] = (500, "InternalError", ""),
    ) -> None:
        """Send `frames` as DashScope's SSE, one HTTP chunk each, paced and faulted as asked.

        What is due at the same moment leaves in one write (the headers with the first frames, a
        fast answer's frames together), as a server's frames do when they are ready faster than
        the network takes them; a paced frame leaves alone, at its time."""
        stopping = self.server.stopping
        pending: list[bytes] = []

        def flush() -> None:
            if pending:
                self.wfile.write(b"".join(pending))
                pending.clear()

        try:
            self.send_response(200)
            self.send_header("Content-Type", SSE_CONTENT_TYPE)
            self.send_header("Transfer-Encoding", "chunked")
            self._headers_buffer.append(b"\r\n")  # http.server's end_headers, without its flush
            pending.append(b"".join(self._headers_buffer))
            self._headers_buffer = []
            # Each frame leaves at its own time from the start (first + (n-1) * every), not `every`
            # after the previous one: a few hundred short waits would otherwise add their overshoot.
            start = time.monotonic()
            request_id = frames[0]["request_id"] if frames else _request_id()
            for number, frame in enumerate(frames, start=1):
                due = start + first + (number - 1) * every
                if (pause := due - time.monotonic()) > 0:
                    flush()
                    stopping.wait(pause)
                if error_after is not None and number > error_after:
                    status, code, message = error_frame
                    body = {"request_id": request_id, "code": code, "message": message}
                    pending.append(_chunk(_frame(number, "error", status, body)))
                    break
                if stall_after is not None and number > stall_after:
                    flush()
                    stopping.wait(stall)
                    self.close_connection = True
                    return
                if break_after is not None and number > break_after:
                    flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                pending.append(_chunk(_frame(number, "result", 200, frame)))
            pending.append(b"0\r\n\r\n")
            flush()
        except OSError:
            self.close_connection = True  # the client gave up (its deadline); nothing to tell

    def sse_error(self, status: int, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> None:
        """An error before any output: that HTTP status, and the error as one SSE frame."""
        raw = _frame(1, "error", status, body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", SSE_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except OSError:
            self.close_connection = True

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


def doc_urls(body: Any) -> list[Any]:
    """Every URL of the request's doc_url parts, in order (a part's `doc_url` is a list)."""
    messages = ((body or {}).get("input") or {}).get("messages") if isinstance(body, dict) else None
    found: list[Any] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "doc_url":
                urls = part.get("doc_url")
                found.extend(urls if isinstance(urls, list) else [urls])
    return found


def read_documents(urls: list[Any]) -> Behaviour:
    """Fetch each document as DashScope would, then answer with its size and digest, or refuse with a 400."""
    if len(urls) > DOC_URL_LIMIT:
        return error(400, "InvalidParameter", f"At most {DOC_URL_LIMIT} doc_url entries are supported.")
    seen: list[str] = []
    for number, url in enumerate(urls, start=1):
        fetched = _fetch(url)
        if isinstance(fetched, str):
            # DashScope may echo the URL it failed on: so does this, and the client's masking must hold.
            return error(400, FILE_DOWNLOAD, f"Failed to download the file from doc_url {url}: {fetched}")
        seen.append(f"document {number}: {len(fetched)} bytes, sha256 {hashlib.sha256(fetched).hexdigest()[:16]}")
    return answer(f"{EMULATED} " + "; ".join(seen))


def _fetch(url: Any) -> bytes | str:
    """The document's bytes, or why it could not be fetched (only http(s) on 127.0.0.1: a local stand-in)."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or parts.hostname != "127.0.0.1":
        return "only http(s) URLs on 127.0.0.1 are fetched by the stand-in"
    try:
        with _DIRECT.open(url, timeout=10) as response:
            return response.read()
    except urllib.error.HTTPError as failed:
        return f"HTTP {failed.code}"
    except OSError as failed:
        return f"{type(failed).__name__}"


def _request_id() -> str:
    return str(uuid.uuid4())


def _tokens(text: str) -> int:
    # Roughly what Qwen's tokenizer gives for mixed Chinese and English; enough for emulated usage.
    return max(1, len(text.encode()) // 3)


def default_models() -> dict[str, str]:
    """The project's model table (a row with no API is served as text) and UNLISTED."""
    from handler.ask.models import DEFAULT_MODELS

    return {**{name: info.api or "text" for name, info in DEFAULT_MODELS.items()}, **UNLISTED}


def _thinks(model: str, params: dict[str, Any]) -> bool:
    """Whether the model reasons before answering, as the project's table says (QwQ and qwen3.8-max always,
    open Qwen3 and Qwen3.5+ hybrids unless enable_thinking is false, the others when it is true);
    the unlisted models as their families do."""
    from handler.ask.models import DEFAULT_MODELS

    info = DEFAULT_MODELS.get(model)
    enable = params.get("enable_thinking")
    if info is not None:
        return info.thinks(enable)
    if model.startswith("qwq") or model == "qwen3.8-max-0902":
        return True
    if _OPEN_QWEN3.fullmatch(model) or model == "qwen3.5-plus":
        return enable is not False
    return enable is True


def _stream_only(body: dict[str, Any]) -> str | None:
    """DashScope's refusal of a non-streamed call to this model, or None when it may be asked so."""
    model = str(body.get("model") or "")
    params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    if model.startswith("qwq"):
        return STREAM_ONLY
    if _OPEN_QWEN3.fullmatch(model) and _thinks(model, params):
        return THINKING_NOT_STREAMED
    return None


def _chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of the transfer: its length in hex, the data."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _frame(number: int, event: str, status: int, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return f"id:{number}\nevent:{event}\n:HTTP_STATUS/{status}\ndata:{data}\n\n".encode()


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, count)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _plan(request: Request, text: str | None, reasoning: str | None, *, chunks: int | None) -> list[dict[str, Any]]:
    """The frames of a streamed answer: reasoning pieces first (when the model thinks), then the
    answer's, each with the usage so far; the last says finish_reason "stop"."""
    body = request.body if isinstance(request.body, dict) else {}
    params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    whole = _answer_body(request, text)
    usage_in = whole["usage"]["input_tokens"]
    reply = _reply_text(whole)
    thinks = reasoning is not None or _thinks(str(body.get("model") or ""), params)
    thought = (reasoning if reasoning is not None else f"{EMULATED_REASONING} {reply[:40]}") if thinks else ""
    count = chunks or max(1, min(8, len(reply) // 16 + 1))
    steps = ([("reasoning", p) for p in _pieces(thought, max(1, count // 4))] if thought else []) + [
        ("content", p) for p in _pieces(reply, count)
    ]
    incremental = params.get("incremental_output") is True
    multimodal = request.path.split("?")[0] == MULTIMODAL_PATH
    messages = multimodal or params.get("result_format") == "message"
    frames = []
    said = {"reasoning": "", "content": ""}
    reasoning_tokens = output_tokens = 0
    for position, (kind, piece) in enumerate(steps):
        said[kind] += piece
        tokens = _tokens(piece) if piece else 0
        output_tokens += tokens
        if kind == "reasoning":
            reasoning_tokens += tokens
        last = position == len(steps) - 1
        shown = piece if incremental else said[kind]
        other = "" if incremental else said["content" if kind == "reasoning" else "reasoning"]
        content, thinking = (shown, other) if kind == "content" else (other, shown)
        finish = "stop" if last else "null"
        usage: dict[str, Any] = {
            "input_tokens": usage_in,
            "output_tokens": output_tokens,
            "total_tokens": usage_in + output_tokens,
        }
        if thought:
            usage["output_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        if multimodal:
            usage.update({k: v for k, v in whole["usage"].items() if k not in usage})
        if messages:
            message: dict[str, Any] = {"role": "assistant", "content": [{"text": content}] if content else []}
            if not multimodal:
                message["content"] = content
            if thought:
                message["reasoning_content"] = thinking
            output: dict[str, Any] = {"choices": [{"finish_reason": finish, "message": message}]}
        else:
            output = {"text": content, "finish_reason": finish}
            if thought:
                output["reasoning_content"] = thinking
        frames.append({"output": output, "usage": usage, "request_id": whole["request_id"]})
    return frames


def _reply_text(body: dict[str, Any]) -> str:
    output = body["output"]
    return _text_of(output["choices"][0]["message"]["content"]) if "choices" in output else output["text"]


def _answer_body(request: Request, text: str | None) -> dict[str, Any]:
    body = request.body
    source = body.get("input", {}) if isinstance(body, dict) else {}
    params = body.get("parameters", {}) if isinstance(body, dict) else {}
    messages = source.get("messages") or []
    question = source.get("prompt") or (_text_of(messages[-1].get("content", "")) if messages else "")
    asked = " ".join(_text_of(m.get("content", "")) for m in messages) or str(question)
    images = sum(_images_in(m.get("content")) for m in messages)
    multimodal = request.path.split("?")[0] == MULTIMODAL_PATH
    seen = f" [{images} image part{'s' if images != 1 else ''} received]" if multimodal else ""
    reply = text if text is not None else f"{EMULATED} You asked: {question}{seen}{request.files}"
    usage_in, usage_out = _tokens(asked), _tokens(reply)
    usage: dict[str, Any] = {"input_tokens": usage_in, "output_tokens": usage_out, "total_tokens": usage_in + usage_out}
    if multimodal:
        # As the service reports them: image tokens inside the input, itemised (emulated: 100 per image).
        usage["input_tokens"] += 100 * images
        usage["total_tokens"] += 100 * images
        usage["image_tokens"] = 100 * images
        usage["input_tokens_details"] = {"image_tokens": 100 * images, "text_tokens": usage_in}
    if multimodal:
        output: dict[str, Any] = {
            "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": [{"text": reply}]}}]
        }
    elif params.get("result_format") == "message":
        output: dict[str, Any] = {
            "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": reply}}]
        }
    else:
        output = {"text": reply, "finish_reason": "stop"}
    return {"output": output, "usage": usage, "request_id": _request_id()}


def _text_of(content: Any) -> str:
    """A message's text: the string, or a multimodal content list's text parts joined."""
    if isinstance(content, list):
        return " ".join(str(p["text"]) for p in content if isinstance(p, dict) and "text" in p)
    return str(content)


def _images_in(content: Any) -> int:
    return sum(1 for p in content if isinstance(p, dict) and "image" in p) if isinstance(content, list) else 0


FILE_ID = re.compile(r"fileid://([A-Za-z0-9_.-]+)")
PARSING = "File parsing in progress, please try again later."


def _file_ids(body: dict[str, Any]) -> list[str]:
    """The `fileid://` ids of the request's system messages, in order."""
    messages = (body.get("input") or {}).get("messages") or []
    said = [str(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "system"]
    return [found for text in said for found in FILE_ID.findall(text)]


def _file_refusal(standin: DashScopeStandIn, body: dict[str, Any]) -> tuple[str, str] | None:
    """(code, message) of the 400 for a file not known, or one still being parsed; None when all can be read."""
    for file_id in _file_ids(body):
        parsed = standin.files.parsed(file_id)
        if parsed is None:
            return "InvalidParameter.FileNotFound", f"File {file_id[:80]} does not exist or was deleted."
        if not parsed:
            return "InvalidParameter", PARSING
    return None


def _files_seen(standin: DashScopeStandIn, body: dict[str, Any]) -> str:
    """Each named file's size and sha256 prefix, so a test sees which bytes arrived."""
    seen = []
    for file_id in _file_ids(body):
        stored = standin.files.files.get(file_id)
        if stored is not None:
            seen.append(f" [file {file_id}: {stored.size} bytes, sha256 {stored.sha256[:16]}]")
    return "".join(seen)
