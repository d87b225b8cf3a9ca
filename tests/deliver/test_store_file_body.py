"""Oss2Store.write with a binary file: sent in pieces with its length, always from its start (a retry after a
failed PUT sends it whole again), an empty file stored empty. The real oss2 against the OSS stand-in."""

from __future__ import annotations

import tempfile

from handler.deliver.store import Oss2Store
from handler.fc_context import Credentials

BUCKET = "answers-bucket"
BODY = b"".join(f'{{"custom_id":"{n}","status_code":200}}\n'.encode() for n in range(5000))  # ~180 KB


def store(oss) -> Oss2Store:
    return Oss2Store(Credentials("STS.FILE0001", "file-secret-0001"), oss.url)


def test_a_file_is_stored_whole_from_its_start_with_its_length(oss):
    with tempfile.TemporaryFile() as body:
        body.write(BODY)  # left at its end, as a writer leaves it
        store(oss).write(BUCKET, "answers/a.jsonl", body, metadata={"source-etag": "E1"})
    stored = oss.get(BUCKET, "answers/a.jsonl")
    assert stored.data == BODY and stored.metadata == {"source-etag": "E1"}
    (put,) = [r for r in oss.requests if r.method == "PUT"]
    assert put.headers["Content-Length"] == str(len(BODY))


def test_each_write_of_the_same_file_sends_it_whole(oss):
    with tempfile.TemporaryFile() as body:
        body.write(BODY)
        store(oss).write(BUCKET, "answers/one.jsonl", body, metadata={})
        store(oss).write(BUCKET, "answers/two.jsonl", body, metadata={})
    assert oss.get(BUCKET, "answers/one.jsonl").data == oss.get(BUCKET, "answers/two.jsonl").data == BODY


def test_an_empty_file_is_stored_empty(oss):
    one = store(oss)
    with tempfile.TemporaryFile() as body:
        one.write(BUCKET, "answers/empty.jsonl", body, metadata={})  # sent chunked: no length to say
        one.write(BUCKET, "answers/after.jsonl", b"next", metadata={})  # on the same connection, still in step
    assert oss.get(BUCKET, "answers/empty.jsonl").data == b""
    assert oss.get(BUCKET, "answers/after.jsonl").data == b"next"
