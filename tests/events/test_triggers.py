"""Each trigger's published sample event, decoded into the question(s) it carries."""

from __future__ import annotations

import json

import pytest

from handler.deliver.answers import answer_key
from handler.errors import InvalidInput
from handler.events.decode import decode
from handler.events.question import OssObject, Question, Skipped
from handler.events.triggers.cloudevents import CloudEvent
from handler.events.triggers.mns_topic import MnsTopicMessage
from handler.events.triggers.oss import OssEvent
from handler.events.triggers.timer import TimerEvent
from tests.support import events
from tests.support.events import oss_event


def test_timer_sample_asks_its_payload(event_file):
    """The timer's payload is the question, identified by the trigger's name and time."""
    decoded = decode(event_file("timer.json"))
    assert decoded.records == (
        Question(text="awesome-fc", source="timer:timer-trigger/2023-12-26T07:49:00Z@cffa26b43d22918b"),
    )
    assert not decoded.batch


def test_timer_payload_is_decoded_by_the_core_rules(event_file):
    """A payload holding a JSON request is that request, parameters included."""
    (record,) = decode(event_file("timer-request.json")).records
    assert record.text == "用一句话总结今天适合做的一道家常菜" and record.parameters == {"temperature": 0.8}
    assert record.source is not None and record.source.startswith("timer:")


@pytest.mark.parametrize(
    ("name", "time", "key"),
    [
        ("daily", "2023-12-26T07:49:00Z", "timer/daily/2023-12-26T07:49:00Z@8e35c2cd3bf6641b.json"),
        ("../..", "/etc/passwd", "timer/..%2F../%2Fetc%2Fpasswd@8e35c2cd3bf6641b.json"),
        ("..", ".", "timer/%2E%2E/%2E@8e35c2cd3bf6641b.json"),
        ("a\nb\x00", "t", "timer/a%0Ab%00/t@8e35c2cd3bf6641b.json"),
        ("早报", "t", "timer/%E6%97%A9%E6%8A%A5/t@8e35c2cd3bf6641b.json"),
    ],
)
def test_a_timer_answer_key_is_predictable_and_safe(name, time, key):
    """Name and time become key segments: no '/', no '.'/'..' segment, no control character, one-to-one."""
    event = {"triggerTime": time, "triggerName": name, "payload": "q"}
    (record,) = decode(json.dumps(event)).records
    assert answer_key(record.source) == key


def test_an_mns_answer_key_cannot_climb_out_of_its_folder():
    """A message id with '/' or '..' stays one segment under mns/."""
    assert answer_key("mns:../../x") == "mns/..%2F..%2Fx.json"
    assert answer_key("mns:..") == "mns/%2E%2E.json"
    assert answer_key("mns:" + "a" * 500).startswith("mns/" + "a" * 100) and len(answer_key("mns:" + "a" * 500)) < 220
    assert answer_key("mns:" + "a" * 500) != answer_key("mns:" + "a" * 499)
    assert answer_key(None) is None and answer_key("oss://b/k") is None


def test_timer_view_has_a_property_per_field(event_file):
    """TimerEvent exposes triggerTime, triggerName and payload."""
    event = TimerEvent(json.loads(event_file("timer.json")))
    assert (event.trigger_time, event.trigger_name, event.payload) == (
        "2023-12-26T07:49:00Z",
        "timer-trigger",
        "awesome-fc",
    )


@pytest.mark.parametrize("payload", ["", "   ", None])
def test_a_timer_without_payload_says_to_set_one(payload):
    """A timer with no payload is EmptyEvent with a hint about the trigger's payload."""
    event = {"triggerTime": "2023-12-26T07:49:00Z", "triggerName": "t", "payload": payload}
    (record,) = decode(json.dumps(event)).records
    assert isinstance(record, InvalidInput) and record.code == "EmptyEvent" and "payload" in record.message


def test_mns_topic_json_sample_asks_its_message(event_file):
    """JSON-format topic messages ask `Message`, identified by MessageId."""
    (record,) = decode(event_file("mns-topic-json.json")).records
    assert record == Question(text="hello topic", source="mns:2F5B3C281B283D4EAC694B7425288675")


def test_mns_topic_view_keeps_attributes_apart(event_file):
    """Message attributes arrive as extra top-level keys and are exposed as such."""
    message = MnsTopicMessage(json.loads(event_file("mns-topic-json.json")))
    assert message.topic_name == "test-topic" and message.publish_time == 1550216302888
    assert message.attributes == {"Context": "user custom info"}


def test_mns_topic_stream_samples(event_file):
    """STREAM format: raw body bytes, or {"body", "attrs"} when the message has attributes."""
    assert decode(event_file("mns-topic-stream.txt")).records == (Question(text="hello topic"),)
    assert decode(event_file("mns-topic-stream-attrs.json")).records == (Question(text="hello topic"),)


def test_mns_queue_batch_sample_is_a_batch(event_file):
    """EventBridge's CloudEvents array gives one record per message, in order (the sample holds three)."""
    decoded = decode(event_file("mns-queue-batch.json"))
    assert decoded.batch
    assert [record.text for record in decoded.records] == ["TEST", "牛腩要炖多久?", "番茄先炒还是后放?"]
    assert decoded.records[0] == Question(text="TEST", source="mns:C6DB60D1574661357FA227277445%2A%2A%2A%2A")
    assert len({record.source for record in decoded.records}) == 3  # each message keys its own answer


