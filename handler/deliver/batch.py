"""Answer the records of one event concurrently; nothing is lost when some of them fail.

Every record gets its Result in its own slot (answers cannot cross records). Transient failures are
collected and raised together after the others finish, naming the records, so the trigger
redelivers the event; records answered meanwhile are remembered and not asked again.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
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
    from concurrent.futures import ThreadPoolExecutor  # batches only: a single question never loads it

    def run(record: R) -> Result | TransientUpstreamError:
        try:
            return answer(record)
        except TransientUpstreamError as error:
            return error

    workers = max(1, min(concurrency, len(records)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qwen-batch") as pool:
        # Each task runs in a copy of this context, so log fields bound for the invocation follow it.
        futures = [pool.submit(contextvars.copy_context().run, run, record) for record in records]
        outcomes = [future.result() for future in futures]

    failures = [
        (index, source(records[index]), outcome)
        for index, outcome in enumerate(outcomes)
        if isinstance(outcome, TransientUpstreamError)
    ]
    if failures:
        raise BatchIncomplete(failures, total=len(records))
    return [outcome for outcome in outcomes if isinstance(outcome, Result)]
