"""DashScope's OpenAI-compatible files API: upload, retrieve, list and delete the documents Qwen-Long reads by
file id (docs/documents.md).

The SDK uploads only to the native files endpoint, never with purpose `file-extract`, so these are plain
HTTPS calls on a session of our own, with the same API key, made on first use. Every request fits in the
invocation's time left (`remaining`): none starts with less than MIN_REQUEST_SECONDS, each one's connect
and read timeouts are capped by it, and an upload stops sending at the deadline. An upload's body is
streamed from the caller's chunks with its length announced up front, so a large document is never held
in memory. The API key goes only into the Authorization header.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from handler.ask.account import fix_for
from handler.ask.transport import (
    INVALID_URL,
    MAX_UPSTREAM_MESSAGE,
    TIMEOUT_FLOOR,
    _socket_of,
    failure_of,
    trusts_environment,
)
from handler.errors import AccountFailure, InvalidConfig, QwenError, TransientUpstreamError
from handler.redact import MASK
from handler.values import Value

NAME_PREFIX = "qwen-fc-"  # every upload's name starts so: a purge can tell ours from the account's other files
FILE_EXTRACT = "file-extract"  # the purpose of a document Qwen-Long reads
BATCH = "batch"  # the purpose of a Batch API job's input file (handler/ask/batches.py)
PIECE = 64 * 1024  # a download is read this much at a time
MAX_LINE = 8 * 1024 * 1024  # a line longer than this is no line of a batch file (DashScope's own cap is 6 MB)
DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"  # the SDK's default: China (Beijing)
MIN_REQUEST_SECONDS = 0.25  # with less left, no request is started: it could not finish in time
QUOTA = "an account holds at most 10,000 files (100 GB) and uploads fail at that limit: delete uploads no longer needed"
# File ids are read only in China (Beijing), and only with the main account's key (docs/documents.md).
ACCOUNT_HINT = "file ids work only with the main account's API key of China (Beijing)"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}"  # a name that needs no quoting in a multipart header
_SUFFIX = r"[A-Za-z0-9]{1,8}"


class FileInfo(Value):
    """One file as the API describes it; `status` is uploaded, processing, processed or error."""

    id: str
    bytes: int  # the API's own field name
    filename: str
    status: str
    purpose: str
    created_at: int
    status_details: str | None = None

    @classmethod
    def of(cls, body: Any) -> FileInfo:
        """The API's file object; ValueError when it is none (answered as a malformed response)."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise ValueError("not a file object")
        details = body.get("status_details")
        return cls(
            id=body["id"],
            bytes=int(body.get("bytes") or 0),
            filename=str(body.get("filename") or ""),
            status=str(body.get("status") or ""),
            purpose=str(body.get("purpose") or ""),
            created_at=int(body.get("created_at") or 0),
            status_details=None if details is None else _short(str(details)),
        )


def files_url(base_url: str | None) -> str:
    """The files endpoint beside DASHSCOPE_HTTP_BASE_URL's native API: …/api/v1 -> …/compatible-mode/v1/files."""
    parts = urlsplit(base_url or DEFAULT_BASE_URL)
    path = parts.path.rstrip("/")
    if path.endswith("/api/v1"):
        path = path[: -len("/api/v1")]
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/compatible-mode/v1/files", "", ""))


