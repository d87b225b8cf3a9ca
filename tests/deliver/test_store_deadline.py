"""Every OSS request fits in the invocation's time left: a hung OSS endpoint cannot hold the function past
its timeout (FC would kill it, and the paid answer would be neither returned nor stored). Real clock, real
oss2 against the stand-in or a listener that never answers; DashScope is the fake SDK seam."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from handler.app import Runtime, handle
from handler.deliver.memory import AnsweredRecords
from handler.deliver.store import REQUEST_TIMEOUT, Oss2Store
from handler.errors import TransientUpstreamError
from handler.fc_context import Credentials
from tests.conftest import API_KEY, echo
from tests.support.events import topic_message
from tests.support.instances import ANSWER_BUCKET

pytestmark = pytest.mark.slow  # real OSS requests bounded by real deadlines

CREDS = SimpleNamespace(access_key_id="STS.DL0001", access_key_secret="dl-secret-0001", security_token="dl-token-01")
TIMEOUT = 6  # the function's timeout, seconds


@pytest.fixture
def hung_endpoint() -> Iterator[str]:
    """An OSS endpoint on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def invoke(endpoint: str, context, transport) -> tuple[str | Exception, float]:
    """handle() with a real clock and sleep, the real oss2 client, a fresh memory; (result or raised, seconds)."""
    transport.side_effect = echo
    context.credentials = CREDS
    context.function.timeout = TIMEOUT
    runtime = Runtime(
        transport=transport,
        env={"DASHSCOPE_API_KEY": API_KEY, "QWEN_OSS_ENDPOINT": endpoint, "QWEN_ANSWER_BUCKET": ANSWER_BUCKET},
        memory=AnsweredRecords(),
    )
    began = time.monotonic()
    try:
        out: str | Exception = handle(topic_message("DL-1", "何时返回?").encode(), context, runtime)
    except Exception as error:  # noqa: BLE001  # what the handler raises is what is checked
        out = error
    return out, time.monotonic() - began


def test_a_hung_answer_write_still_returns_the_paid_answer_before_the_timeout(oss, context, transport):
    """DashScope answered, then OSS never answers the answer's write: the answer comes back in time, not stored."""
    oss.stall("PUT", prefix="answers/mns/")
    out, seconds = invoke(oss.url, context, transport)
    assert seconds < TIMEOUT, f"returned after {seconds:.1f} s with a {TIMEOUT} s function timeout"
    assert isinstance(out, str), out
    result = json.loads(out)
    assert result["code"] == "AnswerNotStored"
    assert "answer to 何时返回?" in json.dumps(result["output"], ensure_ascii=False)
    assert transport.call_count == 1


def test_a_hung_oss_endpoint_raises_before_the_timeout(hung_endpoint, context, transport):
    """OSS accepts and never answers: the handler raises (to be delivered again) before the function's timeout."""
    out, seconds = invoke(hung_endpoint, context, transport)
    assert seconds < TIMEOUT, f"raised after {seconds:.1f} s with a {TIMEOUT} s function timeout"
    assert isinstance(out, TransientUpstreamError) and out.code == "OssUnavailable"
    assert transport.call_count == 0  # nothing paid: the redelivery asks


class Recording:
    """oss2's Bucket, recording the request timeout each request was given."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def __call__(self, auth, endpoint, name, *, connect_timeout, session):
        self.timeouts.append(connect_timeout)
        return SimpleNamespace(
            get_object=lambda key, byte_range=None: SimpleNamespace(
                headers={}, read=lambda: b"{}", etag="E", resp=None
            ),
            put_object=lambda key, data, headers=None: None,
        )


def test_each_request_timeout_is_capped_by_the_time_left(mocker):
    """With 3.5 s left a request may wait 3.5 s; with 60 s left, the usual cap; with 0.1 s left none is started."""
    left = [3.5]
    inner = Recording()
    bounded = Oss2Store(Credentials("STS.DL0001", "dl-secret-0001"), "http://127.0.0.1:9", lambda: left[0])
    mocker.patch("oss2.Bucket", inner)
    bounded.read("b", "k")
    left[0] = 60.0
    bounded.write("b", "k", b"{}", metadata={})
    left[0] = 0.1
    with pytest.raises(TransientUpstreamError, match="no time left"):
        bounded.create("b", "k\nforged", b"{}", metadata={})
    assert inner.timeouts == [3.5, REQUEST_TIMEOUT]  # the third was never started
