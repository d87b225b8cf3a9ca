"""A signed URL never leaves the function but to DashScope: the url route's answers, refusals and raised errors,
with QWEN_LOG_CONTENT=true and the libraries logging at DEBUG (the SDK's own lines print the request body),
scanned for each URL's signature, security token and the URL itself in every log record, every result and
exception, and every object the OSS stand-in holds afterwards (answer files, markers)."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from handler import logs as project_logs
from handler.app import handle
from handler.errors import AccountFailure, TransientUpstreamError
from handler.local import standin as standin_module
from tests.support.documents_url_wire import CREDS, env, fc, forget_the_key, sent_urls, upload, wire  # noqa: F401  # fixtures
from tests.support.documents_wire import pdf


@pytest.fixture
def verbose():
    """The libraries' own DEBUG records, as the CLI's --verbose makes them (the SDK logs each request body)."""
    project_logs.quiet_libraries(False)
    yield
    project_logs.quiet_libraries(True)


def echoing(status: int, code: str):
    """DashScope answering `status` with a message that quotes the first doc_url whole."""

    def read_documents(urls):
        return standin_module.error(status, code, f"cannot use the document at {urls[0]}")

    return read_documents


def secrets_of(url: str) -> set[str]:
    query = parse_qs(urlsplit(url).query)
    values = {url, query["Signature"][0], CREDS.security_token}
    return values | {quote(value, safe="") for value in values}


def test_no_signed_url_in_logs_results_exceptions_or_stored_objects(standin, oss, wire, env, fc, caplog, verbose):  # noqa: F811
    env["QWEN_LOG_CONTENT"] = "true"
    env["QWEN_MAX_ATTEMPTS"] = "1"
    caplog.set_level(logging.DEBUG)
    said: list[str] = []

    def run(key: str) -> None:
        try:
            said.append(handle(upload(oss, key, pdf()).encode(), fc, wire))
        except (TransientUpstreamError, AccountFailure) as error:
            said.extend([str(error), error.message, repr(error)])

    run("inbox/answered.pdf")  # a 200: the content logged, the answer file written
    forget_the_key(oss)
    run("inbox/refused.pdf")  # DashScope's 400 echoing the URL: the result and its answer file
    oss.accept(CREDS.access_key_id, CREDS.access_key_secret, CREDS.security_token)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(standin_module, "read_documents", echoing(500, "InternalError"))
        run("inbox/unavailable.pdf")  # raised for redelivery: its message quotes DashScope's
        patch.setattr(standin_module, "read_documents", echoing(403, "AccessDenied"))
        run("inbox/account.pdf")  # the account-level failure, raised

    urls = sent_urls(standin)
    assert len(urls) == 4 and len({parse_qs(urlsplit(u).query)["Signature"][0] for u in urls}) == 4
    secrets = set().union(*map(secrets_of, urls))
    records = [r.getMessage() for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    stored = [
        f"{key} {obj.data.decode('utf-8', 'replace')} {json.dumps(obj.metadata)}"
        for (_, key), obj in list(oss.objects.items())
    ]
    assert any("doc_url" in line for line in records), "the SDK's request body was not logged: nothing was scanned"
    assert len(said) >= 4 and any(key.startswith("answers/") for (_, key) in oss.objects)
    leaks = [(secret[:24], text[:160]) for text in records + said + stored for secret in secrets if secret in text]
    assert not leaks
    assert any("Signature=***" in text for text in records + said), "no masked URL seen: the scan proved nothing"
