"""The `.jsonl` route's wire pieces shared by tests/wire/test_jsonl_*.py and tests/local/test_batches_cli.py:
the listed bucket, an FC context with STS credentials, the runtime wired to the DashScope and OSS stand-ins,
question files, and helpers that upload a file, answer or submit it, and run the collect timer."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from handler.app import Runtime, handle
from handler.ask.apis import ModelApis
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.local.standin import GENERATION_PATH
from tests.conftest import API_KEY
from tests.support.events import oss_event, oss_record

BUCKET = "qwen-lines"
CREDS = SimpleNamespace(
    access_key_id="STS.JSONL001", access_key_secret="jsonl-secret-01", security_token="jsonl-tok-01"
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
COLLECT = json.dumps(
    {"triggerTime": "2026-12-06T18:00:00Z", "triggerName": "collect", "payload": '{"collect": "batches"}'}
)


@pytest.fixture
def fc(context):
    context.credentials = CREDS
    return context


def wire_env(standin, oss) -> dict[str, str]:
    """The function's environment against the stand-ins: BUCKET listed, qwen-turbo and qwen-plus allowed."""
    return {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_OSS_BUCKETS": BUCKET,
        "QWEN_ALLOWED_MODELS": "qwen-turbo,qwen-plus",
    }


@pytest.fixture
def wire(standin, oss) -> Runtime:
    env = wire_env(standin, oss)
    return Runtime(env=env, backoff=Backoff(base=0.01, cap=0.02), apis=ModelApis(), memory=AnsweredRecords())


def questions(n: int) -> bytes:
    """`n` question lines, "问题 1" to "问题 n", each a JSON string."""
    return "".join(json.dumps(f"问题 {i}", ensure_ascii=False) + "\n" for i in range(1, n + 1)).encode()


def put(oss, key: str, data: bytes) -> str:
    """Upload `data` as BUCKET/key and return the OSS event of that upload."""
    stored = oss.put(BUCKET, key, data)
    return oss_event(oss_record(key, bucket=BUCKET, etag=stored.etag, size=len(data)))


def submit(event: str, fc, wire) -> dict:
    """The handler's one result for a one-record event."""
    (result,) = json.loads(handle(event.encode(), fc, wire))
    return result


def run(oss, fc, wire, key: str, data: bytes) -> dict:
    """Upload and answer (or submit) a file: the handler's result."""
    return submit(put(oss, key, data), fc, wire)


def answers(oss, key: str) -> list[dict]:
    """The answer file of BUCKET/key, `answers/<key>.jsonl`, one dict a line."""
    stored = oss.get(BUCKET, f"answers/{key}.jsonl")  # <prefix><key>.jsonl, as <prefix><key>.json for other files
    assert stored is not None, "no answer file"
    return [json.loads(line) for line in stored.data.decode().splitlines()]


def asked(standin) -> list[dict]:
    """The real-time model calls DashScope's stand-in received."""
    return [r.body for r in standin.requests if r.path.split("?")[0] == GENERATION_PATH]


def inputs(standin, job: dict) -> list[dict]:
    """The batch input lines a submitted job's file holds at the files stand-in."""
    stored = standin.files.files[job["input_file_id"]]
    return [json.loads(line) for line in b"".join(standin.files.content(stored.id)).splitlines()]


def collect(fc, wire) -> dict:
    """One run of the collect timer: its result."""
    return json.loads(handle(COLLECT.encode(), fc, wire))


def until_collected(fc, wire, rounds: int = 6) -> dict:
    """The collect timer run until it collects something (the stand-in moves a job one state per retrieve)."""
    for _ in range(rounds):
        result = collect(fc, wire)
        if result["output"]["collected"]:
            return result
    raise AssertionError("never collected")
