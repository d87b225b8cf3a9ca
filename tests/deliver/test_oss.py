"""OSS question files: read, answer, write back once; guard against loops and redeliveries."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.deliver.store import StoredObject
from handler.deliver.store import StoredObject as Stored
from handler.errors import ObjectAccessDenied, ObjectNotFound, TransientUpstreamError
from handler.fc_context import Credentials
from handler.result import Result, dumps
from tests.conftest import API_KEY, response
from tests.support.events import oss_event_bytes, oss_record

CREDS = SimpleNamespace(access_key_id="STS.AKID0001", access_key_secret="sts-secret-0001", security_token="sts-tok-01")


def oss_event(key="questions/q.txt", *, etag="ETAG1", size=12, name="ObjectCreated:PutObject", region="cn-hangzhou"):
    return oss_event_bytes(oss_record(key, bucket="bkt", etag=etag, size=size, name=name, region=region))


BUCKETS = "bkt,qwen-bkt"  # QWEN_OSS_BUCKETS: the buckets of these tests' events


@pytest.fixture(autouse=True)
def listed(env):
    """The buckets these tests' events name are listed, as a deployer lists the trigger's bucket."""
    env["QWEN_OSS_BUCKETS"] = BUCKETS


@pytest.fixture
def oss_context(context):
    context.credentials = CREDS
    return context


def reads(store, question: bytes = "牛腩炖多久?".encode(), etag: str = "ETAG1"):
    """Arrange the fake bucket: no answer yet, then the question object."""

    def read(bucket, key, *, max_bytes=None):
        if key.startswith("answers/"):
            raise ObjectNotFound("no answer yet")
        return Stored(data=question, size=len(question), etag=etag)

    store.read.side_effect = read


def test_a_question_file_is_answered_and_written_back(runtime, oss_context, store, store_factory, transport):
    """The object's text is asked, and the result lands at answers/<key>.json with the source eTag."""
    reads(store)
    results = json.loads(handle(oss_event(), oss_context, runtime))
    assert [r["status_code"] for r in results] == [200]
    assert transport.call_args.kwargs["messages"][-1]["content"] == "牛腩炖多久?"
    (write,) = store.write.call_args_list
    assert write.args[:2] == ("bkt", "answers/questions/q.txt.json")
    assert json.loads(write.args[2]) == results[0]
    assert write.kwargs["metadata"] == {"source-etag": "ETAG1"}
    creds, endpoint = store_factory.call_args.args
    assert (creds.access_key_id, creds.security_token) == ("STS.AKID0001", "sts-tok-01")
    assert endpoint == "https://oss-cn-hangzhou-internal.aliyuncs.com"


def test_python312_credentials_come_from_the_environment(runtime, context, env, store, store_factory):
    """Without context.credentials (python3.12), ALIBABA_CLOUD_* variables are used."""
    env.update(
        ALIBABA_CLOUD_ACCESS_KEY_ID="STS.ENV0001",
        ALIBABA_CLOUD_ACCESS_KEY_SECRET="env-secret-01",
        ALIBABA_CLOUD_SECURITY_TOKEN="env-token-001",
    )
    reads(store)
    handle(oss_event(), context, runtime)
    assert store_factory.call_args.args[0] == Credentials("STS.ENV0001", "env-secret-01", "env-token-001")


def test_the_endpoint_can_be_overridden(runtime, oss_context, env, store, store_factory):
    """QWEN_OSS_ENDPOINT replaces the region's internal endpoint."""
    env["QWEN_OSS_ENDPOINT"] = "https://oss-cn-hangzhou.aliyuncs.com"
    reads(store)
    handle(oss_event(), oss_context, runtime)
    assert store_factory.call_args.args[1] == "https://oss-cn-hangzhou.aliyuncs.com"


def test_objects_under_the_output_prefix_are_skipped(runtime, oss_context, store, transport):
    """Our own answer files never trigger another answer: no read, no call, no write."""
    results = json.loads(handle(oss_event("answers/questions/q.txt.json"), oss_context, runtime))
    assert results[0]["status_code"] == 200 and results[0]["code"] == "Skipped"
    store.read.assert_not_called()
    store.write.assert_not_called()
    transport.assert_not_called()


def test_a_custom_output_prefix_is_the_one_guarded(runtime, oss_context, env, store, transport):
    """QWEN_OSS_OUTPUT_PREFIX moves both the answers and the loop guard."""
    env["QWEN_OSS_OUTPUT_PREFIX"] = "out"
    reads(store)
    assert json.loads(handle(oss_event("out/x.txt"), oss_context, runtime))[0]["code"] == "Skipped"
    handle(oss_event("in/x.txt"), oss_context, runtime)
    assert store.write.call_args.args[1] == "out/in/x.txt.json"


