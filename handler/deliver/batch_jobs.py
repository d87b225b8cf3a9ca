"""A `.jsonl` question file above QWEN_JSONL_REALTIME_MAX_LINES: submitted once to DashScope's Batch API.

Each line is planned as a single question is (allowed models, caps, system prompt, token guard); a line
refused there, or by the parser, is not sent. The others are converted to the batch input format and
spilled to one temporary file per model (a file may mix models; a job holds one), each uploaded streamed
(purpose `batch`) and made a job. In the answer bucket, under `<prefix>.batches/`:
  <key>@<eTag>.lines.jsonl  one line per question line, in input order: number, custom_id, its job's
                            model, or its refusal (the collector writes the answers in this order)
  <key>@<eTag>.json         the job record: key, eTag, jobs (model, id, lines), counts, submitted_at;
                            stored through once.py, so one upload is submitted once across instances
  <key>@<eTag>.jobs.json    each job as soon as DashScope has made it (model -> model, id, input file, lines):
                            an attempt that fails or dies before the record is stored leaves its jobs here,
                            and the next attempt reuses them instead of paying for them twice (a death
                            between DashScope's reply to the create and this write still makes a second job)
  <key>.current             the eTag last submitted for the key: a newer upload cancels the older's jobs
docs/recipes/bulk-questions.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from handler import logs, redact
from handler.ask import guard
from handler.ask.batches import CHAT, DashScopeBatches
from handler.ask.files import BATCH, DashScopeFiles, upload_name
from handler.ask.plan import plan
from handler.config import Settings
from handler.deliver.answers import MARKERS, OssAnswerStore
from handler.deliver.context import DeliveryContext
from handler.deliver.once import kept, with_retries
from handler.deliver.store import ObjectStore, shown_object
from handler.errors import InvalidInput, ObjectNotFound, QwenError
from handler.events import jsonl
from handler.events.question import Message, OssObject, Question
from handler.result import Result

FOLDER = ".batches/"  # under QWEN_OSS_OUTPUT_PREFIX, beside the in-progress markers' folder
PIECE = 256 * 1024
MAX_KEY_BYTES = 1023  # OSS's longest object name, in UTF-8 bytes


def record_key(key: str, etag: str) -> str:
    return f"{FOLDER}{key}@{etag}.json"


def lines_key(key: str, etag: str) -> str:
    return f"{FOLDER}{key}@{etag}.lines.jsonl"


def jobs_key(key: str, etag: str) -> str:
    return f"{FOLDER}{key}@{etag}.jobs.json"


def collected_key(key: str, etag: str) -> str:
    """Made once, by the collector that logs the version's jobs (batch_collect.py)."""
    return f"{FOLDER}{key}@{etag}.collected"


def current_key(key: str) -> str:
    return f"{FOLDER}{key}.current"


def dashscope_files(ctx: DeliveryContext) -> DashScopeFiles:
    settings = ctx.settings
    return DashScopeFiles(
        settings.api_key,
        settings.base_url,
        remaining=ctx.remaining,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.request_timeout,
    )


def submit(ctx: DeliveryContext, store: ObjectStore, obj: OssObject, etag: str, chunks: Iterator[bytes]) -> Result:
    """Submit the file once for this key and eTag; the job record as the result's output."""
    records = OssAnswerStore(store, obj.bucket, ctx.settings.oss_output_prefix)
    key = record_key(obj.key, etag)
    longest = ctx.settings.oss_output_prefix + MARKERS + lines_key(obj.key, etag)
    if len(longest.encode()) > MAX_KEY_BYTES:  # its records could not be stored once its job was paid for
        refusal = InvalidInput(
            f"the key of {shown_object(obj.bucket, obj.key)} is too long for the batch route's records "
            f"({len(longest.encode())} bytes with the prefix and eTag, OSS allows {MAX_KEY_BYTES}): shorten it",
            code="KeyTooLong",
        )
        return Result.failure(refusal, ctx.request_id)

    def submitted() -> Result:
        return _submit(ctx, store, obj, etag, chunks)

    answered = ctx.once(records).answer(key, etag, submitted)
    if answered.result.ok:
        from handler.deliver import batch_collect  # the collector's list of open submissions

        entry = f"{obj.key}@{etag}"
        batch_collect.add_open(ctx, store, obj.bucket, entry)
        _supersede(ctx, store, obj, etag)
        if not (answered.result.output or {}).get("jobs"):  # every line refused: no job to wait for
            batch_collect.collect_one(ctx, store, obj.bucket, entry, first=True)
    return kept(answered.result, answered.problem, records.where(key))


