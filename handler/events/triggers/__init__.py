"""Read-only views of the envelopes FC's triggers deliver, one module per event source.

Each view wraps the parsed JSON and exposes a property per documented field; `matches` says
whether a parsed event has that envelope's shape. Nothing here does I/O.
"""

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