def test_mns_queue_single_event_sample(event_file):
    """A single CloudEvents object is one question and one result object."""
    decoded = decode(event_file("mns-queue-event.json"))
    assert not decoded.batch and decoded.records[0].text == "TEST"
    event = CloudEvent(json.loads(event_file("mns-queue-event.json")))
    assert event.type == "mns:Queue:SendMessage" and event.mns_queue_message.request_id == "606EA3074344430D4C81****"


def test_oss_sample_names_a_question_file(event_file):
    """Each OSS record becomes an object to read, with bucket, key, eTag and size (never the event's region)."""
    decoded = decode(event_file("oss.json"))
    assert decoded.batch
    assert decoded.records == (
        OssObject(
            bucket="testbucket",
            key="source/example.png",
            etag="688A7BF4F233DC9C88A80BF985AB****",
            size=122539,
        ),
    )
    record = OssEvent(json.loads(event_file("oss.json"))).records[0]
    assert record.event_name == "ObjectCreated:PutObject" and record.bucket_arn.endswith(":testbucket")


def cloud_event(body, *, type_="mns:Queue:SendMessage", message_id="m1"):
    return {"specversion": "1.0", "type": type_, "id": "e1", "data": {"messageId": message_id, "messageBody": body}}


def test_a_batch_keeps_malformed_records_as_per_record_errors():
    """Bad elements of a CloudEvents array are 4xx records in place; the good ones stay questions."""
    event = [cloud_event("q1", message_id="a"), 7, cloud_event("x", type_="oss:ObjectCreated"), cloud_event("")]
    records = decode(json.dumps(event)).records
    assert records[0] == Question(text="q1", source="mns:a")
    assert [type(r) for r in records[1:]] == [InvalidInput] * 3
    assert [r.code for r in records[1:]] == ["InvalidEvent", "InvalidEvent", "EmptyEvent"]


def test_an_envelope_inside_a_message_is_not_unwrapped():
    """A message body that looks like an OSS event is refused, not used to read someone's bucket."""
    inner = json.dumps({"events": [{"eventSource": "acs:oss", "eventName": "ObjectCreated:PutObject"}]})
    (record,) = decode(json.dumps(cloud_event(inner))).records
    assert isinstance(record, InvalidInput) and record.code == "InvalidEvent"


def oss_record(key="q/a.txt", name="ObjectCreated:PutObject", **changes):
    return events.oss_record(key, bucket="bkt", etag="E1", size=10, name=name, **changes)


def test_oss_removals_are_skipped_and_bad_records_refused():
    """A deletion asks nothing; a record without a bucket or with a path-like key is a 4xx."""
    records = decode(
        oss_event(
            oss_record(name="ObjectRemoved:DeleteObject"),
            oss_record(oss={"object": {"key": "k"}}),
            oss_record(key="../../etc/passwd"),
            oss_record(key="/abs/key"),
            oss_record(),
            oss_record(oss={"bucket": {"name": "attacker.example/#"}, "object": {"key": "k"}}),
            oss_record(oss={"bucket": {"name": "Bkt@evil"}, "object": {"key": "k"}}),
        )
    ).records
    assert isinstance(records[0], Skipped)
    assert [r.code for r in records[1:4]] == ["InvalidEvent", "InvalidObjectKey", "InvalidObjectKey"]
    assert isinstance(records[4], OssObject)
    assert [r.code for r in records[5:]] == ["InvalidObjectKey", "InvalidObjectKey"]


def test_an_oss_event_without_records_is_invalid():
    """{"events": []} asks nothing and is refused as a whole."""
    decoded = decode(b'{"events": []}')
    assert not decoded.batch and decoded.records[0].code == "InvalidEvent"


def test_an_etag_that_is_not_an_etag_is_dropped():
    """The eTag goes back out as a header value: a forged one (CR LF, spaces) is not kept."""
    forged = oss_record(oss={"bucket": {"name": "bkt"}, "object": {"key": "k", "eTag": "E1\r\nx-oss-acl: public"}})
    normal = oss_record(oss={"bucket": {"name": "bkt"}, "object": {"key": "k", "eTag": '"5B3C-2"'}})
    records = decode(oss_event(forged, normal)).records
    assert records[0].etag is None and records[1].etag == '"5B3C-2"'


ENVELOPE_SAMPLES = (
    "timer.json",
    "timer-request.json",
    "mns-topic-json.json",
    "mns-topic-stream-attrs.json",
    "mns-queue-event.json",
    "mns-queue-batch.json",
    "oss.json",
    "oss-image.json",
    "oss-question.json",
    "oss-binary.json",
)


def test_no_envelope_looks_like_a_request_so_requests_skip_the_trigger_views(event_file):
    """decode() tries the trigger views only on a JSON array or an object with a key no request has:
    every envelope's shape needs such a key, so a request never loads handler/events/triggers."""
    from handler.events import decode as decoding
    from handler.events.triggers import (
        CloudEvent,
        MnsRawMessage,
        MnsTopicMessage,
        MnsTopicStreamMessage,
        OssEvent,
        TimerEvent,
    )

    views = (TimerEvent, MnsTopicMessage, MnsTopicStreamMessage, CloudEvent, MnsRawMessage, OssEvent)
    for name in ENVELOPE_SAMPLES:
        value = json.loads(event_file(name))
        assert decoding._may_be_an_envelope(value), name
        assert any(v.matches(value) or getattr(v, "matches_batch", lambda _: False)(value) for v in views), name
    # An object of request keys only matches no view, whatever its values.
    for keys in ({"prompt": "x"}, {"messages": [], "model": "m"}, dict.fromkeys(decoding.REQUEST_KEYS, "x"), {}):
        assert not decoding._may_be_an_envelope(keys)
        assert not any(v.matches(keys) or getattr(v, "matches_batch", lambda _: False)(keys) for v in views)