def _submit(ctx: DeliveryContext, store: ObjectStore, obj: OssObject, etag: str, chunks: Iterator[bytes]) -> Result:
    with contextlib.ExitStack() as temporary:  # every spill is removed, whatever happens
        return _submit_spilled(ctx, store, obj, etag, chunks, temporary)


def _submit_spilled(
    ctx: DeliveryContext,
    store: ObjectStore,
    obj: OssObject,
    etag: str,
    chunks: Iterator[bytes],
    temporary: contextlib.ExitStack,
) -> Result:
    settings = ctx.settings
    spills: dict[str, tuple[IO[bytes], list[int]]] = {}  # model -> (its batch input, [lines, bytes])
    index = temporary.enter_context(tempfile.SpooledTemporaryFile(max_size=1 << 20))  # noqa: SIM115  # lines file
    refused = 0
    for line in jsonl.lines(chunks):
        body = _body(line.record, settings) if isinstance(line.record, Question) else line.record
        entry: dict[str, Any] = {"n": line.number, "custom_id": line.custom_id}
        if isinstance(body, InvalidInput):
            refused += 1
            entry["refusal"] = {"status_code": body.status_code, "code": body.code, "message": body.message}
        else:
            model = body["model"]
            if model not in spills:
                spills[model] = (temporary.enter_context(tempfile.TemporaryFile()), [0, 0])  # noqa: SIM115
            spill, counts = spills[model]
            request = {"custom_id": str(line.number), "method": "POST", "url": CHAT, "body": body}
            data = _json(request)
            spill.write(data)
            counts[0] += 1
            counts[1] += len(data)
            entry["model"] = model
        index.write(_json(entry))
    prefix = settings.oss_output_prefix
    # Stored before anything is paid for: a bucket that refuses the records refuses before a job exists.
    store.write(obj.bucket, prefix + lines_key(obj.key, etag), index, metadata={})  # streamed from the spill
    files = dashscope_files(ctx)
    batches = DashScopeBatches(files)
    journal = prefix + jobs_key(obj.key, etag)
    made = _made(store, obj.bucket, journal)
    jobs = []
    for model, (spill, (count, size)) in sorted(spills.items()):
        earlier = made.get(model)
        if isinstance(earlier, dict) and earlier.get("lines") == count and earlier.get("id"):
            logs.emit("batch_reused", level=logging.WARNING, key=obj.key, job=earlier["id"], model=model)
            jobs.append(earlier)
            continue
        spill.seek(0)
        name = upload_name(f"{obj.key}#{model}", etag, "jsonl")
        uploaded = files.upload(name, size, iter(lambda spill=spill: spill.read(PIECE), b""), purpose=BATCH)
        job = batches.create(uploaded.id, metadata={"model": model, "etag": etag})
        made[model] = {"model": model, "id": job.id, "input_file_id": uploaded.id, "lines": count}
        jobs.append(made[model])
        # Kept before anything else can fail: a job DashScope runs is paid for, so it must be findable.
        try:
            with_retries(lambda: store.write(obj.bucket, journal, _json(made), metadata={}), ctx)
        except Exception:
            with contextlib.suppress(QwenError):  # a job nobody could find again is stopped while it can be
                batches.cancel(job.id)
            raise
    lines = sum(job["lines"] for job in jobs) + refused
    record = {
        "key": obj.key,
        "etag": etag,
        "jobs": jobs,
        "lines": lines,
        "refused": refused,
        "models": [job["model"] for job in jobs],
        "refusals": prefix + lines_key(obj.key, etag),
        "submitted_at": round(ctx.wall(), 3),
        "state": "open",
    }
    message = f"{lines} lines submitted as {len(jobs)} batch job(s), {refused} refused; answers when collected"
    logs.emit("batch_submitted", key=obj.key, jobs=[job["id"] for job in jobs], lines=lines, refused=refused)
    return Result(status_code=200, request_id=ctx.request_id, code="BatchSubmitted", message=message, output=record)


