"""Reading a streamed answer: chunks -> the Result a non-streamed call would give, or a Transient to retry.

Once output has begun nothing generated is thrown away or asked for again: when the deadline arrives,
or the stream goes silent, breaks or ends with an error frame, the text so far is a 200
`PartialAnswer`, never retried; a 4xx error frame (DataInspectionFailed on the output, ...) is that
error instead, without the text. Before any output a failure is transient, retried within the deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from handler.ask.invokers import Invoker
from handler.ask.transport import Transient, classify_exception, classify_response, is_read_timeout
from handler.result import Result
from handler.values import Value

if TYPE_CHECKING:
    from handler.ask.attempts import Deadline

PARTIAL = "PartialAnswer"
_UNFINISHED = (None, "", "null")  # DashScope's finish_reason while a stream is still going
_AT_DEADLINE = 0.05  # a read that timed out this close to the deadline was cut by it, not by silence


class Partial(Value):
    """Why an answer stopped early, for the log line and the message."""

    reason: str  # "deadline", "silence", "broken", "error" or "ended"
    detail: str


class _Choice:
    """One choice's pieces (messages mode has one per index when n > 1)."""

    def __init__(self, last: dict[str, Any]) -> None:
        self.last = last
        self.texts: list[str] = []
        self.reasoning: list[str] = []
        self.logprobs: list[Any] = []


class _Answer:
    """The answer so far: pieces are collected in lists and joined once at the end (constant work per chunk)."""

    def __init__(self, invoker: Invoker) -> None:
        self.mode = getattr(invoker, "reads", invoker.mode)
        self.finish = getattr(invoker, "finish", None)  # a multimodal prompt-mode answer is read as messages
        self.request_id = ""
        self.output: dict[str, Any] | None = None  # the last chunk's output, the shape to fill
        self.usage: Any = None
        self.choices: dict[int, _Choice] = {}
        self.texts: list[str] = []
        self.reasoning: list[str] = []
        self.began = False  # some text or reasoning arrived: from here on, nothing is asked twice
        self.answered = False  # a text field arrived at all (an empty answer is still an answer)
        self.finish_reason: Any = None

    def add(self, fields: Mapping[str, Any]) -> None:
        self.request_id = fields.get("request_id") or self.request_id
        usage = fields.get("usage")
        if _tokens(usage) > _tokens(self.usage):  # cumulative: the largest report is the latest
            self.usage = usage
        output = fields.get("output")
        if not isinstance(output, dict):
            return
        self.output = output
        if self.mode == "prompt":
            self.finish_reason = output.get("finish_reason")
            self._take(output, "text", self.texts, self.reasoning)
            return
        for choice in output.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            mine = self.choices.get(index)
            if mine is None:
                mine = self.choices[index] = _Choice(choice)
            mine.last = choice
            self.finish_reason = choice.get("finish_reason")
            message = choice.get("message")
            if isinstance(message, dict):
                self._take(message, "content", mine.texts, mine.reasoning)
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
                mine.logprobs.extend(logprobs["content"])

    def _take(self, source: Mapping[str, Any], key: str, texts: list[str], reasoning: list[str]) -> None:
        text = source.get(key)
        if isinstance(text, list):  # multimodal-generation's parts ([{"text": ...}], [] while it thinks)
            text = "".join(p["text"] for p in text if isinstance(p, dict) and isinstance(p.get("text"), str))
        if isinstance(text, str):
            self.answered = True
            if text:
                texts.append(text)
                self.began = True
        if thought := source.get("reasoning_content"):
            reasoning.append(thought)
            self.began = True

    @property
    def finished(self) -> bool:
        return self.finish_reason not in _UNFINISHED

    def assembled(self) -> dict[str, Any] | None:
        """The output in the caller's non-streamed shape, each text joined once; None before any output."""
        if self.output is None:
            return None
        if self.mode == "prompt":
            output = {**self.output, "text": "".join(self.texts)}
            if output.get("finish_reason") == "null":
                output["finish_reason"] = None  # DashScope's "still going", as JSON null (a PartialAnswer)
            if self.reasoning:
                output["reasoning_content"] = "".join(self.reasoning)
            return output
        choices = []
        for _, mine in sorted(self.choices.items(), key=lambda item: item[0] if isinstance(item[0], int) else 0):
            last_message = mine.last.get("message")
            message = {**(last_message if isinstance(last_message, dict) else {"role": "assistant"})}
            message["content"] = "".join(mine.texts)
            if mine.reasoning:
                message["reasoning_content"] = "".join(mine.reasoning)
            else:
                message.pop("reasoning_content", None)
            choice = {**mine.last, "message": message}
            if choice.get("finish_reason") == "null":
                choice["finish_reason"] = None  # DashScope's "still going", as JSON null (a PartialAnswer)
            if mine.logprobs:
                choice["logprobs"] = {**choice.get("logprobs", {}), "content": mine.logprobs}
            choices.append(choice)
        output = {**self.output, "choices": choices}
        return self.finish(output) if self.finish is not None else output


