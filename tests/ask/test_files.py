"""The files API seam's pure parts: its URL, upload names, file objects, its session and what it refuses to send."""

from __future__ import annotations

import pytest

from handler.ask.files import NAME_PREFIX, DashScopeFiles, FileInfo, files_url, upload_name
from handler.ask.transport import PROXY_VARIABLES
from handler.errors import InvalidConfig, TransientUpstreamError
from tests.conftest import API_KEY


@pytest.mark.parametrize(
    ("base", "url"),
    [
        (None, "https://dashscope.aliyuncs.com/compatible-mode/v1/files"),  # the SDK's default: Beijing
        ("https://dashscope.aliyuncs.com/api/v1", "https://dashscope.aliyuncs.com/compatible-mode/v1/files"),
        ("https://dashscope-intl.aliyuncs.com/api/v1/", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/files"),
        ("http://127.0.0.1:8123/api/v1", "http://127.0.0.1:8123/compatible-mode/v1/files"),
        ("https://gw.example.com/dashscope/api/v1", "https://gw.example.com/dashscope/compatible-mode/v1/files"),
    ],
)
def test_the_files_endpoint_is_beside_the_native_api(base, url):
    assert files_url(base) == url


def test_an_upload_name_is_the_same_for_the_same_object_version():
    name = upload_name("inbox/年报 2024.PDF", '"5B3C0E"')
    assert name.startswith(NAME_PREFIX) and name.endswith(".pdf")
    assert name == upload_name("inbox/年报 2024.PDF", "5b3c0e")  # quoted or not, either case: one eTag
    assert name != upload_name("inbox/年报 2024.PDF", "5B3C0F")
    assert name != upload_name("inbox/年报 2023.PDF", "5B3C0E")
    assert upload_name("inbox/notes", "E1").count(".") == 0
    assert upload_name("inbox/notes", "E1", "docx").endswith(".docx")
    assert upload_name("in.box/a b", "E1", "../x").count(".") == 0  # a suffix that is no suffix is left out


def test_a_file_object_is_read_into_a_value():
    body = {"id": "file-fe-1", "bytes": 2055, "created_at": 1729065448, "filename": "test.txt", "object": "file"}
    body |= {"purpose": "file-extract", "status": "processed", "status_details": None}
    assert FileInfo.of(body) == FileInfo("file-fe-1", 2055, "test.txt", "processed", "file-extract", 1729065448)
    with pytest.raises(ValueError):
        FileInfo.of({"object": "file"})


def test_names_and_ids_are_checked_before_anything_is_sent():
    files = DashScopeFiles(API_KEY, "http://127.0.0.1:9/api/v1")
    with pytest.raises(ValueError):
        files.upload('a"; name="purpose', 1, [b"x"])
    with pytest.raises(ValueError):
        files.retrieve("../../api/v1/services")
    assert files._session is None


def test_its_session_ignores_the_environment_unless_a_proxy_is_set(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert DashScopeFiles(API_KEY)._start().trust_env is False
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert DashScopeFiles(API_KEY)._start().trust_env is True


def test_a_base_url_that_is_no_url_is_the_configuration_error():
    with pytest.raises(InvalidConfig) as raised:
        DashScopeFiles(API_KEY, "ftp://files.example.com/api/v1").list()
    assert raised.value.variable == "DASHSCOPE_HTTP_BASE_URL"


def test_the_key_stays_out_of_the_object():
    files = DashScopeFiles(API_KEY)
    assert API_KEY not in repr(files) and API_KEY not in files.url


def test_without_time_left_nothing_is_sent():
    files = DashScopeFiles(API_KEY, remaining=lambda: 0.0)
    with pytest.raises(TransientUpstreamError):
        files.list()
    assert files._session is None
