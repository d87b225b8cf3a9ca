"""Question + settings -> the exact call to make: mode, model, parameters, prompt or messages."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from handler.config import DEFAULT_THINKING_BUDGET, EventCaps, Mode, Settings
from handler.errors import InvalidInput
from handler.events.question import Message, Question
from handler.values import Value, field, replace


class Call(Value):
    """A fully decided request to Qwen; the invoker for `mode` turns it into SDK arguments."""

    mode: Mode
    model: str
    prompt: str | None = None
    messages: tuple[Message, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # The url route's signed document URLs, sent beside the last message's text as one doc_url part: secrets,
    # so never in a repr; `text` (what content logging shows) is the instruction alone.
    doc_urls: tuple[str, ...] = field(default=(), repr=False)

    @property
    def text(self) -> str:
        """The question text, for logging when content logging is on."""
        return self.prompt if self.prompt is not None else self.messages[-1].content


def plan(question: Question, settings: Settings, *, rng: random.Random | None = None) -> Call:
    """Decide the call, or raise InvalidInput when the event asked for something not allowed."""
    _check_caps(question, settings.event_caps)  # the operator's caps hold for image questions too
    params = {**settings.parameters, **question.parameters}
    if question.messages is not None and any(m.images for m in question.messages):
        model, messages = _for_images(question.model, question.messages, settings)
    else:
        model = question.model or settings.model
        if model not in settings.allowed_models:
            allowed = ", ".join(sorted(settings.allowed_models))
            raise InvalidInput(
                f"model '{model}' is not allowed here; QWEN_ALLOWED_MODELS allows: {allowed}", code="ModelNotAllowed"
            )
        if question.messages is None and settings.mode == "prompt":
            return Call(mode="prompt", model=model, prompt=question.text, parameters=_budgeted(params, model, settings))
        messages = question.messages if question.messages is not None else (Message("user", question.text or ""),)
    params = _seeded(_budgeted(params, model, settings), rng)
    return Call(mode="messages", model=model, messages=_system(messages, settings), parameters=params)


def document_call(
    question: Question, settings: Settings, model: str, file_ids: list[str], *, rng: random.Random | None = None
) -> Call:
    """Messages mode on the document model: the system prompt, the files' `fileid://` references (one system
    message, comma-joined) and the instruction (`text`: a sidecar or QWEN_DOCUMENT_PROMPT)."""
    _check_caps(question, settings.event_caps)
    params = _seeded(_budgeted({**settings.parameters, **question.parameters}, model, settings), rng)
    references = ",".join(f"fileid://{file_id}" for file_id in file_ids)
    messages = (
        Message("system", settings.system_prompt),
        Message("system", references),
        Message("user", question.text or settings.document_prompt),
    )
    return Call(mode="messages", model=model, messages=messages, parameters=params)


def document_url_call(
    question: Question, settings: Settings, model: str, urls: list[str], *, rng: random.Random | None = None
) -> Call:
    """Messages mode on the url route's model: the system prompt, then one user message of the instruction (a
    sidecar or QWEN_DOCUMENT_PROMPT) and a doc_url part of the signed URLs (handler/ask/invokers.py)."""
    _check_caps(question, settings.event_caps)
    params = _seeded(_budgeted({**settings.parameters, **question.parameters}, model, settings), rng)
    messages = (
        Message("system", settings.system_prompt),
        Message("user", question.text or settings.document_prompt),
    )
    return Call(mode="messages", model=model, messages=messages, parameters=params, doc_urls=tuple(urls))


def _system(messages: tuple[Message, ...], settings: Settings) -> tuple[Message, ...]:
    return messages if messages[0].role == "system" else (Message("system", settings.system_prompt), *messages)


def _seeded(params: dict[str, Any], rng: random.Random | None) -> dict[str, Any]:
    if "seed" not in params:  # a fresh seed per call, so repeated questions are not answered identically
        params["seed"] = (rng or random).randint(1, 10000)
    return params


def _budgeted(params: dict[str, Any], model: str, settings: Settings) -> dict[str, Any]:
    """A call that will think gets a thinking_budget when nothing set one: the operator's ceiling, else the
    default (max_tokens may not bound reasoning, docs/operations.md)."""
    info = settings.models.get(model)
    thinks = info.thinks(params.get("enable_thinking")) if info else params.get("enable_thinking") is True
    if thinks and "thinking_budget" not in params:
        params["thinking_budget"] = settings.event_caps.thinking_budget or DEFAULT_THINKING_BUDGET
    return params


def _for_images(
    model: str | None, messages: tuple[Message, ...], settings: Settings
) -> tuple[str, tuple[Message, ...]]:
    """A multimodal model (the request's when allowed and multimodal, else QWEN_VISION_MODEL), at most
    QWEN_MAX_IMAGE_PARTS images, each data: image within QWEN_OSS_MAX_IMAGE_BYTES, QWEN_IMAGE_PROMPT when
    the question holds no text of its own."""
    info = settings.models.get(model) if model else None
    if model is None or model not in settings.allowed_models or info is None or info.api != "multimodal":
        model = settings.vision_model
    count = sum(len(message.images) for message in messages)
    if count > settings.max_image_parts:
        # Checked here because the context guard counts text alone: images would add tokens unbounded.
        raise InvalidInput(
            f"the request has {count} image parts, over the limit of {settings.max_image_parts} "
            f"(QWEN_MAX_IMAGE_PARTS); send at most {settings.max_image_parts} images in one request",
            code="TooManyImages",
        )
    from handler.events import images  # only a question with images comes here: text never loads it

    for message in messages:
        for image in message.images:
            size = images.data_bytes(image)
            if size > settings.max_image_bytes:
                raise InvalidInput(
                    f"an image of the request is {size} bytes, over the {settings.max_image_bytes}-byte limit "
                    "(QWEN_OSS_MAX_IMAGE_BYTES); send a smaller image or an https:// URL to it",
                    code="ImageTooLarge",
                    status_code=413,
                )
    last = messages[-1]
    if not last.content.strip():
        # The instruction after the images; the event's blank text parts are left out.
        shown = tuple(part for part in last.parts if part[0] == "image")
        asked = (*shown, ("text", settings.image_prompt)) if shown else ()
        messages = (*messages[:-1], replace(last, content=settings.image_prompt, parts=asked))
    return model, messages


def _check_caps(question: Question, caps: EventCaps) -> None:
    """The event's parameters against the operator's caps: 400 ParameterNotAllowed naming the setting."""
    for name, value in question.parameters.items():
        if name == "enable_thinking" and value is False and caps.thinking_off:
            continue
        if name not in caps.allowed:
            allowed = ", ".join(sorted(caps.allowed)) or "none"
            raise InvalidInput(
                f"parameter '{name}' may not be set by an event here; QWEN_EVENT_PARAMETERS allows: {allowed}. "
                f"The operator can add {name} to QWEN_EVENT_PARAMETERS",
                code="ParameterNotAllowed",
            )
        ceiling = caps.ceiling(name)
        if ceiling is not None and isinstance(value, int) and value > ceiling:
            source = "QWEN_EVENT_LIMITS" if name != "n" or ceiling != 1 else "QWEN_EVENT_LIMITS (n is 1 unless raised)"
            raise InvalidInput(
                f"parameter '{name}' is {value}, above the operator's ceiling of {ceiling}; send at most {ceiling}, "
                f"or the operator raises '{name}' in {source}",
                code="ParameterNotAllowed",
            )
    if question.messages and question.messages[0].role == "system" and not caps.system_prompt:
        raise InvalidInput(
            "the conversation's system message would replace the operator's system prompt (QWEN_SYSTEM_PROMPT); "
            "leave it out, or the operator sets QWEN_EVENT_SYSTEM_PROMPT=true to let events bring their own",
            code="ParameterNotAllowed",
        )
