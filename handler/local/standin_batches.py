"""A local stand-in for DashScope's OpenAI-compatible Batch API: POST /compatible-mode/v1/batches,
GET /batches/{id}, POST /batches/{id}/cancel, served by DashScope's stand-in (handler/local/standin.py, as
`batches`) beside the files endpoints (handler/local/standin_files.py) whose files it reads and writes.

A job moves one state per retrieve: validating -> in_progress (or failed, with its validation errors) ->
finalizing -> completed, and a cancelled one cancelling -> cancelled. Validation reads the input file as
DashScope's pages describe it: JSON lines, each an object with a unique `custom_id`, `method` POST, `url`
the job's endpoint and a `body` whose `model` is the same on every line (and one the stand-in serves, when
`known` is given); at most 50,000 lines of at most 6 MB. The error codes are OpenAI's style, invented here:
DashScope's own words for them are not documented.

On completion each line is answered with a chat.completion body whose content names `digest(messages)`, so
a test can tell which line an answer belongs to, and with usage; failed lines go to the error file. Output
and error files are files of the files stand-in (purpose `batch_output`): listed, downloaded and deleted
like any other.

Knobs (attributes, set them between jobs; `reset` restores them):
- `fail_validation = "message"`: every job fails validation with this error, whatever its file holds.
- `expire = True`: a job in progress ends `expired` with the first half of its lines answered (output file)
  and the rest in the error file with code `batch_expired`.
- `fail("7", "9", status=..., code=..., message=...)`: these custom_ids' lines fail (error file).
- `shuffle = seed`: the output file's lines come in an order shuffled with that seed, not the input's.
- `answer_chars = n`: each answer's content is padded to at least n characters (bench/batches.py: answer
  files as large as real answers make them).
- `counts`: requests per "METHOD path" to the compatible-mode API (files and batches), e.g.
  `counts["GET /compatible-mode/v1/batches/batch_000001_standin"]`.
- cancel: a job cancelled while validating ends `cancelled` with no files; one cancelled while in progress
  or finalizing ends `cancelled` with half its lines answered and the rest failed with `batch_cancelled`.
  Cancelling a finished job is refused with 400 (as OpenAI's API does; DashScope's answer is not documented).
- `fail_next(...)`: the files stand-in's scripted failures, which the next compatible-mode requests
  (files or batches) answer; its `stall` stalls both.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from handler.local import standin_files
from handler.local.standin_files import FilesStandIn

PATH = "/compatible-mode/v1/batches"
ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/chat/ds-test"})
MAX_LINES = 50_000
MAX_LINE_BYTES = 6 * 1024 * 1024
MAX_ERRORS = 100  # a job's validation errors listed at most
OUTPUT = "batch_output"  # the purpose of the files a job writes
EXPIRED = ("batch_expired", "This request could not be executed before the completion window expired.")
CANCELLED = ("batch_cancelled", "This request was not executed: the batch was cancelled.")


def digest(messages: Any) -> str:
    """What an answer's content names: the first 16 hex digits of the sha256 of the line's messages."""
    text = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def answer_text(messages: Any) -> str:
    return f"Emulated batch answer to messages {digest(messages)}."


@dataclass
class Job:
    id: str
    input_file_id: str
    endpoint: str
    window: str
    metadata: dict[str, str]
    created_at: int
    status: str = "validating"
    errors: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    times: dict[str, int] = field(default_factory=dict)  # "{status}_at" of each state reached
    worked: bool = False  # whether it was in progress when cancelled: then half its lines are answered

    def body(self) -> dict[str, Any]:
        errors = {"object": "list", "data": self.errors} if self.errors else None
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            **self.times,
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata or None,
        }


class BatchesStandIn:
    """The batch endpoints over `files`; `known(model)` says whether a model is served (None: any is)."""

    def __init__(self, files: FilesStandIn, *, known: Callable[[str], bool] | None = None) -> None:
        self.files = files
        self.known = known
        self.jobs: dict[str, Job] = {}
        self.counts: Counter[str] = Counter()
        self._count = 0
        self._lock = threading.RLock()
        self.reset_knobs()

    def reset_knobs(self) -> None:
        self.fail_validation: str | None = None
        self.expire = False
        self.failing: dict[str, tuple[int, str, str]] = {}  # custom_id -> (status, code, message)
        self.shuffle: int | None = None
        self.answer_chars = 0
        self.without_usage: set[str] = set()  # custom_ids answered with no usage object

    def reset(self) -> None:
        with self._lock:
            self.jobs.clear()
            self.counts.clear()
            self.reset_knobs()

    def fail(
        self,
        *custom_ids: str,
        status: int = 500,
        code: str = "InternalError",
        message: str = "An internal error has occured, please try again later.",
    ) -> None:
        """These lines fail: each goes to the error file with this status, code and message."""
        with self._lock:
            self.failing.update({custom_id: (status, code, message) for custom_id in custom_ids})

    def fail_next(self, *failures: tuple[int, str, str]) -> None:
        self.files.fail_next(*failures)

    def counted(self, method: str, path: str) -> None:
        with self._lock:
            self.counts[f"{method} {path}"] += 1

    def create(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            return 400, _error("InvalidParameter", "the body must be a JSON object")
        file_id, endpoint, window = body.get("input_file_id"), body.get("endpoint"), body.get("completion_window")
        stored = self.files.files.get(file_id) if isinstance(file_id, str) else None
        if stored is None:
            return 400, _error("InvalidParameter", f"input_file_id {str(file_id)[:80]} is not a file of this account")
        if stored.purpose != "batch":
            return 400, _error("InvalidParameter", f"input file {file_id} has purpose {stored.purpose}, not batch")
        if endpoint not in ENDPOINTS:
            return 400, _error("InvalidParameter", f"endpoint must be one of {sorted(ENDPOINTS)}")
        if not _window_ok(window):
            return 400, _error("InvalidParameter", "completion_window must be 24h to 336h (or 1d to 14d)")
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        with self._lock:
            self._count += 1
            job = Job(
                f"batch_{self._count:06d}_standin",
                file_id,
                endpoint,
                window,
                {str(k): str(v) for k, v in metadata.items()},
                int(time.time()),
            )
            self.jobs[job.id] = job
            return 200, job.body()

    def retrieve(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        """The job after one more step of its life."""
        with self._lock:
            job = self.jobs.get(batch_id)
            if job is None:
                return 404, _error("NotFound", f"Batch {batch_id[:80]} not found.")
            self._advance(job)
            return 200, job.body()

    def cancel(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            job = self.jobs.get(batch_id)
            if job is None:
                return 404, _error("NotFound", f"Batch {batch_id[:80]} not found.")
            if job.status in ("completed", "failed", "expired", "cancelled"):
                return 400, _error("InvalidParameter", f"Batch {batch_id} is {job.status} and cannot be cancelled.")
            if job.status != "cancelling":
                job.worked = job.status in ("in_progress", "finalizing")
                self._enter(job, "cancelling")
            return 200, job.body()

    def _enter(self, job: Job, status: str) -> None:
        job.status = status
        job.times[f"{status}_at"] = int(time.time())

    def _advance(self, job: Job) -> None:
        if job.status == "validating":
            errors, total = self._validate(job)
            job.total = total
            if errors:
                job.errors = errors
                self._enter(job, "failed")
            else:
                self._enter(job, "in_progress")
        elif job.status == "in_progress" and self.expire:
            self._answer(job, half=EXPIRED)
            self._enter(job, "expired")
        elif job.status == "in_progress":
            self._enter(job, "finalizing")
        elif job.status == "finalizing":
            self._answer(job)
            self._enter(job, "completed")
        elif job.status == "cancelling":
            if job.worked:
                self._answer(job, half=CANCELLED)
            self._enter(job, "cancelled")

    def _validate(self, job: Job) -> tuple[list[dict[str, Any]], int]:
        """The input file's errors (at most MAX_ERRORS) and its number of lines."""
        errors: list[dict[str, Any]] = []

        def error(code: str, message: str, line: int | None = None) -> None:
            if len(errors) < MAX_ERRORS:
                errors.append({"code": code, "message": message, "line": line, "param": None})

        if self.fail_validation is not None:
            error("validation_failed", self.fail_validation)
        seen: set[str] = set()
        models: set[str] = set()
        number = 0
        for number, raw in enumerate(self._lines(job.input_file_id), 1):
            if number > MAX_LINES:
                error("too_many_requests", f"a batch holds at most {MAX_LINES:,} requests", number)
                break
            if len(raw) > MAX_LINE_BYTES:
                error("line_too_large", f"a request is at most {MAX_LINE_BYTES:,} bytes", number)
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                error("invalid_json_line", "this line is not valid JSON", number)
                continue
            if not isinstance(line, dict):
                error("invalid_json_line", "this line is not a JSON object", number)
                continue
            custom_id = line.get("custom_id")
            if not isinstance(custom_id, str) or not custom_id:
                error("missing_required_parameter", "custom_id is required and must be a string", number)
            elif custom_id in seen:
                error("duplicate_custom_id", f"custom_id {custom_id[:64]} is used by an earlier line", number)
            else:
                seen.add(custom_id)
            if line.get("method") != "POST":
                error("invalid_method", "method must be POST", number)
            if line.get("url") != job.endpoint:
                error("invalid_url", f"url must be the batch's endpoint {job.endpoint}", number)
            body = line.get("body")
            model = body.get("model") if isinstance(body, dict) else None
            if not isinstance(model, str) or not model:
                error("missing_required_parameter", "body.model is required", number)
                continue
            if model not in models:
                if models:
                    error("mismatched_model", f"one model per batch: {model} after {sorted(models)[0]}", number)
                elif self.known is not None and not self.known(model):
                    error("model_not_found", f"Model not exist: {model}", number)
                models.add(model)
        if number == 0:
            error("empty_file", "the input file holds no requests")
        return errors, min(number, MAX_LINES)

    def _lines(self, file_id: str) -> Iterator[bytes]:
        rest = b""
        for piece in self.files.content(file_id):
            *complete, rest = (rest + piece).split(b"\n")
            yield from (line for line in complete if line.strip())
        if rest.strip():
            yield rest

    def _answer(self, job: Job, half: tuple[str, str] | None = None) -> None:
        """Write the job's output and error files: every line answered, or (`half`) the first half answered and
        the rest failed with that code and message."""
        answered, failed = [], []
        cut = job.total // 2 if half is not None else job.total
        for number, raw in enumerate(self._lines(job.input_file_id)):
            line = json.loads(raw)
            custom_id = line["custom_id"]
            request_id = f"standin-{job.id}-{number + 1}"
            if number >= cut:
                assert half is not None
                failed.append(_line(custom_id, request_id, None, {"code": half[0], "message": half[1]}))
            elif custom_id in self.failing:
                status, code, message = self.failing[custom_id]
                body = {"error": {"code": code, "message": message, "type": "invalid_request_error"}}
                error = {"code": code, "message": message}
                failed.append(
                    _line(custom_id, request_id, {"status_code": status, "request_id": request_id, "body": body}, error)
                )
            else:
                body = _completion(line["body"], request_id, self.answer_chars)
                if custom_id in self.without_usage:
                    del body["usage"]
                answered.append(
                    _line(custom_id, request_id, {"status_code": 200, "request_id": request_id, "body": body}, None)
                )
        if self.shuffle is not None:
            random.Random(self.shuffle).shuffle(answered)
        job.completed, job.failed = len(answered), len(failed)
        if answered:
            job.output_file_id = self.files.keep(f"{job.id}_output.jsonl", OUTPUT, answered).id
        if failed:
            job.error_file_id = self.files.keep(f"{job.id}_error.jsonl", OUTPUT, failed).id


