"""Shared pieces of the reliability suite: recognizable secrets and the scans that look for them, an
in-memory bucket, case counts."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from handler.app import Runtime, handle
from handler.deliver.memory import AnsweredRecords
from handler.deliver.store import Body, StoredObject
from handler.errors import ObjectNotFound
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


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret reached {where}: {text[:300]!r}"


def scan(text: str, where: str) -> None:
    """Check one observable of a test (a result, an exception chain, an object, an output) and count it."""
    CASES[f"secrets: {where} scanned"] += 1
    assert_no_secret(text, where)


# The level and logger name first, then the message; format() appends the traceback and stack.
LOG_FORMAT = logging.Formatter("%(levelname)s %(name)s %(message)s")


class _Keep(logging.Handler):
    """Keeps every record that reaches it, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def every_log_record() -> Iterator[list[logging.LogRecord]]:
    """Every record made while open, from every logger at DEBUG (ours, dashscope, oss2, urllib3, ...).

    Our own handler, not caplog: caplog.records read after a test's body holds only the teardown
    phase's records. Each logger's own level is lowered to DEBUG (the root's alone would leave a
    logger that sets its level, as ours does, at INFO), and loggers that stop propagation get the
    handler too. Loggers made later inherit DEBUG from these.
    """
    keep = _Keep()
    for name in ("dashscope", "oss2", "urllib3"):
        logging.getLogger(name)  # made now if not imported yet, so their children inherit DEBUG
    root = logging.getLogger()
    loggers = [root, *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))]
    saved = [(x, x.level, x.disabled) for x in loggers]
    attached = [x for x in loggers if x is root or not x.propagate]
    for x in loggers:
        x.setLevel(logging.DEBUG)
        x.disabled = False
    for x in attached:
        x.addHandler(keep)
    try:
        yield keep.records
    finally:
        for x in attached:
            x.removeHandler(keep)
        for x, level, disabled in saved:
            x.setLevel(level)
            x.disabled = disabled


def assert_no_secret_in_records(records: list[logging.LogRecord]) -> None:
    """Check every record as a handler would write it: message, traceback and stack."""
    for record in records:
        assert_no_secret(LOG_FORMAT.format(record), f"a log record of {record.name}")


@pytest.fixture
def debug_logs() -> Iterator[list[logging.LogRecord]]:
    """Every log record of the test (setup and body), scanned for secrets when the test is done."""
    with every_log_record() as records:
        yield records
    CASES["secrets: tests whose log records were scanned"] += 1
    for record in records:
        CASES[f"secrets: log records from {record.name.split('.')[0]} scanned"] += 1
    assert_no_secret_in_records(records)


def observed_exceptions(error: BaseException | None) -> str:
    """An exception, its message, repr and every chained cause or context, as text."""
    parts, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        parts += [str(error), repr(error), *map(str, error.args)]
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


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

    def write(self, bucket: str, key: str, data: Body, *, metadata: Mapping[str, str]) -> None:
        if not isinstance(data, bytes):
            data.seek(0)  # as Oss2Store: a file is stored from its start
            data = data.read()
        with self._lock:
            self.objects[(bucket, key)] = (data, dict(metadata))
            self.writes.append((bucket, key, data, metadata))

    def create(self, bucket: str, key: str, data: bytes, *, metadata: Mapping[str, str]) -> bool:
        with self._lock:
            if (bucket, key) in self.objects:
                return False
            self.objects[(bucket, key)] = (data, dict(metadata))
            self.writes.append((bucket, key, data, metadata))
            return True

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self.objects.pop((bucket, key), None)

    def etag(self, bucket: str, key: str) -> str | None:
        return None  # its objects carry no eTag: nothing is ever superseded

    def versioning(self, bucket: str) -> str | None:
        return None


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
        store=lambda credentials, endpoint, remaining: store,
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
