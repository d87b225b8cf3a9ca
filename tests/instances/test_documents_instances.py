"""Exactly once holds for OSS documents as for text and images: separate processes (fresh interpreters, as FC
instances) against the stand-ins of this process. The same document event to two instances at once is
uploaded and asked once; a redelivery after a timeout reuses the upload of the delivery that timed out."""

from __future__ import annotations

import json

import pytest

from handler.local.standin import GENERATION_PATH
from tests.support.documents import pdf
from tests.support.events import oss_record
from tests.support.instances import Instance, instance_env

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
BUCKET = "qwen-docs"


def uploads(standin) -> list:
    return [r for r in standin.files.requests if r.method == "POST"]


def generations(standin) -> list:
    return [r for r in standin.requests if r.path.split("?")[0] == GENERATION_PATH]


def document_event(oss, key: str, data: bytes) -> tuple[str, str]:
    etag = oss.put(BUCKET, key, data).etag
    return json.dumps({"events": [oss_record(key, bucket=BUCKET, etag=etag, size=len(data))]}), etag


def env_for(standin, oss) -> dict[str, str]:
    return instance_env(standin, oss, QWEN_OSS_BUCKETS=BUCKET, QWEN_ALLOWED_MODELS="qwen-turbo,qwen-long")


def test_one_document_delivered_to_two_instances_at_once_is_uploaded_and_asked_once(standin, oss):
    standin.latency = 1.5  # the first instance is still asking when the second looks
    data = pdf(b"two instances")
    event, etag = document_event(oss, "inbox/dup.pdf", data)
    with Instance(env_for(standin, oss)) as a, Instance(env_for(standin, oss)) as b:
        a.send(event)
        b.send(event)
        one, two = a.receive(), b.receive()
    assert len(uploads(standin)) == 1 and len(generations(standin)) == 1
    assert one["returned"] == two["returned"] and one["returned"][0]["status_code"] == 200
    assert f"{len(data)} bytes" in one["returned"][0]["output"]["choices"][0]["message"]["content"]
    assert oss.writes[(BUCKET, "answers/inbox/dup.pdf.json")] == 1
    assert oss.get(BUCKET, "answers/inbox/dup.pdf.json").metadata == {"source-etag": etag}
    assert standin.files.files == {} and len(standin.files.deleted) == 1
    ways = sorted(
        line.get("answered_by", "asked") for out in (one, two) for line in out["logs"] if line["event"] == "question"
    )
    assert ways == ["asked", "waited"]


def test_a_redelivery_after_a_timeout_reuses_the_upload(standin, oss):
    standin.files.processing = 10**6  # still parsed when the first instance's short timeout runs out
    data = pdf(b"parsed slowly")
    key = "inbox/slow.pdf"
    event, _ = document_event(oss, key, data)
    with Instance(env_for(standin, oss)) as first:
        timed_out = first.invoke(event, timeout=3)
    assert timed_out.get("raised") is not None and "DocumentNotReady" in timed_out["message"], timed_out
    assert len(uploads(standin)) == 1 and generations(standin) == []
    standin.files.processing = 0  # DashScope has finished parsing by the time FC delivers it again
    for stored in standin.files.files.values():
        stored.polls_left = 0
    with Instance(env_for(standin, oss)) as second:
        again = second.invoke(event, timeout=30)
    assert "returned" in again and again["returned"][0]["status_code"] == 200, again
    assert len(uploads(standin)) == 1, "the redelivery uploaded the document again"
    assert len(generations(standin)) == 1
    assert standin.files.files == {} and len(standin.files.deleted) == 1  # deleted once its answer is stored
