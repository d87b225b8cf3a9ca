"""Account-level DashScope refusals (a revoked key, an overdue balance, a model not activated) are the
operator's to fix: raised so the trigger redelivers and dead-letters, never stored, written or
remembered; a record stored with one by an earlier release is asked again. Proven with separate
processes (tests/support/fc_instance.py) and the real SDK and oss2 against the stand-ins."""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace

import pytest

from handler.app import Runtime, handle
from handler.ask.account import fix_for, is_account_level
from handler.deliver.answers import payload_hash
from handler.errors import AccountFailure
from handler.events.decode import decode
from handler.local.standin import error
from handler.result import Result, dumps
from tests.conftest import API_KEY
from tests.support.events import oss_record, queue_batch
from tests.support.instances import ANSWER_BUCKET, Instance, asked, instance_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]  # separate processes as FC instances


def stored_answers(oss):
    return sorted(key for (bucket, key) in oss.objects if bucket == ANSWER_BUCKET and "/.pending/" not in key)


def content(result):
    return result["output"]["choices"][0]["message"]["content"]


BATCH = queue_batch(("m0", "炖牛腩 0"), ("m1", "炖牛腩 1"), ("m2", "炖牛腩 2"))


def test_a_revoked_key_raises_the_batch_stores_nothing_and_the_replay_after_the_fix_is_answered(standin, oss):
    """3-message queue batch with a revoked key (the stand-in's 401 InvalidApiKey): raised, nothing
    stored; the same batch on a fresh instance after the key is fixed is asked and answered."""
    revoked = instance_env(standin, oss, DASHSCOPE_API_KEY="sk-revoked-key-000000")
    with Instance(revoked) as a:
        outage = a.invoke(BATCH)
    assert outage["raised"] == "BatchIncomplete" and outage["code"] == "InvalidApiKey"
    assert len(standin.requests) == 3 and not any(r.authorized for r in standin.requests)
    assert stored_answers(oss) == []
    (line,) = [line for line in outage["logs"] if line["event"] == "account_failure"]
    assert line["code"] == "InvalidApiKey" and "DASHSCOPE_API_KEY" in line["fix"]

    with Instance(instance_env(standin, oss)) as b:
        replay = b.invoke(BATCH)
    results = replay["returned"]
    assert [r["status_code"] for r in results] == [200, 200, 200]
    assert [content(r).endswith(f"炖牛腩 {i}") for i, r in enumerate(results)] == [True] * 3
    assert sorted(asked(r) for r in standin.requests[3:]) == ["炖牛腩 0", "炖牛腩 1", "炖牛腩 2"]
    assert stored_answers(oss) == ["answers/mns/m0.json", "answers/mns/m1.json", "answers/mns/m2.json"]


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "Arrearage"), (403, "AccessDenied"), (403, "AccessDenied.Unpurchased"), (403, "Model.AccessDenied")],
)
def test_billing_and_access_refusals_raise_and_are_not_remembered(standin, oss, status, code):
    """Arrearage (HTTP 400 on Alibaba's status-code page) and 403s: raised; the same instance asks again."""
    standin.script(error(status, code, "Access denied, please make sure your account is in good standing."))
    with Instance(instance_env(standin, oss)) as a:
        first = a.invoke(queue_batch(("b1", "今天吃什么?")))
        second = a.invoke(queue_batch(("b1", "今天吃什么?")))
    assert first["raised"] == "AccountFailure" and first["code"] == code
    assert second["returned"][0]["status_code"] == 200  # not served from instance memory
    assert len(standin.requests) == 2
    assert stored_answers(oss) == ["answers/mns/b1.json"]


def test_a_per_question_refusal_is_still_answered_and_stored(standin, oss):
    """DataInspectionFailed is about this input: returned, stored, and served to a redelivery."""
    standin.script(error(400, "DataInspectionFailed", "Input data may contain inappropriate content."))
    event = queue_batch(("q1", "不合适的问题"), ("q2", "合适的问题"))
    with Instance(instance_env(standin, oss)) as a:
        first = a.invoke(event)
    with Instance(instance_env(standin, oss)) as b:
        again = b.invoke(event)
    codes = sorted(r["code"] for r in first["returned"])
    assert codes == ["", "DataInspectionFailed"]
    assert again["returned"] == first["returned"] and len(standin.requests) == 2
    assert stored_answers(oss) == ["answers/mns/q1.json", "answers/mns/q2.json"]


