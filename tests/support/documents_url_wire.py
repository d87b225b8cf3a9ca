"""The url route's wire pieces shared by tests/wire/test_documents_url_route.py and test_documents_url_secrets.py:
its STS credentials and model, an FC context holding them, the runtime wired to the stand-ins (the OSS stand-in
verifying the signed URLs), an upload helper, the doc_url URLs DashScope received, and a key that signs wrongly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from handler.app import Runtime
from handler.ask.apis import ModelApis
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from tests.conftest import API_KEY
from tests.support.documents_wire import BUCKET, generations
from tests.support.events import oss_event as event_text
from tests.support.events import oss_record

MODEL = "qwen-doc-turbo"
CREDS = SimpleNamespace(access_key_id="STS.URL00001", access_key_secret="url-secret-00001", security_token="url-tok-01")


@pytest.fixture
def fc(context):
    context.credentials = CREDS
    return context


@pytest.fixture
def env(standin, oss) -> dict[str, str]:
    oss.accept(CREDS.access_key_id, CREDS.access_key_secret, CREDS.security_token)  # the signed URLs' verifier
    return {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_OSS_BUCKETS": BUCKET,
        "QWEN_DOCUMENT_MODEL": MODEL,
        "QWEN_ALLOWED_MODELS": f"qwen-turbo,{MODEL}",
    }


@pytest.fixture
def wire(env) -> Runtime:
    return Runtime(env=env, backoff=Backoff(base=0.01, cap=0.02), apis=ModelApis(), memory=AnsweredRecords())


def upload(oss, key: str, data: bytes) -> str:
    stored = oss.put(BUCKET, key, data)
    return event_text(oss_record(key, bucket=BUCKET, etag=stored.etag, size=len(data)))


def sent_urls(standin) -> list[str]:
    """The doc_url URLs of every generation request the stand-in received."""
    urls = []
    for request in generations(standin):
        for message in request.body["input"]["messages"]:
            for part in message["content"] if isinstance(message["content"], list) else []:
                urls += part.get("doc_url", [])
    return urls


def forget_the_key(oss) -> None:
    oss.accept(CREDS.access_key_id, "another-secret-0001", CREDS.security_token)  # every signature is now wrong
