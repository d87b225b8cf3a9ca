"""EventBridge deliveries in CloudEvents 1.0 form: one object, or a JSON array for batch pushes.

MNS queue messages have type "mns:Queue:SendMessage" and data {"requestId", "messageId", "messageBody"}.
With the RawData push format (eventSinkConfig.deliveryOption.eventSchema: RawData) only that data
object is delivered, or an array of them for a batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handler.events.triggers._base import EventView, field

MNS_QUEUE_SEND = "mns:Queue:SendMessage"

PUSH_FORMAT_HINT = (
    "an MNS queue trigger delivers CloudEvents or RawData (eventSinkConfig.deliveryOption.eventSchema in s.yaml); "
    'each message is {"requestId", "messageId", "messageBody"}, inside a CloudEvent\'s data or as it is'
)


class CloudEvent(EventView):
    id = field("id")
    source = field("source")
    specversion = field("specversion")
    type = field("type")
    subject = field("subject")
    time = field("time")
    data = field("data")

    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and "specversion" in value

    @staticmethod
    def matches_batch(value: Any) -> bool:
        """An array in which at least one element is a CloudEvent (the others become per-record errors)."""
        return isinstance(value, list) and any(CloudEvent.matches(item) for item in value)

    @property
    def mns_queue_message(self) -> MnsQueueMessage | None:
        """The MNS queue message this event carries, when it is one."""
        if self.type == MNS_QUEUE_SEND and isinstance(self.data, Mapping):
            return MnsQueueMessage(self.data)
        return None


class MnsQueueMessage(EventView):
    request_id = field("requestId")
    message_id = field("messageId")
    message_body = field("messageBody")


class MnsRawMessage(MnsQueueMessage):
    """An MNS queue message pushed in the RawData format: the CloudEvent's data object alone."""

    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and "messageId" in value and "messageBody" in value

    @staticmethod
    def matches_batch(value: Any) -> bool:
        """An array in which at least one element is a RawData message (the others become per-record errors)."""
        return isinstance(value, list) and any(MnsRawMessage.matches(item) for item in value)
