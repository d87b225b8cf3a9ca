"""Event builders: OSS trigger records and events, MNS topic messages, EventBridge queue batches."""

from __future__ import annotations

import json
from typing import Any


def oss_record(
    key: str = "questions/q.txt",
    *,
    bucket: str = "bkt",
    etag: str | None = None,
    size: int | None = None,
    name: str = "ObjectCreated:PutObject",
    region: str | None = "cn-hangzhou",
    **changes: Any,
) -> dict[str, Any]:
    """One OSS trigger record as FC delivers it. eTag and size are left out when None, region too (some
    senders leave it out); `changes` replace whole fields (`oss={...}` for a malformed object)."""
    obj: dict[str, Any] = {"key": key}
    if etag is not None:
        obj["eTag"] = etag
    if size is not None:
        obj["size"] = size
    record: dict[str, Any] = {"eventName": name, "eventSource": "acs:oss"}
    if region is not None:
        record["region"] = region
    record["oss"] = {"bucket": {"name": bucket}, "object": obj}
    record.update(changes)
    return record


def oss_event(*records: dict[str, Any]) -> str:
    """An OSS trigger event holding these records, as JSON text."""
    return json.dumps({"events": list(records)})


def oss_event_bytes(*records: dict[str, Any]) -> bytes:
    """An OSS trigger event holding these records, as the bytes FC passes to the handler."""
    return oss_event(*records).encode()


def topic_message(message_id: str, body: str) -> str:
    """An MNS topic message in JSON format, as FC delivers it."""
    return json.dumps(
        {
            "TopicOwner": "1234",
            "Message": body,
            "Subscriber": "1234",
            "PublishTime": 1550216302888,
            "SubscriptionName": "fc",
            "MessageMD5": "",
            "TopicName": "qwen-questions",
            "MessageId": message_id,
        },
        ensure_ascii=False,
    )


def queue_batch(*messages: tuple[str, str]) -> str:
    """An EventBridge batch of MNS queue messages (CloudEvents)."""
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "type": "mns:Queue:SendMessage",
                "id": f"event-{message_id}",
                "data": {"messageId": message_id, "messageBody": body, "requestId": f"req-{message_id}"},
            }
            for message_id, body in messages
        ],
        ensure_ascii=False,
    )
