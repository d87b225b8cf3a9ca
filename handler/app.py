"""The invocation: event bytes -> decode -> plan -> invoke (prompt | messages) -> result JSON -> log."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from handler import internal, logs, no_collection, redact
from handler.ask.apis import ModelApis
from handler.ask.asker import Asker
from handler.ask.attempts import Backoff, Deadline
from handler.ask.models import likely_meant
from handler.ask.transport import Transport, dashscope_transport
from handler.config import Settings, settings_for
from handler.deliver.batch import answer_all
from handler.deliver.context import DeliveryContext
from handler.deliver.deliveries import Deliveries
from handler.deliver.memory import AnsweredRecords
from handler.deliver.store import ObjectStore, Oss2Store, OssAccess
from handler.errors import (
    AccountFailure,
    BatchTooLarge,
    DeploymentFailure,
    InvalidConfig,
    InvalidInput,
    QwenError,
    TransientUpstreamError,
)
from handler.events.decode import REQUEST_KEYS, Decoded, Record, decode
from handler.events.question import CollectBatches, OssObject, Skipped
from handler.fc_context import Invocation
from handler.outcome import Outcome
from handler.result import Result, dumps
from handler.values import Value, field

if TYPE_CHECKING:
    from handler.deliver.oss_files import OssQuestionFiles

redact.install()

# A trigger's record with one of these 500s is raised, not returned: the deployment is broken, not the question.
_BROKEN = frozenset({InvalidConfig.code, QwenError.code})

ANSWERED = AnsweredRecords()
APIS = ModelApis()  # this instance's learned model APIs (handler/ask/apis.py)


class Runtime(Value):
    """The seams of an invocation; production uses the defaults, tests pass their own."""

    transport: Transport = dashscope_transport
    store: Callable[..., ObjectStore] = Oss2Store  # (credentials, endpoint, remaining=) -> the OSS seam
    env: Mapping[str, str] | None = field(default=None, repr=False)  # None: os.environ; holds the API key
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    backoff: Backoff = field(default_factory=Backoff)
    memory: AnsweredRecords = ANSWERED
    wall: Callable[[], float] = time.time  # epoch seconds: in-progress markers are compared across instances
    apis: ModelApis = APIS

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self.env is None else self.env


DEFAULT_RUNTIME = Runtime()


def handle(event: Any, context: Any, runtime: Runtime = DEFAULT_RUNTIME) -> str:
    """Answer one FC event; return serialized JSON, or raise when an answer could not be had yet."""
    started = runtime.clock()
    invocation = Invocation.of(context, runtime.environ)
    with logs.bound(fc_request_id=invocation.request_id):
        try:
            settings = settings_for(runtime.environ)
        except InvalidConfig as error:
            logs.emit("config_invalid", level=logging.ERROR, code=error.code, message=error.message)
            if _from_a_trigger(event):
                raise _raised(error, invocation.request_id) from None
            return dumps(Result.failure(error, invocation.request_id))
        redact.pin("api_key", [settings.api_key])
        if (creds := invocation.credentials) is not None:
            # Pinned, not just remembered: however often they rotate, the ones in use stay masked.
            redact.pin("credentials", [creds.access_key_secret, creds.security_token])
        try:
            decoded = decode(event, max_bytes=settings.max_event_bytes)
        except Exception as error:  # a decoder bug must still give a direct caller JSON
            failure = internal.internal_error(error, "internal error while decoding the event", stage="decode")
            if _looks_like_an_envelope(event):
                raise _raised(failure, invocation.request_id) from error
            return redact.redact(dumps(Result.failure(failure, invocation.request_id)))
        if decoded.records and isinstance(oversized := decoded.records[0], BatchTooLarge):
            logs.emit("batch_too_large", level=logging.ERROR, code=oversized.code, message=oversized.message)
            raise _raised(oversized, invocation.request_id)
        deadline = Deadline.for_function(invocation.timeout, started=started, clock=runtime.clock)
        job = _Job(settings, deadline, runtime, invocation, decoded)
        try:
            concurrency, remaining = settings.batch_concurrency, deadline.remaining
            results = answer_all(
                decoded.records, job.answer, concurrency=concurrency, source=_source, remaining=remaining
            )
        except TransientUpstreamError as error:
            _report_account_failure(error)
            raise _raised(error, invocation.request_id) from None
        return redact.redact(dumps(results if decoded.batch else results[0]))


def _raised(error: QwenError, request_id: str) -> QwenError:
    """`error`, its text the result JSON a direct caller gets: FC's runtime shows it as errorMessage."""
    error.args = (redact.redact(dumps(Result.failure(error, request_id))),)
    return error


def _from_a_trigger(event: Any) -> bool:
    """Whether `event` is a trigger's envelope, decoded with the default limit (the settings are invalid)."""
    try:
        decoded = decode(event, max_bytes=Settings.max_event_bytes)
    except Exception:  # noqa: BLE001  # the decoder's own bug: judged by the event's shape instead
        return _looks_like_an_envelope(event)
    return decoded.envelope or isinstance(decoded.records[0], BatchTooLarge)


def _looks_like_an_envelope(event: Any) -> bool:
    """A JSON array or an object with a key no request has: every envelope's shape."""
    try:
        value = json.loads(event)
    except (ValueError, TypeError):
        return False
    return isinstance(value, list) or (isinstance(value, dict) and not value.keys() <= REQUEST_KEYS)


