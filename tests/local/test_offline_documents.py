"""`python -m handler --offline --oss-file` answers each document family through the stand-ins, asked the
deployment's QWEN_DOCUMENT_PROMPT (no emulated sidecar), the answer naming the bytes that arrived."""

from __future__ import annotations

import hashlib
import json

import pytest

from handler.local.deployed_env import variables
from handler.local.standin import DashScopeStandIn
from handler.local.standin_oss import emulated
from tests.support.documents import FAMILIES
from tests.support.processes import run_cli as run


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_is_answered_offline_from_its_bytes(tmp_path, name):
    data = FAMILIES[name]
    path = tmp_path / name
    path.write_bytes(data)
    done = run("--offline", "--oss-file", str(path))
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)["output"]["choices"][0]["message"]["content"]
    assert f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}" in said
    assert f"You asked: {variables()['QWEN_DOCUMENT_PROMPT']}" in said
    line = [json.loads(x.split(" ", 1)[1]) for x in done.stderr.decode().splitlines() if '"question"' in x][-1]
    assert line["document_parts"] == 1 and line["document_route"] == "file" and line["model"] == "qwen-long"


def test_a_documents_sidecar_is_not_emulated():
    assert emulated("questions/report.pdf.txt") is None and emulated("questions/book.epub.txt") is None


def test_the_stand_ins_parsing_counts_are_settable():
    standin = DashScopeStandIn(processing=3, parsing=2)
    try:
        stored = standin.files._store("qwen-fc-x.pdf", "file-extract", 1, "0" * 64)
        assert (stored.polls_left, stored.parses_left) == (3, 2)
        assert [standin.files.parsed(stored.id) for _ in range(3)] == [False, False, True]
    finally:
        standin._server.server_close()


@pytest.mark.parametrize("name", ["report.pdf", "letter.docx"])
def test_the_url_route_is_answered_offline_through_a_verified_signed_url(tmp_path, name):
    """qwen-doc-turbo offline: the DashScope stand-in fetches the signed URL from the OSS stand-in, which
    verifies its signature with the offline credentials."""
    data = FAMILIES[name]
    path = tmp_path / name
    path.write_bytes(data)
    models = f"{variables()['QWEN_ALLOWED_MODELS']},qwen-doc-turbo"
    env = {"QWEN_DOCUMENT_MODEL": "qwen-doc-turbo", "QWEN_ALLOWED_MODELS": models}
    done = run("--offline", "--oss-file", str(path), env=env)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)["output"]["choices"][0]["message"]["content"]
    assert f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}" in said
    line = [json.loads(x.split(" ", 1)[1]) for x in done.stderr.decode().splitlines() if '"question"' in x][-1]
    assert line["document_route"] == "url" and line["model"] == "qwen-doc-turbo"
    assert "Signature=" not in done.stdout.decode() + done.stderr.decode()
