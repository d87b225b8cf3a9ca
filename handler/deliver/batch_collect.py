"""Collect finished Batch API jobs: the timer trigger whose payload is {"collect": "batches"}.

For each bucket of QWEN_OSS_BUCKETS (configuration, never the event), the open submissions listed in
`<prefix>.batches/open.json` (OSS cannot be listed by this function's store, so submit adds its record
there and collect removes it, both under a short lock object). A submission whose jobs have all finished:
  1. its answer file `<prefix><key>.jsonl` is written exactly once per key and eTag (once.py, the same
     marker and answer file as the real-time route): the output and error files' lines are spilled to a
     temporary SQLite file by line number (they come in any order), then read back in input order
     beside the lines file's refusals into a temporary file, streamed to OSS from there (memory holds
     pieces, never the file); a source replaced since is not written over (SupersededAnswer); a line a
     failed job never answered says why the job failed (its first validation errors);
  2. the jobs' files are deleted at DashScope, the record marked done, and it leaves the open list;
  3. one `batch_collected` log line per job: lines answered, failed, refused, tokens, estimated cost at
     half the table's price, seconds from submit to collect, and a failed job's first validation errors.
A collect interrupted after writing finds the answer file stored (its source eTag) and only finishes 2-3.
An entry (or a bucket's list) that cannot be collected is logged as `batch_collect_failed`, named in the
result's `failed` and kept open; the others are still collected (docs/batches.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

from handler import internal, logs, redact
from handler.ask.batches import BatchJob, DashScopeBatches
from handler.ask.files import DashScopeFiles
from handler.deliver.batch_jobs import FOLDER, collected_key, dashscope_files, lines_key, record_key
from handler.deliver.context import DeliveryContext
from handler.deliver.jsonl_files import JsonlFileAnswers
from handler.deliver.once import SupersededAnswer, problem_of, with_retries
from handler.deliver.store import ObjectStore, shown_object
from handler.errors import BatchListUnreadable, ObjectNotFound, QwenError, TransientUpstreamError
from handler.result import Result

T = TypeVar("T")

OPEN = f"{FOLDER}open.json"  # the open submissions: ["<key>@<eTag>", ...]
LOCK = f"{FOLDER}open.lock"
LOCK_SECONDS = 30  # a lock older than this was abandoned by an invocation that ended while holding it
LOCK_POLL = 0.2
BATCH_PRICE = 0.5  # the Batch API's price, as a share of the real-time table's
PIECE = 256 * 1024
# Collect's pace at s.yaml's 0.05 vCPU: 94 s for a 50,000-line job (python -m bench.batches, docs/performance.md).
LINE_SECONDS = 0.002
START_SECONDS = 10
DEFERRED = "deferred"
# A line a finished job never answered, by how the job ended.
UNANSWERED = {"failed": "BatchFailed", "expired": "BatchExpired", "cancelled": "BatchCancelled"}
FAILED = "failed"
REASONS = 3  # a failed job's validation errors quoted in each of its lines: the first few say what to fix
REASON_CHARS = 200  # each quoted at most this long, so that 50,000 lines do not repeat a long message


def add_open(ctx: DeliveryContext, store: ObjectStore, bucket: str, entry: str) -> None:
    """List a submission as open (idempotent)."""
    _change_open(ctx, store, bucket, lambda entries: entries if entry in entries else [*entries, entry])


def collect(ctx: DeliveryContext) -> Result:
    """Collect every finished submission of every configured bucket; a summary of what was done. One entry (or
    bucket list) that cannot be collected is logged and named in `failed`, and the others are still collected."""
    store = ctx.access.store()
    collected: list[str] = []
    failed: list[str] = []
    waiting, deferred = 0, 0
    for bucket in sorted(ctx.settings.oss_buckets):
        where = shown_object(bucket, ctx.settings.oss_output_prefix + OPEN)
        entries = _isolated(where, lambda bucket=bucket: _open(ctx, store, bucket))
        if entries is FAILED:
            failed.append(where)
        for entry in entries if isinstance(entries, list) else []:
            done = _isolated(
                entry,
                lambda bucket=bucket, entry=entry: collect_one(ctx, store, bucket, entry, first=not collected),
            )
            if done is FAILED:
                failed.append(entry)
            elif done is DEFERRED:
                deferred += 1
            elif isinstance(done, str):
                collected.append(done)
            else:
                waiting += 1
    message = f"{len(collected)} submission(s) collected, {waiting + deferred} still running"
    if deferred:
        message += f" ({deferred} finished, left for the next run: not enough time left in this one)"
    if failed:
        message += f"; {len(failed)} could not be collected (batch_collect_failed in the log): {', '.join(failed)}"
    waiting += deferred
    return Result(
        status_code=200,
        request_id=ctx.request_id,
        code="BatchesCollected",
        message=message,
        output={"collected": collected, "running": waiting, "failed": failed},
    )


def _isolated(entry: str, step: Callable[[], T]) -> T | str | None:
    """`step`'s value; None (still running) after a transient failure, FAILED after another, each logged, so
    that one entry or bucket cannot stop the collect of the others."""
    try:
        return step()
    except TransientUpstreamError as error:
        logs.emit("batch_collect_retried", level=logging.WARNING, entry=entry, code=error.code, message=error.message)
        return None
    except QwenError as error:
        _failed(entry, error)
    except Exception as error:  # noqa: BLE001  # a corrupt record's own bug: logged with its traceback
        with internal.held() as fields:
            problem = internal.internal_error(error, f"cannot collect {entry}")
        _failed(entry, problem, **fields)
    return FAILED


def _failed(entry: str, problem: QwenError, **fields: Any) -> None:
    logs.emit(
        "batch_collect_failed", level=logging.ERROR, entry=entry, code=problem.code, message=problem.message, **fields
    )


def collect_one(ctx: DeliveryContext, store: ObjectStore, bucket: str, entry: str, *, first: bool) -> str | None:
    """The entry when collected, None while its jobs run, DEFERRED when it is left for the next run, FAILED
    (logged) when its answer file could not be written."""
    prefix = ctx.settings.oss_output_prefix
    key, _, etag = entry.rpartition("@")
    try:
        stored = store.read(bucket, prefix + record_key(key, etag), max_bytes=None)
    except ObjectNotFound:
        _change_open(ctx, store, bucket, lambda entries: [e for e in entries if e != entry])
        return entry
    envelope = json.loads(stored.data)
    record = envelope.get("output") or {}
    files = dashscope_files(ctx)
    batches = DashScopeBatches(files)
    jobs = {job["id"]: batches.retrieve(job["id"]) for job in record.get("jobs", [])}
    if not all(job.finished for job in jobs.values()):
        return None
    needed = START_SECONDS + LINE_SECONDS * int(record.get("lines") or 0)
    if not first and ctx.remaining() < needed:  # the first is always tried: deferring it could repeat forever
        logs.emit("batch_collect_deferred", key=key, lines=record.get("lines"), seconds_left=round(ctx.remaining()))
        return DEFERRED
    if ctx.remaining() < needed:  # tried anyway; if it is cut, every run will be: the operator must know why
        logs.emit(
            "batch_collect_short_of_time",
            level=logging.WARNING,
            key=key,
            lines=record.get("lines"),
            seconds_needed=round(needed),
            seconds_left=round(ctx.remaining()),
            hint="raise the function's timeout (or cpu) in s.yaml: a collect cut at the timeout starts over",
        )
    answers = JsonlFileAnswers(store, bucket, prefix, key, etag)
    counts: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryFile() as body:  # the answer file: written here, streamed to OSS by put_if_absent

        def written() -> Result:
            summary = _answer_file(ctx, store, files, bucket, key, etag, record, jobs, counts, body)
            answers.body = body
            return summary

        answered = ctx.once(answers).answer(answers.answer, etag, written, marker=answers.marker)
        problem = answered.problem
        if not answered.claimed and problem is not None:  # no marker could be made: written as the real-time route does
            logs.emit("answer_marker_unavailable", level=logging.WARNING, answer_key=answers.where(answers.answer))
            problem = _write_unclaimed(ctx, answers, answered.result)
    if isinstance(problem, TransientUpstreamError):
        raise problem
    if problem is not None and not isinstance(problem, SupersededAnswer):
        _failed(entry, problem)
        return FAILED
    for job in jobs.values():
        for file_id in (job.input_file_id, job.output_file_id, job.error_file_id):
            if file_id:
                with contextlib.suppress(QwenError):  # best effort: a purge finds what is left (files list)
                    files.delete(file_id)
    # One line per job across collectors (racing ones, or one finishing a collect that died): the one that
    # makes the collected mark logs.
    if store.create(bucket, prefix + collected_key(key, etag), b"", metadata={}):
        stored_counts = (answered.result.output or {}).get("by_model") if answered.result is not None else None
        _log_jobs(ctx, key, record, jobs, counts or stored_counts or {}, answered.how)
    done = {**envelope, "output": {**record, "state": "done", "collected_at": round(ctx.wall(), 3)}}
    with_retries(lambda: store.write(bucket, prefix + record_key(key, etag), _bytes(done), metadata={}), ctx)
    _change_open(ctx, store, bucket, lambda entries: [e for e in entries if e != entry])
    return entry


def _write_unclaimed(ctx: DeliveryContext, answers: JsonlFileAnswers, result: Result) -> QwenError | None:
    """Write the answer file without its marker, unless its source was replaced; why it is not written."""
    try:
        with_retries(lambda: answers.write_answer(result), ctx)
    except Exception as error:  # noqa: BLE001  # named and logged by the caller, the entry kept for the next run
        return problem_of(error, f"cannot write {answers.where(answers.answer)}")
    return None


def _log_jobs(
    ctx: DeliveryContext,
    key: str,
    record: dict[str, Any],
    jobs: dict[str, Any],
    counts: dict[str, dict[str, Any]],
    how: str,
) -> None:
    """One `batch_collected` line per job; counts not known (an answer file stored without them) are None."""
    submitted = float(record.get("submitted_at") or ctx.wall())
    for job in record.get("jobs", []):
        state = jobs[job["id"]]
        seen = counts.get(job["model"], {})
        logs.emit(
            "batch_collected",
            key=key,
            job=job["id"],
            model=job["model"],
            status=state.status,
            answered=seen.get("answered"),
            failed=seen.get("failed"),
            refused=record.get("refused", 0),
            input_tokens=seen.get("input_tokens"),
            output_tokens=seen.get("output_tokens"),
            cost_cny=None if seen.get("usage_missing") else seen.get("cost"),
            usage_missing=seen.get("usage_missing", 0),
            wall_seconds=round(ctx.wall() - submitted, 1),
            how=how,
            errors=_reasons(state.errors),
        )


def _answer_file(
    ctx: DeliveryContext,
    store: ObjectStore,
    files: DashScopeFiles,
    bucket: str,
    key: str,
    etag: str,
    record: dict[str, Any],
    jobs: dict[str, Any],
    counts: dict[str, dict[str, Any]],
    body: IO[bytes],
) -> Result:
    """The answer file written to `body`, in input order, and its summary; `counts` filled per model."""
    model_of = {job["id"]: job["model"] for job in record.get("jobs", [])}
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(os.path.join(folder, "lines.db"))
        try:
            db.execute("CREATE TABLE line (model TEXT, n INTEGER, result TEXT, PRIMARY KEY (model, n))")
            for job_id, job in jobs.items():
                for file_id in (job.output_file_id, job.error_file_id):
                    if file_id:
                        _spill(db, model_of[job_id], files.lines(file_id))
            db.commit()
            body.seek(0)
            body.truncate()
            return _ordered(ctx, store, bucket, key, etag, db, jobs, model_of, counts, body.write)
        finally:
            db.close()


def _spill(db: sqlite3.Connection, model: str, lines: Iterator[bytes]) -> None:
    for raw in lines:
        try:
            line = json.loads(raw)
            number = int(line["custom_id"])
        except (ValueError, KeyError, TypeError):
            continue  # not one of our lines: the line it would answer is reported as not answered
        db.execute("INSERT OR REPLACE INTO line VALUES (?, ?, ?)", (model, number, raw.decode("utf-8", "replace")))


def _ordered(
    ctx: DeliveryContext,
    store: ObjectStore,
    bucket: str,
    key: str,
    etag: str,
    db: sqlite3.Connection,
    jobs: dict[str, Any],
    model_of: dict[str, str],
    counts: dict[str, dict[str, Any]],
    write: Callable[[bytes], Any],
) -> Result:
    ended = {model_of[job_id]: _ending(job) for job_id, job in jobs.items()}
    index = store.stream(bucket, ctx.settings.oss_output_prefix + lines_key(key, etag), PIECE)
    totals = {"lines": 0, "answered": 0, "failed": 0, "refused": 0}
    pending = b""
    for chunk in [*index, b"\n"]:
        pending += chunk
        *whole, pending = pending.split(b"\n")
        for text in whole:
            if not text.strip():
                continue
            entry = json.loads(text)
            totals["lines"] += 1
            if "refusal" in entry:
                totals["refused"] += 1
                refusal = entry["refusal"]
                result = Result(
                    status_code=refusal["status_code"], request_id="", code=refusal["code"], message=refusal["message"]
                )
            else:
                model = entry["model"]
                row = db.execute("SELECT result FROM line WHERE model = ? AND n = ?", (model, entry["n"])).fetchone()
                result = _result(row[0] if row else None, ended.get(model, _ending(None)))
                seen = counts.setdefault(model, {"answered": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0})
                _count(ctx, seen, model, result)
                totals["answered" if result.ok else "failed"] += 1
            fields = {"custom_id": entry["custom_id"], **result.to_dict()}
            write(_bytes(fields))
    where = shown_object(bucket, ctx.settings.oss_output_prefix + key + ".jsonl")
    message = (
        f"{totals['lines']} lines: {totals['answered']} answered, {totals['refused']} refused, "
        f"{totals['failed']} failed; see {where}"
    )
    output = {"answer_key": where, **totals, "by_model": counts}  # by_model kept with the file for a resumed collect
    return Result(status_code=200, request_id=ctx.request_id, message=message, output=output)


def _ending(job: BatchJob | None) -> tuple[str, str]:
    """How a job ended, and why (a failed job's first validation errors; empty for other endings)."""
    if job is None:
        return "failed", ""
    return job.status, "; ".join(_reasons(job.errors))


def _reasons(errors: tuple[str, ...]) -> list[str]:
    return [error if len(error) <= REASON_CHARS else error[:REASON_CHARS] + "..." for error in errors[:REASONS]]


def _result(raw: str | None, ended: tuple[str, str]) -> Result:
    """One output or error line in the result shape; a line the job never answered says how the job ended,
    and why when the job gave reasons."""
    if raw is None:
        status, why = ended
        return Result(
            status_code=500 if status == "failed" else 504,
            request_id="",
            code=UNANSWERED.get(status, "BatchLineMissing"),  # a completed job without this line
            message=f"the batch job ended {status} before answering this line" + (f": {why}" if why else ""),
        )
    line = json.loads(raw)
    response = line.get("response") or {}
    body = response.get("body") if isinstance(response, dict) else None
    error = line.get("error")
    if isinstance(error, dict) or not isinstance(body, dict) or response.get("status_code") != 200:
        error = error if isinstance(error, dict) else (body or {}).get("error") or {}
        return Result(
            status_code=int(response.get("status_code") or 500),
            request_id=str(line.get("id") or ""),
            code=str(error.get("code") or "BatchLineFailed"),
            message=str(error.get("message") or ""),
        )
    choices = [{"finish_reason": c.get("finish_reason"), "message": c.get("message")} for c in body.get("choices", [])]
    usage = body.get("usage") or {}
    return Result(
        status_code=200,
        request_id=str(body.get("id") or line.get("id") or ""),
        output={"choices": choices},
        usage={
            "input_tokens": usage.get("prompt_tokens"),
            "output_tokens": usage.get("completion_tokens"),
            "total_tokens": usage.get("total_tokens"),
        },
    )


def _count(ctx: DeliveryContext, seen: dict[str, Any], model: str, result: Result) -> None:
    if not result.ok:
        seen["failed"] += 1
        return
    seen["answered"] += 1
    usage = result.usage or {}
    tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
    if not isinstance(tokens_in, int) or not isinstance(tokens_out, int):
        seen["usage_missing"] = seen.get("usage_missing", 0) + 1  # its tokens and cost are unknown, not zero
        return
    seen["input_tokens"] += tokens_in
    seen["output_tokens"] += tokens_out
    info = ctx.settings.models.get(model)
    cost = info.cost(tokens_in, tokens_out) if info is not None else None
    if cost is not None:
        seen["cost"] = round(seen.get("cost", 0.0) + cost * BATCH_PRICE, 6)


def _open(ctx: DeliveryContext, store: ObjectStore, bucket: str) -> list[str]:
    """The bucket's open entries; BatchListUnreadable when the list is not a JSON list (never overwritten)."""
    where = ctx.settings.oss_output_prefix + OPEN
    try:
        entries = json.loads(store.read(bucket, where, max_bytes=None).data)
    except ObjectNotFound:
        return []
    except ValueError as error:
        raise BatchListUnreadable(shown_object(bucket, where), f"not JSON: {type(error).__name__}") from None
    if not isinstance(entries, list):
        raise BatchListUnreadable(shown_object(bucket, where), f"a JSON {type(entries).__name__}, not a list")
    return [e for e in entries if isinstance(e, str)]


def _change_open(
    ctx: DeliveryContext, store: ObjectStore, bucket: str, change: Callable[[list[str]], list[str]]
) -> None:
    """Read, change and write the open list under the lock (a created object: one holder at a time)."""
    prefix = ctx.settings.oss_output_prefix
    lock = prefix + LOCK
    owner = f"{ctx.request_id}.{uuid.uuid4().hex[:12]}"
    while True:
        _take_lock(ctx, store, bucket, lock, owner)
        try:
            entries = _open(ctx, store, bucket)
            # A holder slower than LOCK_SECONDS may have lost the lock to a take-over: then it writes nothing.
            if _holds(store, bucket, lock, owner):
                store.write(bucket, prefix + OPEN, json.dumps(change(entries)).encode(), metadata={})
                return
        finally:
            if _holds(store, bucket, lock, owner):
                store.delete(bucket, lock)
        logs.emit("batch_list_lock_lost", level=logging.WARNING, bucket=bucket)
        _wait_for_lock(ctx, bucket)


def _take_lock(ctx: DeliveryContext, store: ObjectStore, bucket: str, lock: str, owner: str) -> None:
    while not store.create(bucket, lock, _lock_body(ctx, owner), metadata={}):
        held = _holder(store, bucket, lock)
        if held is not None and held.get("owner") == owner:
            return  # our own create, whose reply was lost
        if held is not None and not (isinstance(held.get("until"), (int, float)) and held["until"] >= ctx.wall()):
            store.delete(bucket, lock)  # abandoned by an invocation that ended while holding it, or unreadable
        _wait_for_lock(ctx, bucket)


def _lock_body(ctx: DeliveryContext, owner: str) -> bytes:
    return json.dumps({"owner": owner, "until": ctx.wall() + LOCK_SECONDS}).encode()


def _holder(store: ObjectStore, bucket: str, lock: str) -> dict[str, Any] | None:
    """The lock's content: None when there is no lock, {} when it is not a JSON object."""
    try:
        held = json.loads(store.read(bucket, lock, max_bytes=None).data)
    except ObjectNotFound:
        return None
    except ValueError:
        return {}
    return held if isinstance(held, dict) else {}


def _holds(store: ObjectStore, bucket: str, lock: str, owner: str) -> bool:
    held = _holder(store, bucket, lock)
    return held is not None and held.get("owner") == owner


def _wait_for_lock(ctx: DeliveryContext, bucket: str) -> None:
    if ctx.remaining() < 5:
        raise TransientUpstreamError(
            f"the open batch list of {bucket} stayed locked", code="BatchListLocked", request_id="", attempts=0
        )
    ctx.sleep(LOCK_POLL)


def _bytes(value: Any) -> bytes:
    return redact.redact(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)).encode() + b"\n"
