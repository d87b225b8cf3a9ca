from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class EventView:
    """A read-only wrapper over one parsed JSON object."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]):
        self._data = data

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._data

    def _get(self, *path: str) -> Any:
        node: Any = self._data
        for key in path:
            if not isinstance(node, Mapping):
                return None
            node = node.get(key)
        return node

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self._data)!r})"


def field(*path: str) -> Any:
    """A read-only property: the value at `path` in the event, or None where the path breaks off."""
    return property(lambda view: view._get(*path))
