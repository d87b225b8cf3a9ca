"""Answer one delivery at most once across instances, through an AnswerStore.

The protocol for a record whose answer belongs under `key` (its marker under `pending_key(key)`):

    answer stored              -> that answer (same payload hash), or a 409 AnswerConflict (another one)
    create the marker          -> ours: ask, then create the answer (never overwriting one)
    marker exists, ours        -> our create's reply was lost (stored, then the connection dropped): ours
    marker exists, fresh       -> another instance is asking: wait for its answer within our deadline,
                                  else raise AnswerInProgress so the delivery comes again later
    marker exists, abandoned   -> older than the function timeout: take it over under a lock only one
                                  invocation can create (`<marker>.takeover-<generation>`), then ask

Both the marker and the answer are conditional creates (put-if-absent), so of two instances exactly one
asks, and nothing is overwritten: whichever finishes second gets the stored answer back instead of its own.
The one replacement, of an abandoned marker, is made by the single holder of that generation's lock. An OSS
question file passes one `marker` per version; its answer file is shared by the versions. Markers of
completed answers stay (a lifecycle rule removes them); a failed attempt releases its marker at once.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Protocol, TypeVar

from handler import logs
from handler.ask.account import is_account_level
from handler.ask.attempts import MIN_ATTEMPT_SECONDS, Backoff
from handler.deliver.answers import COMPLETED, IN_PROGRESS, AnswerRecord, AnswerStore, pending_key
from handler.deliver.memory import AnsweredRecords, Remembered
from handler.errors import QwenError, TransientUpstreamError
from handler.result import Result
from handler.values import Value, replace

T = TypeVar("T")

ASKED = "asked"  # this invocation asked DashScope
STORED = "stored"  # the answer was already in the store
WAITED = "waited"  # another instance was asking; its answer arrived while we waited
SUPERSEDED = "superseded"  # we asked, but a take-over stored its answer first: that one is the record
CONFLICT = "conflict"  # the key holds the answer to a different question

_ROUNDS = 6  # claim attempts before giving up (each lost race means another instance made progress)


class Answered(Value):
    """The answer to one delivery, how it was had, and whether it is in the store."""

    result: Result
    how: str
    problem: QwenError | None = None  # why it is not in the store; None when it is, or never should be (our 5xx)
    claimed: bool = True  # False: no marker could be made before asking, the caller may keep it some other way


class SupersededAnswer(QwenError):
    """The object was replaced while its older version was being answered: that answer is returned,
    not written, so it cannot overwrite the newer version's answer file."""

    status_code = 409
    code = "Superseded"

    def __init__(self, where: str, answered: str, current: str):
        super().__init__(
            f"{where} was replaced while this answer was being made (answered eTag {answered}, current eTag "
            f"{current}): the answer is returned but not written, so the newer upload's answer file stays"
        )
        self.answered, self.current = answered, current


def kept(result: Result, problem: QwenError | None, where: str) -> Result:
    """The result to return for an answer that `problem` kept out of the store at `where` (None: it is stored)."""
    if problem is None:
        return result
    if isinstance(problem, SupersededAnswer):
        logs.emit(
            "answer_superseded",
            level=logging.WARNING,
            answer_key=where,
            answered_etag=problem.answered,
            current_etag=problem.current,
        )
        if not result.ok or result.code:
            return replace(result, message=f"{result.message} ({problem.message})".strip())
        return replace(result, code=problem.code, message=problem.message)
    return not_stored(result, problem, where)


def not_stored(result: Result, problem: QwenError, where: str) -> Result:
    """The paid answer with `stored: false` and AnswerNotStored (a result with its own code keeps it), and why;
    logged as an ERROR."""
    logs.emit(
        "answer_not_stored",
        level=logging.ERROR,
        answer_key=where,
        result_code=result.code or None,
        code=problem.code,
        message=problem.message,
    )
    why = f"the answer could not be stored at {where}: {problem.message}"
    if not result.ok or result.code:
        # Its code is its own news (PartialAnswer, a refusal); that it was not kept is said beside it.
        return replace(result, stored=False, message=f"{result.message} (also, {why})" if result.message else why)
    return replace(result, code="AnswerNotStored", message=f"answered, but {why}", stored=False)


def problem_of(error: Exception, doing: str = "") -> QwenError:
    """Why an answer is not stored: the store's own error, or an unexpected one named by its type."""
    if isinstance(error, QwenError):
        return error
    return QwenError(f"{doing} ({type(error).__name__})" if doing else type(error).__name__, code="OssError")


class Clocks(Protocol):
    """What the protocol needs of its invocation (a DeliveryContext)."""

    request_id: str
    timeout: float  # the function's timeout: a marker older than this is an abandoned attempt
    remaining: Callable[[], float]  # seconds left before this invocation's deadline
    wall: Callable[[], float]  # epoch seconds, comparable across instances
    sleep: Callable[[float], None]
    backoff: Backoff


