"""The context-length guard: refuse (or trim) an input that cannot fit, before paying for a call."""

from __future__ import annotations

from handler.ask import tokens
from handler.ask.models import ModelInfo
from handler.ask.plan import Call
from handler.errors import InvalidInput
from handler.events.question import Message
from handler.values import Value, replace


class InputTooLong(InvalidInput):
    """The input cannot fit the model: `reason` says which limit, in words for a log line."""

    code = "InputTooLong"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Fit(Value):
    """The call to make (maybe with old turns dropped) and how its size was judged."""

    call: Call
    counted_tokens: int | None = None  # exact input tokens when the byte bound could not decide
    trimmed_turns: int = 0


class Budget(Value):
    """How many input tokens a call may carry, and why: the token CLI prints the same arithmetic."""

    limit: int  # input tokens at most
    reserved: int  # tokens kept for the answer
    why: str  # where `reserved` comes from


def budget(info: ModelInfo, max_tokens: int) -> Budget | None:
    """The input budget: the model's max input, and its window less the answer's room; None when neither
    is known. Without max_tokens a default room keeps the answer from being left 0 tokens."""
    window, max_input = info.context_window, info.max_input
    if max_tokens:
        reserved, why = max_tokens, "max_tokens"
    elif window is not None and max_input is not None and max_input < window:
        reserved, why = window - max_input, "default reservation: the context window less the max input"
    elif window is not None and info.max_output is not None and info.max_output < window:
        reserved, why = info.max_output, "default reservation: the model's max output"
    else:
        reserved, why = 0, "no max_tokens, and no max input or max output below the window"
    limits = [limit for limit in (max_input, None if window is None else window - reserved) if limit is not None]
    if not limits:
        return None
    return Budget(min(limits), reserved, why)


def check(call: Call, info: ModelInfo | None, *, trim: bool = False) -> Fit:
    """Fit `call` into the model's max input and its context with room for the answer, or raise InvalidInput."""
    if info is None:
        return Fit(call)  # unknown model: no limit to hold it to
    max_tokens = int(call.parameters.get("max_tokens") or 0)
    if info.max_output is not None and max_tokens > info.max_output:
        raise InvalidInput(
            f"max_tokens {max_tokens} is more than {call.model} can answer: at most {info.max_output} output tokens",
            code="InvalidParameter",
        )
    if info.context_window is not None and max_tokens >= info.context_window:
        raise InvalidInput(
            f"max_tokens {max_tokens} leaves no room for input: {call.model} takes {info.context_window} tokens in all",
            code="InvalidParameter",
        )
    room = budget(info, max_tokens)
    if room is None:
        return Fit(call)  # neither the window nor the max input is known: nothing to hold the input to
    texts = [call.prompt or ""] if call.mode == "prompt" else [m.content for m in call.messages]
    overhead = tokens.template_overhead(len(texts))
    if tokens.byte_bound(texts) + overhead <= room.limit:
        return Fit(call)
    counts = [tokens.count(text) for text in texts]
    total = sum(counts) + overhead
    if total <= room.limit:
        return Fit(call, counted_tokens=total)
    if trim and call.mode == "messages":
        trimmed = _trim(call, counts, room.limit)
        if trimmed is not None:
            return trimmed
    limit = (
        f"{info.context_window}-token window" if info.context_window is not None else f"{room.limit}-token max input"
    )
    raise InputTooLong(
        f"the input is {total} tokens but {call.model} {describe(info, room)}; shorten the question"
        + ("" if call.mode == "prompt" else " or the conversation"),
        reason=f"longer than {call.model}'s {limit}",
    )


def describe(info: ModelInfo, room: Budget) -> str:
    """The arithmetic behind a budget, in words (the refusal and the token CLI say the same)."""
    parts = []
    if info.context_window is not None:
        parts.append(
            f"takes {info.context_window} tokens in all, {room.reserved} of them kept for the answer ({room.why})"
        )
    if info.max_input is not None:
        parts.append(f"takes at most {info.max_input} input tokens (its max input)")
    return " and ".join(parts) + f": at most {room.limit} input tokens"


def _trim(call: Call, counts: list[int], budget: int) -> Fit | None:
    """Drop the oldest turns (a user message and the replies after it), keeping the system message
    and the newest turn, until the conversation fits; None when even that is too long."""
    messages = list(call.messages)
    system = 1 if messages and messages[0].role == "system" else 0
    turns = _turns(messages[system:], counts[system:])
    dropped = 0
    while True:
        remaining = [m for group, _ in turns for m in group]
        total = sum(counts[:system]) + sum(t for _, t in turns) + tokens.template_overhead(system + len(remaining))
        if total <= budget or len(turns) <= 1:
            break
        turns.pop(0)
        dropped += 1
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
