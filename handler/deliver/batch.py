"""Answer the records of one event concurrently, each in its own slot; a record repeated in the batch is
answered once. Transient failures are raised together after the others finish, naming the records, so the
trigger redelivers the event (the answered ones are remembered, not asked again)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from handler.errors import TransientUpstreamError
from handler.result import Result

R = TypeVar("R")


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
) -> list[Result]:
    """`answer` each record, up to `concurrency` at a time; results in record order."""
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
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qwen-batch") as pool:
        # Each task runs in a copy of this context, so log fields bound for the invocation follow it.
        futures = {index: pool.submit(contextvars.copy_context().run, run, records[index]) for index in unique}
        outcomes = [futures[same.get(index, index)].result() for index in range(len(records))]

    failures = [
        (index, source(records[index]), outcome)
        for index, outcome in enumerate(outcomes)
        if isinstance(outcome, TransientUpstreamError)
    ]
    if failures:
        raise BatchIncomplete(failures, total=len(records))
    return [outcome for outcome in outcomes if isinstance(outcome, Result)]


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
