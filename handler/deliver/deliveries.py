"""Timer, MNS and plain records. One with a delivery id (an MNS message id, a timer's name and time), in order:
  remembered by this instance      -> that answer (written to the store again if it was not stored)
  no answer store                  -> asked; the instance's first such answer WARNs that it is kept nowhere
  otherwise, exactly once across instances (once.py) under its key
A record without an id is simply asked; a malformed record's refusal is stored too; an answer that cannot be
stored is returned with AnswerNotStored, never dropped.
"""

from __future__ import annotations

import logging
import threading

from handler import logs
from handler.config import Settings
from handler.deliver import versioning
from handler.deliver.answers import (
    COMPLETED,
    AnswerRecord,
    AnswerStore,
    OssAnswerStore,
    answer_key,
    payload_hash,
    refusal_hash,
)
from handler.deliver.context import Ask, DeliveryContext
from handler.deliver.store import store_reserve
from handler.errors import InvalidInput, QwenError
from handler.events import documents
from handler.events.question import Question
from handler.outcome import Outcome
from handler.result import Result

# After the answer: create it, and on failure read and delete the marker; the answer must leave time for them.
STORE_REQUESTS = 3

_warned_lock = threading.Lock()
_warned = False


def _warn_kept_nowhere(settings: Settings, *, synchronous: bool) -> None:
    """Once per instance: an answer that neither the store, a destination nor the log keeps (FC's destinations
    apply to asynchronous invocations alone; the shipped MNS queue trigger invokes synchronously)."""
    global _warned
    if (settings.fc_destination and not synchronous) or settings.log_content:
        return
    with _warned_lock:
        if _warned:
            return
        _warned = True
    logs.emit(
        "answers_kept_nowhere",
        level=logging.WARNING,
        message=(
            "this MNS queue answer is kept nowhere: EventBridge invokes the function synchronously and keeps no "
            "return value, and FC destinations apply only to asynchronous invocations. Set QWEN_ANSWER_BUCKET to "
            "keep every answer in OSS (see docs/answers-and-exactly-once.md)"
            if synchronous
            else "this timer or MNS answer is kept nowhere: FC discards an async invocation's return value. Set "
            "QWEN_ANSWER_BUCKET to keep every answer in OSS, or configure asyncInvokeConfig.destinationConfig"
            ".onSuccess in s.yaml and set QWEN_FC_DESTINATION=true (see docs/answers-and-exactly-once.md)"
        ),
    )


class Deliveries:
    """One invocation's timer and MNS records; the answer store is shared by the records of a batch."""

    def __init__(self, ctx: DeliveryContext) -> None:
        self.ctx = ctx

    def answer(self, question: Question, outcome: Outcome, ask: Ask) -> Result:
        """The answer to one timer or MNS record: remembered, stored, another instance's, or asked once."""
        if question.document_refs:
            try:
                # Before the payload hash: each document's eTag is part of the question asked.
                question = self._resolved(question)
            except InvalidInput as refusal:
                result = Result.failure(refusal, self.ctx.request_id)
                self.keep_refusal(question.source, result, outcome)
                return result
        key = answer_key(question.source)
        if key is None:
            return ask(question, outcome)  # no delivery id: nothing to recognise a redelivery by
        # Records with a delivery id only: a plain question never imports the exactly-once machinery.
        from handler.deliver.once import ASKED, CONFLICT, kept

        digest = payload_hash(question)
        # Remembered per delivery id AND question: another question reusing the id is not served the
        # first one's answer (with a store it gets the 409 AnswerConflict a fresh instance gives).
        memo = f"{question.source}#{digest}"
        answers, unusable = self._answer_store()
        if answers is not None:
            outcome.note(answer_key=answers.where(key))
            # Before anything is asked: on a versioned bucket the conditional creates hold nothing.
            versioning.check(self.ctx.access.store(), self.ctx.settings.answer_bucket or "", "QWEN_ANSWER_BUCKET")
        remembered = self.ctx.memory.entry(memo)
        if remembered is not None:
            outcome.note(remembered=True)
            if answers is None:
                return remembered.result
            return self.ctx.once(answers).recall(self.ctx.memory, memo, key, digest, remembered)
        if answers is None:
            if unusable is None:
                _warn_kept_nowhere(self.ctx.settings, synchronous=self.ctx.synchronous)
            result = ask(question, outcome)
            self.ctx.memory.put(memo, result, stored=unusable is None)
            return kept(result, unusable, f"oss://{self.ctx.settings.answer_bucket}")
        reserve = store_reserve(STORE_REQUESTS)
        answered = self.ctx.once(answers).answer(key, digest, lambda: ask(question, outcome, reserve=reserve))
        if answered.how != ASKED:
            outcome.note(answered_by=answered.how)  # stored, waited, superseded or conflict: not asked here
        if answered.how == CONFLICT:
            return answered.result  # not remembered: the stored answer stays the record
        if answered.result.status_code < 500:  # our own failure is not kept anywhere: a redelivery tries again
            self.ctx.memory.put(memo, answered.result, stored=answered.problem is None)
        return kept(answered.result, answered.problem, answers.where(key))

    def _resolved(self, question: Question) -> Question:
        """The request's documents opened (oss_documents.py): refused before any request when a bucket is not
        allowed, else read by head and tail, within the memory budget of OSS files in flight."""
        from handler.deliver import budget, oss_documents  # requests naming documents only

        refusal = oss_documents.refused(question, self.ctx.settings)
        if refusal is not None:
            raise refusal
        read = len(question.document_refs) * (documents.HEAD_BYTES + documents.TAIL_BYTES)
        with budget.INSTANCE.held(budget.COST_PER_BYTE * read):
            return oss_documents.resolve(question, self.ctx.access.store(), self.ctx.settings)

    def keep_refusal(self, source: str | None, refusal: Result, outcome: Outcome) -> None:
        """A malformed timer or MNS record's 4xx goes to the store too, so readers of it learn why; best effort."""
        key = answer_key(source)
        answers = self._answer_store()[0] if key else None
        if answers is None or key is None:
            return
        where = answers.where(key)
        outcome.note(answer_key=where)
        # Its own payload hash (no question's hash is ever one): a question reusing the id gets 409.
        record = AnswerRecord(COMPLETED, refusal_hash(refusal), "", self.ctx.wall(), 1, refusal)
        try:
            answers.put_if_absent(key, record)  # nothing was paid: a failure is only logged
        except QwenError as error:
            logs.emit("answer_not_stored", level=logging.WARNING, answer_key=where, code=error.code)

    def _answer_store(self) -> tuple[AnswerStore | None, QwenError | None]:
        """The answer store (QWEN_ANSWER_BUCKET), or None; with the reason when one is set but unreachable."""
        bucket = self.ctx.settings.answer_bucket
        if bucket is None:
            return None, None
        try:
            return OssAnswerStore(self.ctx.access.store(), bucket, self.ctx.settings.oss_output_prefix), None
        except QwenError as error:
            return None, error
