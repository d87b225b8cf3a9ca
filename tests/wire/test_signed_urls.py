"""Signed URLs over real sockets: Oss2Store signs, the OSS stand-in verifies as OSS does (V1 query-string
authentication), and the DashScope stand-in fetches a doc_url as the service would. Nothing logged or
returned on the way holds a signature."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from handler import redact
from handler.deliver.store import SIGNED_URL_SECONDS, Oss2Store
from handler.errors import ObjectNotFound, QwenError
from handler.fc_context import Credentials
from handler.local.standin import FILE_DOWNLOAD
from tests.conftest import API_KEY

CREDS = Credentials("STS.WIRESIGN001", "wire-sign-secret-0001", "wire-sign-token-CAIS-0001")
BUCKET = "inbox"
KEY = "docs/年报 2025.pdf"
DOCUMENT = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
MODEL = "qwen-doc-turbo"


@pytest.fixture
def signer(oss) -> Oss2Store:
    """Oss2Store on the stand-in, whose signed URLs the stand-in verifies for these credentials."""
    oss.accept(CREDS.access_key_id, CREDS.access_key_secret, CREDS.security_token)
    return Oss2Store(CREDS, oss.url)


# A signing value in the clear: any that is not the mask.
UNMASKED = re.compile(r"(Signature|OSSAccessKeyId|security-token)(=|%3D)(?!\*\*\*)", re.IGNORECASE)


@pytest.fixture
def said(caplog) -> Iterator[list[str]]:
    """What a test returns (it appends it), scanned with everything logged (every logger, DEBUG up, masked
    as the function masks) for a signing value or the token in the clear once the test is done."""
    redact.install()
    caplog.set_level(logging.DEBUG)
    returned: list[str] = []
    yield returned
    lines = returned + [r.getMessage() for r in caplog.records]
    leaks = [line[:200] for line in lines if UNMASKED.search(line) or CREDS.security_token in line]
    assert not leaks


@pytest.fixture
def doc_model(standin):
    standin.models[MODEL] = "text"  # until the project's model table lists it
    return standin


def signature_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["Signature"][0]


def tampered(url: str) -> str:
    signature = signature_of(url)
    forged = ("A" if signature[0] != "A" else "B") + signature[1:]
    return url.replace(quote(signature, safe=""), quote(forged, safe=""))


def ask_documents(standin: Any, *urls: str) -> Any:
    """Qwen-Doc-Turbo's request, through the dashscope SDK, as the function will send it."""
    import dashscope

    previous = dashscope.base_http_api_url
    dashscope.base_http_api_url = standin.url
    try:
        content = [
            {"type": "text", "text": "这份文档讲了什么?"},
            {"type": "doc_url", "doc_url": list(urls), "file_parsing_strategy": "auto"},
        ]
        return dashscope.Generation.call(
            model=MODEL, messages=[{"role": "user", "content": content}], api_key=API_KEY, result_format="message"
        )
    finally:
        dashscope.base_http_api_url = previous


def test_a_signed_url_reads_the_object(oss, signer, said):
    oss.put(BUCKET, KEY, DOCUMENT)
    url = signer.sign_url(BUCKET, KEY, expires=SIGNED_URL_SECONDS, etag=None)
    assert url.startswith(f"{oss.url}/{BUCKET}/docs/")
    fetched = requests.get(url, timeout=5)
    assert (fetched.status_code, fetched.content) == (200, DOCUMENT)
    said.append(fetched.text[:200])
    assert signature_of(url)  # the scan below means something only if there was one


def test_a_tampered_signature_is_refused(oss, signer, said):
    oss.put(BUCKET, KEY, DOCUMENT)
    url = signer.sign_url(BUCKET, KEY, expires=SIGNED_URL_SECONDS, etag=None)
    refused = requests.get(tampered(url), timeout=5)
    assert refused.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in refused.text
    said.append(refused.text)


def test_another_key_in_the_url_is_refused(oss, signer, said):
    oss.put(BUCKET, KEY, DOCUMENT)
    oss.put(BUCKET, "docs/other.pdf", b"other")
    url = signer.sign_url(BUCKET, KEY, expires=SIGNED_URL_SECONDS, etag=None)
    moved = url.replace(quote(KEY), "docs/other.pdf")
    assert moved != url
    refused = requests.get(moved, timeout=5)
    assert refused.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in refused.text


def test_an_expired_url_is_refused(oss, signer, said):
    oss.put(BUCKET, KEY, DOCUMENT)
    url = signer.sign_url(BUCKET, KEY, expires=-1, etag=None)
    refused = requests.get(url, timeout=5)
    assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text
    assert "Request has expired." in refused.text
    said.append(refused.text)


