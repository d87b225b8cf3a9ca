"""OSS trigger: {"events": [{"eventName", "eventSource": "acs:oss", "region", "oss": {...}, ...}]}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handler.events.triggers._base import EventView, field


class OssEvent(EventView):
    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and isinstance(value.get("events"), list) and set(value) == {"events"}

    @property
    def records(self) -> list[OssRecord]:
        return [OssRecord(r) if isinstance(r, Mapping) else OssRecord({}) for r in self._data["events"]]


class OssRecord(EventView):
    event_name = field("eventName")
    event_source = field("eventSource")
    event_time = field("eventTime")
    region = field("region")  # never used to reach OSS: the endpoint is the function's (handler/deliver/store.py)
    bucket_name = field("oss", "bucket", "name")
    bucket_arn = field("oss", "bucket", "arn")
    object_key = field("oss", "object", "key")
    object_etag = field("oss", "object", "eTag")
    object_size = field("oss", "object", "size")

    @property
    def is_object_created(self) -> bool:
        name = self.event_name
        return isinstance(name, str) and name.startswith(("ObjectCreated:", "oss:ObjectCreated:"))