def with_retries(operation: Callable[[], T], ctx: Clocks, attempts: int = 3) -> T:
    """Run a store operation, again after a transient failure while the deadline allows; raise the last."""
    failures = 0
    while True:
        try:
            return operation()
        except TransientUpstreamError:
            failures += 1
            pause = ctx.backoff.wait(failures, None)
            if failures >= attempts or ctx.remaining() - pause < MIN_ATTEMPT_SECONDS:
                raise
            ctx.sleep(pause)


class Once:
    """The exactly-once protocol over one answer store, on one invocation's clocks and budget."""

    poll = 0.25  # seconds between looks at another instance's progress

    def __init__(self, store: AnswerStore, ctx: Clocks, *, owner: str | None = None) -> None:
        self.store = store
        self.ctx = ctx
        # Written in the marker and checked before releasing it: the request id (header-safe) and a random part.
        self.owner = owner or f"{re.sub(r'[^A-Za-z0-9._-]', '-', ctx.request_id)[:64]}.{uuid.uuid4().hex[:12]}"

    def answer(self, key: str, digest: str, ask: Callable[[], Result], *, marker: str | None = None) -> Answered:
        """The stored answer, another instance's, or ours (asked once) stored under `key`; `marker` (default
        `pending_key(key)`) names one marker per version where the key holds successive versions."""
        marker = marker or pending_key(key)
        try:
            claimed = self._acquire(key, marker, digest)
        except TransientUpstreamError:
            raise  # nothing asked yet: the delivery comes again when OSS is back
        except QwenError as unusable:
            # Denied, no such bucket, ...: the store cannot help, but the question still deserves its answer.
            return Answered(ask(), ASKED, problem=unusable, claimed=False)
        if isinstance(claimed, Answered):
            return claimed
        try:
            result = ask()
        except BaseException:
            self._release(marker, claimed)
            raise
        return self._complete(key, marker, claimed, result)

    def recall(self, memory: AnsweredRecords, memo: str, key: str, digest: str, remembered: Remembered) -> Result:
        """An answer this instance remembers under `memo`, stored again first if it was not."""
        if remembered.stored:
            return remembered.result
        problem = self.store_again(key, digest, remembered.result)
        memory.put(memo, remembered.result, stored=problem is None)
        return kept(remembered.result, problem, self.store.where(key))

    def store_again(self, key: str, digest: str, result: Result) -> QwenError | None:
        """Store an answer remembered by this instance but not stored before; the problem if it still fails."""
        try:
            self._retrying(lambda: self.store.put_if_absent(key, self._completed(digest, 1, result)))
        except Exception as error:  # noqa: BLE001  # whatever failed, the remembered answer is still returned
            return problem_of(error, f"cannot store {self.store.where(key)}")
        return None

    # -- claiming -------------------------------------------------------------------------------

    def _acquire(self, key: str, marker: str, digest: str) -> AnswerRecord | Answered:
        for _ in range(_ROUNDS):
            found = self._retrying(lambda: self.store.get(key))
            if _answer(found):
                return self._answered(key, found, digest, STORED)
            mine = AnswerRecord(IN_PROGRESS, digest, self.owner, self.ctx.wall() + self.ctx.timeout)
            if self._retrying(lambda mine=mine: self.store.put_if_absent(marker, mine)):
                self._drop_account_failure(key, found)
                return mine
            other = self._retrying(lambda: self.store.get(marker))
            if other is None:
                continue  # released between our two calls: claim again
            if other.owner == self.owner and not other.completed:
                # Our own create, whose reply was lost (stored, then the connection dropped): the
                # retry found it. Waiting for it would wait for ourselves.
                return other
            if other.deadline > self.ctx.wall():
                waited = self._wait(key, marker, other, digest)
                if waited is not None:
                    return waited
                continue
            taken = self._take_over(key, marker, other, mine, digest)
            if taken is not None:
                return taken
            self.ctx.sleep(self.poll)  # another invocation took it over; its fresh marker is next round's
        raise self._in_progress(key, "it changed hands too often")

    def _take_over(
        self, key: str, marker: str, stale: AnswerRecord, mine: AnswerRecord, digest: str
    ) -> AnswerRecord | Answered | None:
        generation = stale.generation + 1
        lock = f"{marker}.takeover-{generation}"
        ours = replace(mine, generation=generation)
        if not self._retrying(lambda: self.store.put_if_absent(lock, ours)):
            held = self._retrying(lambda: self.store.get(lock))
            if held is None or held.owner != self.owner:
                return None  # another invocation took it over (a lock of ours whose reply was lost is ours)
        logs.emit(
            "answer_taken_over",
            level=logging.WARNING,
            answer_key=self.store.where(key),
            abandoned_by=stale.owner,
            generation=generation,
        )
        self._retrying(lambda: self.store.update(marker, ours))
        # The abandoned attempt may have stored its answer after all, just before we locked.
        found = self._retrying(lambda: self.store.get(key))
        if _answer(found):
            return self._answered(key, found, digest, STORED)
        self._drop_account_failure(key, found)
        return ours

    def _wait(self, key: str, marker: str, other: AnswerRecord, digest: str) -> Answered | None:
        """Poll for another instance's answer; None when its marker went away or was abandoned."""
        while True:
            if self.ctx.remaining() - self.poll < MIN_ATTEMPT_SECONDS:
                raise self._in_progress(key, f"another instance ({other.owner}) is answering it")
            self.ctx.sleep(self.poll)
            found = self._retrying(lambda: self.store.get(key))
            if _answer(found):
                return self._answered(key, found, digest, WAITED)
            if self.ctx.wall() > other.deadline:
                return None
            current = self._retrying(lambda: self.store.get(marker))
            if current is None or current.owner != other.owner:
                return None

    # -- completing -----------------------------------------------------------------------------

    def _complete(self, key: str, marker: str, mine: AnswerRecord, result: Result) -> Answered:
        if result.status_code >= 500:
            # Our own failure (not DashScope's answer): not kept, so a redelivery tries again.
            self._release(marker, mine)
            return Answered(result, ASKED)
        record = self._completed(mine.payload_hash, mine.generation, result)
        try:
            created = self._retrying(lambda: self.store.put_if_absent(key, record))
        except Exception as error:  # noqa: BLE001  # whatever failed, the paid answer must still be returned
            self._release(marker, mine)
            return Answered(result, ASKED, problem=problem_of(error))
        if created:
            return Answered(result, ASKED)
        # Someone stored first: the invocation that took over our (slow) attempt, whose answer is the
        # record; or we did, and the reply to our create was lost.
        try:
            found = self._retrying(lambda: self.store.get(key))
        except Exception as error:  # noqa: BLE001  # whatever failed, the paid answer must still be returned
            # Something is stored under the key, ours or a take-over's: which, we could not read.
            return Answered(result, ASKED, problem=problem_of(error))
        if found is not None and found.owner == self.owner:
            return Answered(result, ASKED)
        if found is not None and found.completed and found.result is not None:
            return Answered(found.result, SUPERSEDED)
        return Answered(result, ASKED)

    def _completed(self, digest: str, generation: int, result: Result) -> AnswerRecord:
        return AnswerRecord(COMPLETED, digest, self.owner, self.ctx.wall(), generation, result)

    def _release(self, marker: str, mine: AnswerRecord) -> None:
        """Remove our marker, unless another invocation took it over meanwhile; best effort."""
        try:
            current = self.store.get(marker)
            if current is not None and current.owner == mine.owner and current.generation == mine.generation:
                self.store.delete(marker)
        except Exception as error:  # noqa: BLE001  # best effort: the result matters more than the marker
            problem = problem_of(error)  # the marker then blocks the redelivery until its deadline, no longer
            logs.emit("answer_marker_kept", level=logging.WARNING, code=problem.code, message=problem.message)

    # -- helpers --------------------------------------------------------------------------------

    def _drop_account_failure(self, key: str, found: AnswerRecord | None) -> None:
        """Remove an account-level refusal an earlier release stored under `key`: not the record's answer, so
        it is asked again (only the marker's holder gets here)."""
        if found is not None and found.completed and is_account_level(found.result):
            logs.emit("account_failure_dropped", level=logging.WARNING, answer_key=self.store.where(key))
            self._retrying(lambda: self.store.delete(key))

    def _answered(self, key: str, found: AnswerRecord, digest: str, how: str) -> Answered:
        # An empty hash (a refusal stored by an earlier release) answers no question either.
        if found.payload_hash != digest:
            where = self.store.where(key)
            logs.emit("answer_conflict", level=logging.WARNING, answer_key=where)
            conflict = QwenError(
                f"{where} already holds the answer to a different question under the same delivery id "
                "(a reused message id or trigger time); not asked again, and the stored answer is kept",
                code="AnswerConflict",
                status_code=409,
            )
            return Answered(Result.failure(conflict, self.ctx.request_id), CONFLICT)
        assert found.result is not None
        return Answered(found.result, how)

    def _in_progress(self, key: str, why: str) -> TransientUpstreamError:
        return TransientUpstreamError(
            f"AnswerInProgress: {self.store.where(key)} is not answered yet ({why}); deliver it again later",
            code="AnswerInProgress",
            request_id="",
            attempts=0,
        )

    def _retrying(self, operation: Callable[[], T]) -> T:
        return with_retries(operation, self.ctx)


def _answer(found: AnswerRecord | None) -> bool:
    """Whether `found` is a completed answer to serve: an account-level refusal is not one."""
    return found is not None and found.completed and not is_account_level(found.result)
