"""Shared pieces of the reliability suite: recognizable secrets, an in-memory bucket, case counts."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from handler.app import Runtime, handle
from handler.errors import ObjectNotFound
from handler.memory import AnsweredRecords
from handler.store import StoredObject
from tests.conftest import echo

API_KEY = "sk-RELIABILITY-apikey-7f3a9c1d"
STS_SECRET = "STSSECRET-4b2e8d1f-0a9c"
STS_TOKEN = "STSTOKEN-9c7e5a3b-CAIS-token"
SECRETS = (API_KEY, STS_SECRET, STS_TOKEN)

RESULT_FIELDS = {"status_code", "request_id", "code", "message", "output", "usage"}

# How many cases each property ran, printed at the end of the session ("Report how many cases ran").
CASES: Counter[str] = Counter()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CASES:
        terminalreporter.section("reliability cases")
        for name, count in sorted(CASES.items()):
            terminalreporter.write_line(f"{name}: {count} cases")
        terminalreporter.write_line(f"total: {sum(CASES.values())} cases")


class MemoryStore:
    """An ObjectStore in a dict; objects not stored read as a plain question."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, dict[str, str]]] = {}
        self.writes: list[tuple[str, str, bytes, Mapping[str, str]]] = []
        self._lock = threading.Lock()

    def read(self, bucket: str, key: str, *, max_bytes: int | None = None) -> StoredObject:
        with self._lock:
            found = self.objects.get((bucket, key))
        if found is None:
            if key.startswith("answers/"):
                raise ObjectNotFound("no such answer")
            found = (f"what is in {key}?".encode(), {})
        data, metadata = found
        return StoredObject(data=data[: (max_bytes + 1) if max_bytes else None], size=len(data), metadata=metadata)

    def write(self, bucket: str, key: str, data: bytes, *, metadata: Mapping[str, str]) -> None:
        with self._lock:
            self.objects[(bucket, key)] = (data, dict(metadata))
            self.writes.append((bucket, key, data, metadata))


class CountingEcho:
    """A Generation.call that answers every question with its own text, and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
        return echo(**kwargs)


def context(timeout: float = 60) -> SimpleNamespace:
    return SimpleNamespace(
        request_id="fc-reliability",
        function=SimpleNamespace(timeout=timeout),
        region="cn-hangzhou",
        credentials=SimpleNamespace(access_key_id="STS.ID0001", access_key_secret=STS_SECRET, security_token=STS_TOKEN),
    )


def run_offline(event: bytes, env: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], str, CountingEcho]:
    """The whole handler with a counting echo for DashScope and a memory bucket for OSS."""
    transport, store = CountingEcho(), MemoryStore()
    runtime = Runtime(
        transport=transport,
        store=lambda credentials, endpoint: store,
        env={"DASHSCOPE_API_KEY": API_KEY, **(env or {})},
        sleep=lambda seconds: None,
        memory=AnsweredRecords(),
    )
    returned = handle(event, context(), runtime)
    value = json.loads(returned)
    return (value if isinstance(value, list) else [value]), returned, transport


def assert_well_formed(results: list[dict[str, Any]], returned: str, transport: CountingEcho) -> None:
    """Every result is a 200 or a 4xx with a code; no traceback; upstream was asked only for valid records."""
    assert results, returned
    for result in results:
        assert set(result) == RESULT_FIELDS, result
        status = result["status_code"]
        assert status == 200 or 400 <= status < 500, result
        if status != 200:
            assert result["code"] and result["message"] and result["output"] is None, result
    assert "Traceback" not in returned and 'File "' not in returned
    for secret in SECRETS:
        assert secret not in returned
    answered = sum(1 for r in results if r["status_code"] == 200 and not r["code"])
    assert transport.calls == answered, (transport.calls, results)
