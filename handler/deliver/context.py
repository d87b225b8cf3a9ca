"""What every delivery of one invocation shares: its settings, OSS access, memory, clocks and budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from handler.ask.attempts import Backoff
from handler.config import Settings
from handler.deliver.memory import AnsweredRecords
from handler.deliver.store import OssAccess
from handler.events.question import Question
from handler.outcome import Outcome
from handler.result import Result
from handler.values import Value

if TYPE_CHECKING:
    from handler.deliver.answers import AnswerStore
    from handler.deliver.once import Once


class Ask(Protocol):
    """Ask DashScope one question; `reserve` seconds before the deadline are kept for storing its answer."""

    def __call__(self, question: Question, outcome: Outcome, *, reserve: float = 0.0) -> Result: ...


class DeliveryContext(Value):
    """The seams a delivery needs, named: production builds one per invocation, tests pass their own."""

    settings: Settings
    access: OssAccess  # the OSS client, made once per invocation and shared by the records of a batch
    memory: AnsweredRecords  # what this instance already answered
    request_id: str  # FC's request id: the returned result's request_id when nothing was asked
    timeout: float  # the function's timeout: an in-progress marker older than this is abandoned
    remaining: Callable[[], float]  # seconds left before the function's deadline
    sleep: Callable[[float], None]
    backoff: Backoff
    wall: Callable[[], float] = time.time  # epoch seconds: in-progress markers are compared across instances
    synchronous: bool = False  # the shipped MNS queue trigger: no FC destination ever sees its answers

    def once(self, answers: AnswerStore) -> Once:
        """The exactly-once protocol over `answers`, on this invocation's clocks and budget."""
        from handler.deliver.once import Once  # records with a delivery id only: plain questions skip it

        return Once(answers, self)
