"""`python -m handler files`: the function's leftover uploads listed and purged, the account's others untouched."""

from __future__ import annotations

import io

import pytest

from handler.ask.files import upload_name
from handler.local import cli
from tests.conftest import API_KEY
from tests.support.processes import run_cli as run


@pytest.fixture
def account(standin, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", API_KEY)
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", standin.url)
    files = standin.files
    ours = [
        files._store(upload_name(f"inbox/{n}.pdf", "E1", "pdf"), "file-extract", 1000 + n, "0" * 64) for n in (1, 2)
    ]
    theirs = files._store("contract.pdf", "file-extract", 5, "1" * 64)
    return ours, theirs


def files(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    status = cli.main(["files", "--no-s-yaml", *args], out=out)
    return status, out.getvalue()


def test_lists_only_the_functions_files(standin, account):
    ours, theirs = account
    status, said = files()
    assert status == 0
    for info in ours:
        assert info.id in said and info.filename in said and f"{info.size:,} bytes" in said and "processed" in said
    assert theirs.id not in said and "2 file(s), 2,003 bytes" in said and "--purge" in said
    assert standin.files.deleted == []


def test_purge_deletes_them_and_never_the_accounts_others(standin, account):
    ours, theirs = account
    status, said = files("--purge")
    assert status == 0
    assert standin.files.deleted == [info.id for info in ours] and list(standin.files.files) == [theirs.id]
    assert all(f"deleted {info.id} {info.filename}" in said for info in ours) and "deleted 2 of 2" in said
    assert files() == (0, "no leftover uploads (no file named qwen-fc-...)\n")


def test_a_failed_delete_is_said_and_the_status_is_1(standin, account, monkeypatch):
    ours, _ = account
    original = standin.files._next_failure

    def failing_first_delete():
        last = standin.files.requests[-1]
        if last.method == "DELETE" and last.path.endswith(ours[0].id):
            return (500, "InternalError", "down")
        return original()

    monkeypatch.setattr(standin.files, "_next_failure", failing_first_delete)
    status, said = files("--purge")
    assert status == 1 and f"failed  {ours[0].id}" in said and "InternalError" in said
    assert f"deleted {ours[1].id}" in said and "deleted 1 of 2, 1 failed" in said
    assert list(standin.files.files) != [] and ours[0].id in standin.files.files


def test_every_page_is_read(standin, account):
    more = [standin.files._store(upload_name(f"k{n}.pdf", "E", "pdf"), "file-extract", 1, "0" * 64) for n in range(150)]
    status, said = files("--purge")
    assert status == 0 and "deleted 152 of 152" in said and all(info.id in said for info in more)


def test_a_refused_key_is_one_line_and_status_1(standin, account, monkeypatch, capsys):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-wrong-0000")
    status, _ = files()
    err = capsys.readouterr().err
    assert status == 1 and "cannot list the files" in err and "sk-wrong-0000" not in err
    assert standin.files.deleted == []


def test_offline_in_a_fresh_process():
    done = run("files", "--offline", "--purge")
    assert done.returncode == 0, done.stderr
    assert b"no leftover uploads" in done.stdout


def test_without_a_key_it_says_so():
    done = run("files", "--no-s-yaml")
    assert done.returncode == 2 and b"DASHSCOPE_API_KEY is not set" in done.stderr