def _line(custom_id: str, request_id: str, response: dict[str, Any] | None, error: dict[str, str] | None) -> bytes:
    line = {"id": f"batch_req_{request_id}", "custom_id": custom_id, "response": response, "error": error}
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"


def _completion(body: dict[str, Any], request_id: str, chars: int = 0) -> dict[str, Any]:
    messages = body.get("messages")
    content = answer_text(messages)
    content += " The answer goes on." * max(0, -(-(chars - len(content)) // 20))  # 20 characters a sentence
    prompt = max(1, len(json.dumps(messages, ensure_ascii=False)) // 4)
    completion = max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def _window_ok(window: Any) -> bool:
    if not isinstance(window, str) or len(window) < 2 or window[-1] not in "hd" or not window[:-1].isdigit():
        return False
    hours = int(window[:-1]) * (24 if window[-1] == "d" else 1)
    return 24 <= hours <= 336


def _error(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "code": code},
        "request_id": "batches-standin-req",
    }


def serve(handler: BaseHTTPRequestHandler, standin: BatchesStandIn, method: str) -> None:
    """Answer one request to the batch endpoints on `handler`'s connection (DashScope's stand-in's)."""
    files = standin.files
    path = urlsplit(handler.path).path
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    if files._stalled.is_set():
        files._released.wait()
        handler.close_connection = True
        return None
    failure = files._next_failure()
    if failure is not None:
        status, code, message = failure
        echo = handler.headers.get("Authorization", "")  # a careless upstream quoting the header back, as files'
        return _reply(handler, status, _error(code, f"{message} (request authorization: {echo})"))
    if files.api_key is not None and handler.headers.get("Authorization") != f"Bearer {files.api_key}":
        return _reply(handler, 401, _error(*standin_files.UNAUTHORIZED[1:]))
    rest = path[len(PATH) :].strip("/")
    batch_id, _, action = rest.partition("/")
    if method == "POST" and not rest:
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        return _reply(handler, *standin.create(body))
    if method == "GET" and batch_id and not action:
        return _reply(handler, *standin.retrieve(batch_id))
    if method == "POST" and batch_id and action == "cancel":
        return _reply(handler, *standin.cancel(batch_id))
    return _reply(handler, 404, _error("NotFound", "no such API"))


def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("x-request-id", "batches-standin-req")
    handler.end_headers()
    handler.wfile.write(data)
