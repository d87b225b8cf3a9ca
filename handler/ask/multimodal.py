"""multimodal-generation through the SDK's request layer (BaseApi.call), without MultiModalConversation.call.

MultiModalConversation.call (dashscope 1.27.8) uploads any message part that names a local file (a
question `/proc/self/environ` would send the function's environment, API key included, to DashScope's
storage and the model); here every part goes out exactly as given, and the answers are wrapped as the
text API's GenerationResponse.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def call(*, model: str, messages: list[dict[str, Any]], api_key: str | None = None, **parameters: Any) -> Any:
    """POST {base}/services/aigc/multimodal-generation/generation with these messages, as they are."""
    from dashscope.api_entities.dashscope_response import GenerationResponse
    from dashscope.client.base_api import BaseApi

    responses = BaseApi.call(
        model=model,
        input={"messages": messages},
        task_group="aigc",
        task="multimodal-generation",
        function="generation",
        api_key=api_key,
        **parameters,
    )
    if not parameters.get("stream"):
        return GenerationResponse.from_api_response(responses)
    return _wrapped(responses)


def _wrapped(responses: Any) -> Iterator[Any]:
    from dashscope.api_entities.dashscope_response import GenerationResponse

    try:
        for response in responses:
            yield GenerationResponse.from_api_response(response)
    finally:
        close = getattr(responses, "close", None)
        if close is not None:
            close()
