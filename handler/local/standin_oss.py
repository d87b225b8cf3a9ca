"""A local stand-in for the few OSS APIs the function uses (GET with Range, HEAD, PUT, PUT with
x-oss-forbid-overwrite, DELETE, GetBucketVersioning), on 127.0.0.1.

As OSS does, a bucket whose versioning is Enabled or Suspended (`versioning`) ignores
x-oss-forbid-overwrite: every PUT succeeds. An object keeps the Content-Encoding it was uploaded
with and is served with it, undecoded, as OSS serves it.

A GET by a signed URL (query-string authentication: oss2's V1 `Bucket.sign_url`) is served only when its
signature verifies for credentials the stand-in was told of (`accept`) and its `Expires` is in the future,
else 403 SignatureDoesNotMatch, InvalidAccessKeyId, InvalidSecurityToken or AccessDenied "Request has
expired.", as OSS answers. Other requests are not checked: the function's own are signed by oss2 itself.

oss2 talks to it unchanged: with an IP endpoint it uses path-style URLs (/bucket/key). Used by the
CLI's --offline mode for OSS events and by tests. In --offline mode a missing object is emulated as a
real bucket would hold it: a text question for a text key, a small bundled PNG (handler/local/sample.png)
for an image key, so the samples events/oss.json and events/oss-image.json are answered by the vision
model as deployed, non-image binary bytes for other binary keys (415 ObjectNotText), and nothing for an
image's or a document's `.txt` sidecar (the default instruction applies).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import socket
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

EMULATED_OBJECT = "What is stored at {key}? (an emulated object from the local OSS stand-in)"
# The first bytes of a PNG file: what an image key holds in a real bucket (not text).
EMULATED_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
)
_BINARY_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".pdf", ".zip", ".gz", ".mp3", ".mp4", ".bin")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
# A document's sidecar is absent too, so --oss-file report.pdf is asked QWEN_DOCUMENT_PROMPT (deliver/oss_files.py).
_DOCUMENT_SUFFIXES = (".pdf", ".docx", ".xlsx", ".pptx", ".epub", ".mobi", ".doc", ".xls", ".ppt")
SAMPLE_IMAGE = Path(__file__).resolve().parent / "sample.png"  # 16x16, 463 bytes
EMULATED_BINARY = b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00emulated binary\x00"  # a zip's opening: not text


@dataclass
class StoredObject:
    data: bytes
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"
    content_encoding: str | None = None  # as uploaded; OSS returns it with the bytes as stored

    @property
    def etag(self) -> str:
        return hashlib.md5(self.data).hexdigest().upper()  # OSS's ETag of a simple upload


def emulated(key: str) -> StoredObject | None:
    """What --offline serves for an object it does not hold: the sample PNG for an image suffix, other
    binary bytes for another binary suffix, nothing for an image's or a document's sidecar or in a hidden folder,
    else a text question."""
    lower = key.lower()
    if lower.endswith(tuple(f"{suffix}.txt" for suffix in (*_IMAGE_SUFFIXES, *_DOCUMENT_SUFFIXES))):
        return None
    if any(part.startswith(".") for part in key.split("/")[:-1]):
        return None  # the function's own records (answers/.batches/, the markers' folder) exist only once written
    if lower.endswith(_IMAGE_SUFFIXES):
        return StoredObject(SAMPLE_IMAGE.read_bytes(), content_type="image/png")
    if lower.endswith(_BINARY_SUFFIXES):
        return StoredObject(EMULATED_BINARY)
    return StoredObject(EMULATED_OBJECT.format(key=key).encode(), content_type="text/plain")


# Query parameters that name a V1 signed URL, and those of the V2 and V4 forms, which are not verified here.
_V1_QUERY = ("OSSAccessKeyId", "Signature", "Expires")
_OTHER_QUERY = ("x-oss-signature", "x-oss-credential", "x-oss-signature-version")
# The sub-resources OSS signs with the resource (those a GET of an object may carry; oss2's list holds more).
_SUBRESOURCES = frozenset(
    {
        "security-token",
        "versionId",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "x-oss-process",
        "x-oss-traffic-limit",
    }
)


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


def string_to_sign(method: str, bucket: str, key: str, query: dict[str, str], headers: dict[str, str]) -> str:
    """OSS's V1 string to sign for query-string authentication: the verb, empty Content-MD5 and Content-Type,
    Expires in the Date's place, the x-oss- headers, then /bucket/key with its sub-resources sorted."""
    oss_headers = sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-oss-"))
    canonical = "".join(f"{k}:{v}\n" for k, v in oss_headers)
    sub = sorted((k, v) for k, v in query.items() if k in _SUBRESOURCES)
    resource = f"/{bucket}/{key}" + ("?" + "&".join(f"{k}={v}" if v else k for k, v in sub) if sub else "")
    return f"{method}\n\n\n{query.get('Expires', '')}\n{canonical}{resource}"


