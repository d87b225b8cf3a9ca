"""A signed URL names the region's public OSS endpoint (DashScope cannot reach `-internal`), and only the
object asked for; its making is not logged and makes no request unless an eTag is to be checked."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from handler.deliver.store import SIGNED_URL_SECONDS, Oss2Store, public_endpoint
from handler.errors import QwenError
from handler.fc_context import Credentials

CREDS = Credentials("STS.SIGNER0001", "signer-secret-0001", "signer-token-CAIS-0001")


@pytest.mark.parametrize(
    ("configured", "public"),
    [
        ("https://oss-cn-hangzhou-internal.aliyuncs.com", "https://oss-cn-hangzhou.aliyuncs.com"),
        ("http://oss-cn-beijing-internal.aliyuncs.com", "https://oss-cn-beijing.aliyuncs.com"),
        ("oss-ap-southeast-1-internal.aliyuncs.com", "https://oss-ap-southeast-1.aliyuncs.com"),
        ("https://oss-cn-hangzhou.aliyuncs.com", "https://oss-cn-hangzhou.aliyuncs.com"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
    ],
)
def test_the_public_endpoint_drops_internal_and_leaves_others(configured, public):
    assert public_endpoint(configured) == public


def test_a_signed_url_names_the_public_endpoint_the_object_and_a_few_minutes(mocker, caplog):
    caplog.set_level(logging.DEBUG)
    store = Oss2Store(CREDS, "https://oss-cn-hangzhou-internal.aliyuncs.com")
    mocker.patch("time.time", return_value=1_800_000_000)
    url = store.sign_url("inbox", "docs/报告 1.pdf", expires=SIGNED_URL_SECONDS, etag=None)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "inbox.oss-cn-hangzhou.aliyuncs.com")
    assert parts.path == "/docs/%E6%8A%A5%E5%91%8A%201.pdf"
    query = parse_qs(parts.query)
    assert query["Expires"] == [str(1_800_000_000 + SIGNED_URL_SECONDS)]
    assert query["security-token"] == [CREDS.security_token] and query["OSSAccessKeyId"] == [CREDS.access_key_id]
    assert 60 <= SIGNED_URL_SECONDS <= 30 * 60
    signature = query["Signature"][0]
    assert all(signature not in r.getMessage() for r in caplog.records)


def test_an_invalid_bucket_name_is_the_projects_error():
    store = Oss2Store(CREDS, "https://oss-cn-hangzhou-internal.aliyuncs.com")
    with pytest.raises(QwenError) as raised:
        store.sign_url("Not_A_Bucket", "a.pdf", expires=SIGNED_URL_SECONDS, etag=None)
    assert raised.value.code == "InvalidObjectKey"
