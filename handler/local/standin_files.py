"""A local stand-in for DashScope's OpenAI-compatible files API, on 127.0.0.1: POST /compatible-mode/v1/files
(multipart: `purpose` and `file`), GET /files, GET /files/{id}, GET /files/{id}/content, DELETE /files/{id}.

An upload is read in 64 KiB pieces and never kept in memory: only its size and sha256 are, so a test can
check a large body arrived whole without the stand-in itself holding it. A file whose purpose is `batch`, and
the output and error files of a batch job (handler/local/standin_batches.py), are also written to a temporary
directory, and their content is served from it in 64 KiB pieces (`content_pause` seconds apart: a slow
download); another file's content is refused with 400, a refusal this stand-in invents.

A file answers "processing" to its first `processing` retrieves, then "processed"; `parsing` is how many
model calls naming it DashScope's stand-in answers "File parsing in progress" (handler/local/standin.py
serves these endpoints on its own server through `serve`, with `listen=False`). `fail_next` scripts
failures; their codes and messages are illustrative (DashScope's words for a full quota are not
documented), the statuses are what the client reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

PATH = "/compatible-mode/v1/files"
PIECE = 64 * 1024
API_KEY = "sk-files-standin-0000"

# (status, code, message) of the scripted failures tests name
UNAUTHORIZED = (401, "InvalidApiKey", "Invalid API-key provided.")
FORBIDDEN = (403, "AccessDenied", "Access denied.")
THROTTLED = (429, "Throttling", "Requests rate limit exceeded, please try again later.")
SERVER_ERROR = (500, "InternalError", "An internal error has occured, please try again later.")
QUOTA_FULL = (400, "InvalidParameter", "The number of files exceeds the limit of 10000.")
KEPT = frozenset({"batch", "batch_output"})  # the purposes whose content is kept, and can be downloaded


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    size: int
    sha256: str
    created_at: int
    polls_left: int  # retrieves still answered "processing"
    parses_left: int = 0  # model calls still answered "File parsing in progress"
    path: str | None = None  # where its content is kept (purposes in KEPT), else None

    def body(self, status: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.size,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": status,
            "status_details": None,
        }


@dataclass
class Seen:
    """A request as it arrived: its method, path, headers and, for an upload, its form fields."""

    method: str
    path: str
    headers: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)  # the small fields' values (purpose)
    at: float = field(default_factory=time.monotonic)  # when it arrived: bench/documents.py times the polling


class FilesStandIn:
    def __init__(
        self, *, api_key: str | None = API_KEY, processing: int = 0, parsing: int = 0, listen: bool = True
    ) -> None:
        self.api_key = api_key  # None: any key is accepted
        self.processing = processing  # retrieves answered "processing" before "processed", per file
        self.parsing = parsing  # model calls answered "File parsing in progress" first, per file
        self.deleted: list[str] = []  # the ids of the files deleted, in order
        self.files: dict[str, StoredFile] = {}
        self.requests: list[Seen] = []
        self.content_pause = 0.0  # seconds between the 64 KiB pieces of a content download
        self._directory: str | None = None  # made on the first content kept
        self._count = 0  # ids never reused, even after a delete
        self._failures: deque[tuple[int, str, str]] = deque()
        self._stalled = threading.Event()  # set: every request is accepted and never answered
        self._released = threading.Event()
        self._lock = threading.Lock()
        if listen:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            self._server.daemon_threads = True
            self._server.standin = self  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        """What DASHSCOPE_HTTP_BASE_URL would be: the files endpoint is derived from it."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/v1"

    def start(self) -> FilesStandIn:
        threading.Thread(target=self._server.serve_forever, name="files-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self.close()

    def close(self) -> None:
        """Release stalled requests and remove the kept contents (DashScope's stand-in calls this when it stops)."""
        self._released.set()
        with self._lock:
            directory, self._directory = self._directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> FilesStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, *failures: tuple[int, str, str]) -> None:
        """Answer the next requests with these (status, code, message), after reading their bodies."""
        with self._lock:
            self._failures.extend(failures)

    def stall(self) -> None:
        """Accept every request and never answer it (until stop): a hung endpoint."""
        self._stalled.set()

    def _next_failure(self) -> tuple[int, str, str] | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _store(self, filename: str, purpose: str, size: int, sha256: str, path: str | None = None) -> StoredFile:
        with self._lock:
            stored = StoredFile(
                f"file-fe-{self._count + 1:06d}",
                filename,
                purpose,
                size,
                sha256,
                int(time.time()),
                self.processing,
                self.parsing,
                path=path,
            )
            self._count += 1
            self.files[stored.id] = stored
            return stored

    def sink(self, purpose: str) -> BinaryIO | None:
        """A new file to keep an upload's content in, when its purpose is one whose content is kept."""
        if purpose not in KEPT:
            return None
        with self._lock:
            if self._directory is None:
                self._directory = tempfile.mkdtemp(prefix="files-standin-")
            directory = self._directory
        return tempfile.NamedTemporaryFile(dir=directory, delete=False)  # closed by its writer

    def keep(self, filename: str, purpose: str, lines: Iterable[bytes]) -> StoredFile:
        """Store a file written here (a batch job's output or error file), processed at once."""
        digest, size = hashlib.sha256(), 0
        out = self.sink(purpose)
        assert out is not None, f"{purpose} is not a purpose whose content is kept"
        with out:
            for line in lines:
                digest.update(line)
                size += len(line)
                out.write(line)
        stored = self._store(filename, purpose, size, digest.hexdigest(), out.name)
        stored.polls_left = stored.parses_left = 0
        return stored

    def content(self, file_id: str) -> Iterator[bytes]:
        """A kept file's content in pieces (for the batch stand-in reading its input)."""
        stored = self.files.get(file_id)
        if stored is None or stored.path is None:
            return
        with open(stored.path, "rb") as kept:
            while piece := kept.read(PIECE):
                yield piece

    def parsed(self, file_id: str) -> bool | None:
        """Whether a model call may read the file now (counting one call while it is parsed); None: no such file."""
        with self._lock:
            stored = self.files.get(file_id)
            if stored is None:
                return None
            if stored.parses_left > 0:
                stored.parses_left -= 1
                return False
            return True

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.deleted.clear()
            self._failures.clear()
            self.processing = self.parsing = 0
            self.content_pause = 0.0
            kept = [stored.path for stored in self.files.values() if stored.path]
            self.files.clear()
        for path in kept:
            with contextlib.suppress(OSError):
                os.remove(path)

    def _status(self, stored: StoredFile) -> str:
        with self._lock:
            if stored.polls_left > 0:
                stored.polls_left -= 1
                return "processing"
            return "processed"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base class's name
        pass

    @property
    def standin(self) -> FilesStandIn:
        return self.server.standin  # type: ignore[attr-defined]

    def do_POST(self) -> None:  # http.server's name
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        serve(self, self.standin, method)


