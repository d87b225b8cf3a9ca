"""An object uploaded with Content-Encoding: gzip is refused (415) before its body is read, so a small
compressed object cannot decode to hundreds of MB: the peak memory of a child process running the handler
(real oss2 against the OSS stand-in) stays near its baseline."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from tests.support.events import oss_record

pytestmark = pytest.mark.slow  # a child process measures its peak memory

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from types import SimpleNamespace
    import handler.app as app
    from handler.app import Runtime, handle
    from handler.deliver.store import Oss2Store
    import oss2  # imported before the baseline: only the read is measured

    url, event = sys.argv[1], sys.argv[2]
    env = {
        "DASHSCOPE_API_KEY": "sk-test-4f1c9a2be7d0", "QWEN_OSS_ENDPOINT": url, "QWEN_OSS_BUCKETS": "questions",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.X0001", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret-0001-abcdef",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "token-0001-abcdefgh",
    }
    def never(**kwargs):
        raise AssertionError("DashScope must not be asked")
    context = SimpleNamespace(request_id="fc-1", function=SimpleNamespace(timeout=30), region="cn-hangzhou",
                              credentials=None)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = handle(event.encode(), context, Runtime(transport=never, env=env))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"result": json.loads(out), "grew_kb": after - before}))
    """
)


def test_a_gzip_bomb_is_refused_with_memory_bounded(oss):
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)  # ~200 KB that decodes to 200 MB
    assert len(bomb) < 1024 * 1024  # within QWEN_OSS_MAX_BYTES: only the compressed bytes are bounded
    stored = oss.put("questions", "q/bomb.txt", bomb)
    stored.content_encoding = "gzip"
    record = oss_record("q/bomb.txt", bucket="questions", etag=stored.etag)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, oss.url, json.dumps({"events": [record]})],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    (result,) = out["result"]
    assert out["grew_kb"] < 64 * 1024, f"peak memory grew by {out['grew_kb'] / 1024:.0f} MB"
    assert result["status_code"] == 415 and result["code"] == "ObjectEncoded", result
