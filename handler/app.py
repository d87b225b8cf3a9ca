"""The invocation: event bytes -> decode -> plan -> invoke (prompt | messages) -> result JSON -> log."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from handler import logs, redact
from handler.config import Settings
from handler.decode import Record, decode
from handler.errors import InvalidConfig, InvalidInput, QwenError, TransientUpstreamError
from handler.fc_context import Invocation
from handler.invokers import INVOKERS, Invoker
from handler.plan import Call, plan
from handler.result import Result, dumps
from handler.retry import MIN_ATTEMPT_SECONDS, Backoff, Deadline
from handler.transport import Transient, Transport, classify_exception, classify_response, dashscope_transport

redact.install("qwen", "dashscope")


@dataclass(frozen=True)
class Runtime:
    """The seams of an invocation; production uses the defaults, tests pass their own."""

    transport: Transport = dashscope_transport
    env: Mapping[str, str] | None = None  # None: os.environ, read at each invocation
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    backoff: Backoff = field(default_factory=Backoff)

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self.env is None else self.env


DEFAULT_RUNTIME = Runtime()


def handle(event: Any, context: Any, runtime: Runtime = DEFAULT_RUNTIME) -> str:
    """Answer one FC event; return serialized JSON, or raise when DashScope stayed unavailable."""
    started = runtime.clock()
    invocation = Invocation.of(context, runtime.environ)
    creds = invocation.credentials
    with logs.bound(fc_request_id=invocation.request_id):
        try:
            settings = Settings.from_env(runtime.environ)
        except InvalidConfig as error:
            logs.emit("config_invalid", level=logging.ERROR, code=error.code, message=error.message)
            return dumps(Result.failure(error, invocation.request_id))
        redact.remember([settings.api_key, creds and creds.access_key_secret, creds and creds.security_token])
        deadline = Deadline.for_function(invocation.timeout, started=started, clock=runtime.clock)
        decoded = decode(event)
        results = [_answer(record, settings, deadline, runtime, invocation) for record in decoded.records]
        return redact.redact(dumps(results if decoded.batch else results[0]))


def initialize(context: Any, runtime: Runtime = DEFAULT_RUNTIME) -> None:
    """FC's initializer: report a bad configuration early and import the SDK before the first event."""
    invocation = Invocation.of(context, runtime.environ)
    with logs.bound(fc_request_id=invocation.request_id):
        try:
            Settings.from_env(runtime.environ)
        except InvalidConfig as error:
            # Not raised: a failed initializer gives users an opaque error; every invocation will
            # return this one as JSON instead.
            logs.emit("config_invalid", level=logging.ERROR, code=error.code, message=error.message)
            return
        if runtime.transport is dashscope_transport:
            import dashscope  # noqa: F401  # the SDK's import is most of a cold start; pay it here

        logs.emit("initialized")


def _answer(record: Record, settings: Settings, deadline: Deadline, runtime: Runtime, invocation: Invocation) -> Result:
    """One record -> one Result (and one log line); raises TransientUpstreamError to get redelivered."""
    began = runtime.clock()
    source = getattr(record, "source", None)
    fields: dict[str, Any] = {"source": source} if source else {}
    try:
        if isinstance(record, InvalidInput):
            raise record
        call = plan(record, settings)
        fields.update(model=call.model, mode=call.mode)
        if settings.log_content:
            fields["question"] = call.text
        result, attempts = _ask(call, INVOKERS[call.mode], settings, deadline, runtime)
    except InvalidInput as error:
        result, attempts = Result.failure(error, invocation.request_id), 0
    except TransientUpstreamError as error:
        logs.emit(
            "question",
            level=logging.ERROR,
            **fields,
            request_id=error.request_id,
            status_code=None,
            code=error.code,
            message=error.message,
            attempts=error.attempts,
            latency_ms=round((runtime.clock() - began) * 1000),
        )
        raise
    usage = result.usage if isinstance(result.usage, Mapping) else {}
    if settings.log_content and result.ok and "mode" in fields:
        fields["answer"] = INVOKERS[fields["mode"]].answer(result.output)
    logs.emit(
        "question",
        level=logging.INFO if result.status_code < 500 else logging.ERROR,
        **fields,
        request_id=result.request_id,
        status_code=result.status_code,
        code=result.code,
        message=None if result.ok else result.message,
        attempts=attempts,
        latency_ms=round((runtime.clock() - began) * 1000),
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        total_tokens=usage.get("total_tokens"),
    )
    return result


def _ask(call: Call, invoker: Invoker, settings: Settings, deadline: Deadline, runtime: Runtime) -> tuple[Result, int]:
    """Call until a final answer, the attempt limit, or the deadline; return (result, attempts)."""
    arguments = invoker.arguments(call)
    arguments["api_key"] = settings.api_key
    if settings.base_url:
        # Passed per call because the SDK reads DASHSCOPE_HTTP_BASE_URL only once, at its import.
        arguments["base_address"] = settings.base_url
    attempts = 0
    last = Transient("DeadlineExceeded", "no time was left to call DashScope")
    while (budget := deadline.remaining()) >= MIN_ATTEMPT_SECONDS:
        attempts += 1
        try:
            response = runtime.transport(**arguments, request_timeout=min(settings.request_timeout, budget))
        except Exception as error:  # noqa: BLE001  # anything the SDK raises is classified, not leaked
            reply = classify_exception(error)
            if reply is None:
                failure = QwenError(f"the DashScope SDK failed unexpectedly ({type(error).__name__})")
                return Result.failure(failure, ""), attempts
        else:
            reply = classify_response(response, invoker)
        if isinstance(reply, Result):
            return reply, attempts
        last = reply
        if attempts >= settings.max_attempts:
            break
        pause = runtime.backoff.wait(attempts, reply.retry_after)
        if pause > deadline.remaining() - MIN_ATTEMPT_SECONDS:
            break  # waiting as long as asked would leave no time for the attempt itself
        runtime.sleep(pause)
    raise TransientUpstreamError(
        f"{last.code}: {last.message} (request_id={last.request_id or 'none'}, attempts={attempts}, "
        f"model={call.model})",
        code=last.code,
        request_id=last.request_id,
        attempts=attempts,
    )
