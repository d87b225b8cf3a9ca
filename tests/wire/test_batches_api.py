"""DashScopeBatches and DashScopeFiles.lines over real sockets against DashScope's stand-in: a job's life,
its output and error files (streamed), the stand-in's knobs, what each failure means, and the deadline."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from handler.ask.batches import BatchJob, DashScopeBatches
from handler.ask.files import BATCH, DashScopeFiles
from handler.errors import AccountFailure, QwenError, TransientUpstreamError
from handler.local.standin import DashScopeStandIn
from handler.local.standin_batches import PATH as BATCHES_PATH
from handler.local.standin_batches import answer_text, digest
from handler.local.standin_files import PATH as FILES_PATH
from handler.local.standin_files import SERVER_ERROR, THROTTLED, UNAUTHORIZED

KEY = "sk-batches-wire-0000"


@pytest.fixture
def server() -> Iterator[DashScopeStandIn]:
    with DashScopeStandIn(api_key=KEY) as standin:
        yield standin


@pytest.fixture
def files(server: DashScopeStandIn) -> DashScopeFiles:
    return DashScopeFiles(KEY, server.url, read_timeout=10)


@pytest.fixture
def batches(files: DashScopeFiles) -> DashScopeBatches:
    return DashScopeBatches(files)


def messages(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"question {n}: what is {n} + {n}?"}]


def request(n: int, *, model: str = "qwen-plus", custom_id: str | None = None, url: str = "/v1/chat/completions"):
    body = {"model": model, "messages": messages(n)}
    return {"custom_id": custom_id or str(n), "method": "POST", "url": url, "body": body}


def jsonl(lines: list[object]) -> bytes:
    return b"".join(json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in lines)


def upload(files: DashScopeFiles, data: bytes, name: str = "qwen-fc-questions.jsonl") -> str:
    return files.upload(name, len(data), [data[i : i + 65536] for i in range(0, len(data), 65536)], purpose=BATCH).id


def submit(files: DashScopeFiles, batches: DashScopeBatches, lines: list[object]) -> BatchJob:
    return batches.create(upload(files, jsonl(lines)))


def poll(batches: DashScopeBatches, job: BatchJob, limit: int = 10) -> list[str]:
    """The states a job goes through until it is finished."""
    seen = [job.status]
    while not job.finished and len(seen) <= limit:
        job = batches.retrieve(job.id)
        seen.append(job.status)
    return seen


def finished(batches: DashScopeBatches, job: BatchJob) -> BatchJob:
    poll(batches, job)
    return batches.retrieve(job.id)  # a finished job stays as it is


def parsed(files: DashScopeFiles, file_id: str | None) -> list[dict]:
    assert file_id is not None
    return [json.loads(line) for line in files.lines(file_id)]


def test_a_job_runs_from_upload_to_its_output(server, files, batches):
    lines = [request(n) for n in range(1, 6)]
    input_id = upload(files, jsonl(lines))
    assert server.files.files[input_id].purpose == "batch"
    assert server.files.requests[0].fields == {"purpose": "batch"}
    job = batches.create(input_id, metadata={"key": "inbox/q.jsonl"})
    assert (job.status, job.input_file_id, job.output_file_id, job.finished) == ("validating", input_id, None, False)
    assert job.created_at and job.created_at <= time.time()
    assert poll(batches, job) == ["validating", "in_progress", "finalizing", "completed"]
    done = batches.retrieve(job.id)
    assert (done.total, done.completed, done.failed, done.error_file_id, done.errors) == (5, 5, 0, None, ())
    assert done.finished
    output = parsed(files, done.output_file_id)
    assert [line["custom_id"] for line in output] == ["1", "2", "3", "4", "5"]
    for n, line in enumerate(output, 1):
        response = line["response"]
        assert response["status_code"] == 200 and line["error"] is None
        assert response["body"]["choices"][0]["message"]["content"] == answer_text(messages(n))
        assert digest(messages(n)) in answer_text(messages(n))
        assert response["body"]["usage"]["total_tokens"] > 0
    sent = server.batches.counts
    assert sent[f"POST {BATCHES_PATH}"] == 1 and sent[f"GET {BATCHES_PATH}/{job.id}"] == 4
    assert sent[f"GET {FILES_PATH}/{done.output_file_id}/content"] == 1


def test_the_job_files_are_listed_and_deleted_like_any_other(server, files, batches):
    server.batches.fail("2")
    done = finished(batches, submit(files, batches, [request(1), request(2)]))
    listed = {f.id: f.purpose for f in files.list()}
    assert listed == {
        done.input_file_id: "batch",
        done.output_file_id: "batch_output",
        done.error_file_id: "batch_output",
    }
    for file_id in listed:
        files.delete(file_id)
    assert files.list() == [] and sorted(server.files.deleted) == sorted(listed)
    with pytest.raises(QwenError) as gone:
        list(files.lines(done.output_file_id))
    assert gone.value.status_code == 404


def test_failed_lines_go_to_the_error_file(server, files, batches):
    server.batches.fail("2", "4", status=400, code="DataInspectionFailed", message="inappropriate content")
    done = finished(batches, submit(files, batches, [request(n) for n in range(1, 6)]))
    assert (done.status, done.total, done.completed, done.failed) == ("completed", 5, 3, 2)
    assert [line["custom_id"] for line in parsed(files, done.output_file_id)] == ["1", "3", "5"]
    errors = parsed(files, done.error_file_id)
    assert [line["custom_id"] for line in errors] == ["2", "4"]
    assert {line["error"]["code"] for line in errors} == {"DataInspectionFailed"}
    assert {line["response"]["status_code"] for line in errors} == {400}


def test_a_cancelled_job_goes_through_cancelling(server, files, batches):
    job = submit(files, batches, [request(1), request(2)])
    cancelled = batches.cancel(job.id)
    assert (cancelled.status, cancelled.finished) == ("cancelling", False)
    assert poll(batches, cancelled) == ["cancelling", "cancelled"]
    done = batches.retrieve(job.id)
    assert (done.output_file_id, done.error_file_id) == (None, None)
    with pytest.raises(QwenError) as refused:  # finished: nothing left to cancel
        batches.cancel(job.id)
    assert refused.value.status_code == 400 and not isinstance(refused.value, TransientUpstreamError)


def test_a_job_cancelled_in_progress_keeps_what_it_did(server, files, batches):
    job = submit(files, batches, [request(n) for n in range(1, 5)])
    assert batches.retrieve(job.id).status == "in_progress"
    assert poll(batches, batches.cancel(job.id)) == ["cancelling", "cancelled"]
    done = batches.retrieve(job.id)
    assert (done.completed, done.failed) == (2, 2)
    assert [line["custom_id"] for line in parsed(files, done.output_file_id)] == ["1", "2"]
    assert {line["error"]["code"] for line in parsed(files, done.error_file_id)} == {"batch_cancelled"}


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [request(1), request(2, custom_id="1")],
            "duplicate_custom_id: custom_id 1 is used by an earlier line (line 2)",
        ),
        ([request(1), request(2, model="qwen-max")], "mismatched_model"),
        ([request(1, url="/v1/embeddings")], "invalid_url"),
        ([request(1), "not an object"], "invalid_json_line: this line is not a JSON object (line 2)"),
        ([request(1, model="no-such-model")], "model_not_found"),
        ([], "empty_file"),
    ],
)
def test_a_file_that_breaks_the_rules_fails_validation(server, files, batches, lines, expected):
    job = submit(files, batches, lines) if lines else batches.create(upload(files, b"\n"))
    assert poll(batches, job) == ["validating", "failed"]
    failed = batches.retrieve(job.id)
    assert failed.finished and failed.output_file_id is None and failed.error_file_id is None
    assert any(error.startswith(expected) for error in failed.errors), failed.errors


def test_a_line_that_is_not_json_fails_validation(server, files, batches):
    job = batches.create(upload(files, jsonl([request(1)]) + b"{not json\n"))
    assert poll(batches, job)[-1] == "failed"
    assert batches.retrieve(job.id).errors == ("invalid_json_line: this line is not valid JSON (line 2)",)


def test_the_validation_knob_fails_a_good_file(server, files, batches):
    server.batches.fail_validation = "the input file is invalid"
    job = submit(files, batches, [request(1)])
    assert poll(batches, job) == ["validating", "failed"]
    assert batches.retrieve(job.id).errors == ("validation_failed: the input file is invalid",)


def test_an_expired_job_has_half_its_lines_answered(server, files, batches):
    server.batches.expire = True
    job = submit(files, batches, [request(n) for n in range(1, 8)])
    assert poll(batches, job) == ["validating", "in_progress", "expired"]
    done = batches.retrieve(job.id)
    assert (done.total, done.completed, done.failed) == (7, 3, 4)
    assert [line["custom_id"] for line in parsed(files, done.output_file_id)] == ["1", "2", "3"]
    errors = parsed(files, done.error_file_id)
    assert [line["custom_id"] for line in errors] == ["4", "5", "6", "7"]
    assert {line["error"]["code"] for line in errors} == {"batch_expired"}


def test_shuffled_output_still_names_each_line(server, files, batches):
    server.batches.shuffle = 7
    done = finished(batches, submit(files, batches, [request(n) for n in range(1, 21)]))
    output = parsed(files, done.output_file_id)
    order = [line["custom_id"] for line in output]
    assert order != sorted(order, key=int) and sorted(order, key=int) == [str(n) for n in range(1, 21)]
    for line in output:
        assert line["response"]["body"]["choices"][0]["message"]["content"] == answer_text(
            messages(int(line["custom_id"]))
        )


def test_5000_lines_are_read_in_bounded_memory(server, files, batches):
    lines = [request(n) for n in range(1, 5001)]
    done = finished(batches, submit(files, batches, lines))
    assert (done.status, done.completed) == ("completed", 5000)
    size = server.files.files[done.output_file_id].size
    assert size > 2_000_000
    list(files.lines(done.input_file_id))  # the session and its imports, before measuring
    tracemalloc.start()
    try:
        count, last = 0, b""
        for line in files.lines(done.output_file_id):
            count, last = count + 1, line
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 5000 and json.loads(last)["custom_id"] == "5000"
    # about 0.4 MB whatever the file's size (a few 64 KiB pieces on both ends of the socket): not the file
    assert peak < size / 5, f"reading {size:,} bytes held {peak:,} at its peak"


def test_a_line_split_across_pieces_and_crlf_line_ends(server, files):
    lines = [b'{"n": %d, "pad": "%s"}' % (n, b"x" * 1000) for n in range(300)] + [b'{"n": 300}']
    input_id = upload(files, b"\r\n".join(lines[:150]) + b"\r\n\n" + b"\n".join(lines[150:]))  # no end after the last
    assert list(files.lines(input_id)) == lines  # line ends and the blank line dropped, every line whole


@pytest.mark.parametrize("verb", ["create", "retrieve", "cancel", "lines"])
def test_failures_are_read_by_the_one_table(server, files, batches, verb):
    job = submit(files, batches, [request(1)])
    call = {
        "create": lambda: batches.create(job.input_file_id),
        "retrieve": lambda: batches.retrieve(job.id),
        "cancel": lambda: batches.cancel(job.id),
        "lines": lambda: list(files.lines(job.input_file_id)),
    }[verb]
    server.files.fail_next(UNAUTHORIZED, THROTTLED, SERVER_ERROR)
    with pytest.raises(AccountFailure) as account:
        call()
    assert (account.value.status_code, account.value.code) == (401, "InvalidApiKey")
    assert KEY not in account.value.message and "fix:" in account.value.message
    with pytest.raises(TransientUpstreamError) as throttled:
        call()
    assert not isinstance(throttled.value, AccountFailure) and throttled.value.code == "Throttling"
    with pytest.raises(TransientUpstreamError) as failed:
        call()
    assert failed.value.code == "InternalError"
    for raised in (account, throttled, failed):  # each message quoted the Authorization header back
        assert "request authorization" in raised.value.message and KEY not in str(raised.value)


def test_a_refusal_is_not_transient(server, files, batches):
    with pytest.raises(QwenError) as unknown:
        batches.retrieve("batch_999999_standin")
    assert unknown.value.status_code == 404 and not isinstance(unknown.value, TransientUpstreamError)
    assert "batch API cannot retrieve" in unknown.value.message
    with pytest.raises(QwenError) as missing:
        batches.create("file-fe-999999")
    assert missing.value.status_code == 400 and not isinstance(missing.value, TransientUpstreamError)


def test_a_wrong_key_is_the_account_failure(server):
    with pytest.raises(AccountFailure) as raised:
        DashScopeBatches(DashScopeFiles("sk-wrong-key-00000000", server.url)).retrieve("batch_000001_standin")
    assert raised.value.code == "InvalidApiKey" and "sk-wrong" not in raised.value.message


@pytest.mark.parametrize("window", ["24h", "336h", "1d", "14d"])
def test_the_windows_the_pages_allow(server, files, batches, window):
    job = batches.create(upload(files, jsonl([request(1)])), window=window)
    assert server.batches.jobs[job.id].window == window


def test_bad_arguments_are_refused_before_any_request(server, batches):
    for window in ("23h", "337h", "15d", "24", "1w"):
        with pytest.raises(ValueError, match="window"):
            batches.create("file-fe-000001", window=window)
    with pytest.raises(ValueError, match="endpoint"):
        batches.create("file-fe-000001", endpoint="https://elsewhere/v1/chat")
    with pytest.raises(ValueError, match="file id"):
        batches.retrieve("../files")
    assert server.batches.counts == {}


def test_a_hung_endpoint_is_left_when_the_time_is_up(server):
    server.files.stall()
    deadline = time.monotonic() + 0.6
    bounded = DashScopeFiles(KEY, server.url, remaining=lambda: deadline - time.monotonic())
    started = time.monotonic()
    with pytest.raises(TransientUpstreamError) as raised:
        DashScopeBatches(bounded).retrieve("batch_000001_standin")
    assert time.monotonic() - started < 2.0 and raised.value.code == "RequestTimeout"


def test_no_request_starts_without_time_left(server):
    late = DashScopeBatches(DashScopeFiles(KEY, server.url, remaining=lambda: 0.1))
    with pytest.raises(TransientUpstreamError) as raised:
        late.create("file-fe-000001")
    assert raised.value.code == "FilesUnavailable" and server.batches.counts == {}


def test_a_slow_download_stops_at_the_deadline(server, files, batches):
    done = finished(batches, submit(files, batches, [request(n) for n in range(1, 2001)]))
    server.files.content_pause = 0.2  # about 5 pieces a second: the whole file would take seconds
    deadline = time.monotonic() + 1.0
    bounded = DashScopeFiles(KEY, server.url, remaining=lambda: deadline - time.monotonic())
    started, read = time.monotonic(), 0
    with pytest.raises(TransientUpstreamError) as raised:
        for _ in bounded.lines(done.output_file_id):
            read += 1
    assert time.monotonic() - started < 2.0 and 0 < read < 2000
    assert raised.value.code == "FilesUnavailable" and "deadline" in raised.value.message


def test_more_than_50000_lines_fail_validation(server, files, batches):
    line = json.dumps(request(1)).encode()
    data = b"".join(line.replace(b'"custom_id": "1"', b'"custom_id": "%d"' % n) + b"\n" for n in range(1, 50_002))
    job = batches.create(upload(files, data))
    assert poll(batches, job) == ["validating", "failed"]
    assert batches.retrieve(job.id).errors == ("too_many_requests: a batch holds at most 50,000 requests (line 50001)",)


def test_a_line_over_6_mb_fails_validation(server, files, batches):
    big = request(2)
    big["body"]["messages"][0]["content"] = "x" * (6 * 1024 * 1024)
    job = submit(files, batches, [request(1), big, request(3, custom_id="3")])
    assert poll(batches, job) == ["validating", "failed"]
    assert batches.retrieve(job.id).errors == ("line_too_large: a request is at most 6,291,456 bytes (line 2)",)


def test_a_document_content_is_not_downloaded(server, files):
    document = files.upload("qwen-fc-a.txt", 5, [b"hello"])  # purpose file-extract: its content is not kept
    with pytest.raises(QwenError) as refused:
        list(files.lines(document.id))
    assert refused.value.status_code == 400 and not isinstance(refused.value, TransientUpstreamError)


def test_a_silent_download_is_not_waited_for_past_the_deadline(server, files, batches):
    done = finished(batches, submit(files, batches, [request(n) for n in range(1, 1001)]))
    server.files.content_pause = 5.0  # the first piece, then silence longer than the time left
    deadline = time.monotonic() + 1.0
    asked = iter([60.0])  # at the request's start the time left is long: its read timeout is the full 30 s
    bounded = DashScopeFiles(
        KEY, server.url, read_timeout=30, remaining=lambda: next(asked, deadline - time.monotonic())
    )
    started = time.monotonic()
    with pytest.raises(TransientUpstreamError) as raised:
        list(bounded.lines(done.output_file_id))
    assert time.monotonic() - started < 2.0, raised.value
    assert raised.value.code == "FilesUnavailable" and "deadline" in raised.value.message