@dataclass(frozen=True)
class OssRequest:
    method: str
    bucket: str
    key: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Fault:
    status: int
    method: str | None = None  # None: the next request of any method
    prefix: str = ""  # only requests for keys under this prefix


class OssStandIn:
    def __init__(self, *, emulate_missing: bool = False):
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.requests: list[OssRequest] = []
        self.writes: Counter[tuple[str, str]] = Counter()  # successful PUTs per (bucket, key)
        self.emulate_missing = emulate_missing
        self._faults: deque[Fault] = deque()
        self._denied: list[tuple[str, str]] = []  # (method, key prefix) answered 403 AccessDenied
        self._stalled: list[tuple[str | None, str]] = []  # (method or None, key prefix) never answered
        self._released = threading.Event()
        self._lost: deque[tuple[str, str]] = deque()  # (method, key prefix): done, but the reply is lost
        self.keep_requests = True
        # Bucket -> "Enabled" or "Suspended" (GetBucketVersioning); a bucket not listed was never versioned.
        self.versioning: dict[str, str] = {}
        # AccessKeyId -> (secret, security token or None): whose signed URLs verify (`accept`).
        self.keys: dict[str, tuple[str, str | None]] = {}
        self.clock = time.time  # what Expires is compared with; a test may move it
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.standin = self  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OssStandIn:
        threading.Thread(target=self._server.serve_forever, name="oss-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OssStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def put(self, bucket: str, key: str, data: bytes | str, **metadata: str) -> StoredObject:
        raw = data.encode() if isinstance(data, str) else data
        stored = StoredObject(raw, dict(metadata))
        with self._lock:
            self.objects[(bucket, key)] = stored
        return stored

    def store(self, bucket: str, key: str, stored: StoredObject, *, if_absent: bool) -> bool:
        """A PUT as OSS does it: atomic, refused when `if_absent` (x-oss-forbid-overwrite) and the key exists."""
        with self._lock:
            # "当目标Bucket处于已开启或已暂停的版本控制状态时，x-oss-forbid-overwrite请求Header设置无效" (PutObject).
            versioned = self.versioning.get(bucket) in ("Enabled", "Suspended")
            if if_absent and not versioned and (bucket, key) in self.objects:
                return False
            self.objects[(bucket, key)] = stored
            self.writes[(bucket, key)] += 1
            return True

    def get(self, bucket: str, key: str) -> StoredObject | None:
        with self._lock:
            return self.objects.get((bucket, key))

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self.objects.pop((bucket, key), None)

    def accept(self, access_key_id: str, secret: str, security_token: str | None = None) -> None:
        """Verify signed URLs made with these credentials (an STS key's URL must carry its token)."""
        with self._lock:
            self.keys[access_key_id] = (secret, security_token)

    def check_signed(
        self, method: str, bucket: str, key: str, query: dict[str, str], headers: dict[str, str]
    ) -> Refusal | None:
        """None when a signed URL's request may be served, else OSS's 403 for it."""
        if any(name in query for name in _OTHER_QUERY):
            return Refusal(403, "AccessDenied", "The stand-in verifies only V1 signed URLs (Signature, Expires).")
        if not all(query.get(name) for name in _V1_QUERY):
            return Refusal(403, "AccessDenied", "Signed URL must carry OSSAccessKeyId, Expires and Signature.")
        with self._lock:
            known = self.keys.get(query["OSSAccessKeyId"])
        if known is None:
            return Refusal(
                403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records."
            )
        secret, token = known
        if not query["Expires"].isdigit() or int(query["Expires"]) < self.clock():
            return Refusal(403, "AccessDenied", "Request has expired.")
        if token is not None and query.get("security-token") != token:
            return Refusal(403, "InvalidSecurityToken", "The security token you provided is invalid.")
        expected = base64.b64encode(
            hmac.new(
                secret.encode(), string_to_sign(method, bucket, key, query, headers).encode(), hashlib.sha1
            ).digest()
        ).decode()
        if not hmac.compare_digest(expected, query["Signature"]):
            return Refusal(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None

    def fail_next(self, *statuses: int, method: str | None = None, prefix: str = "") -> None:
        """Answer the next requests (of `method`, for keys under `prefix`, or any) with these HTTP statuses."""
        with self._lock:
            self._faults.extend(Fault(status, method, prefix) for status in statuses)

    def deny(self, method: str, prefix: str = "") -> None:
        """Answer every `method` request for keys under `prefix` with 403 AccessDenied, as a missing RAM grant."""
        with self._lock:
            self._denied.append((method, prefix))

    def stall(self, method: str | None = None, prefix: str = "") -> None:
        """Accept every matching request and never answer it (until reset or stop): a hung OSS endpoint."""
        with self._lock:
            self._stalled.append((method, prefix))
            self._released.clear()

    def lose_reply(self, method: str, prefix: str = "") -> None:
        """Carry out the next matching request, then drop the connection before replying, as a lost response."""
        with self._lock:
            self._lost.append((method, prefix))

    def reset(self) -> None:
        self._released.set()
        with self._lock:
            self._stalled.clear()
            self._lost.clear()
            self.objects.clear()
            self.requests.clear()
            self._faults.clear()
            self._denied.clear()
            self.writes.clear()
            self.versioning.clear()
            self.keys.clear()
            self.clock = time.time
            self.keep_requests = True

    def _record(self, request: OssRequest) -> int | None:
        with self._lock:
            if self.keep_requests:
                self.requests.append(request)
            if any(m in (None, request.method) and request.key.startswith(p) for m, p in self._stalled):
                return STALL
            if any(request.method == m and request.key.startswith(p) for m, p in self._denied):
                return 403
            for fault in self._faults:
                if fault.method in (None, request.method) and request.key.startswith(fault.prefix):
                    self._faults.remove(fault)
                    return fault.status
            return None

    def _reply_lost(self, method: str, key: str) -> bool:
        with self._lock:
            for lost in self._lost:
                if lost[0] == method and key.startswith(lost[1]):
                    self._lost.remove(lost)
                    return True
            return False


STALL = -1  # _record's answer for a request that must never be answered
# A fault for GET: the headers promise the whole body, half of it is sent, then the connection drops.
TRUNCATE = -2


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK stalls

    def _target(self) -> tuple[str, str]:
        path = unquote(urlsplit(self.path).path).lstrip("/")
        bucket, _, key = path.partition("/")
        return bucket, key

    def _begin(self, method: str, body: bytes = b"") -> tuple[Any, str, str, int | None]:
        standin = self.server.standin  # type: ignore[attr-defined]
        bucket, key = self._target()
        fault = standin._record(OssRequest(method, bucket, key, dict(self.headers.items()), body))
        return standin, bucket, key, fault

    def do_GET(self) -> None:
        if "versioning" in [part.partition("=")[0] for part in urlsplit(self.path).query.split("&")]:
            return self._versioning()
        standin, bucket, key, fault = self._begin("GET")
        query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        if any(name in query for name in (*_V1_QUERY, *_OTHER_QUERY)):
            refusal = standin.check_signed("GET", bucket, key, query, dict(self.headers.items()))
            if refusal is not None:
                return self._error(refusal.status, refusal.code, refusal.message)
        if fault and fault != TRUNCATE:
            return self._fault(fault)
        stored = standin.get(bucket, key)
        etag = stored is not None
        if stored is None and standin.emulate_missing:
            # Served without an ETag: an emulated object cannot be the version a sample event names.
            stored = emulated(key)
        if stored is None:
            return self._error(404, "NoSuchKey")
        data, status, headers = stored.data, 200, {}
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes=") and stored.data:
            first, _, last = wanted[len("bytes=") :].partition("-")
            start, end = int(first or 0), min(int(last) if last else len(stored.data) - 1, len(stored.data) - 1)
            if start < len(stored.data):
                data, status = stored.data[start : end + 1], 206
                headers["Content-Range"] = f"bytes {start}-{end}/{len(stored.data)}"
        headers.update({f"x-oss-meta-{k}": v for k, v in stored.metadata.items()})
        if etag:
            headers["ETag"] = f'"{stored.etag}"'
        headers["Content-Type"] = stored.content_type
        if stored.content_encoding:
            headers["Content-Encoding"] = stored.content_encoding
        if fault == TRUNCATE:
            return self._truncated(status, data, headers)
        self._send(status, data, headers)

    def do_HEAD(self) -> None:
        standin, bucket, key, fault = self._begin("HEAD")
        stored = standin.get(bucket, key)
        if (fault is not None and fault > 0) or stored is None:
            # A HEAD reply has no body: the status and the request id are all there is.
            self.send_response(fault if fault is not None and fault > 0 else 404)
            self.send_header("Content-Length", "0")
            self.send_header("x-oss-request-id", uuid.uuid4().hex.upper()[:24])
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", f'"{stored.etag}"')
        self.send_header("Content-Length", str(len(stored.data)))
        self.send_header("Content-Type", stored.content_type)
        for k, v in stored.metadata.items():
            self.send_header(f"x-oss-meta-{k}", v)
        self.send_header("x-oss-request-id", uuid.uuid4().hex.upper()[:24])
        self.end_headers()

    def _versioning(self) -> None:
        standin, bucket, _, fault = self._begin("GetBucketVersioning")
        if fault:
            return self._fault(fault)
        status = standin.versioning.get(bucket)
        inner = f"<Status>{status}</Status>" if status else ""
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration>{inner}</VersioningConfiguration>'
        self._send(200, body.encode(), {"Content-Type": "application/xml"})

    def _truncated(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self._drop()

    def do_PUT(self) -> None:
        data = self._body()
        standin, bucket, key, fault = self._begin("PUT", data)
        if fault:
            return self._fault(fault)
        metadata = {
            k[len("x-oss-meta-") :].lower(): v for k, v in self.headers.items() if k.lower().startswith("x-oss-meta-")
        }
        stored = StoredObject(
            data,
            metadata,
            self.headers.get("Content-Type", "application/octet-stream"),
            self.headers.get("Content-Encoding"),
        )
        if_absent = (self.headers.get("x-oss-forbid-overwrite") or "").lower() == "true"
        if not standin.store(bucket, key, stored, if_absent=if_absent):
            return self._error(409, "FileAlreadyExists")
        if standin._reply_lost("PUT", key):
            return self._drop()
        self._send(200, b"", {"ETag": f'"{stored.etag}"'})

    def _body(self) -> bytes:
        """The request's body: Content-Length bytes, or chunked (OSS accepts both; requests chunks a body of
        unknown or zero length, such as an empty file)."""
        if (self.headers.get("Transfer-Encoding") or "").lower() != "chunked":
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        pieces = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            pieces.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline().strip():  # trailers, up to the blank line that ends the body
            pass
        return b"".join(pieces)

    def do_DELETE(self) -> None:
        standin, bucket, key, fault = self._begin("DELETE")
        if fault:
            return self._fault(fault)
        standin.delete(bucket, key)
        self._send(204, b"", {})

    def _fault(self, status: int) -> None:
        if status == STALL:
            self.server.standin._released.wait(120)  # type: ignore[attr-defined]
            return self._drop()
        code = {403: "AccessDenied", 404: "NoSuchKey", 409: "FileAlreadyExists"}.get(status)
        self._error(status, code or ("ServiceUnavailable" if status >= 500 else "Fault"))

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have given up first
            self.connection.shutdown(socket.SHUT_RDWR)

    def _error(self, status: int, code: str, message: str | None = None) -> None:
        request_id = uuid.uuid4().hex.upper()[:24]
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message or code}</Message>'
            f"<RequestId>{request_id}</RequestId><HostId>127.0.0.1</HostId></Error>"
        ).encode()
        self._send(status, body, {"Content-Type": "application/xml", "x-oss-request-id": request_id})

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        if "x-oss-request-id" not in headers:
            self.send_header("x-oss-request-id", uuid.uuid4().hex.upper()[:24])
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # a client may close once it has read the prefix it needs
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass
