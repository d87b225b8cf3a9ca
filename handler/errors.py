"""What can go wrong, drawn once.

    QwenError                   every failure we name: status, code and a message safe to show and log
    ├── InvalidConfig           500, the deployment's environment is wrong; same for every event
    ├── InvalidInput            400 (413, 415), the event or one record of it cannot be answered as sent
    │   └── BatchTooLarge       413, a batch over QWEN_MAX_EVENT_BYTES: raised, so the trigger redelivers
    │                           it and then dead-letters it, its records not lost
    ├── ObjectNotFound          404, an OSS question file is gone
    ├── ObjectAccessDenied      403, the function's role may not read or write the bucket
    ├── BatchListUnreadable     500, a bucket's list of open Batch API submissions is not a JSON list: fixed or
    │                           deleted by hand, never overwritten (its entries would be lost)
    └── TransientUpstreamError  DashScope (or OSS) kept failing (429, 5xx, network) after every attempt
        │                       we could afford: raised out of the handler so FC retries it
        ├── BatchIncomplete     for a batch, after the other records finished, naming the failed ones
        ├── AccountFailure      DashScope refused the account, not the question (401, 403, Arrearage, a
        │                       model not activated: handler/ask/account.py): raised so the trigger
        │                       redelivers and dead-letters it, never kept as an answer
        └── DeploymentFailure   500 InvalidConfig or InternalError met by a trigger's record: raised, not
                                returned, so the trigger redelivers and dead-letters it

A per-question 4xx from DashScope (InvalidParameter, DataInspectionFailed) is not an exception but a
`Result`: sending the same request again cannot help. Every known secret is masked out of a message
as the error is made (an upstream message may echo one).
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
        self.source = source  # which record of a batch this is about; None for a single event
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class InvalidConfig(QwenError):
    status_code = 500
    code = "InvalidConfig"

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable} {problem}")
        self.variable = variable


class InvalidInput(QwenError):
    status_code = 400
    code = "InvalidEvent"


class BatchTooLarge(InvalidInput):
    status_code = 413
    code = "BatchTooLarge"


class ObjectNotFound(QwenError):
    status_code = 404
    code = "ObjectNotFound"


class ObjectAccessDenied(QwenError):
    status_code = 403
    code = "OssAccessDenied"


class BatchListUnreadable(QwenError):
    """`<prefix>.batches/open.json` holds something else than a JSON list of "<key>@<eTag>" strings."""

    status_code = 500
    code = "BatchListUnreadable"

    def __init__(self, where: str, problem: str):
        super().__init__(
            f'{where} is unreadable ({problem}): fix it (a JSON list of "<key>@<eTag>" strings) or delete it; '
            "deleting it drops the submissions it listed from the collect timer, their records <key>@<eTag>.json "
            "beside it are kept, and `python -m handler batches` reports the same error until then"
        )
        self.where = where


class TransientUpstreamError(QwenError):
    status_code = 503
    code = "UpstreamUnavailable"

    def __init__(self, message: str, *, code: str, request_id: str, attempts: int):
        super().__init__(message, code=code)
        self.request_id = request_id
        self.attempts = attempts


class AccountFailure(TransientUpstreamError):
    def __init__(self, message: str, *, code: str, status_code: int, request_id: str, fix: str):
        super().__init__(message, code=code, request_id=request_id, attempts=1)
        self.status_code = status_code
        self.fix = fix


class DeploymentFailure(TransientUpstreamError):
    """A trigger's record met a broken deployment (InvalidConfig, an internal error): raised, not counted delivered."""

    status_code = 500
