"""A connection that breaks while an OSS body is read (requests' own ChunkedEncodingError, not an OssError)
is transient: before anything is paid it is raised for redelivery; after, the paid answer is returned.
The real oss2 against the OSS stand-in, whose GET sends half the promised body and drops the connection."""

from __future__ import annotations

import pytest

from handler.errors import TransientUpstreamError
from handler.local.standin_oss import TRUNCATE
from tests.conftest import FakeContext, oss_invoker
from tests.support.events import oss_event_bytes, oss_record, topic_message
from tests.support.instances import ANSWER_BUCKET, STS_ID, STS_SECRET, STS_TOKEN

STS = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": STS_ID,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS_SECRET,
    "ALIBABA_CLOUD_SECURITY_TOKEN": STS_TOKEN,
}


def oss_event(key: str, etag: str) -> bytes:
    return oss_event_bytes(oss_record(key, bucket="questions", etag=etag, size=20))


def test_a_question_file_whose_read_breaks_is_raised_for_redelivery(oss, transport, clock):
    stored = oss.put("questions", "q/broken.txt", "红烧肉怎么做?")
    oss.fail_next(TRUNCATE, method="GET", prefix="q/broken.txt")
    invoke = oss_invoker(oss, transport, clock, QWEN_OSS_BUCKETS="questions", **STS)
    with pytest.raises(TransientUpstreamError) as raised:
        invoke(oss_event("q/broken.txt", stored.etag), FakeContext())
    assert raised.value.code == "OssUnavailable" and "ChunkedEncodingError" in raised.value.message
    assert transport.call_count == 0  # nothing paid
    assert not [k for (b, k) in oss.objects if "/.pending/" in k or ".pending/" in k]  # marker released
    # The redelivery reads it whole and answers it.
    (result,) = invoke(oss_event("q/broken.txt", stored.etag), FakeContext())
    assert result["status_code"] == 200 and result["code"] == ""


def test_a_broken_read_after_paying_returns_the_answer(oss, transport, clock):
    """The create's reply is lost (retried: 409), and the read that would say whose answer it is breaks:
    the paid answer is still returned, never a 500."""
    oss.lose_reply("PUT", "answers/mns/lost-1.json")
    oss.fail_next(TRUNCATE, TRUNCATE, TRUNCATE, TRUNCATE, method="GET", prefix="answers/mns/lost-1.json")
    invoke = oss_invoker(oss, transport, clock, QWEN_ANSWER_BUCKET=ANSWER_BUCKET, **STS)
    result = invoke(topic_message("lost-1", "hi").encode(), FakeContext())
    assert transport.call_count == 1
    assert result["status_code"] == 200, result
    assert result["output"]["choices"][0]["message"]["content"] == "answer to hi"
    # Which answer the key holds could not be read: the paid one is returned, said not (known to be) stored.
    assert result["code"] == "AnswerNotStored" and "ChunkedEncodingError" in result["message"]
