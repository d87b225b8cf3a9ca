"""The invocation: event bytes -> decode -> plan -> invoke (prompt | messages) -> result JSON -> log."""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from handler import guard, logs, redact
from handler.answer_oss import OssAnswerStore
from handler.answers import COMPLETED, AnswerRecord, AnswerStore, answer_key, payload_hash, refusal_hash
from handler.attempts import call_with_retries
from handler.batch import answer_all
from handler.config import Settings, settings_for
from handler.decode import Record, decode
from handler.errors import InvalidConfig, InvalidInput, QwenError, TransientUpstreamError
from handler.fc_context import Credentials, Invocation
from handler.invokers import INVOKERS
from handler.memory import AnsweredRecords
from handler.once import ASKED, CONFLICT, Once, not_stored
from handler.oss_files import OssQuestionFiles
from handler.plan import plan
from handler.question import OssObject, Question, Skipped
from handler.result import Result, dumps
from handler.retry import Backoff, Deadline
from handler.store import ObjectStore, Oss2Store, OssAccess
from handler.transport import Transport, dashscope_transport

redact.install()

ANSWERED = AnsweredRecords()


@dataclass(frozen=True)
class Runtime:
    """The seams of an invocation; production uses the defaults, tests pass their own."""

    transport: Transport = dashscope_transport
    store: Callable[[Credentials, str], ObjectStore] = Oss2Store
    env: Mapping[str, str] | None = None  # None: os.environ (parsed again only when it changes)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    backoff: Backoff = field(default_factory=Backoff)
    memory: AnsweredRecords = ANSWERED
    wall: Callable[[], float] = time.time  # epoch seconds: in-progress markers are compared across instances

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
        redact.remember([settings.api_key])
        try:
            decoded = decode(event, max_bytes=settings.max_event_bytes)
        except Exception as error:  # noqa: BLE001  # a decoder bug must still give the caller JSON
            logs.emit("internal_error", level=logging.ERROR, stage="decode", error=type(error).__name__)
            failure = QwenError(f"internal error while decoding the event ({type(error).__name__})")
            return dumps(Result.failure(failure, invocation.request_id))
        job = _Job(
            settings,
            Deadline.for_function(invocation.timeout, started=started, clock=runtime.clock),
            runtime,
            invocation,
        )
        results = answer_all(decoded.records, job.answer, concurrency=settings.batch_concurrency, source=_source)
        return redact.redact(dumps(results if decoded.batch else results[0]))


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
        if runtime.transport is dashscope_transport:
            import dashscope  # noqa: F401  # the SDK's import is most of a cold start; pay it here

            # Everything imported so far lives as long as the instance: move it out of the garbage
            # collector's generations, so its periodic full collections stop rescanning the SDK's
            # few hundred thousand objects between invocations.
            gc.freeze()
        logs.emit("initialized")


def _source(record: Record) -> str | None:
    return getattr(record, "source", None)


_warned_lock = threading.Lock()
_warned = False


def _warn_kept_nowhere(settings: Settings) -> None:
    """Once per instance: a timer or MNS answer that neither the store, a destination nor the log keeps."""
    global _warned
    if settings.fc_destination or settings.log_content:
        return
    with _warned_lock:
        if _warned:
            return
        _warned = True
    logs.emit(
        "answers_kept_nowhere",
        level=logging.WARNING,
        message="this timer or MNS answer is kept nowhere: FC discards an async invocation's return value. Set "
        "QWEN_ANSWER_BUCKET to keep every answer in OSS, or configure asyncInvokeConfig.destinationConfig.onSuccess "
        "in s.yaml and set QWEN_FC_DESTINATION=true (see README, Where answers go)",
    )


def _header_safe(text: str) -> str:
    # The owner token travels as x-oss-meta-owner: only characters any HTTP header takes.
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:64]


