"""One question asked: plan, guard, attempts on the model's API, and what the log line says of it."""

from __future__ import annotations

from handler.ask import account, guard
from handler.ask.apis import ModelApis, is_url_error
from handler.ask.attempts import Asked, Deadline, Seams, call_with_retries
from handler.ask.documents import DocumentAsker
from handler.ask.invokers import invoker_for
from handler.ask.models import FILE, MULTIMODAL, TEXT, ModelInfo
from handler.ask.plan import Call, plan
from handler.config import Settings
from handler.errors import QwenError
from handler.events.question import Question
from handler.outcome import Outcome
from handler.result import Result
from handler.values import replace


class Asker:
    """Asks the questions of one invocation, each within the function's deadline."""

    def __init__(
        self, settings: Settings, deadline: Deadline, seams: Seams, apis: ModelApis, *, function_timeout: float
    ) -> None:
        self.settings = settings
        self.deadline = deadline
        self.seams = seams
        self.apis = apis
        self.function_timeout = function_timeout
        self.documents = DocumentAsker(settings, deadline, seams, function_timeout=function_timeout)

    def ask(self, question: Question, outcome: Outcome, *, reserve: float = 0.0) -> Result:
        """Ask within the deadline, less `reserve`: the time the caller needs afterwards to store the answer
        (a stream still going then is cut there, a PartialAnswer that can still be kept)."""
        deadline = self.deadline if reserve <= 0 else Deadline(self.deadline.at - reserve, self.deadline.clock)
        if question.document_refs:
            # The delivery stage opens a request's documents; answering the text alone would ignore them.
            raise QwenError("a request's documents reached the asker unread", code="InternalError")
        if question.documents:
            # No local token count: the guard counts text, and the documents' tokens are DashScope's to count.
            call, asked = self.documents.ask(question, outcome, deadline)
            if self.settings.log_content:
                outcome.note(question=call.text)
            outcome.attempts = asked.attempts
            return self._finish(call, asked, TEXT, outcome)
        call = plan(question, self.settings)
        outcome.note(model=call.model, mode=call.mode)
        info = self.settings.models.get(call.model)
        if info is None:
            outcome.note(model_known=False)  # no context guard and no cost for a model not in the table
        api, settled = self.apis.api(call.model, info)
        image_parts = sum(len(m.images) for m in call.messages)
        if image_parts:
            # Images go only to multimodal-generation; the guard below counts the text parts alone.
            api, settled = MULTIMODAL, True
            outcome.note(image_parts=image_parts)
        outcome.note(api=api)
        if self.settings.log_content:
            outcome.note(question=call.text)
        try:
            fit = guard.check(call, info, trim=self.settings.trim_history)
        except guard.InputTooLong as too_long:
            if question.text_document is None or not self._reads_files():
                raise
            # An OSS text file too long for the text model is read by the document model as a file instead.
            outcome.note(document_reason=too_long.reason)
            as_document = replace(
                question, text=self.settings.document_prompt, documents=(question.text_document,), text_document=None
            )
            return self.ask(as_document, outcome, reserve=reserve)
        if fit.counted_tokens is not None:
            outcome.note(counted_input_tokens=fit.counted_tokens)
        if fit.trimmed_turns:
            outcome.note(trimmed_turns=fit.trimmed_turns)
        call = fit.call
        asked = self._attempts(call, api, deadline)
        outcome.attempts = asked.attempts
        if not settled and is_url_error(asked.result):
            # Not served on text-generation: nothing was generated, so asking the other endpoint once
            # costs nothing twice. Only a 200 there teaches the instance the model's API.
            api = MULTIMODAL
            outcome.note(api=api)
            asked = self._attempts(call, api, deadline)
            outcome.attempts += asked.attempts
            if asked.result.ok:
                self.apis.learn(call.model, api)
        return self._finish(call, asked, api, outcome)

    def _reads_files(self) -> bool:
        """Whether QWEN_DOCUMENT_MODEL may answer a long text file: allowed, and reading files by id."""
        model = self.settings.document_model
        info = self.settings.models.get(model)
        return model in self.settings.allowed_models and info is not None and info.document == FILE

    def _finish(self, call: Call, asked: Asked, api: str, outcome: Outcome) -> Result:
        """The account check, the partial answer's reason, usage and cost, and the answer when logged."""
        info = self.settings.models.get(call.model)
        result = account.with_key_hint(asked.result, self.settings)
        # A revoked key or an overdue balance says nothing about the question: raised, never kept.
        account.raise_if_account_level(result, model=call.model)
        if asked.partial is not None:
            outcome.note(partial_reason=asked.partial.reason)
        _note_usage(result, info, outcome)
        if self.settings.log_content and result.ok:
            outcome.note(answer=invoker_for(call.mode, api).answer_text(result.output))
        return result

    def _attempts(self, call: Call, api: str, deadline: Deadline) -> Asked:
        invoker = invoker_for(call.mode, api)
        timeout = self.function_timeout
        return call_with_retries(call, invoker, self.settings, deadline, self.seams, function_timeout=timeout)


def _note_usage(result: Result, info: ModelInfo | None, outcome: Outcome) -> None:
    """Reasoning tokens and the estimated cost; usage DashScope did not report is said to be unknown, never zero."""
    usage = result.usage if isinstance(result.usage, dict) else {}
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
        outcome.note(reasoning_tokens=details["reasoning_tokens"])
    tokens = usage.get("input_tokens"), usage.get("output_tokens")
    if all(isinstance(count, int) for count in tokens):
        cost = info.cost(*tokens) if info is not None else None
        if cost is not None:
            outcome.note(cost_cny=cost)
    elif result.output is not None:  # an answer was generated and billed, but its tokens are not known
        missing = "no usage" if not usage else "no input or output token count"
        why = f"DashScope reported {missing} for this answer: its tokens and cost are unknown, not zero"
        outcome.note(usage_known=False, cost_cny=None, cost_note=why)