def _report_account_failure(error: TransientUpstreamError) -> None:
    """One ERROR line per invocation for an account-level refusal: the code and the operator's fix."""
    failures = [error, *(e for _, _, e in getattr(error, "failures", ()))]
    found = next((e for e in failures if isinstance(e, AccountFailure)), None)
    if found is None:
        return
    logs.emit(
        "account_failure",
        level=logging.ERROR,
        code=found.code,
        status_code=found.status_code,
        request_id=found.request_id,
        fix=found.fix,
        message="DashScope refused the account, not the question: the event is raised so FC or EventBridge "
        "delivers it again (and dead-letters it after its retries); nothing was stored",
    )


def initialize(context: Any, runtime: Runtime = DEFAULT_RUNTIME) -> None:
    """FC's initializer: report a bad configuration early and import the SDK before the first event."""
    invocation = Invocation.of(context, runtime.environ)
    with logs.bound(fc_request_id=invocation.request_id):
        try:
            settings_for(runtime.environ)  # parsed once here, reused by the first invocation
        except InvalidConfig as error:
            # Not raised (a failed initializer's error is opaque): every invocation returns it as JSON instead.
            logs.emit("config_invalid", level=logging.ERROR, code=error.code, message=error.message)
            return
        _warn_unknown_models(settings_for(runtime.environ))
        if runtime.transport is dashscope_transport:
            _import_sdk()
        logs.emit("initialized")


def _import_sdk() -> None:
    """The SDK's import is most of a cold start: paid here, before the first event, without collecting."""
    with no_collection():
        import dashscope  # noqa: F401


def _warn_unknown_models(settings: Settings) -> None:
    """A WARNING for a configured model the table does not list but that is a typo away from one it does."""
    names = {settings.model, settings.vision_model, *settings.allowed_models}
    for name in sorted(names):
        meant = likely_meant(name, settings.models)
        if meant is not None:
            logs.emit(
                "model_unknown",
                level=logging.WARNING,
                model=name,
                likely=meant,
                message=f"model '{name}' is not in the model table; did you mean '{meant}'? "
                "(if it is a new model, add it to QWEN_MODEL_TABLE to get its context guard and cost)",
            )


def _source(record: Record) -> str | None:
    return getattr(record, "source", None)


class _Job:
    """One invocation's answering of its records; each record gets one Result and one log line."""

    def __init__(
        self, settings: Settings, deadline: Deadline, runtime: Runtime, invocation: Invocation, decoded: Decoded
    ) -> None:
        self.settings = settings
        self.envelope = decoded.envelope
        self.runtime = runtime
        self.request_id = invocation.request_id
        self.asker = Asker(settings, deadline, runtime, runtime.apis, function_timeout=invocation.timeout)
        access = OssAccess(runtime.store, invocation, settings.oss_endpoint, remaining=deadline.remaining)
        self.ctx = DeliveryContext(
            settings=settings,
            access=access,
            memory=runtime.memory,
            request_id=invocation.request_id,
            timeout=invocation.timeout,
            remaining=deadline.remaining,
            sleep=runtime.sleep,
            backoff=runtime.backoff,
            wall=runtime.wall,
            synchronous=decoded.synchronous,
        )
        self.deliveries = Deliveries(self.ctx)
        self._files: OssQuestionFiles | None = None  # built at the first OSS record

    def answer(self, record: Record) -> Result:
        began = self.runtime.clock()
        outcome = Outcome(_source(record))
        # A trigger's internal error is told in its raised question line, not a line of its own.
        with internal.held() if self.envelope else nullcontext({}) as held:
            result = self._result(record, outcome, began)
        if self.envelope and result.status_code >= 500 and result.code in _BROKEN:
            outcome.note(**held)
            failure = DeploymentFailure(
                result.message, code=result.code, request_id=result.request_id, attempts=outcome.attempts
            )
            outcome.log_raised(failure, self._since(began))
            raise failure
        if held:
            logs.emit("internal_error", level=logging.ERROR, **held)
        outcome.log(result, self._since(began))
        return result

    def _result(self, record: Record, outcome: Outcome, began: float) -> Result:
        try:
            if isinstance(record, InvalidInput):
                result = Result.failure(record, self.request_id)
                self.deliveries.keep_refusal(record.source, result, outcome)
            elif isinstance(record, Skipped):
                result = Result.skipped(record.reason, self.request_id)
            elif isinstance(record, CollectBatches):  # the collect timer (handler/deliver/batch_collect.py)
                from handler.deliver.batch_collect import collect

                result = collect(self.ctx)
            elif isinstance(record, OssObject):
                result = self._oss_files().answer(record, outcome, self.asker.ask)
            else:
                result = self.deliveries.answer(record, outcome, self.asker.ask)
        except QwenError as error:
            if isinstance(error, TransientUpstreamError):
                outcome.log_raised(error, self._since(began))
                raise
            result = Result.failure(error, self.request_id)
        except Exception as error:  # noqa: BLE001  # one record's bug must not cost the others their answers
            failure = internal.internal_error(error, "internal error", stage="answer", **outcome.fields)
            result = Result.failure(failure, self.request_id)
        return result

    def _oss_files(self) -> OssQuestionFiles:
        # OSS events only: other events never import handler/deliver/oss_files (nor once).
        from handler.deliver.oss_files import OssQuestionFiles

        if self._files is None:
            self._files = OssQuestionFiles(self.ctx)
        return self._files

    def _since(self, began: float) -> int:
        return round((self.runtime.clock() - began) * 1000)
