"""multimodal-generation through the SDK's request layer (BaseApi.call), without MultiModalConversation.call.

MultiModalConversation.call (dashscope 1.27.8) uploads any message part that names a local file (a
question `/proc/self/environ` would send the function's environment, API key included, to DashScope's
storage and the model); here every part goes out exactly as given, and the answers are wrapped as the
text API's GenerationResponse.

A large data: image is not given to the SDK, which would copy it twice (json.dumps, then .encode): the
SDK builds the body around a random placeholder, and the session sends the image's own text in its place,
read in slices (docs/performance.md#images).
"""

from __future__ import annotations

import bisect
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

SPLICED = 64 * 1024  # data: URIs longer than this are sent from their own text; base64 needs no JSON escaping


def call(*, model: str, messages: list[dict[str, Any]], api_key: str | None = None, **parameters: Any) -> Any:
    """POST {base}/services/aigc/multimodal-generation/generation with these messages, as they are."""
    from dashscope.api_entities.dashscope_response import GenerationResponse
    from dashscope.client.base_api import BaseApi

    spliced: dict[bytes, str] = {}
    messages = [{**m, "content": _placeholders(m["content"], spliced)} for m in messages]
    if spliced and parameters.get("session") is not None:
        parameters["session"] = _Splicing(parameters["session"], spliced)
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


def _placeholders(content: Any, spliced: dict[bytes, str]) -> Any:
    """The content with each large data: image replaced by a random placeholder, remembered in `spliced`."""
    if not isinstance(content, list):
        return content
    parts = []
    for part in content:
        image = part.get("image") if isinstance(part, dict) else None
        if isinstance(image, str) and len(image) > SPLICED and image.startswith("data:"):
            marker = f"qwen-fc-image-{uuid.uuid4().hex}"
            spliced[marker.encode()], part = image, {**part, "image": marker}
        parts.append(part)
    return parts


class _Splicing:
    """The SDK's session, posting a body whose placeholders are replaced by their images as it is read."""

    def __init__(self, session: Any, spliced: dict[bytes, str]) -> None:
        self._session, self._spliced = session, spliced

    def post(self, url: str, data: Any = None, **kwargs: Any) -> Any:
        return self._session.post(url, data=_Body(data, self._spliced), **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class _Body:
    """A body read in slices (urllib3 reads 16 KiB at a time); its length is known, so Content-Length is sent."""

    def __init__(self, body: bytes, spliced: dict[bytes, str]) -> None:
        self._pieces: list[Any] = [body]
        for marker, image in spliced.items():  # in the order json.dumps wrote them
            before, _, after = self._pieces.pop().partition(marker)
            self._pieces += [before, image, after]
        self._ends, self._at = list(itertools.accumulate(map(len, self._pieces), initial=0)), 0

    def __len__(self) -> int:
        return self._ends[-1] - self._at

    def read(self, size: int = -1) -> bytes:
        if not len(self):
            return b""
        index = bisect.bisect_right(self._ends, self._at) - 1
        start = self._at - self._ends[index]
        piece = self._pieces[index][start : start + (len(self) if size < 0 else size)]
        self._at += len(piece)
        return piece.encode("ascii") if isinstance(piece, str) else piece  # an image's base64 is ASCII


def _wrapped(responses: Any) -> Iterator[Any]:
    from dashscope.api_entities.dashscope_response import GenerationResponse

    try:
        for response in responses:
            yield GenerationResponse.from_api_response(response)
    finally:
        close = getattr(responses, "close", None)
        if close is not None:
            close()
