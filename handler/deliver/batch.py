"""Answer the records of one event concurrently, each in its own slot; a record repeated in the batch is
answered once. Transient failures are raised together after the others finish, naming the records, so the
trigger redelivers the event (the answered ones are remembered, not asked again). At the deadline the
batch stops: records not started are not started, and its daemon threads never keep the process alive."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from handler import logs
from handler.errors import TransientUpstreamError
from handler.result import Result

R = TypeVar("R")

# After the deadline, how long a record that stopped at it has to hand back its result.
GRACE_SECONDS = 0.25


class BatchIncomplete(TransientUpstreamError):
    """Some records of a batch could not be answered now; the event should be delivered again.
    (Part of the hierarchy drawn in handler/errors.py.)"""

    def __init__(self, failures: Sequence[tuple[int, str | None, TransientUpstreamError]], total: int):
        named = "; ".join(
            f"record {index} ({source or 'no id'}): {error.code}, request_id={error.request_id or 'none'}"
            for index, source, error in failures
        )
        first = failures[0][2]
        super().__init__(
            f"{len(failures)} of {total} records failed transiently, redeliver the event: {named}",
            code=first.code,
            request_id=first.request_id,
            attempts=max(error.attempts for _, _, error in failures),
        )
        self.failures = list(failures)


def answer_all(
    records: Sequence[R],
    answer: Callable[[R], Result],
    *,
    concurrency: int,
    source: Callable[[R], str | None],
    remaining: Callable[[], float] = lambda: float("inf"),
) -> list[Result]:
    """`answer` each record, up to `concurrency` at a time, none started once `remaining()` (seconds to the
    deadline) is spent; results in record order."""
    if len(records) == 1:
        return [answer(records[0])]  # a single question raises its own error, unwrapped

    def run(record: R) -> Result | TransientUpstreamError:
        try:
            return answer(record)
        except TransientUpstreamError as error:
            return error

    same = _duplicates(records, source)
    unique = [index for index in range(len(records)) if index not in same]
    workers = max(1, min(concurrency, len(unique)))
    done = _by_deadline([(index, records[index]) for index in unique], run, workers, remaining)
    if late := [index for index in unique if index not in done]:
        _report_late([source(records[index]) or f"record {index}" for index in late])
    for index in late:
        done[index] = TransientUpstreamError(
            "not answered by the deadline", code="DeadlineExceeded", request_id="", attempts=0
        )
    for outcome in done.values():
        if isinstance(outcome, Exception) and not isinstance(outcome, TransientUpstreamError):
            raise outcome  # a bug, as a single record's would be
    outcomes = [done[same.get(index, index)] for index in range(len(records))]

    failures = [
        (index, source(records[index]), outcome)
        for index, outcome in enumerate(outcomes)
        if isinstance(outcome, TransientUpstreamError)
    ]
    if failures:
        raise BatchIncomplete(failures, total=len(records))
    return [outcome for outcome in outcomes if isinstance(outcome, Result)]


def _by_deadline(
    tasks: list[tuple[int, R]], run: Callable[[R], Any], workers: int, remaining: Callable[[], float]
) -> dict[int, Any]:
    """index -> what `run` gave, for the tasks done by the deadline (and its grace). Daemon threads: FC's
    SIGTERM at the timeout ends the process without waiting for a record still being answered."""
    todo = deque((index, record, contextvars.copy_context()) for index, record in tasks)
    done: dict[int, Any] = {}
    changed = threading.Condition()
    stopped = False

    def work() -> None:
        while True:
            with changed:
                if stopped or not todo or remaining() <= 0:
                    return
                index, record, context = todo.popleft()
            try:
                # Each task runs in a copy of the caller's context: the invocation's log fields follow it.
                outcome = context.run(run, record)
            except Exception as error:  # noqa: BLE001  # handed to the caller's thread, raised there
                outcome = error
            with changed:
                done[index] = outcome
                changed.notify_all()

    for number in range(workers):
        threading.Thread(target=work, name=f"qwen-batch-{number}", daemon=True).start()
    with changed:
        while len(done) < len(tasks) and (left := remaining() + GRACE_SECONDS) > 0:
            changed.wait(min(left, 1.0))
        stopped = True
        return dict(done)


def _report_late(unanswered: list[str]) -> None:
    """The batch's one ERROR line for the records the deadline left unanswered."""
    message = "raised so the trigger delivers them again: raise the function's timeout or lower the batch size"
    logs.emit("batch_deadline", level=logging.ERROR, unanswered=unanswered, message=message)


def _duplicates(records: Sequence[R], source: Callable[[R], str | None]) -> dict[int, int]:
    """index -> the earlier index of the same record (same delivery id and question) in this batch: asked
    once, never paid twice. The same id with another question is not merged (it gets 409 AnswerConflict)."""
    first: dict[str, int] = {}
    same: dict[int, int] = {}
    for index, record in enumerate(records):
        name = source(record)
        if name is None or isinstance(record, BaseException):
            continue
        earlier = first.setdefault(name, index)
        if earlier != index and records[earlier] == record:
            same[index] = earlier
    return same
