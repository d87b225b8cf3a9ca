"""The one result type: DashScope's response fields, nothing more, serialized the same way always."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from handler.errors import QwenError
from handler.values import Value

_FIELDS = ("status_code", "request_id", "code", "message", "output", "usage")


class Result(Value):
    """An answer or an error: status, request id, code, message, output, usage."""

    status_code: int
    request_id: str
    code: str = ""
    message: str = ""
    output: Any = None
    usage: Any = None
    # False when an answer that should have been kept (answer store, OSS answer file) could not be;
    # None otherwise, and then not serialized.
    stored: bool | None = None

    @property
    def ok(self) -> bool:
        return self.status_code == 200

    @classmethod
    def failure(cls, error: QwenError, request_id: str) -> Result:
        return cls(status_code=error.status_code, request_id=request_id, code=error.code, message=error.message)

    @classmethod
    def skipped(cls, reason: str, request_id: str) -> Result:
        """A record deliberately not answered (our own answer file, a sidecar): 200 Skipped and why."""
        return cls(status_code=200, request_id=request_id, code="Skipped", message=reason)

    def to_dict(self) -> dict[str, Any]:
        # Shallow: output and usage are already plain JSON values (docs/performance.md).
        fields = {name: getattr(self, name) for name in _FIELDS}
        if self.stored is not None:
            fields["stored"] = self.stored
        return fields


def dumps(results: Result | Sequence[Result]) -> str:
    """Serialize one result as an object, several as an array; Chinese stays readable, not \\u-escaped."""
    return _ENCODER.encode(results.to_dict() if isinstance(results, Result) else [r.to_dict() for r in results])


def _plain(value: Any) -> Any:
    """The SDK's dict subclasses as dicts; anything else as text, not a TypeError that loses the answer."""
    return dict(value) if isinstance(value, dict) else str(value)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain)


def loads(data: bytes | str) -> Result | None:
    """A Result serialized by `dumps` (an answer file written earlier), or None when it is not one."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("status_code"), int):
        return None
    fields = {name: value.get(name) for name in _FIELDS}
    for name in ("request_id", "code", "message"):
        fields[name] = str(fields[name] or "")
    return Result(**fields)
