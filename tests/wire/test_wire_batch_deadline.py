"""A batch whose answers take longer than the function's timeout, with the real SDK over the wire against
the stand-in: the invocation ends within the timeout and raises for the records it could not answer."""

from __future__ import annotations

import threading
import time

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.errors import TransientUpstreamError
from handler.local.standin import answer
from tests.conftest import API_KEY
from tests.support.events import queue_batch


def test_a_slow_batch_ends_within_the_functions_timeout(standin, context):
    context.function.timeout = 3
    standin.script(*[answer(delay=6)] * 4)
    runtime = Runtime(
        env={"DASHSCOPE_API_KEY": API_KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url, "QWEN_BATCH_CONCURRENCY": "2"},
        backoff=Backoff(base=0.02, cap=0.1),
    )
    batch = queue_batch(("w-1", "一"), ("w-2", "二"), ("w-3", "三"), ("w-4", "四")).encode()
    started = time.monotonic()
    with pytest.raises(TransientUpstreamError):
        handle(batch, context, runtime)
    assert time.monotonic() - started < 3
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("qwen-batch"))
    assert len(standin.requests) <= 2  # the records after the first two never started
