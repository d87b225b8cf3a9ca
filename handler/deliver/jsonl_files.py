"""`.jsonl` question files in the OSS inbox: one question per line, the answers in `<prefix><key>.jsonl`.

A file of at most QWEN_JSONL_REALTIME_MAX_LINES lines is answered here, its lines concurrently as a
batch's records (batch.answer_all), each under the same rules as a single question; the answer file
holds one line per question line, in input order: the result shape plus its custom_id. A refused line
(bad JSON, a model not allowed, too long, ...) gets its refusal in its place; a refused file (0 bytes,
an image) gets one line saying why. Exactly once per key and eTag across instances, as other OSS files
(once.py, with this version's own marker). A line failing transiently fails the file, delivered again:
this instance remembers each line it answered (by key, eTag and line number, in its bounded memory) and asks
only the others; a redelivery that lands on another instance asks every line again. docs/recipes/bulk-questions.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from handler import logs, redact
from handler.deliver import versioning
from handler.deliver.answers import COMPLETED, AnswerRecord, pending_key
from handler.deliver.batch import answer_all
from handler.deliver.context import Ask, DeliveryContext
from handler.deliver.once import SupersededAnswer, kept, problem_of, with_retries
from handler.deliver.oss_files import QuestionFileAnswers
from handler.deliver.store import SOURCE_ETAG_META, Body, ObjectReplaced, ObjectStore, shown_object, store_reserve
from handler.errors import InvalidInput, ObjectNotFound, QwenError, TransientUpstreamError
from handler.events import jsonl
from handler.events.question import OssObject
from handler.outcome import Outcome
from handler.result import Result

SUFFIX = ".jsonl"
CHUNK = 256 * 1024  # the file's bytes in memory at once, besides the line being assembled
SUMMARY_META = "jsonl-summary"  # x-oss-meta-jsonl-summary: the counts a stored answer file is returned with
STORE_REQUESTS = 4  # as oss_files: HEAD the source, write the answer file, read and delete the marker


class TooManyForNow(InvalidInput):
    """More lines than the real-time route answers in one invocation."""


class JsonlFileAnswers(QuestionFileAnswers):
    """One version's answer file `<key>.jsonl`: its body is the lines `asked` made (bytes, or a temporary file
    too large to hold in memory: the collector's), its summary in metadata."""

    def __init__(self, store: ObjectStore, bucket: str, prefix: str, key: str, etag: str):
        super().__init__(store, bucket, prefix, key, etag)
        self.answer = f"{key}{SUFFIX}"
        self.marker = pending_key(f"{self.answer}@{etag}")
        self.body: Body = b""

    def get(self, key: str) -> AnswerRecord | None:
        if key != self.answer:
            return super().get(key)
        try:
            stored = self._store.read(self.bucket, self.prefix + key, max_bytes=0)
        except ObjectNotFound:
            return None
        if (stored.metadata.get(SOURCE_ETAG_META) or "").strip('"').upper() != self.etag:
            return None
        result = _summary_result(stored.metadata.get(SUMMARY_META), self.where(key))
        return None if result is None else AnswerRecord(COMPLETED, self.etag, result=result)

    def put_if_absent(self, key: str, record: AnswerRecord) -> bool:
        if key != self.answer:
            return super().put_if_absent(key, record)
        self.write_answer(record.result)
        return True

    def write_answer(self, result: Result | None) -> None:
        """Write the answer file from `body`, unless the source was replaced since (SupersededAnswer)."""
        current = self._store.etag(self.bucket, self.source)
        current = current.strip('"').upper() if current else None
        if current is not None and current != self.etag:
            raise SupersededAnswer(shown_object(self.bucket, self.source), self.etag, current)
        self._store.write(self.bucket, self.prefix + self.answer, self.body, metadata=_metadata(result, self.etag))


def answer(ctx: DeliveryContext, obj: OssObject, outcome: Outcome, ask: Ask) -> Result:
    """Answer one `.jsonl` object (its bucket allowed, not under the output prefix): the file's summary."""
    try:
        return _answer(ctx, obj, outcome, ask)
    except ObjectReplaced as newer:
        return Result.skipped(newer.message, ctx.request_id)  # the newer upload's own event answers it


