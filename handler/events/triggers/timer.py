"""Timer trigger: {"triggerTime": "2023-...Z", "triggerName": "...", "payload": "..."}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handler.events.sources import timer_source
from handler.events.triggers._base import EventView


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
    def source(self) -> str | None:
        """`timer:<name>/<time>@<payload hash>`, each made safe for an object key (handler/events/sources.py
        says why the payload is in it); None when the name or time is not a non-empty string."""
        name, time = self.trigger_name, self.trigger_time
        if not isinstance(name, str) or not isinstance(time, str) or not name or not time:
            return None
        return timer_source(name, time, self.payload)

    @property
    def payload(self) -> Any:
        """The trigger's configured payload: a string, decoded again by the core rules."""
        return self._get("payload")
