"""The two ways of asking Qwen, as the SDK takes them and as it answers them.

prompt:   Generation.call(model, prompt=...)                                -> output.text
messages: Generation.call(model, messages=[...], result_format="message")  -> output.choices[0].message

The url route's documents (`Call.doc_urls`) go into the last user message as a list of parts, the
instruction's and one `doc_url` part, on text-generation.

On a multimodal model (handler/ask/apis.py) both go to multimodal-generation as one conversation of
part lists ([{"image": ...}, {"text": ...}]; prompt mode as one user message), answered in the text
API's shape. Both stream (handler/ask/stream.py), so stream-only models are answered too; reasoning is
`message.reasoning_content` in messages mode, `output.reasoning_content` in prompt mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from handler.ask.plan import Call
from handler.events.question import Message
from handler.values import replace


class Invoker(Protocol):
    mode: str
    api: str  # "text" or "multimodal"

    def arguments(self, call: Call) -> dict[str, Any]: ...  # Generation.call's, less the api key and timeout

    def answer_text(self, output: Mapping[str, Any]) -> str | None: ...  # None: a 200 without an answer


# Last in the arguments, so no parameter can turn them off (the allowlist refuses both anyway).
STREAMED: Mapping[str, Any] = {"stream": True, "incremental_output": True}


class PromptInvoker:
    mode = "prompt"
    api = "text"

    def arguments(self, call: Call) -> dict[str, Any]:
        return {"model": call.model, "prompt": call.prompt, **call.parameters, **STREAMED}

    def answer_text(self, output: Mapping[str, Any]) -> str | None:
        text = output.get("text")
        return text if isinstance(text, str) else None


class MessagesInvoker:
    mode = "messages"
    api = "text"

    def arguments(self, call: Call) -> dict[str, Any]:
        messages = self.messages(call.messages)
        if call.doc_urls:
            messages[-1] = {**messages[-1], "content": _with_documents(call.messages[-1].content, call.doc_urls)}
        return {"model": call.model, "messages": messages, "result_format": "message", **call.parameters, **STREAMED}

    def messages(self, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
        return [m.to_dict() for m in messages]

    def answer_text(self, output: Mapping[str, Any]) -> str | None:
        try:
            content = output["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return None
        return content if isinstance(content, str) else None


INVOKERS: Mapping[str, Invoker] = {"prompt": PromptInvoker(), "messages": MessagesInvoker()}


def _with_documents(text: str, urls: tuple[str, ...]) -> list[dict[str, Any]]:
    """Qwen-Doc-Turbo's user content: the instruction, then the documents it fetches itself (docs/documents.md)."""
    documents = {"type": "doc_url", "doc_url": list(urls), "file_parsing_strategy": "auto"}
    return [{"type": "text", "text": text}, documents]


class MultiModalMessagesInvoker(MessagesInvoker):
    """Messages mode on multimodal-generation; the chunks' content lists are joined by the stream reader."""

    api = "multimodal"

    def messages(self, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
        """Each content a list of parts in the event's order, sent as they are (no local file is ever uploaded)."""
        return [{"role": m.role, "content": [{kind: value} for kind, value in m.ordered()]} for m in messages]


class MultiModalPromptInvoker(MultiModalMessagesInvoker):
    """Prompt mode on multimodal-generation: the prompt asked as one user message (that endpoint has no
    prompt input), the streamed message read as messages mode and returned as prompt mode's output."""

    mode = "prompt"
    reads = "messages"  # the shape of the chunks, for handler/ask/stream.py

    def arguments(self, call: Call) -> dict[str, Any]:
        asked = replace(call, messages=(Message("user", call.prompt or ""),))
        return super().arguments(asked)

    def finish(self, output: dict[str, Any]) -> dict[str, Any]:
        """The assembled messages-mode output -> prompt mode's {text, finish_reason, reasoning_content}."""
        choices = output.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        shaped = {**output, "choices": None} if "choices" in output else dict(output)  # as the SDK's text output
        shaped["text"] = message.get("content") if isinstance(message.get("content"), str) else ""
        shaped["finish_reason"] = choice.get("finish_reason")
        if message.get("reasoning_content"):
            shaped["reasoning_content"] = message["reasoning_content"]
        return shaped

    answer_text = PromptInvoker.answer_text


MULTIMODAL_INVOKERS: Mapping[str, Invoker] = {
    "prompt": MultiModalPromptInvoker(),
    "messages": MultiModalMessagesInvoker(),
}


def invoker_for(mode: str, api: str) -> Invoker:
    return (MULTIMODAL_INVOKERS if api == "multimodal" else INVOKERS)[mode]
