"""OSS question files inside one instance: only listed buckets, and each version (key + eTag) asked once
through handler/deliver/once.py, with the real oss2 client against the local OSS stand-in (DashScope is the
fake SDK seam; tests/instances/test_instances.py runs it across processes)."""

from __future__ import annotations

import json
import time

import pytest

from handler.config import Settings
from handler.deliver.memory import AnsweredRecords
from handler.errors import InvalidConfig, TransientUpstreamError
from handler.local.cli import OFFLINE_BUCKETS
from tests.conftest import API_KEY, ROOT, echo, oss_invoker
from tests.support import oss_once
from tests.support.oss_once import BUCKET, oss_event
from tests.support.s_yaml import commented_triggers, load

fc = oss_once.fc  # the fixture is shared with tests/events/test_oss_keys.py (tests/support)
KEY = "questions/q.txt"
ANSWER = "answers/questions/q.txt.json"


@pytest.fixture
def run(oss, transport, clock):
    """handle() with the fake SDK, oss2 against the stand-in, and a fresh instance memory unless one is given."""
    return oss_invoker(oss, transport, clock, QWEN_OSS_BUCKETS=BUCKET)


def marker(etag: str) -> str:
    return f"answers/.pending/questions/q.txt.json@{etag}"


def content(result) -> str:
    return result["output"]["choices"][0]["message"]["content"]


# -- QWEN_OSS_BUCKETS ---------------------------------------------------------------------------


def test_a_bucket_not_listed_is_refused_before_any_request(run, oss, fc, transport):
    """An event naming another bucket: 403 BucketNotAllowed naming the variable; no OSS request, no ask."""
    oss.put("other-bkt", KEY, "把凭证发到这里?")
    (result,) = run(oss_event(("other-bkt", KEY, "E1")), fc)
    assert result["status_code"] == 403 and result["code"] == "BucketNotAllowed"
    assert "QWEN_OSS_BUCKETS" in result["message"] and "other-bkt" in result["message"]
    assert oss.requests == [] and transport.call_count == 0


def test_unset_means_no_bucket_and_says_how_to_list_one(run, oss, fc, transport):
    """QWEN_OSS_BUCKETS unset: question files are refused until their bucket is listed, and the message says so."""
    oss.put(BUCKET, KEY, "牛腩炖多久?")
    (result,) = run(oss_event((BUCKET, KEY, "E1")), fc, QWEN_OSS_BUCKETS="")
    assert result["status_code"] == 403 and result["code"] == "BucketNotAllowed"
    assert "QWEN_OSS_BUCKETS is not set" in result["message"]
    assert f"add {BUCKET} to QWEN_OSS_BUCKETS" in result["message"]
    assert oss.requests == [] and transport.call_count == 0


def test_in_a_batch_only_the_listed_bucket_is_read(run, oss, fc, transport):
    """One record per bucket: the listed one is read and answered, the other refused without a request."""
    etag = oss.put(BUCKET, KEY, "牛腩炖多久?").etag
    oss.put("team-inbox", KEY, "别的桶")
    listed, other = run(oss_event((BUCKET, KEY, etag), ("team-inbox", KEY, "E2")), fc)
    assert listed["status_code"] == 200 and other["code"] == "BucketNotAllowed"
    assert {r.bucket for r in oss.requests} == {BUCKET} and transport.call_count == 1


def test_several_buckets_can_be_listed(run, oss, fc):
    """A comma list, spaces allowed: each listed bucket's files are answered."""
    for bucket in ("team-a", "team-b"):
        etag = oss.put(bucket, KEY, f"{bucket} 的问题").etag
        (result,) = run(oss_event((bucket, KEY, etag)), fc, QWEN_OSS_BUCKETS=" team-a , team-b,")
        assert result["status_code"] == 200 and content(result).endswith(f"{bucket} 的问题")


@pytest.mark.parametrize("value", ["qwen-bkt,evil.example.com/#", "Bkt", "qwen-bkt;rm", "ab"])
def test_a_listed_name_that_is_not_a_bucket_name_is_a_config_error(value):
    """Each entry is checked as an OSS bucket name (it becomes part of a host name); the error names it."""
    with pytest.raises(InvalidConfig) as raised:
        Settings.from_env({"DASHSCOPE_API_KEY": API_KEY, "QWEN_OSS_BUCKETS": value})
    bad = next(name.strip() for name in value.split(",") if name.strip() != "qwen-bkt")
    assert raised.value.code == "InvalidConfig" and "QWEN_OSS_BUCKETS" in raised.value.message
    assert repr(bad) in raised.value.message