def serve(handler: BaseHTTPRequestHandler, standin: FilesStandIn, method: str) -> None:
    """Answer one request to the files endpoints on `handler`'s connection (this server's or DashScope's stand-in)."""
    parts = urlsplit(handler.path)
    seen = Seen(method, parts.path, {k.lower(): v for k, v in handler.headers.items()})
    standin.requests.append(seen)
    if standin._stalled.is_set():
        standin._released.wait()
        handler.close_connection = True
        return
    upload = None
    if method == "POST" and parts.path == PATH:
        if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
            return _reply(handler, 411, _error("MissingContentLength", "an upload must announce its Content-Length"))
        upload = _read_form(
            handler.rfile, int(handler.headers.get("Content-Length") or 0), handler.headers, standin.sink
        )
        if upload is None:  # the client stopped sending: nobody is left to answer
            handler.close_connection = True
            return None
        seen.fields.update({k: v for k, v in upload.items() if isinstance(v, str)})
    failure = standin._next_failure()
    if failure is not None:
        status, code, message = failure
        return _reply(handler, status, _error(code, message, echo=handler.headers.get("Authorization", "")))
    if standin.api_key is not None and handler.headers.get("Authorization") != f"Bearer {standin.api_key}":
        return _reply(handler, 401, _error(*UNAUTHORIZED[1:]))
    if upload is not None:
        return _uploaded(handler, standin, upload)
    if method == "GET" and parts.path == PATH:
        return _list(handler, standin, parse_qs(parts.query))
    file_id = parts.path[len(PATH) + 1 :] if parts.path.startswith(PATH + "/") else ""
    file_id, _, rest = file_id.partition("/")
    stored = standin.files.get(file_id)
    if stored is None or rest not in ("", "content"):
        return _reply(handler, 404, _error("NotFound", f"File {file_id[:80]} not found."))
    if method == "GET" and rest == "content":
        return _download(handler, standin, stored)
    if method == "GET":
        return _reply(handler, 200, stored.body(standin._status(stored)))
    if method == "DELETE" and not rest:
        del standin.files[file_id]
        standin.deleted.append(file_id)
        if stored.path is not None:
            with contextlib.suppress(OSError):
                os.remove(stored.path)
        return _reply(handler, 200, {"id": file_id, "object": "file", "deleted": True})
    return _reply(handler, 405, _error("MethodNotAllowed", method))


