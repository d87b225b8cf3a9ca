"""Shared fixtures: an FC-like context, a fake SDK seam, a fake clock, log capture, the stand-in."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.local.standin import DashScopeStandIn
from handler.local.standin_oss import OssStandIn
from tests.support import ROOT

API_KEY = "sk-test-4f1c9a2be7d0"


@dataclass
class FakeContext:
    request_id: str = "fc-req-1"
    function: Any = field(default_factory=lambda: SimpleNamespace(timeout=60, name="qwen", handler="index.handler"))
    region: str = "cn-hangzhou"
    account_id: str = "1234"
    credentials: Any = None


class FakeClock:
    """Monotonic time that moves only when the code sleeps or a fake call says it took time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeResponse(SimpleNamespace):
    """A GenerationResponse that is also a stream of one chunk: the whole answer in one piece, as
    a streamed call of a short answer may give it (the fakes of the SDK seam return these)."""

    def __iter__(self) -> Iterator[FakeResponse]:
        yield self


def response(
    status: int = 200,
    *,
    text: str | None = "答案",
    mode: str = "messages",
    code: str = "",
    message: str = "",
    request_id: str = "ds-req-1",
    headers: dict[str, str] | None = None,
    usage: dict[str, int] | None = None,
) -> FakeResponse:
    """A response object shaped like the SDK's GenerationResponse, iterable as a one-chunk stream."""
    output = None
    if status == 200:
        output = (
            {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}
            if mode == "messages"
            else {"text": text, "finish_reason": "stop"}
        )
    return FakeResponse(
        status_code=status,
        request_id=request_id,
        code=code,
        message=message,
        output=output,
        usage=usage if usage is not None else ({"input_tokens": 15, "output_tokens": 212, "total_tokens": 227}),
        headers=headers or {},
    )


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def env() -> dict[str, str]:
    """The function's environment: only the API key, so every other setting is at its default."""
    return {"DASHSCOPE_API_KEY": API_KEY}


@pytest.fixture
def transport(mocker: Any) -> Any:
    """The SDK seam (a Transport: a Request's SDK arguments as keywords, plus api= and bounds=), answering
    200 unless a test says otherwise."""
    return mocker.Mock(name="Generation.call", return_value=response())


@pytest.fixture
def store(mocker: Any) -> Any:
    """The OSS seam: a fake bucket whose reads and writes the test arranges and inspects."""
    fake = mocker.Mock(name="ObjectStore")
    fake.etag.return_value = None  # the source object's eTag unknown: never superseded unless a test says so
    fake.versioning.return_value = None  # a bucket never versioned
    return fake


@pytest.fixture
def store_factory(mocker: Any, store: Any) -> Any:
    return mocker.Mock(name="Oss2Store", return_value=store)


@pytest.fixture
def runtime(transport: Any, env: dict[str, str], clock: FakeClock, store_factory: Any) -> Runtime:
    return Runtime(
        transport=transport,
        store=store_factory,
        env=env,
        sleep=clock.sleep,
        clock=clock,
        backoff=Backoff(),
        memory=AnsweredRecords(),
    )


@dataclass
class LogCapture:
    caplog: pytest.LogCaptureFixture

    @property
    def records(self) -> list[logging.LogRecord]:
        return self.caplog.records

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Every line the function logged, parsed back into its event dict."""
        return [json.loads(r.getMessage()) for r in self.records if r.name == "qwen"]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    @property
    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[LogCapture]:
    caplog.set_level(logging.DEBUG)
    yield LogCapture(caplog)


@pytest.fixture(scope="session")
def standin_server() -> Iterator[DashScopeStandIn]:
    with DashScopeStandIn(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def standin(standin_server: DashScopeStandIn) -> Iterator[DashScopeStandIn]:
    """The local DashScope, emptied of earlier requests and scripts."""
    standin_server.reset()
    standin_server.latency = 0.0
    yield standin_server
    standin_server.reset()


@pytest.fixture(scope="session")
def oss_server() -> Iterator[OssStandIn]:
    with OssStandIn() as server:
        yield server


@pytest.fixture
def oss(oss_server: OssStandIn) -> Iterator[OssStandIn]:
    """The local OSS, emptied of objects, requests and faults."""
    oss_server.reset()
    yield oss_server
    oss_server.reset()


def echo(**kwargs: Any) -> FakeResponse:
    """A fake Generation.call that answers each question with its own text, to match answers to records."""
    asked = kwargs["messages"][-1]["content"] if "messages" in kwargs else kwargs["prompt"]
    return response(text=f"answer to {asked}", request_id=f"ds-{asked}")


@pytest.fixture
def event_file() -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (ROOT / "events" / name).read_bytes()

    return read


def oss_invoker(oss: OssStandIn, transport: Any, clock: FakeClock, **base_env: str) -> Callable[..., Any]:
    """handle() with the fake SDK (echoing each question), the real oss2 client against the OSS stand-in,
    the fake clock, short backoff steps and a fresh instance memory unless one is given."""
    transport.side_effect = echo

    def invoke(event: bytes, context: Any, memory: AnsweredRecords | None = None, **env: str) -> Any:
        runtime = Runtime(
            transport=transport,
            env={"DASHSCOPE_API_KEY": API_KEY, "QWEN_OSS_ENDPOINT": oss.url, **base_env, **env},
            sleep=clock.sleep,
            clock=clock,
            backoff=Backoff(base=0.01, cap=0.02),
            memory=memory if memory is not None else AnsweredRecords(),
        )
        return json.loads(handle(event, context, runtime))

    return invoke
