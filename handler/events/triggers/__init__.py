"""Read-only views of the envelopes FC's triggers deliver, one module per event source: a property per
documented field, and `matches` for whether a parsed event has that envelope's shape. No I/O."""

from handler.events.triggers.cloudevents import PUSH_FORMAT_HINT, CloudEvent, MnsRawMessage
from handler.events.triggers.mns_topic import MnsTopicMessage, MnsTopicStreamMessage
from handler.events.triggers.oss import OssEvent, OssRecord
from handler.events.triggers.timer import TimerEvent

__all__ = [
    "PUSH_FORMAT_HINT",
    "CloudEvent",
    "MnsRawMessage",
    "MnsTopicMessage",
    "MnsTopicStreamMessage",
    "OssEvent",
    "OssRecord",
    "TimerEvent",
]
