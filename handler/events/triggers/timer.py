"""Timer trigger: {"triggerTime": "2023-...Z", "triggerName": "...", "payload": "..."}."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from handler.events.question import CollectBatches
from handler.events.sources import timer_source
from handler.events.triggers._base import EventView, field

__all__ = ["COLLECT", "CollectBatches", "TimerEvent", "asks_to_collect"]

COLLECT = {"collect": "batches"}  # the payload of the timer that collects finished batch jobs


def asks_to_collect(payload: Any) -> bool:
    """Whether a timer payload is COLLECT, as an object or as its JSON text."""
    if isinstance(payload, str) and payload.strip().startswith("{"):
        try:
            payload = json.loads(payload)
        except ValueError:
            return False
    return payload == COLLECT


class TimerEvent(EventView):
    trigger_time = field("triggerTime")
    trigger_name = field("triggerName")
    payload = field("payload")  # the question, decoded again by the core rules

    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and "triggerTime" in value and "triggerName" in value

    @property
    def source(self) -> str | None:
        """`timer:<name>/<time>@<payload hash>` (handler/events/sources.py); None without a name and a time."""
        name, time = self.trigger_name, self.trigger_time
        if not isinstance(name, str) or not isinstance(time, str) or not name or not time:
            return None
        return timer_source(name, time, self.payload)