def test_a_401_stored_by_the_previous_release_is_asked_again(standin, oss):
    """What today's main wrote for a revoked key (the 401 as a completed record, its marker left in
    place): a fresh instance does not serve it, asks, and replaces it with the answer."""
    body = "西红柿炖牛腩要炖多久?"
    (question,) = decode(queue_batch(("old-1", body)).encode()).records
    refusal = Result(401, "ds-old", "InvalidApiKey", "Invalid API-key provided.")
    oss.put(
        ANSWER_BUCKET,
        "answers/mns/old-1.json",
        dumps(refusal).encode(),
        status="completed",
        **{"payload-hash": payload_hash(question)},
        owner="old-instance",
        deadline=f"{time.time() - 3600:.3f}",
        generation="1",
    )
    oss.put(
        ANSWER_BUCKET,
        "answers/.pending/mns/old-1.json",
        b"{}",
        status="in_progress",
        **{"payload-hash": payload_hash(question)},
        owner="old-instance",
        deadline=f"{time.time() - 3600:.3f}",
        generation="1",
    )
    with Instance(instance_env(standin, oss)) as a:
        out = a.invoke(queue_batch(("old-1", body)))
    (result,) = out["returned"]
    assert result["status_code"] == 200 and content(result).endswith(body)
    assert len(standin.requests) == 1
    assert json.loads(oss.get(ANSWER_BUCKET, "answers/mns/old-1.json").data) == result
    assert any(line["event"] == "account_failure_dropped" for line in out["logs"])


def test_a_401_answer_file_from_the_previous_release_is_asked_again(standin, oss):
    """An OSS answer file holding a 401 (any status below 500 counted as answered): asked again."""
    bucket, key = "qwen-questions", "questions/old.txt"
    etag = oss.put(bucket, key, "牛腩要炖多久?").etag
    refusal = Result(401, "ds-old", "InvalidApiKey", "Invalid API-key provided.")
    oss.put(bucket, "answers/questions/old.txt.json", dumps(refusal).encode(), **{"source-etag": etag})
    record = oss_record(key, bucket=bucket, etag=etag, region=None)
    with Instance(instance_env(standin, oss, QWEN_OSS_BUCKETS=bucket)) as a:
        out = a.invoke(json.dumps({"events": [record]}))
    (result,) = out["returned"]
    assert result["status_code"] == 200 and len(standin.requests) == 1
    assert json.loads(oss.get(bucket, "answers/questions/old.txt.json").data) == result


def test_an_oss_question_file_under_an_outage_gets_no_answer_file(standin, oss):
    """A question file answered with a revoked key: raised, no answer file written."""
    bucket, key = "qwen-questions", "questions/new.txt"
    etag = oss.put(bucket, key, "牛腩要炖多久?").etag
    record = oss_record(key, bucket=bucket, etag=etag, region=None)
    env = instance_env(standin, oss, QWEN_OSS_BUCKETS=bucket, DASHSCOPE_API_KEY="sk-revoked-key-000000")
    with Instance(env) as a:
        out = a.invoke(json.dumps({"events": [record]}))
    assert out["raised"] == "AccountFailure" and out["code"] == "InvalidApiKey"
    assert oss.get(bucket, "answers/questions/new.txt.json") is None


def test_one_error_line_names_the_code_and_the_fix(standin, logs):
    """In-process, the real SDK: the only ERROR line of the outage is account_failure, with the fix."""
    runtime = Runtime(env={"DASHSCOPE_API_KEY": "sk-revoked-key-000000", "DASHSCOPE_HTTP_BASE_URL": standin.url})
    context = SimpleNamespace(request_id="fc-acc", function=SimpleNamespace(timeout=30))
    with pytest.raises(AccountFailure) as raised:
        handle(b"hi", context, runtime)
    assert raised.value.status_code == 401 and "DASHSCOPE_API_KEY" in raised.value.message
    errors = [json.loads(r.getMessage()) for r in logs.records if r.name == "qwen" and r.levelno >= logging.ERROR]
    assert [e["event"] for e in errors] == ["account_failure"]
    assert errors[0]["code"] == "InvalidApiKey" and "DASHSCOPE_API_KEY" in errors[0]["fix"]
    assert len(standin.requests) == 1  # a 4xx is never retried within the invocation


def test_the_code_lists():
    """Account-level by status (401, 403) or by code whatever the status; the question's own 4xx are not."""
    assert fix_for(400, "Arrearage") and fix_for(401, "InvalidApiKey") and fix_for(403, "AccessDenied.Unpurchased")
    assert fix_for(404, "ModelNotFound") and fix_for(403, "Workspace.AccessDenied")
    assert fix_for(400, "InvalidParameter") is None and fix_for(400, "DataInspectionFailed") is None
    assert not is_account_level(Result(400, "r", "DataInspectionFailed", "x"))
    assert not is_account_level(Result(500, "r", "InternalError", "x")) and API_KEY
