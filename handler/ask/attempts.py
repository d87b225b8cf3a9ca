"""Attempts within the deadline: call, read the stream, classify, back off, until a final answer.

A failure before any output is transient and retried (at most QWEN_MAX_ATTEMPTS, never past the
deadline); a misconfiguration or a 4xx is final; an answer that stopped after output began is a
final PartialAnswer (handler/ask/stream.py), never asked for twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from handler.ask import stream
from handler.ask.invokers import Invoker
from handler.ask.plan import Call
from handler.ask.transport import Bounds, Request, Transient, Transport, classify_exception
from handler.config import Settings
from handler.errors import TransientUpstreamError
from handler.internal import internal_error
from handler.result import Result
from handler.values import Value, field

# Below this, an attempt cannot finish a model call; better to report than to start it.
MIN_ATTEMPT_SECONDS = 1.0


class Deadline(Value):
    """The moment the function must have returned by, minus a margin for writing results and logs."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def for_function(cls, timeout: float, *, started: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        margin = min(3.0, max(0.5, timeout * 0.1))
        return cls(at=started + timeout - margin, clock=clock)

    def remaining(self) -> float:
        return self.at - self.clock()


class Backoff(Value):
    """Exponential backoff with equal jitter: half the step is fixed, half is random."""

    base: float = 0.5
    cap: float = 8.0

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        step = min(self.cap, self.base * 2 ** (failures - 1))
        return step / 2 + (rng or random).uniform(0, step / 2)

    def wait(self, failures: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """The pause before the next attempt: ours, or longer when the server asked for longer."""
        ours = self.delay(failures, rng)
        return max(ours, retry_after) if retry_after is not None else ours


class Seams(Protocol):
    """What the attempts need from the invocation's runtime."""

    transport: Transport
    sleep: Callable[[float], None]
    backoff: Backoff


class Asked(Value):
    """The final result of a question's attempts, how many there were, and why it stopped early if it did."""

    result: Result
    attempts: int
    partial: stream.Partial | None = None


def call_with_retries(
    call: Call, invoker: Invoker, settings: Settings, deadline: Deadline, runtime: Seams, *, function_timeout: float
) -> Asked:
    """Call until a final answer, the attempt limit, or the deadline; raise TransientUpstreamError
    when DashScope stayed unavailable."""
    arguments: dict[str, Any] = invoker.arguments(call)
    arguments["api_key"] = settings.api_key
    if settings.base_url:
        # Passed per call because the SDK reads DASHSCOPE_HTTP_BASE_URL only once, at its import.
        arguments["base_address"] = settings.base_url
    bounds = Bounds(deadline, connect=settings.connect_timeout, silence=settings.request_timeout)
    request = Request(invoker.api, arguments, bounds)
    attempts = 0
    last: Transient | None = None
    while (budget := deadline.remaining()) >= MIN_ATTEMPT_SECONDS:
        attempts += 1
        reading: stream.Reading | None = None
        try:
            # request_timeout is the SDK's own scalar; the transport's bounds refine it per connect and read.
            timeout = min(settings.request_timeout, budget)
            chunks = request.send(runtime.transport, request_timeout=timeout)
            reading = stream.read(
                chunks, invoker, deadline, silence=settings.request_timeout, function_timeout=function_timeout
            )
            reply: Result | Transient | None = reading.reply
        except Exception as error:  # noqa: BLE001  # anything the SDK raises is classified, not leaked
            reply = classify_exception(error)
            if reply is None:
                failure = internal_error(error, "the DashScope SDK failed unexpectedly", stage="ask", model=call.model)
                return Asked(Result.failure(failure, ""), attempts)
        if isinstance(reply, Result):
            return Asked(reply, attempts, reading.partial if reading is not None else None)
        last = reply
        if attempts >= settings.max_attempts:
            break
        pause = runtime.backoff.wait(attempts, reply.retry_after)
        if pause > deadline.remaining() - MIN_ATTEMPT_SECONDS:
            break  # waiting as long as asked would leave no time for the attempt itself
        runtime.sleep(pause)
    if last is None:
        last = Transient("DeadlineExceeded", "no time was left to call DashScope")
    raise TransientUpstreamError(
        f"{last.code}: {last.message} (request_id={last.request_id or 'none'}, attempts={attempts}, "
        f"model={call.model})",
        code=last.code,
        request_id=last.request_id,
        attempts=attempts,
    )
