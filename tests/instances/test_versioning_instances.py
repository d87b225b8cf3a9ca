"""A versioned bucket (Enabled or Suspended) is refused with 500 InvalidConfig before anything is asked: on it
OSS ignores x-oss-forbid-overwrite, as the OSS stand-in does. Separate processes (tests/support/fc_instance.py)."""

from __future__ import annotations

import json

import pytest

from handler.deliver.store import Oss2Store
from handler.fc_context import Credentials
from tests.support.events import oss_record, topic_message
from tests.support.instances import ANSWER_BUCKET, Instance, instance_env

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_the_standin_ignores_forbid_overwrite_on_a_versioned_bucket_as_oss_does(oss):
    store = Oss2Store(Credentials("STS.X0001", "secret-0001-abcdef", "token-0001-abcdefgh"), oss.url)
    assert store.create(ANSWER_BUCKET, "k.json", b"{}", metadata={}) is True
    assert store.create(ANSWER_BUCKET, "k.json", b"{}", metadata={}) is False
    oss.versioning[ANSWER_BUCKET] = "Suspended"
    assert store.versioning(ANSWER_BUCKET) == "Suspended"
    assert store.create(ANSWER_BUCKET, "k.json", b"{}", metadata={}) is True  # overwritten: no exactly once


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])
def test_a_versioned_answer_bucket_is_invalid_config_before_anything_is_asked(standin, oss, status):
    oss.versioning[ANSWER_BUCKET] = status
    with Instance(instance_env(standin, oss)) as a:
        out = a.invoke(topic_message("ver-1", "hi"))
    assert out["raised"] == "DeploymentFailure" and out["code"] == "InvalidConfig", out  # a trigger: FC retries it
    result, _ = json.JSONDecoder().raw_decode(out["message"])  # its text begins with the result JSON
    assert result["status_code"] == 500 and result["code"] == "InvalidConfig", result
    assert ANSWER_BUCKET in result["message"] and status in result["message"]
    assert "x-oss-forbid-overwrite" in result["message"]
    assert standin.requests == []  # nothing asked
    assert not [k for (b, k) in oss.objects if b == ANSWER_BUCKET]  # no marker either


def test_a_versioned_question_bucket_is_invalid_config(standin, oss):
    stored = oss.put("questions", "q/v.txt", "hi")
    oss.versioning["questions"] = "Enabled"
    record = oss_record("q/v.txt", bucket="questions", etag=stored.etag, size=2)
    with Instance(instance_env(standin, oss, QWEN_OSS_BUCKETS="questions")) as a:
        out = a.invoke(json.dumps({"events": [record]}))
    assert out["code"] == "InvalidConfig" and "questions" in out["message"], out  # raised for the trigger
    assert standin.requests == []


def test_a_denied_versioning_lookup_warns_what_to_grant_and_answers(standin, oss):
    oss.deny("GetBucketVersioning")
    with Instance(instance_env(standin, oss)) as a:
        out = a.invoke(topic_message("ver-2", "hi"))
        again = a.invoke(topic_message("ver-3", "hi"))
    assert out["returned"]["status_code"] == 200 and out["returned"]["code"] == ""
    (warning,) = [line for line in out["logs"] if line["event"] == "bucket_versioning_unknown"]
    assert "oss:GetBucketVersioning on acs:oss:*:*:qwen-answers" in warning["message"]
    # Learnt once per instance: the second invocation neither asks again nor warns again.
    assert not [line for line in again["logs"] if line["event"] == "bucket_versioning_unknown"]
    assert [r.method for r in oss.requests].count("GetBucketVersioning") == 1
