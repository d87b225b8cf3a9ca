"""The OSS question files' in-process pieces shared by tests/deliver/test_oss_once.py and
tests/events/test_oss_keys.py: the listed bucket, an FC context with STS credentials, and events
of one record per (bucket, key, eTag)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.support.events import oss_event_bytes, oss_record

BUCKET = "qwen-bkt"
CREDS = SimpleNamespace(access_key_id="STS.OO0001", access_key_secret="oo-secret-0001", security_token="oo-token-01")


@pytest.fixture
def fc(context):
    context.credentials = CREDS
    return context


def oss_event(*objects: tuple[str, str, str | None]) -> bytes:
    """An OSS trigger event with one record per (bucket, key, eTag); eTag None leaves the field out."""
    return oss_event_bytes(*(oss_record(key, bucket=bucket, etag=etag) for bucket, key, etag in objects))
