"""An answerless stream (no text, no reasoning, no finish_reason) is a transient failure: retried within the
deadline, never stored, never returned as success. The real SDK against the DashScope and OSS stand-ins."""

from __future__ import annotations

import json

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.errors import TransientUpstreamError
from handler.local.standin import empty_stream
from tests.conftest import API_KEY
from tests.support.events import topic_message
from tests.support.instances import ANSWER_BUCKET, STS_ID, STS_SECRET, STS_TOKEN

pytestmark = pytest.mark.slow  # the real SDK over the wire, OSS stand-in


@pytest.fixture
def wire(standin, oss) -> Runtime:
    env = {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_ANSWER_BUCKET": ANSWER_BUCKET,
        "QWEN_MAX_ATTEMPTS": "3",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": STS_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS_SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": STS_TOKEN,
    }
    return Runtime(env=env, backoff=Backoff(base=0.02, cap=0.05), memory=AnsweredRecords())


def test_an_empty_stream_is_retried_and_the_retry_answers(standin, oss, wire, context):
    standin.script(empty_stream())
    result = json.loads(handle(topic_message("empty-1", "hi").encode(), context, wire))
    assert result["status_code"] == 200 and result["code"] == ""
    assert result["output"]["choices"][0]["message"]["content"]  # the retry's real answer
    assert len(standin.requests) == 2


def test_only_empty_streams_raise_for_redelivery_and_store_nothing(standin, oss, wire, context):
    standin.script(empty_stream(), empty_stream(), empty_stream())
    with pytest.raises(TransientUpstreamError) as raised:
        handle(topic_message("empty-2", "hi").encode(), context, wire)
    assert raised.value.code == "MalformedResponse"
    assert len(standin.requests) == 3
    assert oss.get(ANSWER_BUCKET, "answers/mns/empty-2.json") is None
