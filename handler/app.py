"""The invocation: event bytes -> decode -> plan -> invoke (prompt | messages) -> result JSON -> log."""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from handler import logs, redact
from handler.ask import account, guard
from handler.ask.apis import ModelApis, is_url_error
from handler.ask.attempts import Backoff, Deadline, call_with_retries
from handler.ask.invokers import invoker_for
from handler.ask.models import MULTIMODAL, likely_meant
from handler.ask.plan import plan
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
    InvalidConfig,
    InvalidInput,
    QwenError,
    TransientUpstreamError,
)
from handler.events.decode import Record, decode
from handler.events.question import OssObject, Question, Skipped
from handler.fc_context import Credentials, Invocation
from handler.internal import internal_error
from handler.result import Result, dumps
from handler.values import Value, field, replace

if TYPE_CHECKING:
    from handler.deliver.oss_files import OssQuestionFiles

redact.install()

ANSWERED = AnsweredRecords()
APIS = ModelApis()  # this instance's learned model APIs (handler/ask/apis.py)


class Runtime(Value):
    """The seams of an invocation; production uses the defaults, tests pass their own."""

    transport: Transport = dashscope_transport
    store: Callable[[Credentials, str], ObjectStore] = Oss2Store
    env: Mapping[str, str] | None = None  # None: os.environ (parsed again only when it changes)
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
            return dumps(Result.failure(error, invocation.request_id))
        redact.pin("api_key", [settings.api_key])
        if (creds := invocation.credentials) is not None:
            # Pinned, not just remembered: however often they rotate, the ones in use stay masked.
            redact.pin("credentials", [creds.access_key_secret, creds.security_token])
        try:
            decoded = decode(event, max_bytes=settings.max_event_bytes)
        except Exception as error:  # noqa: BLE001  # a decoder bug must still give the caller JSON
            failure = internal_error(error, "internal error while decoding the event", stage="decode")
            return redact.redact(dumps(Result.failure(failure, invocation.request_id)))
        if decoded.records and isinstance(oversized := decoded.records[0], BatchTooLarge):
            logs.emit("batch_too_large", level=logging.ERROR, code=oversized.code, message=oversized.message)
            raise oversized
        job = _Job(
            settings,
            Deadline.for_function(invocation.timeout, started=started, clock=runtime.clock),
            runtime,
            invocation,
            synchronous=decoded.synchronous,
        )
        try:
            results = answer_all(decoded.records, job.answer, concurrency=settings.batch_concurrency, source=_source)
        except TransientUpstreamError as error:
            _report_account_failure(error)
            raise
        return redact.redact(dumps(results if decoded.batch else results[0]))


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
            # Not raised: a failed initializer gives users an opaque error; every invocation will
            # return this one as JSON instead.
            logs.emit("config_invalid", level=logging.ERROR, code=error.code, message=error.message)
            return
        _warn_unknown_models(settings_for(runtime.environ))
        if runtime.transport is dashscope_transport:
            _import_sdk()
        logs.emit("initialized")