def test_a_url_signed_without_the_security_token_is_refused(oss, said):
    oss.accept(CREDS.access_key_id, CREDS.access_key_secret, CREDS.security_token)
    oss.put(BUCKET, KEY, DOCUMENT)
    tokenless = Oss2Store(Credentials(CREDS.access_key_id, CREDS.access_key_secret), oss.url)
    refused = requests.get(tokenless.sign_url(BUCKET, KEY, expires=SIGNED_URL_SECONDS, etag=None), timeout=5)
    assert refused.status_code == 403 and "<Code>InvalidSecurityToken</Code>" in refused.text


def test_the_etag_is_checked_before_signing(oss, signer, said):
    etag = oss.put(BUCKET, KEY, DOCUMENT).etag
    url = signer.sign_url(BUCKET, KEY, expires=SIGNED_URL_SECONDS, etag=f'"{etag.lower()}"')
    assert requests.get(url, timeout=5).content == DOCUMENT
    with pytest.raises(QwenError) as replaced:
        signer.sign_url(BUCKET, KEY, expires=SIGNED_URL_SECONDS, etag="0" * 32)
    assert (replaced.value.code, replaced.value.status_code) == ("ObjectReplaced", 409)
    with pytest.raises(ObjectNotFound):
        signer.sign_url(BUCKET, "docs/gone.pdf", expires=SIGNED_URL_SECONDS, etag=etag)
    said.extend([str(replaced.value)])


def test_dashscope_reads_a_good_url_and_refuses_a_tampered_one(oss, signer, doc_model, said):
    oss.put(BUCKET, KEY, DOCUMENT)
    second_document = b"PK\x03\x04 a second document"
    oss.put(BUCKET, "docs/b.docx", second_document)
    good = signer.sign_url(BUCKET, KEY, expires=SIGNED_URL_SECONDS, etag=None)
    second = signer.sign_url(BUCKET, "docs/b.docx", expires=SIGNED_URL_SECONDS, etag=None)
    answered = ask_documents(doc_model, good, second)
    assert answered.status_code == 200
    text = answered.output.choices[0].message.content
    assert f"document 1: {len(DOCUMENT)} bytes, sha256 {hashlib.sha256(DOCUMENT).hexdigest()[:16]}" in text
    assert f"document 2: {len(second_document)} bytes" in text

    refused = ask_documents(doc_model, good, tampered(second))
    assert (refused.status_code, refused.code) == (400, FILE_DOWNLOAD)
    assert "HTTP 403" in refused.message
    # DashScope's message echoes the URL: what the function returns is masked.
    shown = QwenError(refused.message, code=refused.code, status_code=400)
    assert "doc_url http" in shown.message and signature_of(second) not in shown.message
    said.extend([text, shown.message, redact.redact(str(refused))])


def test_dashscope_refuses_an_expired_url_and_one_it_cannot_reach(oss, signer, doc_model, said):
    oss.put(BUCKET, KEY, DOCUMENT)
    expired = ask_documents(doc_model, signer.sign_url(BUCKET, KEY, expires=-1, etag=None))
    assert (expired.status_code, expired.code) == (400, FILE_DOWNLOAD) and "HTTP 403" in expired.message
    public = ask_documents(doc_model, "https://inbox.oss-cn-hangzhou.aliyuncs.com/a.pdf")
    assert (public.status_code, public.code) == (400, FILE_DOWNLOAD) and "127.0.0.1" in public.message
    said.extend([redact.redact(str(expired)), redact.redact(str(public))])


def test_nothing_logged_or_returned_holds_a_signature(oss, signer, doc_model, caplog):
    """Every step above, once more, with everything said collected and scanned for the URLs' secrets."""
    redact.install()
    caplog.set_level(logging.DEBUG)
    oss.put(BUCKET, KEY, DOCUMENT)
    good = signer.sign_url(BUCKET, KEY, expires=SIGNED_URL_SECONDS, etag=oss.get(BUCKET, KEY).etag)
    expired = signer.sign_url(BUCKET, KEY, expires=-1, etag=None)
    logging.getLogger("qwen").info("asking about %s", good)  # a careless log line: masked all the same
    said = [
        redact.redact(str(ask_documents(doc_model, good))),
        redact.redact(str(ask_documents(doc_model, tampered(good)))),
        redact.redact(str(ask_documents(doc_model, expired))),
        str(QwenError(f"could not read {good}")),
    ]
    said += [r.getMessage() for r in caplog.records]
    secrets = {signature_of(good), signature_of(expired), signature_of(tampered(good)), CREDS.security_token}
    secrets |= {quote(s, safe="") for s in secrets}
    assert any("Signature=***" in line for line in said)
    leaks = [(secret, line[:200]) for line in said for secret in secrets if secret in line]
    assert not leaks
