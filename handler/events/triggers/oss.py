"""OSS trigger: {"events": [{"eventName", "eventSource": "acs:oss", "region", "oss": {...}, ...}]}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handler.events.triggers._base import EventView


class OssEvent(EventView):
    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and isinstance(value.get("events"), list) and set(value) == {"events"}

    @property
    def records(self) -> list[OssRecord]:
        return [OssRecord(r) if isinstance(r, Mapping) else OssRecord({}) for r in self._data["events"]]


class OssRecord(EventView):
    @property
    def event_name(self) -> str | None:
        return self._get("eventName")

    @property
    def event_source(self) -> str | None:
        return self._get("eventSource")

    @property
    def event_time(self) -> str | None:
        return self._get("eventTime")

    @property
    def region(self) -> str | None:
        """Informational only: never used to reach OSS (the endpoint is the function's, handler/deliver/store.py)."""
        return self._get("region")

    @property
    def bucket_name(self) -> str | None:
        return self._get("oss", "bucket", "name")

    @property
    def bucket_arn(self) -> str | None:
        return self._get("oss", "bucket", "arn")

    @property
    def object_key(self) -> str | None:
        return self._get("oss", "object", "key")

    @property
    def object_etag(self) -> str | None:
        return self._get("oss", "object", "eTag")

    @property
    def object_size(self) -> int | None:
        return self._get("oss", "object", "size")

    @property
    def is_object_created(self) -> bool:
        name = self.event_name
        return isinstance(name, str) and name.startswith(("ObjectCreated:", "oss:ObjectCreated:"))
