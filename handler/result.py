"""The one result type: DashScope's response fields, nothing more, serialized the same way always."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from handler.errors import QwenError
from handler.values import Value


class Result(Value):
    """An answer or an error, in the FC tutorial's shape (status, ids, code, message, output, usage)."""

    status_code: int
    request_id: str
    code: str = ""
    message: str = ""
    output: Any = None
    usage: Any = None
    # False when an answer that should have been kept (answer store, OSS answer file) could not be; None
    # otherwise, and then not serialized: the tutorial's fields stay as they are.
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
        # Shallow on purpose: output and usage are already plain JSON values (dataclasses.asdict
        # would deep-copy them on every invocation, a fifth of our warm overhead).
        fields = {
            "status_code": self.status_code,
            "request_id": self.request_id,
            "code": self.code,
            "message": self.message,
            "output": self.output,
            "usage": self.usage,
        }
        if self.stored is not None:
            fields["stored"] = self.stored
        return fields


def dumps(results: Result | Sequence[Result]) -> str:
    """Serialize one result as an object, several as an array; Chinese stays readable, not \\u-escaped."""
    if isinstance(results, Result):
        payload: Any = results.to_dict()
    else:
        payload = [r.to_dict() for r in results]
    return _ENCODER.encode(payload)


def _plain(value: Any) -> Any:
    # The SDK's output objects are dict subclasses with extra attributes; anything else that slips
    # through becomes text rather than a TypeError that would lose the whole answer.
    if isinstance(value, dict):
        return dict(value)
    return str(value)


# One encoder for every result: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain)


def loads(data: bytes | str) -> Result | None:
    """A Result serialized by `dumps` (an answer file written earlier), or None when it is not one."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("status_code"), int):
        return None
    fields = {name: value.get(name) for name in ("status_code", "request_id", "code", "message", "output", "usage")}
    fields["request_id"] = str(fields["request_id"] or "")
    fields["code"] = str(fields["code"] or "")
    fields["message"] = str(fields["message"] or "")
    return Result(**fields)
