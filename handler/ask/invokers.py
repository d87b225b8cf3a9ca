"""The two ways of asking Qwen, as the SDK takes them and as it answers them.

prompt:   Generation.call(model, prompt=...)                                -> output.text
messages: Generation.call(model, messages=[...], result_format="message")  -> output.choices[0].message

Both stream with incremental output (handler/ask/stream.py assembles the chunks): a long answer is
bounded by silence, not by its length, and stream-only models (QwQ, open Qwen3 while thinking)
are answered. A model's reasoning, when it reasons, is `message.reasoning_content` in messages
mode and `output.reasoning_content` beside `output.text` in prompt mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from handler.ask.plan import Call


class Invoker(Protocol):
    mode: str

    def arguments(self, call: Call) -> dict[str, Any]:
        """Keyword arguments for Generation.call, without the api key and timeout."""
        ...

    def answer(self, output: Mapping[str, Any]) -> str | None:
        """The answer text in a 200 response's output, or None when the output has none."""
        ...


# Last in the arguments, so no parameter can turn them off (the allowlist refuses both anyway).
STREAMED: Mapping[str, Any] = {"stream": True, "incremental_output": True}


class PromptInvoker:
    mode = "prompt"

    def arguments(self, call: Call) -> dict[str, Any]:
        return {"model": call.model, "prompt": call.prompt, **call.parameters, **STREAMED}

    def answer(self, output: Mapping[str, Any]) -> str | None:
        text = output.get("text")
        return text if isinstance(text, str) else None


class MessagesInvoker:
    mode = "messages"

    def arguments(self, call: Call) -> dict[str, Any]:
        return {
            "model": call.model,
            "messages": [m.to_dict() for m in call.messages],
            "result_format": "message",
            **call.parameters,
            **STREAMED,
        }

    def answer(self, output: Mapping[str, Any]) -> str | None:
        try:
            content = output["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return None
        return content if isinstance(content, str) else None


INVOKERS: Mapping[str, Invoker] = {"prompt": PromptInvoker(), "messages": MessagesInvoker()}
