"""Oversized events: judged on their length, refused with a 4xx, never copied several times over."""

from __future__ import annotations

import json
import time
import tracemalloc

from handler.app import Runtime, handle
from handler.deliver.memory import AnsweredRecords
from tests.conftest import response
from tests.reliability.conftest import CASES, context, run_offline
from tests.support.events import oss_record

MB = 1024 * 1024


def peak_while(action) -> tuple[int, float, object]:
    """Peak bytes Python allocated while `action` ran, its duration, and its value."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    value = action()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, elapsed, value


def test_an_event_over_the_cap_is_refused_at_once():
    """A 32 MB event (the platform's synchronous maximum) gets 413 EventTooLarge in milliseconds,
    without being decoded: almost nothing is allocated beyond the event itself."""
    event = b'{"prompt": "' + b"x" * (32 * MB) + b'"}'
    peak, elapsed, (results, _returned, transport) = peak_while(lambda: run_offline(event))
    CASES["oversize: events"] += 1
    assert results[0]["status_code"] == 413 and results[0]["code"] == "EventTooLarge"
    assert "QWEN_MAX_EVENT_BYTES" in results[0]["message"] and transport.calls == 0
    assert elapsed < 0.5
    assert peak < 1 * MB, f"{peak} bytes allocated to refuse an oversized event"


def test_the_cap_is_configurable():
    """QWEN_MAX_EVENT_BYTES lowers (or raises, up to 32 MiB) the limit."""
    results, _, _ = run_offline(b"x" * 5000, env={"QWEN_MAX_EVENT_BYTES": "4096"})
    assert results[0]["code"] == "EventTooLarge"
    results, _, _ = run_offline(b"x" * 4000, env={"QWEN_MAX_EVENT_BYTES": "4096"})
    assert results[0]["status_code"] == 200


def test_a_large_event_under_the_cap_is_held_few_times():
    """A 6 MB question goes from bytes to the SDK's arguments holding two copies of its text (the
    decoded event and the parsed question), not one per step."""
    text = "西红柿炖牛腩" * (MB // 3)  # 6 MB of UTF-8: 2M characters, 4 MB as a Python str
    event = json.dumps({"prompt": text}, ensure_ascii=False).encode()
    sent = []
    runtime = Runtime(
        transport=lambda **kwargs: sent.append(len(kwargs["messages"][-1]["content"])) or response(),
        env={"DASHSCOPE_API_KEY": "sk-oversize-00000000", "QWEN_MODEL": "qwen-long"},
        memory=AnsweredRecords(),
    )
    peak, elapsed, returned = peak_while(lambda: handle(event, context(), runtime))
    CASES["oversize: events"] += 1
    assert json.loads(returned)["status_code"] == 200 and sent == [len(text)]
    assert peak < 2.5 * len(event), f"peak {peak / MB:.1f} MB for a {len(event) / MB:.1f} MB event"
    assert elapsed < 2


def test_many_records_in_one_event_are_bounded_too():
    """An OSS event with 10,000 records is answered record by record within the same memory bounds."""
    record = oss_record("answers/loop.txt", bucket="bkt", etag="E")
    event = json.dumps({"events": [record] * 10_000}).encode()
    results, _returned, transport = run_offline(event, env={"QWEN_OSS_BUCKETS": "bkt"})
    CASES["oversize: events"] += 1
    assert len(results) == 10_000 and all(r["code"] == "Skipped" for r in results)
    assert transport.calls == 0