@dataclass
class _Job:
    """One invocation's answering of its records; each record gets one Result and one log line."""

    settings: Settings
    deadline: Deadline
    runtime: Runtime
    invocation: Invocation
    _access: OssAccess = field(init=False)
    _files: OssQuestionFiles = field(init=False)

    def __post_init__(self) -> None:
        self._access = OssAccess(
            self.runtime.store, self.invocation, self.settings.oss_endpoint, remaining=self.deadline.remaining
        )
        self._files = OssQuestionFiles(
            self.settings,
            self._access,
            self.runtime.memory,
            self.invocation.request_id,
            self.deadline.remaining,
            self.runtime.sleep,
            self.runtime.backoff,
            self.runtime.wall,
        )

    def answer(self, record: Record) -> Result:
        began = self.runtime.clock()
        fields: dict[str, Any] = {"source": source} if (source := _source(record)) else {}
        attempts = 0
        try:
            if isinstance(record, InvalidInput):
                result = Result.failure(record, self.invocation.request_id)
                self._keep_refusal(record.source, result, fields)
            elif isinstance(record, Skipped):
                result = self._skipped(record.reason)
            elif isinstance(record, OssObject):
                result, attempts = self._files.answer(record, fields, self._ask, self._skipped)
            else:
                result, attempts = self._answer_question(record, fields)
        except QwenError as error:
            if isinstance(error, TransientUpstreamError):
                self._log(fields, began, error=error)
                raise
            result = Result.failure(error, self.invocation.request_id)
        except Exception as error:  # noqa: BLE001  # one record's bug must not cost the others their answers
            logs.emit("internal_error", level=logging.ERROR, **fields, error=type(error).__name__)
            result = Result.failure(QwenError(f"internal error ({type(error).__name__})"), self.invocation.request_id)
        self._log(fields, began, result=result, attempts=attempts)
        return result

    def _answer_question(self, question: Question, fields: dict[str, Any]) -> tuple[Result, int]:
        # A delivery id (MNS message id, timer name and time) makes a record redeliverable: answered
        # once, from this instance's memory, else from the answer store, else asked.
        key = answer_key(question.source)
        if key is None:
            return self._ask(question, fields)
        digest = payload_hash(question)
        # Remembered per delivery id AND question: another question reusing the id is not served the
        # first one's answer (with a store it gets the 409 AnswerConflict a fresh instance gives).
        memo = f"{question.source}#{digest}"
        answers, unusable = self._answer_store()
        if answers is not None:
            fields["answer_key"] = answers.where(key)
        remembered = self.runtime.memory.entry(memo)
        if remembered is not None:
            fields["remembered"] = True
            if remembered.stored or answers is None:
                return remembered.result, 0
            problem = self._once(answers).store_again(key, digest, remembered.result)
            self.runtime.memory.put(memo, remembered.result, stored=problem is None)
            kept = remembered.result if problem is None else not_stored(remembered.result, problem, answers.where(key))
            return kept, 0
        if answers is None:
            if unusable is not None:
                result, attempts = self._ask(question, fields)
                self.runtime.memory.put(memo, result, stored=False)
                return not_stored(result, unusable, f"oss://{self.settings.answer_bucket}"), attempts
            _warn_kept_nowhere(self.settings)
            result, attempts = self._ask(question, fields)
            self.runtime.memory.put(memo, result)
            return result, attempts
        outcome = self._once(answers).answer(key, digest, lambda: self._ask(question, fields))
        if outcome.how != ASKED:
            fields["answered_by"] = outcome.how  # stored, waited, superseded or conflict: not asked here
        result = outcome.result
        if outcome.how == CONFLICT:
            return result, outcome.attempts  # not remembered: the stored answer stays the record
        if result.status_code < 500:  # our own failure is not kept anywhere: a redelivery tries again
            self.runtime.memory.put(memo, result, stored=outcome.problem is None)
        if outcome.problem is not None:
            result = not_stored(result, outcome.problem, answers.where(key))
        return result, outcome.attempts

    def _keep_refusal(self, source: str | None, refusal: Result, fields: dict[str, Any]) -> None:
        """A malformed timer or MNS record's 4xx goes to the store too, so readers of it learn why; best effort."""
        key = answer_key(source)
        answers = self._answer_store()[0] if key else None
        if answers is None or key is None:
            return
        fields["answer_key"] = answers.where(key)
        # Its own payload hash (no question's hash is ever one): a question reusing the id gets 409.
        record = AnswerRecord(COMPLETED, refusal_hash(refusal), "", self.runtime.wall(), 1, refusal)
        try:
            answers.put_if_absent(key, record)  # nothing was paid: a failure is only logged
        except QwenError as error:
            logs.emit("answer_not_stored", level=logging.WARNING, answer_key=fields["answer_key"], code=error.code)

    def _answer_store(self) -> tuple[AnswerStore | None, QwenError | None]:
        """The answer store (QWEN_ANSWER_BUCKET), or None; with the reason when one is set but unreachable."""
        bucket = self.settings.answer_bucket
        if bucket is None:
            return None, None
        try:
            return OssAnswerStore(self._access.store(), bucket, self.settings.oss_output_prefix), None
        except QwenError as error:
            return None, error

    def _once(self, answers: AnswerStore) -> Once:
        return Once(
            answers,
            owner=f"{_header_safe(self.invocation.request_id)}.{uuid.uuid4().hex[:12]}",
            request_id=self.invocation.request_id,
            timeout=self.invocation.timeout,
            remaining=self.deadline.remaining,
            wall=self.runtime.wall,
            sleep=self.runtime.sleep,
            backoff=self.runtime.backoff,
        )

    def _skipped(self, reason: str) -> Result:
        return Result(status_code=200, request_id=self.invocation.request_id, code="Skipped", message=reason)

    def _ask(self, question: Question, fields: dict[str, Any]) -> tuple[Result, int]:
        call = plan(question, self.settings)
        fields.update(model=call.model, mode=call.mode)
        info = self.settings.models.get(call.model)
        if info is None:
            fields["model_known"] = False  # no context guard and no cost for a model not in the table
        if self.settings.log_content:
            fields["question"] = call.text
        fit = guard.check(call, info, trim=self.settings.trim_history)
        if fit.counted_tokens is not None:
            fields["counted_input_tokens"] = fit.counted_tokens
        if fit.trimmed_turns:
            fields["trimmed_turns"] = fit.trimmed_turns
        call = fit.call
        outcome = call_with_retries(
            call,
            INVOKERS[call.mode],
            self.settings,
            self.deadline,
            self.runtime,
            function_timeout=self.invocation.timeout,
        )
        result, attempts = outcome.result, outcome.attempts
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
            fields["answer"] = INVOKERS[call.mode].answer(result.output)
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
                level=logging.ERROR,
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
        )
