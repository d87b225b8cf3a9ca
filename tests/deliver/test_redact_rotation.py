"""The API key and the current credentials stay masked however many credentials rotate through a warm
instance (python3.10 passes fresh context.credentials): the real SDK and oss2 against the stand-ins."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from handler import redact
from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.local.standin import error
from tests.conftest import API_KEY, FakeContext
from tests.support.events import topic_message
from tests.support.instances import ANSWER_BUCKET

pytestmark = pytest.mark.slow  # the real SDK over the wire, 40 key rotations


def rotated(n: int) -> SimpleNamespace:
    return SimpleNamespace(
        access_key_id=f"STS.ROTATED{n:04d}",
        access_key_secret=f"rotated-secret-{n:04d}-abcdef",
        security_token=f"rotated-token-{n:04d}-CAIS-xyz",
    )


def test_the_key_and_current_credentials_stay_masked_after_many_rotations(standin, oss):
    env = {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_ANSWER_BUCKET": ANSWER_BUCKET,
    }
    runtime = Runtime(env=env, backoff=Backoff(base=0.01, cap=0.02), memory=AnsweredRecords())
    for n in range(40):  # 80 rotated values through the instance's memory of secrets
        current = rotated(n)
        quoted = f"bad header: Bearer {API_KEY} token={current.security_token} secret={current.access_key_secret}"
        standin.script(error(400, "InvalidParameter", quoted))
        context = FakeContext(request_id=f"fc-rot-{n}", credentials=current)
        out = handle(topic_message(f"rot-{n}", "hi").encode(), context, runtime)
        result = json.loads(out)
        assert result["code"] == "InvalidParameter" and redact.MASK in result["message"]
        stored = oss.get(ANSWER_BUCKET, f"answers/mns/rot-{n}.json")
        assert stored is not None
        for secret in (API_KEY, current.security_token, current.access_key_secret):
            assert secret not in out, f"rotation {n}: a secret reached the result"
            assert secret.encode() not in stored.data, f"rotation {n}: a secret reached the stored answer"
