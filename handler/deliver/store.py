"""The OSS seam: read a question object, read, write, create-if-absent and delete answer objects.
`oss2` is imported only here, and only when OSS is first needed. Every request fits in the invocation's
time left: none starts with less than MIN_REQUEST_SECONDS left, and each one's timeout is capped by it, so
a hung OSS endpoint cannot hold the invocation past its deadline (a paid answer would be lost)."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, Protocol

from handler import redact
from handler.errors import InvalidInput, ObjectAccessDenied, ObjectNotFound, QwenError, TransientUpstreamError
from handler.events.sources import plain, shown_key, shown_object
from handler.fc_context import Credentials, Invocation
from handler.values import Value, field

SOURCE_ETAG_META = "source-etag"  # x-oss-meta-source-etag on each answer object

REQUEST_TIMEOUT = 10.0  # the longest an OSS request may wait (connect, and each read); lowered to the time left
MIN_REQUEST_SECONDS = 0.25  # with less left, no OSS request is started: it could not finish in time
# A signed URL is a bearer grant to read one object: long enough for DashScope to fetch the document while it
# answers, short enough that a URL leaked anyway reads nothing for long.
SIGNED_URL_SECONDS = 10 * 60


def store_reserve(requests: int) -> float:
    """Seconds an answer must leave before the deadline for the `requests` OSS requests that keep it: each
    needs MIN_REQUEST_SECONDS to start."""
    return (requests + 1) * MIN_REQUEST_SECONDS


# An object's body to write: bytes, or a binary file (seekable) holding more than memory should.
Body = bytes | IO[bytes]


class StoredObject(Value):
    data: bytes
    size: int  # the whole object's size, even when only a prefix was read
    etag: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    def read(self, bucket: str, key: str, *, max_bytes: int | None = None, start: int = 0) -> StoredObject:
        """The object from byte `start` (at most max_bytes + 1 of it); ObjectNotFound, ObjectAccessDenied,
        TransientUpstreamError."""
        ...

    def stream(self, bucket: str, key: str, chunk_size: int, *, etag: str | None = None) -> Iterator[bytes]:
        """The whole object in chunks of at most chunk_size bytes; ObjectReplaced when its eTag is not `etag`."""
        ...

    def write(self, bucket: str, key: str, data: Body, *, metadata: Mapping[str, str]) -> None:
        """Store `data` as a JSON object with user metadata: bytes, or a binary file sent from its start in
        pieces (each call rewinds it, so a retry sends it whole again)."""
        ...

    def etag(self, bucket: str, key: str) -> str | None:
        """The object's current eTag (HeadObject), None when it is gone."""
        ...

    def versioning(self, bucket: str) -> str | None:
        """The bucket's versioning status (GetBucketVersioning): "Enabled", "Suspended" or None (never enabled)."""
        ...

    def create(self, bucket: str, key: str, data: bytes, *, metadata: Mapping[str, str]) -> bool:
        """Store `data` only if no object has this key (OSS's x-oss-forbid-overwrite); False when one has."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def sign_url(self, bucket: str, key: str, *, expires: int, etag: str | None) -> str:
        """A GET URL for this one object on the public endpoint, valid `expires` seconds; a secret. With `etag`,
        the object is first checked to still be that version (ObjectNotFound, or 409 ObjectReplaced)."""
        ...


class Oss2Store:
    """ObjectStore over the official oss2 SDK, with the function's (STS) credentials; `remaining` is the
    invocation's time left (its margin for returning already taken off)."""

    def __init__(self, credentials: Credentials, endpoint: str, remaining: Callable[[], float] = lambda: math.inf):
        try:
            import oss2  # ~0.3 s of imports that plain questions never pay
        except ImportError:
            # FC's Python runtimes include oss2; a local install may not.
            raise QwenError(
                "the oss2 package is not installed: FC's Python runtimes include it; locally, pip install oss2",
                code="OssNotConfigured",
            ) from None

        self._oss2 = oss2
        if credentials.security_token:
            auth: Any = oss2.StsAuth(
                credentials.access_key_id, credentials.access_key_secret, credentials.security_token
            )
        else:
            auth = oss2.Auth(credentials.access_key_id, credentials.access_key_secret)
        self._auth = auth
        self._endpoint = endpoint
        self._session = oss2.Session()  # one connection pool for every bucket and call
        self._remaining = remaining

    @contextmanager
    def _request(self, verb: str, bucket: str, key: str) -> Iterator[Any]:
        """A Bucket for one request, its timeout capped by the time left, and its failures as the project's."""
        import requests  # oss2's own dependency, imported with it

        left = self._remaining()
        if not left >= MIN_REQUEST_SECONDS:
            raise TransientUpstreamError(
                f"OssUnavailable: cannot {verb} {shown_object(bucket, key)}: no time left before the function's "
                f"deadline ({max(left, 0.0):.2f} s)",
                code="OssUnavailable",
                request_id="",
                attempts=0,
            )
        timeout = min(REQUEST_TIMEOUT, left)  # oss2 applies it to the connect and to each read
        try:
            yield self._oss2.Bucket(self._auth, self._endpoint, bucket, connect_timeout=timeout, session=self._session)
        except self._oss2.exceptions.OssError as error:
            raise self._translate(error, verb, bucket, key) from None
        except requests.exceptions.RequestException as error:
            # Raised by requests itself (a body cut short, a reset connection), not wrapped by oss2.
            raise _broken(error, verb, bucket, key) from None

    def read(self, bucket: str, key: str, *, max_bytes: int | None = None, start: int = 0) -> StoredObject:
        if max_bytes is not None:
            byte_range: tuple[int, int] | None = (start, start + max_bytes)
        else:
            byte_range = (start, None) if start else None  # type: ignore[assignment]  # oss2: "bytes=start-"
        with self._request("read", bucket, key) as oss:
            result = oss.get_object(key, byte_range=byte_range)
            _refuse_encoded(result, bucket, key)
            data = result.read()
        size = _total_size(result.headers.get("Content-Range"), len(data))
        metadata = {
            k[len("x-oss-meta-") :].lower(): v for k, v in result.headers.items() if k.lower().startswith("x-oss-meta-")
        }
        return StoredObject(data=data, size=size, etag=(result.etag or None), metadata=metadata)

    def stream(self, bucket: str, key: str, chunk_size: int, *, etag: str | None = None) -> Iterator[bytes]:
        # One GetObject read piece by piece: a document is uploaded as it arrives, never held whole.
        with self._request("read", bucket, key) as oss:
            result = oss.get_object(key)
            _refuse_encoded(result, bucket, key)
            current = (result.etag or "").strip('"').upper()
            if etag is not None and current != etag.strip('"').upper():
                result.resp.response.close()
                raise ObjectReplaced(
                    f"{shown_object(bucket, key)} now has eTag {plain(current)[:40]}, not this event's "
                    f"{plain(etag)[:40]}: it was replaced since, and the new upload's own event answers it",
                    code="ObjectReplaced",
                    status_code=409,
                )
            try:
                while chunk := result.read(chunk_size):
                    yield chunk
                    self._check_time(bucket, key)
            finally:
                result.resp.response.close()

    def _check_time(self, bucket: str, key: str) -> None:
        """A stream read after the deadline's margin stops, as a request would not start."""
        left = self._remaining()
        if not left >= MIN_REQUEST_SECONDS:
            raise TransientUpstreamError(
                f"OssUnavailable: cannot read {shown_object(bucket, key)} to its end: no time left before the "
                f"function's deadline ({max(left, 0.0):.2f} s)",
                code="OssUnavailable",
                request_id="",
                attempts=1,
            )

    def write(self, bucket: str, key: str, data: Body, *, metadata: Mapping[str, str]) -> None:
        if not isinstance(data, bytes):
            data.seek(0)  # oss2 sends a file from where it stands: a retry must send all of it again
        with self._request("write", bucket, key) as oss:
            oss.put_object(key, data, headers=_put_headers(metadata))  # a file is read and sent in pieces

    def etag(self, bucket: str, key: str) -> str | None:
        try:
            with self._request("read", bucket, key) as oss:
                return oss.head_object(key).etag or None
        except ObjectNotFound:
            return None

    def versioning(self, bucket: str) -> str | None:
        with self._request("versioning", bucket, "") as oss:
            return oss.get_bucket_versioning().status or None

    def create(self, bucket: str, key: str, data: bytes, *, metadata: Mapping[str, str]) -> bool:
        # OSS's only conditional PUT: 409 FileAlreadyExists when the key exists, checked atomically by OSS.
        headers = {**_put_headers(metadata), "x-oss-forbid-overwrite": "true"}
        with self._request("write", bucket, key) as oss:
            try:
                oss.put_object(key, data, headers=headers)
            except self._oss2.exceptions.OssError as error:
                if getattr(error, "status", None) == 409 and getattr(error, "code", "") == "FileAlreadyExists":
                    return False
                raise
        return True

    def delete(self, bucket: str, key: str) -> None:
        try:
            with self._request("delete", bucket, key) as oss:
                oss.delete_object(key)
        except ObjectNotFound:
            return

    def sign_url(self, bucket: str, key: str, *, expires: int, etag: str | None) -> str:
        if etag is not None:
            current = self.etag(bucket, key)
            if current is None:
                raise ObjectNotFound(f"cannot sign {shown_object(bucket, key)}: it does not exist")
            if not _same_etag(current, etag):
                raise QwenError(
                    f"{shown_object(bucket, key)} now has eTag {plain(current)[:40]}, not {plain(etag)[:40]}: it was "
                    "replaced, so no URL to it was made",
                    code="ObjectReplaced",
                    status_code=409,
                )
        try:
            # Signing is local (no request): the same credentials, on the endpoint DashScope can reach.
            oss = self._oss2.Bucket(self._auth, public_endpoint(self._endpoint), bucket, session=self._session)
            # slash_safe: the key's folders stay a path, so a reader that names the file by its last segment sees
            # the document's own name and suffix.
            return oss.sign_url("GET", key, expires, slash_safe=True)
        except self._oss2.exceptions.OssError as error:
            raise self._translate(error, "sign", bucket, key) from None

    def _translate(self, error: Any, verb: str, bucket: str, key: str) -> QwenError:
        # Only the status, OSS's code and request id: OSS error bodies may quote signed headers.
        status = getattr(error, "status", None) or 0
        code = getattr(error, "code", "") or ""
        request_id = getattr(error, "request_id", "") or ""
        where = shown_object(bucket, key)
        if isinstance(error, self._oss2.exceptions.ClientError):
            # Refused by oss2 before sending: an invalid bucket name or key in the event.
            return QwenError(
                f"cannot {verb} {where}: not a valid OSS bucket or key", code="InvalidObjectKey", status_code=400
            )
        if status == 404:
            return ObjectNotFound(f"cannot {verb} {where}: it does not exist ({code or 'NoSuchKey'})")
        if status == 403:
            action = _ACTIONS.get(verb, "oss:GetObject")
            resource = f"acs:oss:*:*:{plain(bucket)}"  # a bucket's own action (GetBucketVersioning)
            if verb != "versioning":
                resource += f"/{shown_key(_folder(key))}*"
            return ObjectAccessDenied(
                f"cannot {verb} {where}: access denied ({code or 'AccessDenied'}); the function's role needs "
                f"{action} on {resource}"
            )
        if 400 <= status < 500 and status not in (408, 429):
            return QwenError(
                f"cannot {verb} {where}: OSS answered {status} {code}", code="OssError", status_code=status
            )
        return TransientUpstreamError(
            f"OssUnavailable: cannot {verb} {where} (status={status if status > 0 else 'network'}, "
            f"code={plain(code) or 'none'}, request_id={plain(request_id) or 'none'})",
            code="OssUnavailable",
            request_id=request_id,
            attempts=1,
        )