def test_a_redelivered_event_is_not_answered_again(runtime, oss_context, store, transport):
    """An answer already stored for the same eTag is returned as it is, without a call or a write."""
    earlier = Result(200, "ds-earlier", output={"text": "早就答过了"}, usage={"total_tokens": 3})

    def read(bucket, key, *, max_bytes=None):
        assert key == "answers/questions/q.txt.json"
        return StoredObject(data=dumps(earlier).encode(), size=10, metadata={"source-etag": "etag1"})

    store.read.side_effect = read
    results = json.loads(handle(oss_event(etag="ETAG1"), oss_context, runtime))
    assert results == [earlier.to_dict()]
    transport.assert_not_called()
    store.write.assert_not_called()


def test_a_changed_object_is_answered_again(runtime, oss_context, store, transport):
    """An answer stored for an older eTag does not stop the new version from being answered."""

    def read(bucket, key, *, max_bytes=None):
        if key.startswith("answers/"):
            return StoredObject(data=dumps(Result(200, "old")).encode(), size=10, metadata={"source-etag": "OLD"})
        return StoredObject(data=b"new question", size=12, etag="NEW")

    store.read.side_effect = read
    handle(oss_event(etag="NEW"), oss_context, runtime)
    assert transport.call_count == 1 and store.write.call_count == 1


def test_an_object_over_the_cap_is_a_413_without_reading_it(runtime, oss_context, store, transport, env):
    """The event's size already tells: refused before any read or call."""
    env["QWEN_OSS_MAX_BYTES"] = "100"
    store.read.side_effect = ObjectNotFound("no answer yet")
    result = json.loads(handle(oss_event(size=101), oss_context, runtime))[0]
    assert result["status_code"] == 413 and result["code"] == "ObjectTooLarge"
    assert all(c.args[1].startswith("answers/") for c in store.read.call_args_list)
    transport.assert_not_called()


def test_an_object_that_grew_past_the_cap_is_a_413(runtime, oss_context, store, transport, env):
    """When the object read is larger than the cap (whatever the event said), it is refused."""
    env["QWEN_OSS_MAX_BYTES"] = "100"

    def read(bucket, key, *, max_bytes=None):
        if key.startswith("answers/"):
            raise ObjectNotFound("none")
        assert max_bytes == 100
        return StoredObject(data=b"x" * 101, size=5000, etag="ETAG1")

    store.read.side_effect = read
    assert json.loads(handle(oss_event(size=10), oss_context, runtime))[0]["code"] == "ObjectTooLarge"
    transport.assert_not_called()


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "ImageCorrupt"), ("文本\x00二进制".encode(), "ObjectNotText")],
)
def test_a_binary_object_is_a_415(runtime, oss_context, store, transport, data, code):
    """Objects that are neither UTF-8 text nor a whole image header (a cut PNG, NUL bytes) are refused with 415."""
    reads(store, question=data)
    result = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert result["status_code"] == 415 and result["code"] == code
    transport.assert_not_called()


def test_a_missing_object_is_a_404(runtime, oss_context, store, transport):
    """An object deleted before we read it is a 404 result, not a retry."""
    store.read.side_effect = ObjectNotFound("gone")
    result = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert result["status_code"] == 404 and result["code"] == "ObjectNotFound"
    transport.assert_not_called()


def test_no_credentials_is_a_clear_500(runtime, context, store_factory, transport):
    """Without a role there is nothing to read OSS with: a 500 that says so."""
    result = json.loads(handle(oss_event(), context, runtime))[0]
    assert result["status_code"] == 500 and result["code"] == "OssNotConfigured" and "role" in result["message"]
    store_factory.assert_not_called()


def busy(n: int = 1):
    return [
        TransientUpstreamError("OssUnavailable: busy", code="OssUnavailable", request_id=f"oss-{i}", attempts=1)
        for i in range(n)
    ]


def test_two_transient_write_failures_then_success(runtime, oss_context, store, transport, clock):
    """A busy OSS is retried within the deadline: asked once, stored on the third write, a plain 200."""
    reads(store)
    store.write.side_effect = [*busy(2), None]
    result = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert result["status_code"] == 200 and result["code"] == ""
    assert transport.call_count == 1 and store.write.call_count == 3
    assert len(clock.sleeps) == 2


def test_oss_down_past_the_retries_returns_the_answer_and_remembers_it(runtime, oss_context, store, transport, logs):
    """The paid answer is returned with AnswerNotStored; the redelivery writes it without asking again."""
    reads(store)
    store.write.side_effect = [*busy(3), None]
    result = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert result["status_code"] == 200 and result["output"]["choices"][0]["message"]["content"] == "答案"
    assert result["code"] == "AnswerNotStored" and "oss://bkt/answers/questions/q.txt" in result["message"]
    assert logs.events("answer_not_stored")[0]["answer_key"] == "oss://bkt/answers/questions/q.txt.json"
    again = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert again["code"] == "" and again["output"] == result["output"]
    assert transport.call_count == 1 and store.write.call_count == 4
    handle(oss_event(), oss_context, runtime)  # stored now: neither asked nor written a third time
    assert transport.call_count == 1 and store.write.call_count == 4


