"""multimodal-generation through the SDK's request layer, without MultiModalConversation.call.

MultiModalConversation.call (dashscope 1.27.8) first runs `_preprocess_messages` on a copy of the
messages: for every dict part of a user message, `dashscope/utils/oss_utils.py` check_and_upload
looks at `image`, `video`, `audio` and `text`, and a value that is a `file://` URL, an `oss://` URL,
or anything not starting with `http` that names an existing local file (after expanduser) is
uploaded to DashScope's temporary storage and replaced by its URL. A question `/proc/self/environ`
would send the function's environment (API key, STS token) there and into the model's context.

So the request is made here with the call MultiModalConversation.call itself ends in
(BaseApi.call with task multimodal-generation), and every part goes out exactly as given: nothing
is ever read from this machine's disk, and no upload request is made. The answers are wrapped as
the text API's (GenerationResponse), so both APIs give results of the same shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

TASK_GROUP, TASK, FUNCTION = "aigc", "multimodal-generation", "generation"


def call(*, model: str, messages: list[dict[str, Any]], api_key: str | None = None, **parameters: Any) -> Any:
    """POST {base}/services/aigc/multimodal-generation/generation with these messages, as they are."""
    from dashscope.api_entities.dashscope_response import GenerationResponse
    from dashscope.client.base_api import BaseApi

    responses = BaseApi.call(
        model=model,
        input={"messages": messages},
        task_group=TASK_GROUP,
        task=TASK,
        function=FUNCTION,
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
