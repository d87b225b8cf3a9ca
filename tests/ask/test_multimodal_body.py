"""A large data: image reaches multimodal-generation from its own text, not through the SDK's two copies."""

from __future__ import annotations

import base64
import json
import os

from handler.ask import multimodal

IMAGE = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + os.urandom(200_000)).decode()


class Session:
    """Records what the SDK's session is asked to post, read as urllib3 reads a file-like body."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers = {"kept": "as the real session's"}

    def post(self, url: str, data: object = None, **kwargs: object) -> None:
        length = len(data)  # type: ignore[arg-type]  # requests takes Content-Length from len()
        blocks = iter(lambda: data.read(16384), b"")  # type: ignore[union-attr]
        self.bodies.append(b"".join(blocks))
        assert len(self.bodies[-1]) == length


def test_the_body_sent_is_the_one_json_dumps_would_make():
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"image": IMAGE}, {"image": IMAGE[:100]}, {"text": "这是什么?"}]},
    ]
    wanted = {"model": "qwen3-vl-flash", "input": {"messages": messages}}
    session = Session()
    spliced: dict[bytes, str] = {}
    sent = [{**m, "content": multimodal._placeholders(m["content"], spliced)} for m in messages]
    assert len(spliced) == 1 and IMAGE not in json.dumps(sent)  # the SDK never sees the large image
    body = json.dumps({"model": "qwen3-vl-flash", "input": {"messages": sent}}, ensure_ascii=False).encode()
    splicing = multimodal._Splicing(session, spliced)
    splicing.post("https://dashscope.example/api", data=body)
    splicing.post("https://dashscope.example/api", data=body)  # the SDK's one resend: the whole body again
    assert [json.loads(b) for b in session.bodies] == [wanted, wanted]
    assert splicing.headers == {"kept": "as the real session's"}


def test_a_read_of_any_size_returns_the_next_bytes():
    body = multimodal._Body(b'{"image": "m1", "more": "m2", "end": 1}', {b"m1": IMAGE, b"m2": "data:x"})
    whole = f'{{"image": "{IMAGE}", "more": "data:x", "end": 1}}'.encode()
    assert len(body) == len(whole)
    read = b"".join(iter(lambda: body.read(7), b""))
    assert read == whole and len(body) == 0 and body.read() == b""
