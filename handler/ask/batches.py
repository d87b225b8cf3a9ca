"""DashScope's OpenAI-compatible Batch API: create a job from an uploaded JSONL file, look at it, cancel it
(docs/batches.md).

The SDK has no batch API, so these are plain HTTPS calls made by DashScopeFiles: the same session, API key,
deadline (`remaining`) and one table of failures (handler/ask/files.py `_failure`). A job's results are read
with `DashScopeFiles.lines(output_file_id)`, streamed.
"""

from __future__ import annotations

import re
from typing import Any

from handler.ask.files import DashScopeFiles, _failure, _id, _short
from handler.values import Value

CHAT = "/v1/chat/completions"
FINISHED = frozenset({"completed", "failed", "expired", "cancelled"})
STATUSES = frozenset({"validating", "in_progress", "finalizing", "cancelling"}) | FINISHED
MAX_ERRORS = 20  # a job that failed validation lists at most this many of its errors: enough to fix the file
_WINDOW = re.compile(r"([0-9]{1,4})([hd])")
_ENDPOINT = re.compile(r"/v1/[a-z/-]{1,60}")


class BatchJob(Value):
    """One job as the API describes it; `errors` are its validation errors, as messages."""

    id: str
    status: str  # validating|in_progress|finalizing|completed|failed|expired|cancelling|cancelled
    input_file_id: str
    output_file_id: str | None
    error_file_id: str | None
    total: int  # request_counts
    completed: int
    failed: int
    errors: tuple[str, ...] = ()
    created_at: int | None = None

    @property
    def finished(self) -> bool:
        """Whether the job will change no more: its files, if any, are final."""
        return self.status in FINISHED

    @classmethod
    def of(cls, body: Any) -> BatchJob:
        """The API's batch object; ValueError when it is none (answered as a malformed response)."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or body.get("status") not in STATUSES:
            raise ValueError("not a batch object")
        counts = body.get("request_counts") if isinstance(body.get("request_counts"), dict) else {}
        errors = body.get("errors")
        data = errors.get("data") if isinstance(errors, dict) else errors
        created = body.get("created_at")
        return cls(
            id=body["id"],
            status=body["status"],
            input_file_id=str(body.get("input_file_id") or ""),
            output_file_id=_file_id(body.get("output_file_id")),
            error_file_id=_file_id(body.get("error_file_id")),
            total=int(counts.get("total") or 0),
            completed=int(counts.get("completed") or 0),
            failed=int(counts.get("failed") or 0),
            errors=tuple(_error(item) for item in (data if isinstance(data, list) else [])[:MAX_ERRORS]),
            created_at=int(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else None,
        )


class DashScopeBatches:
    """The batch endpoints beside `files`' endpoint ({base}/compatible-mode/v1/batches), on its session."""

    def __init__(self, files: DashScopeFiles) -> None:
        self.files = files
        self.url = files.url[: -len("/files")] + "/batches"

    def create(
        self,
        input_file_id: str,
        *,
        endpoint: str = CHAT,
        window: str = "24h",
        metadata: dict[str, str] | None = None,
    ) -> BatchJob:
        """Start a job over an uploaded file (purpose `batch`); `window` is 24h to 336h, in hours or days."""
        if not _ENDPOINT.fullmatch(endpoint):
            raise ValueError("a batch endpoint is a path such as /v1/chat/completions")
        if not _window_ok(window):
            raise ValueError("a batch's completion window is 24h to 336h (1d to 14d)")
        body: dict[str, Any] = {"input_file_id": input_file_id, "endpoint": endpoint, "completion_window": window}
        if metadata:
            body["metadata"] = {str(k): str(v) for k, v in metadata.items()}
        return self._job("create", _short(input_file_id), "POST", "", json=body)

    def retrieve(self, batch_id: str) -> BatchJob:
        return self._job("retrieve", batch_id, "GET", f"/{_id(batch_id)}")

    def cancel(self, batch_id: str) -> BatchJob:
        """Ask the job to stop: it answers `cancelling`, then `cancelled` with what was done by then."""
        return self._job("cancel", batch_id, "POST", f"/{_id(batch_id)}/cancel")

    def _job(self, verb: str, what: str, method: str, path: str, **arguments: Any) -> BatchJob:
        body = self.files._call(verb, what, method, path, url=self.url, api="batch", **arguments)
        try:
            return BatchJob.of(body)
        except (TypeError, ValueError) as error:  # a 200 without a batch object: as a body cut short
            raise _failure(verb, what, error=error, api="batch") from None


def _window_ok(window: str) -> bool:
    match = _WINDOW.fullmatch(window)
    if match is None:
        return False
    hours = int(match[1]) * (24 if match[2] == "d" else 1)
    return 24 <= hours <= 336


def _file_id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _error(item: Any) -> str:
    """One validation error as a message: "code: message (line n)"."""
    if not isinstance(item, dict):
        return _short(str(item))
    code, message, line = item.get("code"), item.get("message"), item.get("line")
    text = f"{code}: {message}" if code else str(message or "")
    return _short(text + (f" (line {line})" if isinstance(line, int) and not isinstance(line, bool) else ""))
