"""FC instances as separate processes (tests/support/fc_instance.py) against the stand-ins of this test process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from typing import Any

from tests.conftest import API_KEY
from tests.support import ROOT

ANSWER_BUCKET = "qwen-answers"
STS_ID, STS_SECRET, STS_TOKEN = "STS.INSTANCE0001", "STSSECRET-instance-5e1d", "STSTOKEN-instance-CAIS-77a1"


def instance_env(standin: Any, oss: Any, **extra: str) -> dict[str, str]:
    """The function's environment: stand-in URLs, the answer bucket and python3.12-style STS credentials."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "QWEN_", "ALIBABA_CLOUD_"))}
    return {
        **clean,
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_ANSWER_BUCKET": ANSWER_BUCKET,
        "QWEN_REQUEST_TIMEOUT": "5",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": STS_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS_SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": STS_TOKEN,
        **extra,
    }


class Instance:
    """A fresh interpreter running index.handler: empty memory, its own connections, as a new FC instance."""

    def __init__(self, env: dict[str, str], *, module: str = "tests.support.fc_instance"):
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the process; closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
        )
        self.pid = self._line()["ready"]

    def send(self, event: str, *, timeout: float = 30) -> None:
        assert self.proc.stdin is not None
        job = {"event": event, "request_id": f"fc-{uuid.uuid4().hex[:12]}", "timeout": timeout}
        self.proc.stdin.write(json.dumps(job, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        return self._line()

    def invoke(self, event: str, *, timeout: float = 30) -> dict[str, Any]:
        self.send(event, timeout=timeout)
        return self.receive()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()

    def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise AssertionError(f"the instance exited: {self._stderr.read().decode(errors='replace')[-3000:]}")
        return json.loads(line)

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def asked(request: Any) -> str:
    """The question text of a request the DashScope stand-in received."""
    body = request.body["input"]
    return body["messages"][-1]["content"] if "messages" in body else body["prompt"]
