"""What can go wrong, drawn once.

    QwenError                   every failure we name; carries status, code and a safe message
    ├── InvalidConfig           500, the deployment's environment is wrong; same for every event
    ├── InvalidInput            400 (413, 415), the event or one record of it cannot be answered as sent
    │   └── BatchTooLarge       413, a batch over QWEN_MAX_EVENT_BYTES: raised, not returned, so the
    │                           trigger redelivers it (and dead-letters it): its records are not lost
    ├── ObjectNotFound          404, an OSS question file is gone
    ├── ObjectAccessDenied      403, the function's role may not read or write the bucket
    └── TransientUpstreamError  DashScope (or OSS) kept failing (429, 5xx, network) after every attempt
        │                       we could afford: raised out of the handler so FC retries it
        ├── BatchIncomplete     for a batch, after the other records finished, naming the failed ones
        └── AccountFailure      DashScope refused the account, not the question (401, 403, Arrearage,
                                a model not activated; handler/ask/account.py lists the codes):
                                raised so FC and EventBridge redeliver and then dead-letter, never
                                stored, written or remembered; only the operator's fix ends it

A per-question 4xx answer from DashScope (InvalidParameter about this input, DataInspectionFailed)
is not an exception: it is a `Result` returned to the caller, because sending the same request
again cannot help.

Messages never contain secrets: they are built from our own text, codes, request ids and upstream
messages, and every known secret is masked as the error is made (an upstream message may echo one).
"""

from __future__ import annotations

from handler.redact import redact


class QwenError(Exception):
    """A failure with an HTTP-like status, a stable code and a message safe to show and log."""

    status_code: int = 500
    code: str = "InternalError"

    def __init__(
        self, message: str, *, code: str | None = None, status_code: int | None = None, source: str | None = None
    ):
        message = redact(message)
        super().__init__(message)
        self.message = message
        # Which record of a batch this is about (a message id, an object); None for a single event.
        self.source = source
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class InvalidConfig(QwenError):
    """An environment variable has a value the function cannot work with."""

    status_code = 500
    code = "InvalidConfig"

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable} {problem}")
        self.variable = variable


class InvalidInput(QwenError):
    """The event, or one record in it, is not a question we can send."""

    status_code = 400
    code = "InvalidEvent"


class BatchTooLarge(InvalidInput):
    """A batch event (a JSON array: EventBridge's CloudEvents or RawData push) over the size limit.
    Returned, one 413 would consume every message in it unanswered; raised, the trigger delivers it
    again and finally to the dead-letter queue, where its messages can be replayed in smaller batches."""

    status_code = 413
    code = "BatchTooLarge"


class ObjectNotFound(QwenError):
    status_code = 404
    code = "ObjectNotFound"


class ObjectAccessDenied(QwenError):
    status_code = 403
    code = "OssAccessDenied"


class TransientUpstreamError(QwenError):
    """DashScope did not answer usefully within the attempts and the time we had."""

    status_code = 503
    code = "UpstreamUnavailable"

    def __init__(self, message: str, *, code: str, request_id: str, attempts: int):
        super().__init__(message, code=code)
        self.request_id = request_id
        self.attempts = attempts


class AccountFailure(TransientUpstreamError):
    """DashScope refused the account or the deployment, not this question: a revoked key, an overdue
    balance, a model not activated. Retried by the trigger like a transient failure (the same request
    succeeds once the operator fixes the account), and never kept as the record's answer."""

    def __init__(self, message: str, *, code: str, status_code: int, request_id: str, fix: str):
        super().__init__(message, code=code, request_id=request_id, attempts=1)
        self.status_code = status_code
        self.fix = fix