def test_an_invalid_list_is_a_500_from_the_handler(run, oss, fc, transport):
    """Through handle(): 500 InvalidConfig raised for the trigger, nothing read, nothing asked."""
    with pytest.raises(InvalidConfig) as raised:
        run(oss_event((BUCKET, KEY, "E1")), fc, QWEN_OSS_BUCKETS="qwen-bkt,x@evil")
    assert raised.value.status_code == 500 and "QWEN_OSS_BUCKETS" in raised.value.message
    assert oss.requests == [] and transport.call_count == 0


def test_the_offline_buckets_are_the_sample_events_buckets():
    """--offline lists exactly the buckets the sample OSS events name, so they are answered offline."""
    named = set()
    for path in (ROOT / "events").glob("*.json"):
        event = json.loads(path.read_text())
        if isinstance(event, dict) and isinstance(event.get("events"), list):
            named |= {r["oss"]["bucket"]["name"] for r in event["events"] if r.get("eventSource") == "acs:oss"}
    assert named and set(OFFLINE_BUCKETS.split(",")) == named


# -- exactly once per version -------------------------------------------------------------------


def test_the_marker_of_a_version_sits_beside_its_answer(run, oss, fc, transport):
    """Asking makes one in-progress marker for this key and eTag, beside the answer file; the answer is the file."""
    etag = oss.put(BUCKET, KEY, "牛腩炖多久?").etag
    (result,) = run(oss_event((BUCKET, KEY, etag)), fc)
    assert result["status_code"] == 200 and transport.call_count == 1
    assert oss.get(BUCKET, marker(etag)).metadata["status"] == "in_progress"
    assert json.loads(oss.get(BUCKET, ANSWER).data) == result
    assert oss.get(BUCKET, ANSWER).metadata == {"source-etag": etag}


def test_another_instance_asking_the_same_version_is_waited_for(run, oss, fc, transport):
    """A live marker of this version: not asked here; AnswerInProgress raised so the event comes again."""
    etag = oss.put(BUCKET, KEY, "牛腩炖多久?").etag
    oss.put(BUCKET, marker(etag), b"{}", status="in_progress", owner="other", deadline=f"{time.time() + 600:.3f}")
    fc.function.timeout = 5
    with pytest.raises(TransientUpstreamError) as raised:
        run(oss_event((BUCKET, KEY, etag)), fc)
    assert raised.value.code == "AnswerInProgress"
    assert f"oss://{BUCKET}/{ANSWER}" in str(raised.value)
    assert transport.call_count == 0 and oss.get(BUCKET, ANSWER) is None


def test_an_abandoned_marker_of_the_version_is_taken_over(run, oss, fc, transport):
    """A marker past its deadline (a dead instance) is taken over under its lock and the file answered."""
    etag = oss.put(BUCKET, KEY, "牛腩炖多久?").etag
    oss.put(BUCKET, marker(etag), b"{}", status="in_progress", owner="gone", deadline=f"{time.time() - 5:.3f}")
    (result,) = run(oss_event((BUCKET, KEY, etag)), fc)
    assert result["status_code"] == 200 and transport.call_count == 1
    assert oss.get(BUCKET, marker(etag) + ".takeover-2") is not None
    assert json.loads(oss.get(BUCKET, ANSWER).data) == result


def test_a_new_upload_is_a_new_question_that_replaces_the_answer_file(run, oss, fc, transport):
    """Version 2 right after version 1 (whose marker stays): its own marker, asked, its answer replaces the file."""
    first = oss.put(BUCKET, KEY, "第一版问题").etag
    (one,) = run(oss_event((BUCKET, KEY, first)), fc)
    second = oss.put(BUCKET, KEY, "第二版问题").etag
    (two,) = run(oss_event((BUCKET, KEY, second)), fc)
    assert content(one).endswith("第一版问题") and content(two).endswith("第二版问题")
    assert transport.call_count == 2
    answer = oss.get(BUCKET, ANSWER)
    assert json.loads(answer.data) == two and answer.metadata == {"source-etag": second}
    assert oss.get(BUCKET, marker(first)) is not None and oss.get(BUCKET, marker(second)) is not None


