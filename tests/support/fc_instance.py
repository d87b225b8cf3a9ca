"""One FC instance in its own interpreter: `python -m tests.support.fc_instance`.

It runs the initializer, prints {"ready": pid}, then for each JSON line on stdin ({"event": text,
"request_id": ..., "timeout": s}) calls `index.handler` with an FC-like context and prints one JSON
line: {"returned": ...} or {"raised": type, "code", "message"}, with the `qwen` log lines that
invocation emitted. Its configuration (stand-in URLs, QWEN_ANSWER_BUCKET, the STS credentials of
python3.12) comes from the environment the test gives it, as FC's does. Used by the tests that
prove what crosses instances: memory here starts empty, as on a new instance.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from types import SimpleNamespace
from typing import Any


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[Any] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "qwen":
            self.lines.append(json.loads(record.getMessage()))


def _context(request_id: str, timeout: float) -> SimpleNamespace:
    # python3.12 style: no context.credentials, ALIBABA_CLOUD_* in the environment.
    return SimpleNamespace(
        request_id=request_id, function=SimpleNamespace(timeout=timeout), region="cn-hangzhou", credentials=None
    )


def main() -> None:
    import index

    captured = _Lines()
    logging.getLogger("qwen").addHandler(captured)
    index.initialize(_context("init", 30))
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        captured.lines = []
        context = _context(job["request_id"], job.get("timeout", 30))
        out: dict[str, Any]
        try:
            out = {"returned": json.loads(index.handler(job["event"].encode(), context))}
        except Exception as error:  # noqa: BLE001  # FC marks the invocation failed; report it the same way
            out = {"raised": type(error).__name__, "code": getattr(error, "code", None), "message": str(error)}
        out["logs"] = captured.lines
        print(json.dumps(out, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