def upload_name(key: str, etag: str, suffix: str | None = None) -> str:
    """The same name for the same object version, so a redelivered event can find its upload; the suffix
    (`suffix`, else the key's own) tells DashScope the format. A quoted or lower-case eTag is the same eTag."""
    tag = etag.strip().strip('"').upper()
    digest = hashlib.sha256(f"{key}\n{tag}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    if suffix is None:
        suffix = key.rsplit(".", 1)[1] if "." in key.rsplit("/", 1)[-1] else ""
    return f"{NAME_PREFIX}{digest}" + (f".{suffix.lower()}" if re.fullmatch(_SUFFIX, suffix) else "")


class DashScopeFiles:
    """The files API with one API key; `remaining` is the invocation's time left in seconds."""

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        remaining: Callable[[], float] = lambda: math.inf,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        self._key = api_key
        self.url = files_url(base_url)
        self.remaining = remaining
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._session: Any = None
        self._lock = threading.Lock()

    def upload(self, name: str, size: int, chunks: Iterable[bytes], purpose: str = FILE_EXTRACT) -> FileInfo:
        """Upload `size` bytes, streamed from `chunks` (which must hold exactly that many), as `name`."""
        if not re.fullmatch(_NAME, name):
            raise ValueError("an upload's name is letters, digits, '.', '_' and '-': see upload_name")
        body = _Multipart(name, size, chunks, purpose, self.remaining)
        headers = {"Content-Type": f"multipart/form-data; boundary={body.boundary}"}
        return _file("upload", name, self._call("upload", name, "POST", "", data=body, headers=headers))

    def retrieve(self, file_id: str) -> FileInfo:
        return _file("retrieve", file_id, self._call("retrieve", file_id, "GET", f"/{_id(file_id)}"))

    def delete(self, file_id: str) -> None:
        """Remove the file; one already gone is not an error."""
        try:
            self._call("delete", file_id, "DELETE", f"/{_id(file_id)}")
        except QwenError as error:
            if error.status_code != 404:
                raise

    def list(self, limit: int = 100, after: str | None = None) -> list[FileInfo]:  # the API's verb
        """A page of the account's files; pass the last one's id as `after` for the next page."""
        params = {"limit": str(limit), **({"after": after} if after else {})}
        body = self._call("list", "files", "GET", "", params=params)
        data = body.get("data") if isinstance(body, dict) else None
        return [_file("list", "files", item) for item in (data if isinstance(data, list) else [None])]

    def lines(self, file_id: str) -> Iterator[bytes]:
        """The file's content (a batch job's output or error file), one line at a time without its line end,
        blank lines skipped. It is streamed: memory holds a piece and the line being read, never the file.
        Reading stops with TransientUpstreamError at the deadline; a line over MAX_LINE bytes is refused."""
        what = _id(file_id)
        with self._open("download", what, "GET", f"{self.url}/{what}/content", stream=True) as reply:
            rest, pieces, sock, shrunk = b"", reply.iter_content(PIECE), _socket_of(reply), False
            try:
                while True:
                    left = self.remaining()
                    if left <= 0:  # a slow but steady download is cut at the deadline, not after it
                        raise _stopped("download", what)
                    if sock is not None and left < self.read_timeout:  # nor is a silent one waited for past it
                        sock.settimeout(max(TIMEOUT_FLOOR, left))
                        shrunk = True
                    piece = next(pieces, None)
                    if piece is None:
                        break
                    *complete, rest = (rest + piece).split(b"\n")
                    for line in complete:
                        if line := line.rstrip(b"\r"):
                            yield line
                    if len(rest) > MAX_LINE:
                        raise QwenError(
                            f"DashScope's files API cannot download {what}: a line is longer than {MAX_LINE:,} bytes",
                            code="MalformedResponse",
                            status_code=502,
                        )
            except QwenError:
                raise
            except Exception as error:  # the stream failing midway: only a transport failure is translated
                row = failure_of(error)
                if row is None:
                    raise
                if shrunk and row.silence:  # the silence outlasted the time left, not the read timeout
                    raise _stopped("download", what) from None
                raise _failure("download", what, error=error) from None
            if rest := rest.rstrip(b"\r"):
                yield rest

    def _call(
        self,
        verb: str,
        what: str,
        method: str,
        path: str,
        *,
        url: str | None = None,
        api: str = "files",
        **arguments: Any,
    ) -> Any:
        """One request within the time left (to `url`, else the files endpoint and `path`); its answer's JSON, or
        its failure as the project's error, told as `api`'s."""
        with self._open(verb, what, method, (url or self.url) + path, api=api, **arguments) as reply:
            try:
                return reply.json()
            except ValueError as error:  # a 200 that is not JSON: as a body cut short
                raise _failure(verb, what, error=error, api=api) from None

    @contextlib.contextmanager
    def _open(
        self, verb: str, what: str, method: str, url: str, *, api: str = "files", **arguments: Any
    ) -> Iterator[Any]:
        """One request within the time left, its 200 reply open while the caller reads it; any other answer, or
        none, raised as the project's error (one table: `_failure`)."""
        left = self.remaining()
        if not left >= MIN_REQUEST_SECONDS:
            raise TransientUpstreamError(
                f"FilesUnavailable: cannot {verb} {what}: no time left before the function's deadline "
                f"({max(left, 0.0):.2f} s)",
                code="FilesUnavailable",
                request_id="",
                attempts=0,
            )
        timeout = (
            max(TIMEOUT_FLOOR, min(self.connect_timeout, left)),
            max(TIMEOUT_FLOOR, min(self.read_timeout, left)),
        )
        headers = {**arguments.pop("headers", {}), "Authorization": f"Bearer {self._key}"}
        try:
            reply = self._start().request(method, url, headers=headers, timeout=timeout, **arguments)
        except QwenError:
            raise  # the upload's own: its deadline, or chunks that did not hold `size` bytes
        except Exception as error:  # only a transport failure is translated; the rest is raised
            if failure_of(error) is None:
                raise
            raise _failure(verb, what, error=error, api=api) from None
        with reply:
            if reply.status_code != 200:
                try:
                    code, message, request_id = _error_of(reply)
                except Exception as error:  # the error's own body cut short
                    if failure_of(error) is None:
                        raise
                    raise _failure(verb, what, error=error, api=api) from None
                raise _failure(
                    verb,
                    what,
                    status=reply.status_code,
                    code=code,
                    message=message.replace(self._key, MASK),
                    request_id=request_id,
                    api=api,
                )
            yield reply

    def _start(self) -> Any:
        # On first use: a plain question never imports requests for this, and never pays for a session.
        with self._lock:
            if self._session is None:
                import requests

                session = requests.Session()
                session.trust_env = trusts_environment()  # else a ~/.netrc could replace the Authorization header
                self._session = session
            return self._session


def _file(verb: str, what: str, body: Any) -> FileInfo:
    try:
        return FileInfo.of(body)
    except (TypeError, ValueError) as error:  # a 200 without a file object: as a body cut short
        raise _failure(verb, what, error=error) from None


def _failure(
    verb: str,
    what: str,
    *,
    status: int = 0,
    code: str = "",
    message: str = "",
    request_id: str = "",
    error: BaseException | None = None,
    api: str = "files",
) -> QwenError:
    """The one table of what the files API's failures mean (and the batch API's, `api`, on the same session):
    a transport exception (read by the transport's own table), an account-level refusal, a transient status,
    or a refusal of this request."""
    where = f"DashScope's {api} API cannot {verb} {what}"
    said = f"HTTP {status}, code={code or 'none'}, request_id={request_id or 'none'}"
    if error is not None:
        row = failure_of(error)
        text = row.message.format(name=type(error).__name__) if row else type(error).__name__
        if row is not None and row.code == INVALID_URL:
            return InvalidConfig("DASHSCOPE_HTTP_BASE_URL", text)
        code = row.code if row else "MalformedResponse"
        return TransientUpstreamError(f"{code}: {where}: {text}", code=code, request_id="", attempts=1)
    fix = fix_for(status, code)
    if fix is not None:
        return AccountFailure(
            f"{code or f'HTTP{status}'}: {where}: the account was refused, not the request ({said}): {message}; "
            f"fix: {fix}" + (f" ({ACCOUNT_HINT})" if api == "files" else ""),
            code=code or f"HTTP{status}",
            status_code=status,
            request_id=request_id,
            fix=fix,
        )
    if status in (408, 429) or status >= 500:
        code = code or ("Throttling" if status == 429 else f"ServerError{status}")
        return TransientUpstreamError(
            f"{code}: {where} ({said}): {message}", code=code, request_id=request_id, attempts=1
        )
    hint = f"; {QUOTA}" if verb == "upload" and status == 400 else ""
    return QwenError(f"{where} ({said}): {message}{hint}", code=code or f"HTTP{status}", status_code=status)


def _error_of(reply: Any) -> tuple[str, str, str]:
    """(code, message, request id) of an error answer: OpenAI's {"error": {...}} or DashScope's own fields."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    code = str(inner.get("code") or inner.get("type") or "")
    message = str(inner.get("message") or f"HTTP {reply.status_code}")
    request_id = str(body.get("request_id") or reply.headers.get("x-request-id") or "")
    return _short(code)[:100], _short(message), request_id[:100]


def _short(text: str) -> str:
    return text if len(text) <= MAX_UPSTREAM_MESSAGE else text[:MAX_UPSTREAM_MESSAGE] + "..."


def _id(file_id: str) -> str:
    """A file id as a path segment: DashScope's ids are letters, digits and '-'; nothing else is sent."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", file_id):
        raise ValueError("not a file id")
    return file_id


class _Multipart:
    """A multipart/form-data body (the purpose field, then the file) streamed from `chunks`: requests sends an
    iterable with a length as it is, with that Content-Length, holding one chunk at a time."""

    def __init__(
        self, name: str, size: int, chunks: Iterable[bytes], purpose: str, remaining: Callable[[], float]
    ) -> None:
        self.boundary = uuid.uuid4().hex
        self._head = (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n{purpose}\r\n'
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._end = f"\r\n--{self.boundary}--\r\n".encode()
        self._name, self._size, self._chunks, self._remaining = name, size, chunks, remaining

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._end)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        sent = 0
        for chunk in self._chunks:
            sent += len(chunk)
            if sent > self._size:
                raise _mismatch(self._name, self._size, "more")
            if self._remaining() <= 0:  # a slow but steady upload is cut at the deadline, not after it
                raise TransientUpstreamError(
                    f"FilesUnavailable: the upload of {self._name} was stopped at the function's deadline "
                    f"({sent:,} of {self._size:,} bytes sent)",
                    code="FilesUnavailable",
                    request_id="",
                    attempts=1,
                )
            if chunk:
                yield chunk
        if sent != self._size:
            raise _mismatch(self._name, self._size, "fewer")
        yield self._end


def _stopped(verb: str, what: str) -> TransientUpstreamError:
    return TransientUpstreamError(
        f"FilesUnavailable: the {verb} of {what} was stopped at the function's deadline",
        code="FilesUnavailable",
        request_id="",
        attempts=1,
    )


def _mismatch(name: str, size: int, than: str) -> QwenError:
    return QwenError(
        f"the upload of {name} was given {than} bytes than the {size:,} announced", code="UploadSizeMismatch"
    )
