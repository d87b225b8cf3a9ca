"""A large data: image through the real SDK and the stand-in: DashScope receives it exactly as asked,
though the SDK built its body around a placeholder (handler/ask/multimodal.py)."""

from __future__ import annotations

import base64
import json
import os

from handler.app import Runtime, handle
from handler.local.standin import MULTIMODAL_PATH
from tests.conftest import API_KEY

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00" + os.urandom(300_000)


def test_a_large_data_image_arrives_whole(standin, context):
    image = "data:image/png;base64," + base64.b64encode(PNG).decode()
    event = {"messages": [{"role": "user", "content": [{"image": image}, {"text": "这是什么?"}]}]}
    runtime = Runtime(env={"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url})
    result = json.loads(handle(json.dumps(event).encode(), context, runtime))
    assert result["status_code"] == 200, result
    (request,) = standin.requests
    assert request.path == MULTIMODAL_PATH
    assert request.body["input"]["messages"][-1]["content"] == [{"image": image}, {"text": "这是什么?"}]
    assert int(request.headers["Content-Length"]) > len(image)
