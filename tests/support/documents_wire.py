"""The OSS document routes' wire pieces shared by tests/wire/test_documents_file_route.py,
test_documents_url_route.py, test_documents_url_secrets.py and test_request_documents.py: the listed bucket,
the file route's STS credentials, its `fc`, `env` and `wire` fixtures, small documents as bytes, and the
requests the stand-ins received."""

from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace

import pytest

from handler.app import Runtime
from handler.ask.apis import ModelApis
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.local.standin import GENERATION_PATH
from tests.conftest import API_KEY

BUCKET = "qwen-docs"
CREDS = SimpleNamespace(access_key_id="STS.DOC0001", access_key_secret="doc-secret-0001", security_token="doc-token-01")


@pytest.fixture
def fc(context):
    context.credentials = CREDS
    return context


@pytest.fixture
def env(standin, oss) -> dict[str, str]:
    return {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_OSS_BUCKETS": BUCKET,
        "QWEN_ALLOWED_MODELS": "qwen-turbo,qwen-long",
    }


@pytest.fixture
def wire(env) -> Runtime:
    return Runtime(env=env, backoff=Backoff(base=0.01, cap=0.02), apis=ModelApis(), memory=AnsweredRecords())


def archive(members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as z:
        for name, data in members.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_STORED if name == "mimetype" else method)
    return buffer.getvalue()


def office(folder: str, part: str) -> bytes:
    return archive({"[Content_Types].xml": b"<Types/>", "_rels/.rels": b"<Relationships/>", f"{folder}{part}": b"<x/>"})


def pdf(trailer: bytes = b"<< /Size 3 /Root 1 0 R >>") -> bytes:
    return (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        b"xref\n0 3\n0000000000 65535 f \n0000000015 00000 n \n0000000066 00000 n \ntrailer\n"
        + trailer
        + b"\nstartxref\n120\n%%EOF\n"
    )


EPUB = archive({"mimetype": b"application/epub+zip", "OEBPS/c1.xhtml": "<html>第一章</html>".encode()})


def generations(standin) -> list:
    return [r for r in standin.requests if r.path.split("?")[0] == GENERATION_PATH]


def uploads(standin) -> list:
    return [r for r in standin.files.requests if r.method == "POST"]