def _answer(ctx: DeliveryContext, obj: OssObject, outcome: Outcome, ask: Ask) -> Result:
    from handler.deliver import batch_jobs  # the Batch API's client: loaded by .jsonl files, not by every event

    settings = ctx.settings
    store = ctx.access.store()
    versioning.check(store, obj.bucket, "QWEN_OSS_BUCKETS")
    etag = obj.etag.strip('"').upper() if obj.etag else None
    files = JsonlFileAnswers(store, obj.bucket, settings.oss_output_prefix, obj.key, etag or "")
    where = files.where(files.answer)
    outcome.note(answer_key=where)

    if _more_lines_than(store, obj, etag, settings.jsonl_realtime_max_lines):
        version = etag or (store.etag(obj.bucket, obj.key) or "").strip('"').upper()
        chunks = store.stream(obj.bucket, obj.key, CHUNK, etag=version or None)
        return batch_jobs.submit(ctx, store, obj, version, chunks)

    def asked() -> Result:
        body, result = _answered(ctx, store, obj, etag, ask, where)
        files.body = body
        return result

    if etag is None:
        # No version to recognise a redelivery by: answered each time, as other OSS files.
        result = asked()
        return kept(result, _write(ctx, files, result), where)
    batch_jobs.replaced_by_realtime(ctx, store, obj, etag)
    answered = ctx.once(files).answer(files.answer, etag, asked, marker=files.marker)
    result, problem = answered.result, answered.problem
    if not answered.claimed and problem is not None:
        logs.emit("answer_marker_unavailable", level=logging.WARNING, answer_key=where, code=problem.code)
        problem = _write(ctx, files, result) or problem
    return kept(result, problem, where)


def _answered(
    ctx: DeliveryContext, store: ObjectStore, obj: OssObject, etag: str | None, ask: Ask, where: str
) -> tuple[bytes, Result]:
    """The answer file's bytes and the summary returned for it."""
    limit = ctx.settings.jsonl_realtime_max_lines
    try:
        found = _read_lines(store, obj, etag, limit)
    except ObjectReplaced:
        raise
    except InvalidInput as refused:
        result = Result.failure(refused, ctx.request_id)
        return _line_bytes(None, result), result
    # A file's lines take at most a quarter of the instance's memory of answered records, never all of it.
    remember = etag is not None and len(found) <= ctx.memory.capacity // 4

    def memo(line: jsonl.Line) -> str | None:
        """The line's key in this instance's memory: this version of the file, this line."""
        return f"{obj.source}@{etag}#{line.number}" if remember else None

    results = answer_all(
        found,
        lambda line: _answer_line(ctx, obj, line, ask, memo(line)),
        concurrency=ctx.settings.batch_concurrency,
        # Unique per line: every line is asked, even one repeating another's question.
        source=lambda line: f"line {line.number}",
        remaining=ctx.remaining,
    )
    body = b"".join(_line_bytes(line.custom_id, result) for line, result in zip(found, results, strict=True))
    # Refused here (the parser, or the rules a single question has): nothing asked, so FC's request id.
    refused = sum(1 for result in results if 400 <= result.status_code < 500 and result.request_id == ctx.request_id)
    answered = sum(1 for result in results if result.ok)
    summary = {"answer_key": where, "lines": len(found), "answered": answered, "refused": refused}
    summary["failed"] = len(found) - answered - refused
    message = f"{len(found)} lines: {answered} answered, {refused} refused, {summary['failed']} failed; see {where}"
    return body, Result(status_code=200, request_id=ctx.request_id, message=message, output=summary)


def _read_lines(store: ObjectStore, obj: OssObject, etag: str | None, limit: int) -> list[jsonl.Line]:
    """The file's lines (at most `limit` + 1 read); a whole-file refusal raised as InvalidInput."""
    chunks = store.stream(obj.bucket, obj.key, CHUNK, etag=etag)
    first = next(chunks, b"")
    refusal = jsonl.file_refusal(first, len(first))
    if refusal is not None:
        raise refusal

    def again() -> Iterator[bytes]:
        yield first
        yield from chunks

    found: list[jsonl.Line] = []
    for line in jsonl.lines(again()):
        found.append(line)
        if len(found) > limit:
            chunks.close()  # type: ignore[attr-defined]  # a generator: its GetObject is closed
            raise TooManyForNow(
                f"{shown_object(obj.bucket, obj.key)} has more than QWEN_JSONL_REALTIME_MAX_LINES ({limit}) "
                "questions, the most answered in one invocation; split it into files of at most "
                f"{limit} lines, or raise the setting",
                code="TooManyLinesForRealtime",
                status_code=413,
            )
    if not found:
        raise InvalidInput("the .jsonl file holds only blank lines: no question to answer", code="EmptyFile")
    return found


