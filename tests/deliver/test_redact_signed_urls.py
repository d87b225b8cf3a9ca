"""A signed OSS URL's signature, key id and security token are masked wherever the project logs or returns
text, even when no secret is pinned: the URL itself is the secret (anyone holding it reads the object)."""

from __future__ import annotations

import json
import logging

import pytest

from handler import redact
from handler.errors import QwenError
from handler.result import Result, dumps

SIGNATURE = "UJfeJgvcypWq6Q%2Bm3IJcSHbvSak%3D"
TOKEN = "CAIS8gF1q6Ft5B2yfSjIr5bSEM%2FS"
V1 = (
    "https://inbox.oss-cn-hangzhou.aliyuncs.com/docs/a.pdf?security-token="
    f"{TOKEN}&OSSAccessKeyId=STS.NUgYrLnoC37mZZ&Expires=1447178011&Signature={SIGNATURE}"
)
V2 = (
    "https://inbox.oss-cn-hangzhou.aliyuncs.com/docs/a.pdf?x-oss-signature-version=OSS2&x-oss-expires=1447178011"
    f"&x-oss-access-key-id=STS.NUgYrLnoC37mZZ&x-oss-security-token={TOKEN}&x-oss-signature={SIGNATURE}"
)
V4 = (
    "https://inbox.oss-cn-hangzhou.aliyuncs.com/docs/a.pdf?x-oss-signature-version=OSS4-HMAC-SHA256"
    "&x-oss-credential=STS.NUgYrLnoC37mZZ%2F20251206%2Fcn-hangzhou%2Foss%2Faliyun_v4_request"
    f"&x-oss-date=20251206T051600Z&x-oss-expires=600&x-oss-security-token={TOKEN}&x-oss-signature=9f8e7d6c5b4a3921"
)
SECRETS = (SIGNATURE, TOKEN, "STS.NUgYrLnoC37mZZ", "9f8e7d6c5b4a3921")


def assert_masked(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} left in {text!r}"


@pytest.mark.parametrize("url", [V1, V2, V4], ids=["v1", "v2", "v4"])
def test_every_signing_parameter_is_masked_and_the_rest_kept(url):
    masked = redact.redact(f"GET {url} failed")
    assert_masked(masked)
    assert masked.startswith("GET https://inbox.oss-cn-hangzhou.aliyuncs.com/docs/a.pdf?")
    assert masked.endswith(" failed")
    assert "Expires=1447178011" in masked or "x-oss-expires=" in masked  # not secret: kept for diagnosis


def test_the_url_inside_json_and_quoted_forms_is_masked():
    masked = redact.redact(json.dumps({"doc_url": [V1], "raw": V1.replace("%2B", "+").replace("%3D", "=")}))
    assert_masked(masked.replace("+", "%2B").replace("=", "%3D"))
    assert json.loads(masked)["doc_url"][0].endswith(f"Signature={redact.MASK}")


def test_an_upper_case_parameter_is_masked():
    assert SIGNATURE not in redact.redact(f"url: ...?SIGNATURE={SIGNATURE}")


def test_ordinary_text_is_left_alone():
    text = "the signature of a contract; credentials expire; Expires=5; token=short"
    assert redact.redact(text) == text


def test_a_log_record_holding_a_signed_url_is_masked(caplog):
    redact.install()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("qwen").info("fetching %s", V1)
    logging.getLogger("oss2.api").warning("Start to sign_url: %s", V4)  # a library line
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    for line in lines:
        assert_masked(line)


def test_an_exception_holding_a_signed_url_is_masked_in_its_text_and_its_logged_traceback(caplog):
    redact.install()
    caplog.set_level(logging.INFO)
    error = QwenError(f"DashScope could not download {V1}", code="InvalidParameter.FileDownload")
    assert_masked(str(error))
    try:
        raise ValueError(f"raw library error for {V2}")
    except ValueError:
        logging.getLogger("qwen").exception("failed")
    (record,) = caplog.records
    assert record.exc_info is None and "ValueError" in record.getMessage()
    assert_masked(record.getMessage())


def test_a_result_holding_a_signed_url_is_masked_as_it_is_returned():
    # The model's answer may quote the URL it read; DashScope's error message may echo it.
    answered = Result(200, "req-1", output={"text": f"I read {V2}"})
    refused = Result(400, "req-2", code="InvalidParameter.FileDownload", message=f"Download failed: {V4}")
    for result in (answered, refused):
        assert_masked(redact.redact(dumps(result)))