class ObjectReplaced(InvalidInput):
    """The object was replaced since the event named its version: not the bytes to answer."""


def _refuse_encoded(result: Any, bucket: str, key: str) -> None:
    # requests undoes any Content-Encoding: a 200 KB gzip object can decode to gigabytes, so an
    # encoded object is refused before its body is read.
    encoding = (result.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        result.resp.response.close()
        raise InvalidInput(
            f"{shown_object(bucket, key)} was uploaded with Content-Encoding {plain(encoding)[:40]}: only "
            "plain (identity) objects are read, so that QWEN_OSS_MAX_BYTES bounds what is held in memory; "
            "upload it without Content-Encoding",
            code="ObjectEncoded",
            status_code=415,
        )


def _broken(error: BaseException, verb: str, bucket: str, key: str) -> TransientUpstreamError:
    """A connection that broke mid-request (requests' own exception): transient, redelivered or retried."""
    return TransientUpstreamError(
        f"OssUnavailable: cannot {verb} {shown_object(bucket, key)}: the connection broke ({type(error).__name__})",
        code="OssUnavailable",
        request_id="",
        attempts=1,
    )


# The permission each verb needs, named in the 403 message so the deployer knows what to grant.
_ACTIONS = {
    "read": "oss:GetObject",
    "write": "oss:PutObject",
    "delete": "oss:DeleteObject",
    "versioning": "oss:GetBucketVersioning",
}


def _same_etag(current: str, expected: str) -> bool:
    # OSS quotes eTags in headers and events may not: compare the bare upper-case values.
    return current.strip('"').upper() == expected.strip('"').upper()


def _folder(key: str) -> str:
    return key.rsplit("/", 1)[0] + "/" if "/" in key else ""


def _put_headers(metadata: Mapping[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", **{f"x-oss-meta-{k}": v for k, v in metadata.items()}}


def _total_size(content_range: str | None, read: int) -> int:
    # "bytes 0-1048576/5242880": the size after the slash is the whole object's.
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return read


_REGION = r"^[a-z0-9-]+$"
_INTERNAL = re.compile(r"^(?:https?://)?(oss-[a-z0-9-]+?)-internal(\.aliyuncs\.com)/?$")


def public_endpoint(endpoint: str) -> str:
    """The region's public endpoint for an internal one (`oss-<region>-internal.aliyuncs.com`, reachable only
    from Alibaba Cloud's network, not by DashScope); any other endpoint, a local stand-in's, as it is."""
    internal = _INTERNAL.match(endpoint)
    if internal is None:
        return endpoint
    # https: the URL carries a signature across the Internet.
    return f"https://{internal.group(1)}{internal.group(2)}"


def endpoint_for(region: str | None, override: str | None) -> str | None:
    """QWEN_OSS_ENDPOINT, else the internal endpoint of the function's own region, never an event's (it
    receives the function's credentials); None when neither is usable."""
    if override:
        return override
    if region and re.fullmatch(_REGION, region):
        return f"https://oss-{region}-internal.aliyuncs.com"
    return None


class OssAccess:
    """One invocation's way to OSS: the function's credentials, the configured or own-region endpoint,
    and one client shared by the records of a batch. Nothing here comes from an event."""

    def __init__(
        self,
        factory: Callable[..., ObjectStore],
        invocation: Invocation,
        override: str | None,
        remaining: Callable[[], float] = lambda: math.inf,
    ) -> None:
        self.factory = factory  # Oss2Store, or a test's fake: (credentials, endpoint, remaining)
        self.invocation = invocation
        self.override = override
        self.remaining = remaining  # seconds left before the invocation's deadline: bounds every OSS request
        self._store: ObjectStore | None = None
        self._lock = threading.Lock()

    def store(self) -> ObjectStore:
        with self._lock:
            if self._store is None:
                self._store = self._connect()
            return self._store

    def _connect(self) -> ObjectStore:
        creds = self.invocation.credentials
        if creds is None:
            raise QwenError("cannot reach OSS without credentials (the function needs a role)", code="OssNotConfigured")
        # oss2 logs its request headers at DEBUG, the STS token among them.
        redact.pin("credentials", [creds.access_key_secret, creds.security_token])
        endpoint = endpoint_for(self.invocation.region, self.override)
        if endpoint is None:
            raise QwenError(
                "cannot reach OSS: set QWEN_OSS_ENDPOINT, or run where the function's region (FC's context or "
                "FC_REGION) is a region name such as cn-hangzhou",
                code="OssNotConfigured",
            )
        return self.factory(creds, endpoint, remaining=self.remaining)