def _import_sdk() -> None:
    """The SDK's import is most of a cold start: pay it in the initializer, without collecting.

    What it creates lives as long as the instance, so a collection meanwhile frees nothing (about 7%
    of the import's CPU here, measured alternating). Afterwards everything imported so far is moved
    out of the collector's generations, so its periodic full collections stop rescanning the SDK's
    objects between invocations."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        import dashscope  # noqa: F401

        gc.freeze()
    finally:
        if collecting:
            gc.enable()


def _warn_unknown_models(settings: Settings) -> None:
    """A configured model name the table does not list but is a typo away from one it does: only a
    WARNING (new models appear all the time), naming the model that was likely meant."""
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


class _Job(Value, frozen=False):
    """One invocation's answering of its records; each record gets one Result and one log line."""

    settings: Settings
    deadline: Deadline
    runtime: Runtime
    invocation: Invocation
    synchronous: bool = False
    _access: OssAccess = field(init=False)
    _files: OssQuestionFiles | None = field(init=False, default=None)  # built at the first OSS record
    _deliveries: Deliveries = field(init=False)

    def __post_init__(self) -> None:
        self._access = OssAccess(
            self.runtime.store, self.invocation, self.settings.oss_endpoint, remaining=self.deadline.remaining
        )
        ctx = DeliveryContext(
            settings=self.settings,
            access=self._access,
            memory=self.runtime.memory,
            request_id=self.invocation.request_id,
            remaining=self.deadline.remaining,
            sleep=self.runtime.sleep,
            backoff=self.runtime.backoff,
            wall=self.runtime.wall,
            synchronous=self.synchronous,
        )
        self._deliveries = Deliveries(ctx)

    def answer(self, record: Record) -> Result:
        began = self.runtime.clock()
        fields: dict[str, Any] = {"source": source} if (source := _source(record)) else {}
        attempts = 0
        try:
            if isinstance(record, InvalidInput):
                result = Result.failure(record, self.invocation.request_id)
                self._deliveries.keep_refusal(record.source, result, fields)
            elif isinstance(record, Skipped):
                result = self._skipped(record.reason)
            elif isinstance(record, OssObject):
                result, attempts = self._oss_files().answer(record, fields, self._ask, self._skipped)
            else:
                result, attempts = self._deliveries.answer(record, fields, self._ask)
        except QwenError as error:
            if isinstance(error, TransientUpstreamError):
                self._log(fields, began, error=error)
                raise
            result = Result.failure(error, self.invocation.request_id)
        except Exception as error:  # noqa: BLE001  # one record's bug must not cost the others their answers
            failure = internal_error(error, "internal error", stage="answer", **fields)
            result = Result.failure(failure, self.invocation.request_id)
        self._log(fields, began, result=result, attempts=attempts)
        return result

    def _oss_files(self) -> OssQuestionFiles:
        # OSS events only: other events never import handler/deliver/oss_files (nor once, answer_oss).
        from handler.deliver.oss_files import OssQuestionFiles

        if self._files is None:
            self._files = OssQuestionFiles(self._deliveries.ctx)
        return self._files

    def _skipped(self, reason: str) -> Result:
        return Result(status_code=200, request_id=self.invocation.request_id, code="Skipped", message=reason)

    def _ask(self, question: Question, fields: dict[str, Any], *, reserve: float = 0.0) -> tuple[Result, int]:
        """Ask within the deadline, less `reserve`: the time the caller needs afterwards to store the answer
        (a stream still going then is cut there, a PartialAnswer that can still be kept)."""
        call = plan(question, self.settings)
        fields.update(model=call.model, mode=call.mode)
        info = self.settings.models.get(call.model)
        if info is None:
            fields["model_known"] = False  # no context guard and no cost for a model not in the table
        api, settled = self.runtime.apis.api(call.model, info)
        image_parts = sum(len(m.images) for m in call.messages)
        if image_parts:
            # Images go only to multimodal-generation; the guard below counts the text parts alone.
            api, settled = MULTIMODAL, True
            fields["image_parts"] = image_parts
        fields["api"] = api
        if self.settings.log_content:
            fields["question"] = call.text
        fit = guard.check(call, info, trim=self.settings.trim_history)
        if fit.counted_tokens is not None:
            fields["counted_input_tokens"] = fit.counted_tokens
        if fit.trimmed_turns:
            fields["trimmed_turns"] = fit.trimmed_turns
        call = fit.call
        deadline = self.deadline if reserve <= 0 else Deadline(self.deadline.at - reserve, self.deadline.clock)

        def attempts(api: str) -> Any:
            return call_with_retries(
                call,
                invoker_for(call.mode, api),
                self.settings,
                deadline,
                self.runtime,
                function_timeout=self.invocation.timeout,
            )

        outcome = attempts(api)
        if not settled and is_url_error(outcome.result):
            # Not served on text-generation: nothing was generated, so asking the other endpoint once
            # costs nothing twice. Only a 200 there teaches the instance the model's API.
            first = outcome.attempts
            api = fields["api"] = MULTIMODAL
            outcome = attempts(api)
            outcome = replace(outcome, attempts=first + outcome.attempts)
            if outcome.result.ok:
                self.runtime.apis.learn(call.model, api)
        result, attempts = account.with_key_hint(outcome.result, self.settings), outcome.attempts
        # A revoked key or an overdue balance says nothing about the question: raised, never kept.
        account.raise_if_account_level(result, model=call.model)
        if outcome.partial is not None:
            fields["partial_reason"] = outcome.partial.reason
        usage = result.usage if isinstance(result.usage, dict) else {}
        details = usage.get("output_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
            fields["reasoning_tokens"] = details["reasoning_tokens"]
        if info is not None and isinstance(usage.get("input_tokens"), int):
            cost = info.cost(usage.get("input_tokens", 0), usage.get("output_tokens") or 0)
            if cost is not None:
                fields["cost_cny"] = cost
        if self.settings.log_content and result.ok:
            fields["answer"] = invoker_for(call.mode, api).answer_text(result.output)
        return result, attempts

    def _log(
        self,
        fields: dict[str, Any],
        began: float,
        *,
        result: Result | None = None,
        attempts: int = 0,
        error: TransientUpstreamError | None = None,
    ) -> None:
        latency_ms = round((self.runtime.clock() - began) * 1000)
        if error is not None:
            logs.emit(
                "question",
                # The account's failure has its own ERROR line (account_failure), once per invocation.
                level=logging.WARNING if isinstance(error, AccountFailure) else logging.ERROR,
                **fields,
                request_id=error.request_id,
                status_code=None,
                code=error.code,
                message=error.message,
                attempts=error.attempts,
                latency_ms=latency_ms,
            )
            return
        assert result is not None
        usage = result.usage if isinstance(result.usage, dict) else {}
        logs.emit(
            "question",
            level=logging.INFO if result.status_code < 500 else logging.ERROR,
            **fields,
            request_id=result.request_id,
            status_code=result.status_code,
            code=result.code,
            message=None if result.ok and not result.code else result.message,
            attempts=attempts,
            latency_ms=latency_ms,
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
            total_tokens=usage.get("total_tokens"),
            **({"stored": result.stored} if result.stored is not None else {}),
        )
