"""DashScopeFiles over real sockets against the local files stand-in: the calls, the streamed body, what each
failure means, and the deadline."""

from __future__ import annotations

import hashlib
import itertools
import math
import socket
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from handler.ask.files import NAME_PREFIX, DashScopeFiles, FileInfo, upload_name
from handler.errors import AccountFailure, QwenError, TransientUpstreamError
from handler.local.standin_files import (
    API_KEY,
    FORBIDDEN,
    QUOTA_FULL,
    SERVER_ERROR,
    THROTTLED,
    UNAUTHORIZED,
    FilesStandIn,
)

BLOCK = bytes(range(256)) * 256  # 64 KiB, yielded again and again: the generator itself holds nothing


@pytest.fixture
def server() -> Iterator[FilesStandIn]:
    with FilesStandIn() as standin:
        yield standin


@pytest.fixture
def files(server: FilesStandIn) -> DashScopeFiles:
    return DashScopeFiles(API_KEY, server.url, read_timeout=10)


def blocks(size: int) -> Iterator[bytes]:
    for start in range(0, size, len(BLOCK)):
        yield BLOCK[: min(len(BLOCK), size - start)]


def digest(size: int) -> str:
    sha = hashlib.sha256()
    for block in blocks(size):
        sha.update(block)
    return sha.hexdigest()


def test_upload_retrieve_list_delete(server, files):
    name = upload_name("inbox/报告.docx", '"5B3C"')
    data = "第一章\n".encode() * 1000
    uploaded = files.upload(name, len(data), [data[:100], data[100:]])
    assert uploaded == FileInfo(uploaded.id, len(data), name, "processed", "file-extract", uploaded.created_at)
    (stored,) = server.files.values()
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert server.requests[0].fields == {"purpose": "file-extract"}
    assert server.requests[0].path == "/compatible-mode/v1/files"
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert files.retrieve(uploaded.id).status == "processed"
    assert [f.filename for f in files.list()] == [name] and name.startswith(NAME_PREFIX)
    files.delete(uploaded.id)
    assert files.list() == []
    files.delete(uploaded.id)  # already gone: nothing to do
    with pytest.raises(QwenError) as gone:
        files.retrieve(uploaded.id)
    assert gone.value.status_code == 404


def test_a_file_is_processing_before_it_is_processed(server, files):
    server.processing = 2
    uploaded = files.upload("qwen-fc-a.txt", 5, [b"hello"])
    assert uploaded.status == "processing"
    assert [files.retrieve(uploaded.id).status for _ in range(3)] == ["processing", "processing", "processed"]


def test_list_pages_with_limit_and_after(files):
    ids = [files.upload(f"qwen-fc-{i}.txt", 1, [b"x"]).id for i in range(3)]
    first = files.list(limit=2)
    assert [f.id for f in first] == ids[:2]
    assert [f.id for f in files.list(limit=2, after=first[-1].id)] == ids[2:]


def test_a_large_upload_is_streamed_with_its_length_announced(server, files):
    """30 MB from a generator: the bytes arrive whole, with a Content-Length, and memory does not grow with them."""
    size = 30 * 1024 * 1024 + 7
    files.upload("qwen-fc-warm.txt", 1, [b"x"])  # the session and its imports, before measuring
    tracemalloc.start()
    try:
        files.upload("qwen-fc-large.pdf", size, blocks(size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stored = server.files["file-fe-000002"]
    assert (stored.size, stored.sha256) == (size, digest(size))
    request = server.requests[-1]
    assert "transfer-encoding" not in request.headers
    assert int(request.headers["content-length"]) > size
    assert peak < size / 20, f"the upload held {peak:,} bytes at its peak"


@pytest.mark.parametrize("given", [[b"abc"], [b"abcdef", b"!"], itertools.repeat(b"x")])
def test_chunks_that_do_not_hold_the_announced_size(server, files, given):
    """Fewer bytes, or more (never sent past the announced length, so an endless generator stops at once)."""
    with pytest.raises(QwenError) as raised:
        files.upload("qwen-fc-a.txt", 6, given)
    assert raised.value.code == "UploadSizeMismatch"
    assert server.files == {}


@pytest.mark.parametrize("failure", [UNAUTHORIZED, FORBIDDEN])
def test_account_refusals_are_raised_as_the_account_failure(server, files, failure):
    server.fail_next(failure)
    with pytest.raises(AccountFailure) as raised:
        files.upload("qwen-fc-a.txt", 1, [b"x"])
    assert raised.value.status_code == failure[0] and raised.value.code == failure[1]
    assert "main account" in raised.value.message
    assert API_KEY not in raised.value.message  # the stand-in quotes the Authorization header back


def test_a_wrong_key_is_the_account_failure(server):
    with pytest.raises(AccountFailure) as raised:
        DashScopeFiles("sk-wrong-key-00000000", server.url).list()
    assert raised.value.code == "InvalidApiKey"


@pytest.mark.parametrize("failure", [THROTTLED, SERVER_ERROR])
def test_throttling_and_server_errors_are_transient(server, files, failure):
    server.fail_next(failure)
    with pytest.raises(TransientUpstreamError) as raised:
        files.retrieve("file-fe-1")
    assert not isinstance(raised.value, AccountFailure)
    assert raised.value.code == failure[1] and raised.value.request_id == "files-standin-req"


def test_a_full_quota_is_a_refusal_that_says_so(server, files):
    server.fail_next(QUOTA_FULL)
    with pytest.raises(QwenError) as raised:
        files.upload("qwen-fc-a.txt", 1, [b"x"])
    error = raised.value
    assert not isinstance(error, TransientUpstreamError)
    assert (error.status_code, error.code) == (400, "InvalidParameter")
    assert "exceeds the limit of 10000" in error.message and "10,000 files" in error.message
    assert API_KEY not in error.message and API_KEY not in repr(error.args)


def test_a_network_failure_is_transient():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(TransientUpstreamError) as raised:
            DashScopeFiles(API_KEY, f"http://127.0.0.1:{port}/api/v1").list()
    assert raised.value.code == "ConnectionError"


def test_a_hung_endpoint_is_left_when_the_time_is_up(server, files):
    server.stall()
    deadline = time.monotonic() + 0.6
    bounded = DashScopeFiles(API_KEY, server.url, remaining=lambda: deadline - time.monotonic())
    started = time.monotonic()
    with pytest.raises(TransientUpstreamError) as raised:
        bounded.retrieve("file-fe-1")
    assert time.monotonic() - started < 2.0
    assert raised.value.code == "RequestTimeout"


def test_no_request_starts_without_time_left(server):
    late = DashScopeFiles(API_KEY, server.url, remaining=lambda: 0.1)
    with pytest.raises(TransientUpstreamError) as raised:
        late.upload("qwen-fc-a.txt", 1, [b"x"])
    assert raised.value.code == "FilesUnavailable" and server.requests == []


def test_an_upload_stops_sending_at_the_deadline(server):
    left = iter([math.inf, math.inf, 0.0])  # the request starts; the time is up during the body
    files = DashScopeFiles(API_KEY, server.url, remaining=lambda: next(left, 0.0))
    with pytest.raises(TransientUpstreamError) as raised:
        files.upload("qwen-fc-a.txt", 3 * len(BLOCK), blocks(3 * len(BLOCK)))
    assert raised.value.code == "FilesUnavailable" and "deadline" in raised.value.message
    assert server.files == {}
