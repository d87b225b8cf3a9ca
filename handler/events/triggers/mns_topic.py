"""MNS topic trigger.

JSON format: {"TopicOwner", "Message", "Subscriber", "PublishTime", "SubscriptionName", "MessageMD5",
"TopicName", "MessageId"}, with message attributes as extra top-level keys.
STREAM format: the raw message body, or {"body": ..., "attrs": {...}} when it has attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handler.events.triggers._base import EventView

_KNOWN = frozenset(
    {"TopicOwner", "Message", "Subscriber", "PublishTime", "SubscriptionName", "MessageMD5", "TopicName", "MessageId"}
)


class MnsTopicMessage(EventView):
    """A topic message pushed in JSON format."""

    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and "TopicName" in value and "MessageId" in value and "Message" in value

    @property
    def topic_owner(self) -> str | None:
        return self._get("TopicOwner")

    @property
    def topic_name(self) -> str | None:
        return self._get("TopicName")

    @property
    def subscriber(self) -> str | None:
        return self._get("Subscriber")

    @property
    def subscription_name(self) -> str | None:
        return self._get("SubscriptionName")

    @property
    def message_id(self) -> str | None:
        return self._get("MessageId")

    @property
    def message_md5(self) -> str | None:
        return self._get("MessageMD5")

    @property
    def publish_time(self) -> int | None:
        return self._get("PublishTime")

    @property
    def message(self) -> Any:
        return self._get("Message")

    @property
    def attributes(self) -> dict[str, Any]:
        """Message attributes, which MNS adds as extra top-level keys."""
        return {k: v for k, v in self._data.items() if k not in _KNOWN}


class MnsTopicStreamMessage(EventView):
    """A topic message pushed in STREAM format with attributes: {"body": ..., "attrs": {...}}."""

    @staticmethod
    def matches(value: Any) -> bool:
        return isinstance(value, Mapping) and set(value) == {"body", "attrs"}

    @property
    def body(self) -> Any:
        return self._get("body")

    @property
    def attrs(self) -> Any:
        return self._get("attrs")