def test_a_denied_write_returns_the_answer_and_names_the_permission(runtime, oss_context, store, transport):
    """403 on the answer file: the answer is returned (not lost), the message says where and what to grant."""
    reads(store)
    store.write.side_effect = ObjectAccessDenied(
        "cannot write oss://bkt/answers/questions/q.txt.json: access denied (AccessDenied); the function's role "
        "needs oss:PutObject on acs:oss:*:*:bkt/answers/questions/*"
    )
    result = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert result["status_code"] == 200 and result["output"] is not None
    assert result["code"] == "AnswerNotStored" and "oss:PutObject" in result["message"]
    assert store.write.call_count == 1  # a denial is not retried
    handle(oss_event(), oss_context, runtime)
    assert transport.call_count == 1  # remembered by the instance


@pytest.mark.parametrize(
    ("data", "size", "code"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", 8, "ImageCorrupt"),
        (b"\x00\x01\x02binary", 9, "ObjectNotText"),
        (b"x" * 200, 200, "ObjectTooLarge"),
        (b"   ", 3, "EmptyEvent"),
        (b'{"not": "a request"}', 20, "InvalidEvent"),
    ],
)
def test_a_refused_file_gets_its_refusal_as_answer_file(runtime, oss_context, store, transport, env, data, size, code):
    """Binary, too large, empty or not a question: the uploader finds why in the answer file."""
    env["QWEN_OSS_MAX_BYTES"] = "100"
    reads(store, question=data)
    result = json.loads(handle(oss_event(size=size), oss_context, runtime))[0]
    assert result["code"] == code and result["status_code"] in (400, 413, 415)
    (write,) = store.write.call_args_list
    assert write.args[1] == "answers/questions/q.txt.json" and json.loads(write.args[2]) == result
    transport.assert_not_called()


def test_an_event_region_never_chooses_the_endpoint(runtime, oss_context, store, store_factory):
    """The record's region (here a host of the attacker's) is ignored: the function's own region decides."""
    reads(store)
    handle(oss_event(region="x@attacker.example/#"), oss_context, runtime)
    _, endpoint = store_factory.call_args.args
    assert endpoint == "https://oss-cn-hangzhou-internal.aliyuncs.com"
    assert "attacker" not in endpoint


def test_a_malformed_function_region_is_refused_not_used(runtime, oss_context, store_factory, transport):
    """A region that is not a region name (context or FC_REGION) gives OssNotConfigured and no client."""
    oss_context.region = "evil.example/#"
    result = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert result["status_code"] == 500 and result["code"] == "OssNotConfigured"
    assert "QWEN_OSS_ENDPOINT" in result["message"]
    store_factory.assert_not_called()
    transport.assert_not_called()


def test_an_upstream_refusal_is_written_too(runtime, oss_context, store, transport):
    """A 4xx from DashScope is the answer for that file: written back so the uploader sees why."""
    reads(store)
    transport.return_value = response(400, code="DataInspectionFailed", message="inappropriate content")
    result = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert result["code"] == "DataInspectionFailed"
    assert json.loads(store.write.call_args.args[2])["code"] == "DataInspectionFailed"


def test_with_the_real_oss2_client(oss, standin, oss_context, context):
    """oss2 against the local OSS stand-in: the answer lands in the bucket exactly once."""
    oss.put("qwen-bkt", "questions/q.txt", "西红柿炖牛腩要炖多久?")
    etag = oss.get("qwen-bkt", "questions/q.txt").etag
    env = {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_OSS_BUCKETS": BUCKETS,
    }
    wire = Runtime(env=env, backoff=Backoff(base=0.02, cap=0.1), memory=AnsweredRecords())
    event = oss_event_bytes(oss_record("questions/q.txt", bucket="qwen-bkt", etag=etag))
    first = json.loads(handle(event, oss_context, wire))
    assert first[0]["status_code"] == 200 and "西红柿炖牛腩要炖多久?" in json.dumps(first, ensure_ascii=False)
    answer = oss.get("qwen-bkt", "answers/questions/q.txt.json")
    assert json.loads(answer.data) == first[0]
    assert answer.metadata == {"source-etag": etag}
    assert answer.content_type.startswith("application/json")

    # A fresh instance (no memory) receives the same event again: nothing is asked or written.
    fresh = Runtime(env=env, memory=AnsweredRecords())
    second = json.loads(handle(event, oss_context, fresh))
    assert second == first
    # One answer PUT, and the one in-progress marker of this version (x-oss-forbid-overwrite) beside it.
    assert oss.writes == {
        ("qwen-bkt", "answers/questions/q.txt.json"): 1,
        ("qwen-bkt", f"answers/.pending/questions/q.txt.json@{etag}"): 1,
    }
    assert len(standin.requests) == 1
    sts = [r.headers.get("x-oss-security-token") for r in oss.requests]
    assert sts and all(token == "sts-tok-01" for token in sts)