def _uploaded(handler: BaseHTTPRequestHandler, standin: FilesStandIn, upload: dict[str, Any]) -> None:
    file = upload.get("file")
    if not isinstance(file, tuple) or not isinstance(upload.get("purpose"), str):
        return _reply(handler, 400, _error("InvalidParameter", "file and purpose are required"))
    filename, size, sha256, path = file
    stored = standin._store(filename, upload["purpose"], size, sha256, path)
    return _reply(handler, 200, stored.body("processing" if stored.polls_left else "processed"))


def _download(handler: BaseHTTPRequestHandler, standin: FilesStandIn, stored: StoredFile) -> None:
    """A kept file's content, streamed from disk with its length announced."""
    if stored.path is None:
        message = f"The content of a file with purpose {stored.purpose} cannot be downloaded."
        return _reply(handler, 400, _error("InvalidParameter", message))
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(stored.size))
    handler.send_header("x-request-id", "files-standin-req")
    handler.end_headers()
    try:
        with open(stored.path, "rb") as kept:
            while piece := kept.read(PIECE):
                handler.wfile.write(piece)
                if standin.content_pause:
                    standin._released.wait(standin.content_pause)
    except OSError:  # the client left before the end
        handler.close_connection = True
    return None


def _list(handler: BaseHTTPRequestHandler, standin: FilesStandIn, query: dict[str, list[str]]) -> None:
    limit = int(query.get("limit", ["100"])[0])
    after = query.get("after", [""])[0]
    ids = sorted(standin.files)
    if after in ids:
        ids = ids[ids.index(after) + 1 :]
    page = [standin.files[i].body("processed") for i in ids[:limit]]
    return _reply(handler, 200, {"object": "list", "data": page, "has_more": len(ids) > limit})


def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("x-request-id", "files-standin-req")
    handler.end_headers()
    handler.wfile.write(data)


def _error(code: str, message: str, echo: str = "") -> dict[str, Any]:
    # `echo`: a careless upstream that quotes the request's Authorization header back in its message.
    said = f"{message} (request authorization: {echo})" if echo else message
    return {
        "error": {"message": said, "type": "invalid_request_error", "code": code},
        "request_id": "files-standin-req",
    }


def _read_form(
    stream: Any, length: int, headers: Any, sink: Callable[[str], BinaryIO | None] | None = None
) -> dict[str, Any] | None:
    """The multipart form, read piece by piece: a small field's value as text, a file as (name, size, sha256,
    path), its content written to `sink(purpose)` when that gives a file (path None else); None when the body
    ended before its Content-Length."""
    boundary = headers.get_param("boundary", header="Content-Type") or ""
    delimiter = b"\r\n--" + boundary.encode()
    buffer, left = b"\r\n", length
    form: dict[str, Any] = {}

    def more() -> bool:
        nonlocal buffer, left
        if left <= 0:
            return False
        try:
            piece = stream.read(min(PIECE, left))
        except OSError:
            piece = b""
        if not piece:
            left = -1  # cut short
            return False
        left -= len(piece)
        buffer += piece
        return True

    while True:
        while (at := buffer.find(delimiter)) < 0 and more():
            pass
        if at < 0:
            return form if left == 0 else None
        buffer = buffer[at + len(delimiter) :]
        while len(buffer) < 2 and more():
            pass
        if buffer.startswith(b"--"):
            while more():  # the epilogue, if any
                buffer = b""
            return form
        while (end := buffer.find(b"\r\n\r\n")) < 0 and more():
            pass
        head, buffer = buffer[2:end].decode("utf-8", "replace"), buffer[end + 4 :]
        name = _param(head, "name")
        filename = _param(head, "filename")
        digest, size, kept = hashlib.sha256(), 0, b""
        out = sink(str(form.get("purpose"))) if sink is not None and filename is not None else None
        with out if out is not None else contextlib.nullcontext():
            while (at := buffer.find(delimiter)) < 0:
                safe = max(0, len(buffer) - len(delimiter))
                digest.update(buffer[:safe])
                size += safe
                kept = (kept + buffer[:safe])[:1024]
                if out is not None:
                    out.write(buffer[:safe])
                buffer = buffer[safe:]
                if not more():
                    return form if left == 0 else None
            digest.update(buffer[:at])
            size += at
            kept = (kept + buffer[:at])[:1024]
            if out is not None:
                out.write(buffer[:at])
        buffer = buffer[at:]
        path = out.name if out is not None else None
        form[name] = (
            (filename, size, digest.hexdigest(), path) if filename is not None else kept.decode("utf-8", "replace")
        )


def _param(head: str, name: str) -> str | None:
    for line in head.split("\r\n"):
        if line.lower().startswith("content-disposition:"):
            for item in line.split(";")[1:]:
                key, _, value = item.strip().partition("=")
                if key == name:
                    return value.strip('"')
    return None
