"""Timer trigger: {"triggerTime": "2023-...Z", "triggerName": "...", "payload": "..."}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handler.triggers._base import EventView


class TimerEvent(EventView):
    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and "triggerTime" in value and "triggerName" in value

    @property
    def trigger_time(self) -> str | None:
        return self._get("triggerTime")

    @property
    def trigger_name(self) -> str | None:
        return self._get("triggerName")

    @property
    def payload(self) -> Any:
        """The trigger's configured payload: a string, decoded again by the core rules."""
        return self._get("payload")
