"""The Batch API client's pure parts: its URL, the batch object read into a value, what it refuses to send,
and a 200 that holds no batch object."""

from __future__ import annotations

from typing import Any

import pytest

from handler.ask.batches import BatchJob, DashScopeBatches
from handler.ask.files import DashScopeFiles
from handler.errors import TransientUpstreamError
from tests.conftest import API_KEY

# A job as OpenAI's API describes one (DashScope's compatible mode answers the same fields).
BODY: dict[str, Any] = {
    "id": "batch_5a8c2e",
    "object": "batch",
    "endpoint": "/v1/chat/completions",
    "errors": None,
    "input_file_id": "file-batch-1",
    "completion_window": "24h",
    "status": "completed",
    "output_file_id": "file-batch_output-2",
    "error_file_id": "",
    "created_at": 1733000000,
    "request_counts": {"total": 10, "completed": 9, "failed": 1},
    "metadata": {"ds_name": "q"},
}


@pytest.mark.parametrize(
    ("base", "url"),
    [
        (None, "https://dashscope.aliyuncs.com/compatible-mode/v1/batches"),
        (
            "https://dashscope-intl.aliyuncs.com/api/v1/",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/batches",
        ),
        ("http://127.0.0.1:8123/api/v1", "http://127.0.0.1:8123/compatible-mode/v1/batches"),
    ],
)
def test_the_batches_endpoint_is_beside_the_files_endpoint(base, url):
    assert DashScopeBatches(DashScopeFiles(API_KEY, base)).url == url


def test_a_batch_object_is_read_into_a_value():
    job = BatchJob.of(BODY)
    assert job == BatchJob(
        "batch_5a8c2e", "completed", "file-batch-1", "file-batch_output-2", None, 10, 9, 1, (), 1733000000
    )
    assert job.finished


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        *[("validating", False), ("in_progress", False), ("finalizing", False), ("cancelling", False)],
        *[("completed", True), ("failed", True), ("expired", True), ("cancelled", True)],
    ],
)
def test_finished_means_the_job_changes_no_more(status, finished):
    assert BatchJob.of(BODY | {"status": status}).finished is finished


def test_validation_errors_become_messages():
    errors = {"object": "list", "data": [{"code": "invalid_url", "message": "url must be …", "line": 3}, "plain"]}
    job = BatchJob.of(BODY | {"status": "failed", "errors": errors, "request_counts": None, "created_at": None})
    assert job.errors == ("invalid_url: url must be … (line 3)", "plain")
    assert (job.total, job.completed, job.failed, job.created_at) == (0, 0, 0, None)
    many = {"data": [{"code": "x", "message": str(n)} for n in range(500)]}
    assert len(BatchJob.of(BODY | {"errors": many}).errors) == 20


@pytest.mark.parametrize("body", [None, [], {"status": "completed"}, BODY | {"status": "done"}, BODY | {"id": 7}])
def test_what_is_no_batch_object(body):
    with pytest.raises(ValueError):
        BatchJob.of(body)


def test_arguments_are_checked_before_anything_is_sent():
    files = DashScopeFiles(API_KEY, "http://127.0.0.1:9/api/v1")
    batches = DashScopeBatches(files)
    for window in ("0h", "23h", "337h", "15d", "24 h", "h"):
        with pytest.raises(ValueError):
            batches.create("file-1", window=window)
    with pytest.raises(ValueError):
        batches.create("file-1", endpoint="http://elsewhere/v1/chat/completions")
    with pytest.raises(ValueError):
        batches.cancel("batch/../../files")
    assert files._session is None


class _Reply:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012  # never changed

    def __init__(self, body: Any) -> None:
        self.body = body

    def json(self) -> Any:
        return self.body

    def __enter__(self) -> _Reply:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Session:
    def __init__(self, body: Any) -> None:
        self.body = body
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, **arguments: Any) -> _Reply:
        self.sent.append((method, url, arguments))
        return _Reply(self.body)


def test_a_200_without_a_batch_object_is_a_malformed_answer():
    files = DashScopeFiles(API_KEY, "http://127.0.0.1:9/api/v1")
    files._session = _Session({"object": "list"})
    with pytest.raises(TransientUpstreamError) as raised:
        DashScopeBatches(files).retrieve("batch_1")
    assert raised.value.code == "MalformedResponse" and "batch API cannot retrieve batch_1" in raised.value.message


def test_create_sends_the_documented_body():
    files = DashScopeFiles(API_KEY, "http://127.0.0.1:9/api/v1")
    files._session = session = _Session(BODY | {"status": "validating"})
    job = DashScopeBatches(files).create("file-batch-1", window="2d", metadata={"ds_name": "inbox/q.jsonl"})
    assert job.status == "validating"
    ((method, url, arguments),) = session.sent
    assert (method, url) == ("POST", "http://127.0.0.1:9/compatible-mode/v1/batches")
    assert arguments["json"] == {
        "input_file_id": "file-batch-1",
        "endpoint": "/v1/chat/completions",
        "completion_window": "2d",
        "metadata": {"ds_name": "inbox/q.jsonl"},
    }
    assert arguments["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in repr(job)
