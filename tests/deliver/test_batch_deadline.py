"""Nothing outlives the deadline: at the function's deadline a batch raises for the records it has not
answered, starts none after it, and its worker threads never keep the process alive (FC's runtime sends
SIGTERM at the timeout and exits). The fake SDK call here ignores its bounds, as a DNS lookup can."""

from __future__ import annotations

import threading
import time

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.deliver.batch import BatchIncomplete
from handler.deliver.memory import AnsweredRecords
from tests.conftest import API_KEY, echo
from tests.support.events import queue_batch

pytestmark = pytest.mark.slow  # real clocks: each test waits out a 2-second function timeout


@pytest.fixture(autouse=True)
def no_leftover_threads():
    """A slow call ends in its own thread after the test; it must not log into the next test."""
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("qwen-batch"):
            thread.join(timeout=10)


@pytest.fixture
def slow_sdk(transport):
    def answer(**kwargs):
        if kwargs["messages"][-1]["content"].startswith("slow"):
            time.sleep(4)
        return echo(**kwargs)

    transport.side_effect = answer
    return transport


def runtime(transport, **env: str) -> Runtime:
    """Real clocks: the deadline is the wall's."""
    return Runtime(
        transport=transport,
        env={"DASHSCOPE_API_KEY": API_KEY, **env},
        backoff=Backoff(base=0.01, cap=0.02),
        memory=AnsweredRecords(),
    )


def test_a_batch_ends_within_the_functions_timeout(slow_sdk, context):
    context.function.timeout = 2
    batch = queue_batch(("m-1", "fast one"), ("m-2", "slow two"), ("m-3", "fast three")).encode()
    started = time.monotonic()
    with pytest.raises(BatchIncomplete) as raised:
        handle(batch, context, runtime(slow_sdk))
    assert time.monotonic() - started < 2
    assert [source for _, source, _ in raised.value.failures] == ["mns:m-2"]
    assert slow_sdk.call_count == 3  # the others were answered


def test_records_not_started_by_the_deadline_are_not_started(slow_sdk, context, logs):
    context.function.timeout = 2
    batch = queue_batch(("m-1", "slow one"), ("m-2", "fast two"), ("m-3", "fast three")).encode()
    started = time.monotonic()
    with pytest.raises(BatchIncomplete) as raised:
        handle(batch, context, runtime(slow_sdk, QWEN_BATCH_CONCURRENCY="1"))
    assert time.monotonic() - started < 2
    assert [source for _, source, _ in raised.value.failures] == ["mns:m-1", "mns:m-2", "mns:m-3"]
    for thread in threading.enumerate():  # the slow call ends in its own thread; no record starts after it
        if thread.name.startswith("qwen-batch"):
            thread.join(timeout=10)
    assert slow_sdk.call_count == 1
    assert [line["source"] for line in logs.events("question")] == ["mns:m-1"]
    (line,) = logs.events("batch_deadline")
    assert line["unanswered"] == ["mns:m-1", "mns:m-2", "mns:m-3"] and "timeout" in line["message"]


def test_the_batchs_threads_never_keep_the_process_alive(slow_sdk, context):
    context.function.timeout = 2
    batch = queue_batch(("m-1", "slow one"), ("m-2", "slow two")).encode()
    with pytest.raises(BatchIncomplete):
        handle(batch, context, runtime(slow_sdk))
    workers = [t for t in threading.enumerate() if t.name.startswith("qwen-batch")]
    assert workers and all(t.daemon for t in workers)
