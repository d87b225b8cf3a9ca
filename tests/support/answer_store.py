"""The answer store's in-process pieces shared by tests/deliver/test_answer_store.py and
test_answer_store_faults.py: an FC context with STS credentials, handle() against the OSS stand-in
with the answer bucket set, and the stored answer read back."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.conftest import oss_invoker
from tests.support.instances import ANSWER_BUCKET

CREDS = SimpleNamespace(access_key_id="STS.AS0001", access_key_secret="as-secret-0001", security_token="as-token-01")


@pytest.fixture
def fc(context):
    context.credentials = CREDS
    return context


@pytest.fixture
def run(oss, transport, clock):
    """handle() with the fake SDK, the real oss2 client against the stand-in, and a fresh instance memory."""
    invoke = oss_invoker(oss, transport, clock, QWEN_ANSWER_BUCKET=ANSWER_BUCKET)
    return lambda event, context, memory=None, **env: invoke(event.encode(), context, memory, **env)


def stored(oss, key):
    found = oss.get(ANSWER_BUCKET, key)
    return json.loads(found.data) if found else None