def _tokens(usage: Any) -> int:
    """The tokens a usage reports; 0 for none, as the SDK's zeros for a frame without usage are not a report."""
    if not isinstance(usage, Mapping):
        return 0
    counts = (usage.get(key) for key in ("input_tokens", "output_tokens"))
    return sum(count for count in counts if isinstance(count, int) and not isinstance(count, bool))


class Reading(Value):
    """What one attempt's stream came to."""

    reply: Result | Transient
    partial: Partial | None = None


def read(
    chunks: Iterable[Any], invoker: Invoker, deadline: Deadline, *, silence: float, function_timeout: float
) -> Reading:
    """Read a streamed answer to its end, the deadline, or a failure; see the module docstring."""
    answer = _Answer(invoker)
    iterator = iter(chunks)
    at, clock = deadline.at, deadline.clock
    try:
        for chunk in iterator:
            fields = chunk if isinstance(chunk, dict) else vars(chunk)
            if fields.get("status_code") != 200:
                verdict = classify_response(chunk, invoker)
                if not answer.began or isinstance(verdict, Result):  # a refusal mid-answer withdraws the text
                    return Reading(verdict)
                detail = f"DashScope ended the stream with {verdict.code}: {verdict.message}"
                return _partial(answer, Partial("error", detail), function_timeout, silence)
            answer.add(fields)
            if clock() >= at and not answer.finished:
                if not answer.began:
                    return Reading(Transient("RequestTimeout", "DashScope began no answer before the deadline"))
                return _partial(answer, Partial("deadline", ""), function_timeout, silence)
    except Exception as error:  # classified below; anything unknown is re-raised
        if not answer.began:
            if is_read_timeout(error):  # silence, not a failed connection
                waited = f"DashScope sent nothing for {silence:g} s before the answer"
                return Reading(Transient("RequestTimeout", waited))
            raise
        if classify_exception(error) is None:
            raise
        if deadline.remaining() <= _AT_DEADLINE:
            why = Partial("deadline", "")
        elif is_read_timeout(error):
            why = Partial("silence", "")
        else:
            why = Partial("broken", type(error).__name__)
        return _partial(answer, why, function_timeout, silence)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if answer.began and not answer.finished:
        return _partial(answer, Partial("ended", ""), function_timeout, silence)
    output = answer.assembled()
    # An empty text with a finish_reason is an answer; an end with neither is as transient as any answerless 200.
    answerless = not answer.began and not answer.finished
    if output is None or not answer.answered or answerless or invoker.answer_text(output) is None:
        ended = "DashScope's stream ended without an answer"
        return Reading(Transient("MalformedResponse", ended, str(answer.request_id)))
    return Reading(Result(200, str(answer.request_id), "", "", output, answer.usage))


def _partial(answer: _Answer, why: Partial, function_timeout: float, silence: float) -> Reading:
    tokens = answer.usage.get("output_tokens") if isinstance(answer.usage, dict) else None
    count = f"{tokens} output tokens" if isinstance(tokens, int) else "some output"
    because = {
        "deadline": f"the function's timeout ({function_timeout:g} s, less a safety margin) ran out while the "
        "answer was still streaming",
        "silence": f"DashScope sent nothing for {silence:g} s (QWEN_REQUEST_TIMEOUT) in the middle of the answer",
        "broken": f"the connection broke in the middle of the answer ({why.detail})",
        "error": why.detail,
        "ended": "the stream ended before the answer was finished",
    }[why.reason]
    message = (
        f"partial answer: {count} arrived before it stopped: {because}. This text was generated and billed, so it "
        "is returned rather than asked for again; for whole answers raise the function's timeout, lower "
        "max_tokens, or ask for a shorter answer"
    )
    result = Result(200, str(answer.request_id), PARTIAL, message, answer.assembled(), answer.usage)
    return Reading(result, why)
