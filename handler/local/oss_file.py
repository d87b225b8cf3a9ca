"""`--oss-file PATH`: a local file answered as if it had been uploaded to the OSS trigger's bucket.

The file is put into the local OSS stand-in under questions/<its name>, the handler gets the OSS event a
real upload sends (the same shape as events/oss-question.json, with the stand-in's eTag), and the CLI then
reads back the answer file the handler wrote beside it: <QWEN_OSS_OUTPUT_PREFIX>questions/<name>.json, the
prefix read as the handler reads it (a trailing / added).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from handler.errors import InvalidConfig
from handler.local import deployed_env
from handler.local.standin_oss import OssStandIn

BUCKET = "qwen-questions"  # the bucket of s.yaml's OSS trigger and of events/oss-question.json
FOLDER = "questions/"  # the trigger's prefix filter
# The collect timer's event (events/timer-collect.json): a .jsonl file above QWEN_JSONL_REALTIME_MAX_LINES
# is answered when it runs.
COLLECT_EVENT = json.dumps(
    {"triggerTime": "2026-12-06T18:00:00Z", "triggerName": "collect-batches", "payload": '{"collect": "batches"}'}
).encode()


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    event: bytes

    def answer_key(self) -> str:
        try:
            prefix = deployed_env.setting("QWEN_OSS_OUTPUT_PREFIX", "oss_output_prefix")
        except InvalidConfig:
            prefix = os.environ["QWEN_OSS_OUTPUT_PREFIX"]  # refused by the handler too, which wrote no answer file
        # A .jsonl question file's answers are JSON lines too (handler/deliver/jsonl_files.py).
        return f"{prefix}{self.key}.jsonl" if self.key.lower().endswith(".jsonl") else f"{prefix}{self.key}.json"


def bucket() -> str:
    """The first bucket of QWEN_OSS_BUCKETS when one is set (the handler answers only those), else the sample's."""
    listed = [name.strip() for name in os.environ.get("QWEN_OSS_BUCKETS", "").split(",") if name.strip()]
    return listed[0] if listed else BUCKET


def upload(standin: OssStandIn, data: bytes, name: str, into: str) -> Upload:
    """Store `data` as questions/<name> in the stand-in and build the event OSS sends for that upload."""
    key = FOLDER + name
    stored = standin.put(into, key, data)
    record = {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {"arn": f"acs:oss:local:local:{into}", "name": into},
            "object": {"eTag": stored.etag, "key": key, "size": len(data), "deltaSize": len(data)},
            "ossSchemaVersion": "1.0",
        },
        "region": "local",
    }
    return Upload(into, key, json.dumps({"events": [record]}, ensure_ascii=False).encode())


def read(path: str) -> tuple[bytes, str]:
    """The file's bytes and name; OSError (FileNotFoundError, IsADirectoryError, ...) when it cannot be read."""
    file = Path(path)
    return file.read_bytes(), file.name


def answer_file(standin: OssStandIn, done: Upload) -> str | None:
    """The answer file the handler wrote for the upload, as stored; None when it wrote none."""
    stored = standin.get(done.bucket, done.answer_key())
    return None if stored is None else stored.data.decode("utf-8", "replace")