def _made(store: ObjectStore, bucket: str, journal: str) -> dict[str, Any]:
    """The jobs an earlier attempt at this version made before it died (model -> job), {} when none."""
    try:
        made = json.loads(store.read(bucket, journal, max_bytes=None).data)
    except (ObjectNotFound, ValueError):
        return {}
    return made if isinstance(made, dict) else {}


def _body(question: Question, settings: Settings) -> dict[str, Any] | InvalidInput:
    """The batch body of one line, under the rules a single question has; its refusal when they refuse it."""
    try:
        call = plan(question, settings)
        call = guard.check(call, settings.models.get(call.model), trim=settings.trim_history).call
    except InvalidInput as refusal:
        return refusal
    messages = call.messages or (Message("user", call.prompt or ""),)
    return {"model": call.model, "messages": [_message(m) for m in messages], **call.parameters}


def _message(message: Message) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in message.images]
    return {"role": message.role, "content": [*parts, {"type": "text", "text": message.content}]}


def replaced_by_realtime(ctx: DeliveryContext, store: ObjectStore, obj: OssObject, etag: str) -> None:
    """A file answered in real time replaces an upload of its key that was submitted: that one's jobs are
    cancelled (one GetObject when the key was never submitted)."""
    try:
        older = store.read(obj.bucket, ctx.settings.oss_output_prefix + current_key(obj.key), max_bytes=None)
    except ObjectNotFound:
        return
    if older.data.decode().strip() != etag:
        _supersede(ctx, store, obj, etag)


def _supersede(ctx: DeliveryContext, store: ObjectStore, obj: OssObject, etag: str) -> None:
    """Cancel the jobs of every version we know of that is not the source's current one (best effort): the
    one this upload replaces, or this upload's own when a newer one came first; name the current one."""
    where = ctx.settings.oss_output_prefix + current_key(obj.key)
    try:
        older = store.read(obj.bucket, where, max_bytes=None).data.decode().strip()
    except ObjectNotFound:
        older = ""
    # Read after `older`: a newer upload that named itself current before that read is the source here.
    source = (store.etag(obj.bucket, obj.key) or "").strip('"').upper()
    if source == etag:
        store.write(obj.bucket, where, etag.encode(), metadata={})
    for version in sorted({older, etag} - {source, ""}):
        _cancel(ctx, store, obj, version, by=source or etag)


def _cancel(ctx: DeliveryContext, store: ObjectStore, obj: OssObject, version: str, *, by: str) -> None:
    try:
        stored = store.read(obj.bucket, ctx.settings.oss_output_prefix + record_key(obj.key, version), max_bytes=None)
        record = json.loads(stored.data).get("output") or {}
    except (ObjectNotFound, ValueError):
        return
    batches = DashScopeBatches(dashscope_files(ctx))
    for job in record.get("jobs", []):
        try:
            batches.cancel(job["id"])
        except QwenError as error:
            logs.emit("batch_cancel_failed", level=logging.WARNING, job=job["id"], code=error.code)
        else:
            logs.emit("batch_superseded", key=obj.key, job=job["id"], etag=version, by=by)


def _json(value: Any) -> bytes:
    return redact.redact(json.dumps(value, ensure_ascii=False, separators=(",", ":"))).encode() + b"\n"
