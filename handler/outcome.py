"""One record's outcome: the stages fill it as the record goes through them; its one log line reads it."""

from __future__ import annotations

import logging
from typing import Any

from handler import logs
from handler.errors import AccountFailure, TransientUpstreamError
from handler.result import Result


class Outcome:
    """What became of one record: its DashScope attempts and the fields its `question` log line adds."""

    def __init__(self, source: str | None = None) -> None:
        self.attempts = 0
        self.fields: dict[str, Any] = {"source": source} if source else {}

    def note(self, **fields: Any) -> None:
        """Add fields to the record's log line (model, api, answer_key, answered_by, ...)."""
        self.fields.update(fields)

    def log(self, result: Result, latency_ms: int) -> None:
        """The record's line for a result it returns."""
        usage = result.usage if isinstance(result.usage, dict) else {}
        logs.emit(
            "question",
            level=logging.INFO if result.status_code < 500 else logging.ERROR,
            **self.fields,
            request_id=result.request_id,
            status_code=result.status_code,
            code=result.code,
            message=None if result.ok and not result.code else result.message,
            attempts=self.attempts,
            latency_ms=latency_ms,
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
            total_tokens=usage.get("total_tokens"),
            **({"stored": result.stored} if result.stored is not None else {}),
        )

    def log_raised(self, error: TransientUpstreamError, latency_ms: int) -> None:
        """The record's line for an error raised so the event is delivered again."""
        logs.emit(
            "question",
            # The account's failure has its own ERROR line (account_failure), once per invocation.
            level=logging.WARNING if isinstance(error, AccountFailure) else logging.ERROR,
            **self.fields,
            request_id=error.request_id,
            status_code=None,
            code=error.code,
            message=error.message,
            attempts=error.attempts,
            latency_ms=latency_ms,
        )
