"""The context-length guard: refuse (or trim) an input that cannot fit, before paying for a call."""

from __future__ import annotations

from dataclasses import dataclass, replace

from handler.ask import tokens
from handler.ask.models import ModelInfo
from handler.ask.plan import Call
from handler.errors import InvalidInput
from handler.events.question import Message


@dataclass(frozen=True)
class Fit:
    """The call to make (maybe with old turns dropped) and how its size was judged."""

    call: Call
    counted_tokens: int | None = None  # exact input tokens when the byte bound could not decide
    trimmed_turns: int = 0


def check(call: Call, info: ModelInfo | None, *, trim: bool = False) -> Fit:
    """Fit `call` into the model's context with room for max_tokens, or raise InvalidInput."""
    if info is None:
        return Fit(call)  # unknown model: no limit to hold it to
    max_tokens = int(call.parameters.get("max_tokens") or 0)
    if info.max_output is not None and max_tokens > info.max_output:
        raise InvalidInput(
            f"max_tokens {max_tokens} is more than {call.model} can answer: at most {info.max_output} output tokens",
            code="InvalidParameter",
        )
    if info.context_window is None:
        return Fit(call)  # the window is not known: nothing to hold the input to
    if max_tokens >= info.context_window:
        raise InvalidInput(
            f"max_tokens {max_tokens} leaves no room for input: {call.model} takes {info.context_window} tokens in all",
            code="InvalidParameter",
        )
    budget = info.context_window - max_tokens
    texts = _texts(call)
    overhead = tokens.template_overhead(len(texts))
    if tokens.byte_bound(texts) + overhead <= budget:
        return Fit(call)

    counts = [tokens.count(text) for text in texts]
    total = sum(counts) + overhead
    if total <= budget:
        return Fit(call, counted_tokens=total)
    if trim and call.mode == "messages":
        trimmed = _trim(call, counts, budget)
        if trimmed is not None:
            return trimmed
    reserved = f", {max_tokens} of them kept for the answer (max_tokens)" if max_tokens else ""
    raise InvalidInput(
        f"the input is {total} tokens but {call.model} takes {info.context_window} tokens in all{reserved}: "
        f"at most {budget} input tokens; shorten the question"
        + ("" if call.mode == "prompt" else " or the conversation"),
        code="InputTooLong",
    )


def _texts(call: Call) -> list[str]:
    if call.mode == "prompt":
        return [call.prompt or ""]
    return [m.content for m in call.messages]


def _trim(call: Call, counts: list[int], budget: int) -> Fit | None:
    """Drop the oldest turns (a user message and the replies after it), keeping the system message
    and the newest turn, until the conversation fits; None when even that is too long."""
    messages = list(call.messages)
    system = 1 if messages and messages[0].role == "system" else 0
    turns = _turns(messages[system:], counts[system:])
    kept_tokens = sum(counts[:system])
    dropped = 0
    while len(turns) > 1:
        total = (
            kept_tokens + sum(t for _, t in turns) + tokens.template_overhead(system + sum(len(m) for m, _ in turns))
        )
        if total <= budget:
            break
        turns.pop(0)
        dropped += 1
    remaining = [m for group, _ in turns for m in group]
    total = kept_tokens + sum(t for _, t in turns) + tokens.template_overhead(system + len(remaining))
    if total > budget or dropped == 0:
        return None
    trimmed = replace(call, messages=(*messages[:system], *remaining))
    return Fit(trimmed, counted_tokens=total, trimmed_turns=dropped)


def _turns(messages: list[Message], counts: list[int]) -> list[tuple[list[Message], int]]:
    turns: list[tuple[list[Message], int]] = []
    for message, n in zip(messages, counts, strict=True):
        if message.role == "user" or not turns:
            turns.append(([message], n))
        else:
            group, total = turns[-1]
            turns[-1] = ([*group, message], total + n)
    return turns
