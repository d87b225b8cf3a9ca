"""`python -m handler --document PATH "question"`: a local document asked through the file route, streamed from
the file, offline through the stand-in; a URL-route model or a file that is no document refused before anything."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from types import SimpleNamespace

from handler.local import document
from tests.conftest import API_KEY
from tests.support.documents import FAMILIES, pdf
from tests.support.processes import run_cli as run


def content(done) -> str:
    return json.loads(done.stdout)["output"]["choices"][0]["message"]["content"]


def test_a_local_pdf_is_asked_by_file_id_offline(tmp_path):
    data = FAMILIES["report.pdf"]
    (tmp_path / "report.pdf").write_bytes(data)
    done = run("--offline", "--document", str(tmp_path / "report.pdf"), "这份报告的结论是什么?")
    assert done.returncode == 0, done.stderr
    said = content(done)
    assert "You asked: 这份报告的结论是什么?" in said
    assert f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}" in said
    line = [json.loads(x.split(" ", 1)[1]) for x in done.stderr.decode().splitlines() if '"question"' in x][-1]
    assert (
        line["document_route"] == "file" and line["model"] == "qwen-long" and line["source"] == "local file report.pdf"
    )


def test_without_words_the_document_prompt_is_asked(tmp_path):
    (tmp_path / "book.epub").write_bytes(FAMILIES["book.epub"])
    done = run("--offline", "--text", "--document", str(tmp_path / "book.epub"))
    assert done.returncode == 0, done.stderr
    assert "You asked: 请总结这份文档的主要内容" in done.stdout.decode()


def test_a_url_route_model_is_refused_naming_the_ways_that_work(tmp_path):
    (tmp_path / "report.pdf").write_bytes(FAMILIES["report.pdf"])
    for done in (
        run("--offline", "--model", "qwen-doc-turbo", "--document", str(tmp_path / "report.pdf"), "?"),
        run(
            "--offline", "--document", str(tmp_path / "report.pdf"), "?", env={"QWEN_DOCUMENT_MODEL": "qwen-doc-turbo"}
        ),
    ):
        said = done.stderr.decode()
        assert done.returncode == 2 and "qwen-doc-turbo" in said and "--oss-file" in said and "qwen-long" in said
        assert done.stdout == b""


def test_a_file_that_is_no_document_or_is_refused_is_a_usage_error(tmp_path):
    (tmp_path / "notes.pdf").write_text("just text")
    (tmp_path / "locked.pdf").write_bytes(pdf().replace(b"/Root 1 0 R >>", b"/Root 1 0 R /Encrypt 5 0 R >>"))
    plain = run("--offline", "--document", str(tmp_path / "notes.pdf"), "?")
    assert plain.returncode == 2 and b"not a document" in plain.stderr
    locked = run("--offline", "--document", str(tmp_path / "locked.pdf"), "?")
    assert locked.returncode == 2 and b"DocumentEncrypted" in locked.stderr
    missing = run("--offline", "--document", str(tmp_path / "gone.pdf"), "?")
    assert missing.returncode == 2 and b"no such file" in missing.stderr
    both = run("--offline", "--document", str(tmp_path / "locked.pdf"), "--event-file", "events/question.json")
    assert both.returncode == 2 and b"--document goes with a question given as arguments" in both.stderr


def test_the_document_is_streamed_from_the_file(standin, tmp_path, monkeypatch):
    """A 16 MiB PDF arrives whole at the files API while the traced peak stays a small part of it."""
    import dashscope  # noqa: F401  # the SDK's first import is not the document's memory

    data = pdf(bytes(range(256)) * (16 * 4096))
    path = tmp_path / "large.pdf"
    path.write_bytes(data)
    monkeypatch.setenv("DASHSCOPE_API_KEY", API_KEY)
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", standin.url)
    monkeypatch.setenv("QWEN_ALLOWED_MODELS", "qwen-turbo,qwen-long")
    source = document.source(str(path))
    assert source.kind == "pdf" and source.size == len(data)
    assert max(len(piece) for piece in source.chunks()) == document.CHUNK
    context = SimpleNamespace(
        request_id="local-1", function=SimpleNamespace(timeout=60), region="local", credentials=None
    )
    tracemalloc.start()
    try:
        returned = json.loads(document.ask(source, "总结", context))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert returned["status_code"] == 200
    assert (
        f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}"
        in returned["output"]["choices"][0]["message"]["content"]
    )
    assert peak < len(data) / 4, peak
    assert standin.files.files == {} and len(standin.files.deleted) == 1
