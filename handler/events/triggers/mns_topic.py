"""MNS topic trigger.

JSON format: {"TopicOwner", "Message", "Subscriber", "PublishTime", "SubscriptionName", "MessageMD5",
"TopicName", "MessageId"}, with message attributes as extra top-level keys.
STREAM format: the raw message body, or {"body": ..., "attrs": {...}} when it has attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handler.events.triggers._base import EventView, field

_KNOWN = frozenset(
    {"TopicOwner", "Message", "Subscriber", "PublishTime", "SubscriptionName", "MessageMD5", "TopicName", "MessageId"}
)


class MnsTopicMessage(EventView):
    """A topic message pushed in JSON format."""

    topic_owner = field("TopicOwner")
    topic_name = field("TopicName")
    subscriber = field("Subscriber")
    subscription_name = field("SubscriptionName")
    message_id = field("MessageId")
    message_md5 = field("MessageMD5")
    publish_time = field("PublishTime")
    message = field("Message")

    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and "TopicName" in value and "MessageId" in value and "Message" in value

    @property
    def attributes(self) -> dict[str, Any]:
        """Message attributes, which MNS adds as extra top-level keys."""
        return {k: v for k, v in self._data.items() if k not in _KNOWN}


class MnsTopicStreamMessage(EventView):
    """A topic message pushed in STREAM format with attributes: {"body": ..., "attrs": {...}}."""

    body = field("body")
    attrs = field("attrs")

    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and set(value) == {"body", "attrs"}