def wire_runtime(standin, oss):
    env = {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_OSS_BUCKETS": BUCKETS,
    }
    return Runtime(env=env, backoff=Backoff(base=0.02, cap=0.1), memory=AnsweredRecords())


def wire_event(etag: str) -> bytes:
    return oss_event_bytes(oss_record("questions/q.txt", bucket="qwen-bkt", etag=etag, region=None))


def test_oss2_write_faults_are_retried_against_the_standin(oss, standin, oss_context):
    """Through oss2: two 503s on the answer PUT, then it lands; DashScope asked once."""
    etag = oss.put("qwen-bkt", "questions/q.txt", "牛腩炖多久?").etag
    oss.fail_next(503, 503, method="PUT", prefix="answers/questions/q.txt.json")
    result = json.loads(handle(wire_event(etag), oss_context, wire_runtime(standin, oss)))[0]
    assert result["status_code"] == 200 and result["code"] == ""
    assert json.loads(oss.get("qwen-bkt", "answers/questions/q.txt.json").data) == result
    answer_puts = [r for r in oss.requests if r.method == "PUT" and r.key == "answers/questions/q.txt.json"]
    assert len(answer_puts) == 3 and len(standin.requests) == 1


def test_oss2_denied_write_names_where_and_the_permission(oss, standin, oss_context):
    """Through oss2: a 403 on the answer PUT returns the answer with the missing grant named."""
    etag = oss.put("qwen-bkt", "questions/q.txt", "牛腩炖多久?").etag
    oss.deny("PUT", "answers/")
    result = json.loads(handle(wire_event(etag), oss_context, wire_runtime(standin, oss)))[0]
    assert result["status_code"] == 200 and result["output"] is not None and result["code"] == "AnswerNotStored"
    assert "oss://qwen-bkt/answers/questions/q.txt.json" in result["message"]
    assert "oss:PutObject on acs:oss:*:*:qwen-bkt/answers/questions/*" in result["message"]
    assert oss.get("qwen-bkt", "answers/questions/q.txt.json") is None


def test_oss2_refusal_written_and_loop_guard_not(oss, standin, oss_context):
    """Through oss2: a binary upload gets its 415 as answer file; an answer file's own event writes nothing."""
    etag = oss.put("qwen-bkt", "questions/q.txt", b"\x00\x01\x02binary").etag
    result = json.loads(handle(wire_event(etag), oss_context, wire_runtime(standin, oss)))[0]
    assert result["code"] == "ObjectNotText"
    assert json.loads(oss.get("qwen-bkt", "answers/questions/q.txt.json").data) == result
    oss.requests.clear()
    guard = wire_event("E").replace(b"questions/q.txt", b"answers/questions/q.txt.json")
    assert json.loads(handle(guard, oss_context, wire_runtime(standin, oss)))[0]["code"] == "Skipped"
    assert oss.requests == [] and standin.requests == []


def test_an_unexpected_write_error_still_returns_the_answer(runtime, oss_context, store, transport):
    """Whatever the store raises on the answer write, the paid answer comes back (AnswerNotStored)."""
    reads(store)
    store.write.side_effect = ValueError("Invalid header value")
    result = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert result["status_code"] == 200 and result["output"] is not None and result["code"] == "AnswerNotStored"


def test_a_denied_marker_still_writes_the_answer_and_warns(runtime, oss_context, store, transport, logs):
    """No grant for the in-progress marker: the file is still answered and written, and a WARNING names why."""
    reads(store)
    store.create.side_effect = ObjectAccessDenied(
        "cannot write oss://bkt/answers/.pending/questions/q.txt.json@ETAG1: access denied (AccessDenied)"
    )
    result = json.loads(handle(oss_event(), oss_context, runtime))[0]
    assert result["status_code"] == 200 and result["code"] == ""
    (write,) = store.write.call_args_list
    assert write.args[1] == "answers/questions/q.txt.json" and json.loads(write.args[2]) == result
    (warning,) = logs.events("answer_marker_unavailable")
    assert warning["answer_key"] == "oss://bkt/answers/.pending/questions/q.txt.json@ETAG1"
    assert warning["code"] == "OssAccessDenied" and transport.call_count == 1