def _more_lines_than(store: ObjectStore, obj: OssObject, etag: str | None, limit: int) -> bool:
    """Whether the file has more than `limit` lines (not blank), counted from its first bytes only."""
    chunks = store.stream(obj.bucket, obj.key, CHUNK, etag=etag)
    try:
        first = next(chunks, b"")
        if jsonl.file_refusal(first, len(first)) is not None:
            return False  # refused whole by the real-time route, with its reason

        def again() -> Iterator[bytes]:
            yield first
            yield from chunks

        counted = 0
        for _, data in jsonl.split(again()):
            counted += data is None or bool(data.strip())
            if counted > limit:
                return True
        return False
    finally:
        chunks.close()  # type: ignore[attr-defined]  # a generator: its GetObject is closed


def _answer_line(ctx: DeliveryContext, obj: OssObject, line: jsonl.Line, ask: Ask, memo: str | None) -> Result:
    """One line's result, with its own `question` log line: remembered under `memo` by this instance, else
    asked; transient failures are raised (the file is delivered again, its marker released)."""
    if isinstance(line.record, InvalidInput):
        return Result.failure(line.record, ctx.request_id)
    outcome = Outcome(f"{obj.source}#{line.number}")
    remembered = ctx.memory.entry(memo) if memo is not None else None
    if remembered is not None:
        outcome.note(remembered=True)
        outcome.log(remembered.result, 0)
        return remembered.result
    began = ctx.wall()
    try:
        result = ask(line.record, outcome, reserve=store_reserve(STORE_REQUESTS))
    except TransientUpstreamError:
        raise
    except QwenError as refused:  # a model not allowed, a question over the guard: the line's refusal
        result = Result.failure(refused, ctx.request_id)
    if memo is not None and result.ok:  # the paid answers only: a refusal is counted by this invocation's id
        ctx.memory.put(memo, result, stored=False)  # in no answer file until the whole file is answered
    outcome.log(result, round((ctx.wall() - began) * 1000))
    return result


def _line_bytes(custom_id: str | None, result: Result) -> bytes:
    fields = {"custom_id": custom_id, **result.to_dict()}
    return redact.redact(json.dumps(fields, ensure_ascii=False, separators=(",", ":"), default=str)).encode() + b"\n"


def _metadata(result: Result | None, etag: str) -> dict[str, str]:
    summary = result.output if result is not None and isinstance(result.output, dict) else {}
    names = ("lines", "answered", "refused", "failed", "by_model")  # by_model: a collected job's tokens and cost
    counts = {name: summary[name] for name in names if name in summary}
    if result is not None and not result.ok:
        counts = {"status_code": result.status_code, "code": result.code}
    return {SOURCE_ETAG_META: etag, SUMMARY_META: json.dumps(counts, separators=(",", ":"))}


def _summary_result(text: str | None, where: str) -> Result | None:
    """The summary a stored answer file was written with, None when it has none (not ours: asked again)."""
    try:
        counts = json.loads(text or "")
    except ValueError:
        return None
    if not isinstance(counts, dict):
        return None
    if "code" in counts:
        why = f"the file was refused; see {where}"
        status = int(counts.get("status_code", 400))
        return Result(status_code=status, request_id="", code=str(counts["code"]), message=why)
    output = {"answer_key": where, **counts}
    return Result(status_code=200, request_id="", message=f"answered earlier; see {where}", output=output)


def _write(ctx: DeliveryContext, files: JsonlFileAnswers, result: Result) -> QwenError | None:
    """Write the answer file without exactly-once (no eTag, or no marker could be made)."""
    key = files.prefix + files.answer
    try:
        with_retries(
            lambda: ctx.access.store().write(files.bucket, key, files.body, metadata=_metadata(result, files.etag)),
            ctx,
        )
    except Exception as error:  # noqa: BLE001  # the answers were paid for: the summary is still returned
        return problem_of(error, f"cannot write {files.where(files.answer)}")
    return None