def test_a_redelivered_version_on_a_new_instance_is_the_stored_answer(run, oss, fc, transport):
    """Same key and eTag on a fresh instance: the answer file is returned, nothing asked or written."""
    etag = oss.put(BUCKET, KEY, "牛腩炖多久?").etag
    (first,) = run(oss_event((BUCKET, KEY, etag)), fc)
    oss.requests.clear()
    (again,) = run(oss_event((BUCKET, KEY, etag)), fc)
    assert again == first and transport.call_count == 1
    assert [r.method for r in oss.requests] == ["GET"]


def test_an_event_for_a_replaced_version_asks_nothing_and_writes_nothing(run, oss, fc, transport):
    """The object now holds a newer upload: the old event is skipped, the newer one's answer file untouched."""
    oss.put(BUCKET, KEY, "新的问题")
    (result,) = run(oss_event((BUCKET, KEY, "0123456789ABCDEF0123456789ABCDEF")), fc)
    assert result["status_code"] == 200 and result["code"] == "Skipped" and "replaced since" in result["message"]
    assert transport.call_count == 0 and oss.get(BUCKET, ANSWER) is None
    assert [k for (b, k) in oss.objects if k.startswith("answers/")] == []  # its marker was released


def test_without_an_etag_each_event_is_answered(run, oss, fc, transport):
    """No eTag (no version to recognise a redelivery by): answered and written each time, no marker, no memory."""
    oss.put(BUCKET, KEY, "牛腩炖多久?")
    memory = AnsweredRecords()
    (one,) = run(oss_event((BUCKET, KEY, None)), fc, memory)
    (two,) = run(oss_event((BUCKET, KEY, None)), fc, memory)
    assert one["status_code"] == two["status_code"] == 200 and transport.call_count == 2
    assert oss.writes[(BUCKET, ANSWER)] == 2 and oss.get(BUCKET, ANSWER).metadata == {"source-etag": ""}
    assert [k for (b, k) in oss.objects if ".pending" in k] == []


def test_a_forged_etag_is_dropped_and_answered_as_without_one(run, oss, fc, transport):
    """An eTag that is not what OSS writes (a header injection) is not used: no marker named by it."""
    oss.put(BUCKET, KEY, "牛腩炖多久?")
    (result,) = run(oss_event((BUCKET, KEY, "E1\r\nx-oss-acl: public-read")), fc)
    assert result["status_code"] == 200 and transport.call_count == 1
    assert [k for (b, k) in oss.objects if ".pending" in k] == []
    assert all("x-oss-acl" not in r.headers for r in oss.requests)


def test_the_shipped_s_yaml_lists_no_bucket_and_names_the_triggers_one():
    """s.yaml ships QWEN_OSS_BUCKETS empty (no bucket) and its comment names the OSS trigger example's bucket."""
    env = {k: str(v) for k, v in load()["resources"]["qwen"]["props"]["environmentVariables"].items()}
    assert Settings.from_env({**env, "DASHSCOPE_API_KEY": API_KEY}).oss_buckets == frozenset()
    buckets = {t["sourceArn"].rsplit(":", 1)[1] for t in commented_triggers() if t["triggerType"] == "oss"}
    (bucket,) = buckets  # the .txt and the .jsonl examples watch the same inbox
    text = (ROOT / "s.yaml").read_text()
    comment = text[: text.index("QWEN_OSS_BUCKETS:")].rsplit("QWEN_ANSWER_BUCKET:", 1)[1]
    assert bucket in comment
    assert Settings.from_env({**env, "DASHSCOPE_API_KEY": API_KEY, "QWEN_OSS_BUCKETS": bucket}).oss_buckets == {bucket}


def test_our_own_5xx_is_written_for_the_uploader_but_asked_again_on_redelivery(run, oss, fc, transport):
    """An internal failure lands in the answer file (so the uploader sees it) yet is no answer: it is raised,
    and the redelivery asks."""
    etag = oss.put(BUCKET, KEY, "牛腩炖多久?").etag
    transport.side_effect = RuntimeError("sdk bug")
    with pytest.raises(TransientUpstreamError) as raised:
        run(oss_event((BUCKET, KEY, etag)), fc)
    failed = json.loads(oss.get(BUCKET, ANSWER).data)
    assert failed["status_code"] == 500 and failed["code"] == raised.value.code == "InternalError"
    assert oss.get(BUCKET, marker(etag)) is None  # released at once, so the redelivery does not wait
    transport.side_effect = echo
    (again,) = run(oss_event((BUCKET, KEY, etag)), fc)
    assert again["status_code"] == 200 and json.loads(oss.get(BUCKET, ANSWER).data) == again
