"""The collect timer against the Batch API's and OSS's stand-ins: finished jobs' answers written once, in
input order, with failed, expired and refused lines in place; the jobs' files deleted; the record done."""

from __future__ import annotations

import json

import pytest

from handler.deliver import batch_collect
from handler.errors import QwenError
from handler.local.standin_batches import answer_text
from tests.support.jsonl_wire import (  # noqa: F401  # fixtures
    BUCKET,
    answers,
    collect,
    fc,
    inputs,
    put,
    questions,
    submit,
    until_collected,
    wire,
)


def test_out_of_order_output_is_written_in_input_order_with_refusals_in_place(standin, oss, wire, fc, logs):  # noqa: F811
    standin.batches.shuffle = 7
    lines = [json.dumps({"custom_id": f"c{n}", "prompt": f"问题 {n}"}, ensure_ascii=False) for n in range(30)]
    lines[4] = "{broken"
    standin.batches.fail("10", status=400, code="invalid_request", message="line ten is bad")
    (job,) = submit(put(oss, "inbox/order.jsonl", "\n".join(lines).encode()), fc, wire)["output"]["jobs"]
    expected = {line["custom_id"]: answer_text(line["body"]["messages"]) for line in inputs(standin, job)}
    assert collect(fc, wire)["output"]["running"] == 1  # not finished yet: nothing written
    assert oss.get(BUCKET, "answers/inbox/order.jsonl.jsonl") is None
    result = until_collected(fc, wire)
    written = answers(oss, "inbox/order.jsonl")
    assert [line["custom_id"] for line in written] == [f"c{n}" if n != 4 else "5" for n in range(30)]
    texts = [line["output"]["choices"][0]["message"]["content"] for line in written if line["status_code"] == 200]
    assert texts == [expected[str(n + 1)] for n in range(30) if n not in (4, 9)]  # each answer in its line's place
    assert written[4]["code"] == "InvalidLine" and written[9]["code"] == "invalid_request"
    assert all(
        line["status_code"] == 200 and line["output"]["choices"] for i, line in enumerate(written) if i not in (4, 9)
    )
    assert result["output"]["collected"] == [f"inbox/order.jsonl@{oss.get(BUCKET, 'inbox/order.jsonl').etag.upper()}"]
    assert not [f for f in standin.files.files.values()]  # input, output and error files deleted
    (line,) = logs.events("batch_collected")
    assert (line["answered"], line["failed"], line["refused"]) == (28, 1, 1) and line["input_tokens"] > 0


def test_an_expired_job_writes_what_it_has_and_says_so(standin, oss, wire, fc):  # noqa: F811
    standin.batches.expire = True
    submit(put(oss, "inbox/exp.jsonl", questions(22)), fc, wire)
    until_collected(fc, wire)
    written = answers(oss, "inbox/exp.jsonl")
    assert len(written) == 22 and sum(line["status_code"] == 200 for line in written) == 11
    assert {line["code"] for line in written if line["status_code"] != 200} == {"batch_expired"}


def test_a_file_mixing_two_models_is_collected_into_one_file(standin, oss, wire, fc):  # noqa: F811
    lines = [json.dumps({"prompt": f"q{n}", "model": "qwen-plus" if n % 3 else "qwen-turbo"}) for n in range(25)]
    submit(put(oss, "inbox/two.jsonl", "\n".join(lines).encode()), fc, wire)
    until_collected(fc, wire)
    assert [line["custom_id"] for line in answers(oss, "inbox/two.jsonl")] == [str(n) for n in range(1, 26)]


def test_a_second_collect_writes_nothing_again(standin, oss, wire, fc):  # noqa: F811
    submit(put(oss, "inbox/twice.jsonl", questions(21)), fc, wire)
    until_collected(fc, wire)
    puts = len([r for r in oss.requests if r.method == "PUT" and r.key == "answers/inbox/twice.jsonl.jsonl"])
    assert collect(fc, wire)["output"] == {"collected": [], "running": 0, "failed": []} and puts == 1


def test_a_collect_interrupted_before_marking_done_does_not_write_twice(standin, oss, wire, fc, monkeypatch):  # noqa: F811
    from handler.deliver import batch_collect

    submit(put(oss, "inbox/cut.jsonl", questions(21)), fc, wire)
    real = batch_collect.with_retries
    monkeypatch.setattr(batch_collect, "with_retries", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("cut")))
    for _ in range(6):
        try:
            collect(fc, wire)
        except QwenError:  # written, then cut before the record is marked done: raised for redelivery
            break
    before = oss.get(BUCKET, "answers/inbox/cut.jsonl.jsonl")
    assert before is not None
    monkeypatch.setattr(batch_collect, "with_retries", real)
    assert collect(fc, wire)["output"]["collected"]
    puts = [r for r in oss.requests if r.method == "PUT" and r.key == "answers/inbox/cut.jsonl.jsonl"]
    assert len(puts) == 1 and oss.get(BUCKET, "answers/inbox/cut.jsonl.jsonl").data == before.data


def test_a_replaced_uploads_job_never_writes_over_the_newer_answers(standin, oss, wire, fc):  # noqa: F811
    submit(put(oss, "inbox/v.jsonl", questions(22)), fc, wire)
    submit(put(oss, "inbox/v.jsonl", questions(23)), fc, wire)
    for _ in range(8):
        if not collect(fc, wire)["output"]["running"]:
            break
    assert len(answers(oss, "inbox/v.jsonl")) == 23
    puts = [r for r in oss.requests if r.method == "PUT" and r.key == "answers/inbox/v.jsonl.jsonl"]
    assert len(puts) == 1


def test_a_job_that_failed_validation_gives_each_line_its_reasons(standin, oss, wire, fc, logs):  # noqa: F811
    standin.batches.fail_validation = "the input file is invalid"
    lines = [json.dumps({"custom_id": f"c{n}", "prompt": f"问题 {n}"}, ensure_ascii=False) for n in range(24)]
    lines[3] = "{broken"
    submit(put(oss, "inbox/invalid.jsonl", "\n".join(lines).encode()), fc, wire)
    result = until_collected(fc, wire)
    written = answers(oss, "inbox/invalid.jsonl")
    assert [line["custom_id"] for line in written] == [f"c{n}" if n != 3 else "4" for n in range(24)]  # none lost
    assert written[3]["code"] == "InvalidLine"  # refused before submitting: its own reason
    failed = written[:3] + written[4:]
    assert {(line["status_code"], line["code"]) for line in failed} == {(500, "BatchFailed")}
    assert {line["message"] for line in failed} == {
        "the batch job ended failed before answering this line: validation_failed: the input file is invalid"
    }
    assert result["output"]["collected"]
    (line,) = logs.events("batch_collected")
    assert line["status"] == "failed" and (line["answered"], line["failed"], line["refused"]) == (0, 23, 1)
    assert line["errors"] == ["validation_failed: the input file is invalid"]


def test_a_completed_job_logs_no_errors(standin, oss, wire, fc, logs):  # noqa: F811
    submit(put(oss, "inbox/fine.jsonl", questions(21)), fc, wire)
    until_collected(fc, wire)
    (line,) = logs.events("batch_collected")
    assert line["status"] == "completed" and line["errors"] == []


def test_the_answer_file_is_streamed_from_a_file_and_a_retry_sends_it_whole(standin, oss, wire, fc, mocker):  # noqa: F811
    from handler.deliver.store import Oss2Store

    writes = mocker.spy(Oss2Store, "write")
    submit(put(oss, "inbox/big.jsonl", questions(40)), fc, wire)
    answer = "answers/inbox/big.jsonl.jsonl"
    oss.fail_next(503, method="PUT", prefix=answer)  # the first PUT of the answer file fails: sent again
    until_collected(fc, wire)
    puts = [r for r in oss.requests if r.method == "PUT" and r.key == answer]
    stored = oss.get(BUCKET, answer).data
    assert len(puts) == 2 and puts[0].body == puts[1].body == stored
    assert [line["custom_id"] for line in answers(oss, "inbox/big.jsonl")] == [str(n) for n in range(1, 41)]
    etag = oss.get(BUCKET, "inbox/big.jsonl").etag
    streamed = {call.args[2]: not isinstance(call.args[3], bytes) for call in writes.call_args_list}
    assert streamed[answer] and streamed[f"answers/.batches/inbox/big.jsonl@{etag}.lines.jsonl"]


def test_the_answer_length_knob_pads_each_answer(standin, oss, wire, fc):  # noqa: F811
    standin.batches.answer_chars = 500  # bench/batches.py: answer files as large as real answers make them
    submit(put(oss, "inbox/long.jsonl", questions(21)), fc, wire)
    until_collected(fc, wire)
    contents = [line["output"]["choices"][0]["message"]["content"] for line in answers(oss, "inbox/long.jsonl")]
    assert len(contents) == 21 and all(500 <= len(text) < 520 for text in contents)
    assert all(text.startswith("Emulated batch answer to messages ") for text in contents)


def test_a_line_answered_without_usage_makes_the_jobs_cost_unknown_not_smaller(standin, oss, wire, fc, logs):  # noqa: F811
    standin.batches.without_usage = {"3"}
    submit(put(oss, "inbox/usage.jsonl", questions(21)), fc, wire)
    until_collected(fc, wire)
    assert len(answers(oss, "inbox/usage.jsonl")) == 21
    (line,) = logs.events("batch_collected")
    assert (line["answered"], line["usage_missing"], line["cost_cny"]) == (21, 1, None)
    assert line["input_tokens"] > 0  # the other lines' tokens are still counted


def test_a_finished_submission_without_time_left_waits_for_the_next_run(standin, oss, wire, fc, logs, monkeypatch):  # noqa: F811

    monkeypatch.setattr(batch_collect, "LINE_SECONDS", 1000.0)  # no run has time for a second submission
    submit(put(oss, "inbox/first.jsonl", questions(21)), fc, wire)
    submit(put(oss, "inbox/second.jsonl", questions(21)), fc, wire)
    first = until_collected(fc, wire)  # both jobs finish at the same look: one collected, one left
    assert len(first["output"]["collected"]) == 1 and first["output"]["running"] == 1, first
    assert "left for the next run" in first["message"]
    (deferred,) = logs.events("batch_collect_deferred")
    second = collect(fc, wire)  # the first of its run: always tried
    assert [entry.rpartition("@")[0] for entry in second["output"]["collected"]] == [deferred["key"]]
    assert len(answers(oss, "inbox/first.jsonl")) == 21 and len(answers(oss, "inbox/second.jsonl")) == 21


def _two_submissions(oss, fc, wire) -> tuple[str, str]:  # noqa: F811
    """Two open submissions, `a` and `b`: their entries."""
    submit(put(oss, "inbox/a.jsonl", questions(21)), fc, wire)
    submit(put(oss, "inbox/b.jsonl", questions(21)), fc, wire)
    return tuple(f"inbox/{name}.jsonl@{oss.get(BUCKET, f'inbox/{name}.jsonl').etag.upper()}" for name in "ab")


def _open_list(oss) -> list[str]:
    return json.loads(oss.get(BUCKET, "answers/.batches/open.json").data)


def _unknown_job(oss, record: str) -> None:
    envelope = json.loads(oss.get(BUCKET, record).data)
    envelope["output"]["jobs"][0]["id"] = "batch_999999_standin"  # a job DashScope no longer knows (after 30 days)
    oss.put(BUCKET, record, json.dumps(envelope).encode())


BROKEN = {
    "unknown job": (_unknown_job, "NotFound"),
    "no lines file": (
        lambda oss, record: oss.delete(BUCKET, record[: -len(".json")] + ".lines.jsonl"),
        "ObjectNotFound",
    ),
    "record not JSON": (lambda oss, record: oss.put(BUCKET, record, b"not json"), "InternalError"),
    "record a list": (lambda oss, record: oss.put(BUCKET, record, b"[]"), "InternalError"),
    "job without id": (
        lambda oss, record: oss.put(BUCKET, record, b'{"output": {"jobs": [{"model": "qwen-turbo"}]}}'),
        "InternalError",
    ),
}


@pytest.mark.parametrize("broken", BROKEN)
def test_one_entry_that_cannot_be_collected_does_not_stop_the_others(standin, oss, wire, fc, logs, broken):  # noqa: F811
    a, b = _two_submissions(oss, fc, wire)
    breaks, code = BROKEN[broken]
    breaks(oss, f"answers/.batches/{a}.json")
    results = [collect(fc, wire) for _ in range(4)]
    assert all(result["code"] == "BatchesCollected" for result in results)
    assert [r["output"]["collected"] for r in results if r["output"]["collected"]] == [[b]]
    assert results[-1]["output"]["failed"] == [a]  # a missing lines file is found once the job has finished
    assert len(answers(oss, "inbox/b.jsonl")) == 21
    failures = logs.events("batch_collect_failed")
    assert {(line["entry"], line["code"]) for line in failures} == {(a, code)}
    assert {r.levelname for r in logs.records if '"batch_collect_failed"' in r.getMessage()} == {"ERROR"}
    assert all(line["message"] for line in failures)
    assert _open_list(oss) == [a]  # kept for the operator: `python -m handler batches` still lists it


def test_a_transient_failure_of_one_entry_counts_it_as_running(standin, oss, wire, fc, logs, mocker):  # noqa: F811
    from handler.ask.batches import DashScopeBatches
    from handler.errors import TransientUpstreamError

    a, b = _two_submissions(oss, fc, wire)
    (job,) = json.loads(oss.get(BUCKET, f"answers/.batches/{a}.json").data)["output"]["jobs"]
    real = DashScopeBatches.retrieve

    def retrieve(self, batch_id):
        if batch_id == job["id"]:
            raise TransientUpstreamError("DashScope is busy", code="Throttling", request_id="", attempts=3)
        return real(self, batch_id)

    mocker.patch.object(DashScopeBatches, "retrieve", retrieve)
    results = [collect(fc, wire) for _ in range(4)]
    assert [r["output"]["collected"] for r in results if r["output"]["collected"]] == [[b]]
    assert results[-1]["output"] == {"collected": [], "running": 1, "failed": []}
    assert {line["entry"] for line in logs.events("batch_collect_retried")} == {a}
    assert _open_list(oss) == [a]


def test_without_a_marker_the_answer_file_is_written_once_as_the_real_time_route_does(standin, oss, wire, fc, logs):  # noqa: F811
    submit(put(oss, "inbox/m.jsonl", questions(21)), fc, wire)
    oss.deny("PUT", "answers/.pending/inbox/")  # no in-progress marker can be made
    until_collected(fc, wire)
    assert len(answers(oss, "inbox/m.jsonl")) == 21
    assert collect(fc, wire)["output"] == {"collected": [], "running": 0, "failed": []}
    downloads = {path: n for path, n in standin.batches.counts.items() if path.endswith("/content")}
    assert list(downloads.values()) == [1]  # the output file read once, not at every tick
    assert logs.events("answer_marker_unavailable") and not logs.events("batch_collect_failed")


def test_without_a_marker_a_replaced_uploads_job_still_does_not_write_over_the_newer(standin, oss, wire, fc):  # noqa: F811
    submit(put(oss, "inbox/v.jsonl", questions(22)), fc, wire)
    submit(put(oss, "inbox/v.jsonl", questions(23)), fc, wire)
    oss.deny("PUT", "answers/.pending/inbox/")
    for _ in range(8):
        if not collect(fc, wire)["output"]["running"]:
            break
    assert len(answers(oss, "inbox/v.jsonl")) == 23
    assert len([r for r in oss.requests if r.method == "PUT" and r.key == "answers/inbox/v.jsonl.jsonl"]) == 1


@pytest.mark.parametrize("content", [b"{oops", b'{"inbox/a.jsonl": 1}'])
def test_an_unreadable_open_list_is_named_and_never_overwritten(standin, oss, wire, fc, logs, content):  # noqa: F811
    submit(put(oss, "inbox/a.jsonl", questions(21)), fc, wire)
    oss.put(BUCKET, "answers/.batches/open.json", content)
    where = f"oss://{BUCKET}/answers/.batches/open.json"
    result = collect(fc, wire)
    assert result["code"] == "BatchesCollected" and result["output"]["failed"] == [where]
    (line,) = logs.events("batch_collect_failed")
    assert line["code"] == "BatchListUnreadable" and line["entry"] == where
    refused = submit(put(oss, "inbox/c.jsonl", questions(21)), fc, wire)
    assert (refused["status_code"], refused["code"]) == (500, "BatchListUnreadable")
    assert where in refused["message"] and "delete it" in refused["message"]
    assert oss.get(BUCKET, "answers/.batches/open.json").data == content


def test_an_unreadable_open_list_does_not_stop_another_bucket(standin, oss, wire, fc):  # noqa: F811
    from handler.values import replace

    other = "qwen-lines-2"
    both = replace(wire, env={**wire.env, "QWEN_OSS_BUCKETS": f"{BUCKET},{other}"})
    submit(put(oss, "inbox/a.jsonl", questions(21)), fc, both)
    oss.put(BUCKET, "answers/.batches/open.json", b"{oops")
    stored = oss.put(other, "inbox/o.jsonl", questions(21))
    from tests.support.events import oss_event, oss_record

    submit(oss_event(oss_record("inbox/o.jsonl", bucket=other, etag=stored.etag, size=len(questions(21)))), fc, both)
    results = [collect(fc, both) for _ in range(4)]
    assert [r["output"]["collected"] for r in results if r["output"]["collected"]] == [
        [f"inbox/o.jsonl@{stored.etag.upper()}"]
    ]
    assert oss.get(other, "answers/inbox/o.jsonl.jsonl") is not None


@pytest.mark.parametrize("lock", [b"garbage", b"[]", b'{"owner": "x", "until": "soon"}'])
def test_an_unreadable_lock_is_taken_as_abandoned(standin, oss, wire, fc, lock):  # noqa: F811
    import threading

    oss.put(BUCKET, "answers/.batches/open.lock", lock)
    done: dict[str, dict] = {}
    worker = threading.Thread(
        target=lambda: done.update(r=submit(put(oss, "inbox/l.jsonl", questions(21)), fc, wire)), daemon=True
    )
    worker.start()
    worker.join(60)  # a guard only: the submit takes well under a second
    assert not worker.is_alive() and done["r"]["code"] == "BatchSubmitted"
    assert len(_open_list(oss)) == 1 and oss.get(BUCKET, "answers/.batches/open.lock") is None
    assert len([r for r in oss.requests if r.key == "answers/.batches/open.lock"]) < 10


def test_a_holder_that_lost_the_lock_writes_and_deletes_nothing(standin, oss, wire, fc, monkeypatch):  # noqa: F811
    from handler.values import replace

    lock, listed = "answers/.batches/open.lock", "answers/.batches/open.json"
    real_open, seen = batch_collect._open, []

    def slow_open(ctx, store, bucket):  # the holder stalls on OSS past 30 s: B takes the lock over meanwhile
        entries = real_open(ctx, store, bucket)
        if not seen:
            seen.append("taken")
            oss.put(BUCKET, lock, json.dumps({"owner": "B", "until": ctx.wall() + 60}).encode())
        return entries

    def sleep(seconds: float) -> None:  # B finishes while the first holder waits: its lock must still be there
        if seen == ["taken"]:
            seen.append(oss.get(BUCKET, lock) is not None)
            oss.put(BUCKET, listed, json.dumps([*json.loads(oss.get(BUCKET, listed).data), "inbox/b.jsonl@B"]))
            oss.delete(BUCKET, lock)

    monkeypatch.setattr(batch_collect, "_open", slow_open)
    oss.put(BUCKET, listed, b"[]")
    submit(put(oss, "inbox/a.jsonl", questions(21)), fc, replace(wire, sleep=sleep))
    assert seen == ["taken", True]
    assert _open_list(oss) == ["inbox/b.jsonl@B", f"inbox/a.jsonl@{oss.get(BUCKET, 'inbox/a.jsonl').etag.upper()}"]


def test_a_first_submission_short_of_time_is_tried_and_the_shortfall_logged(standin, oss, wire, fc, logs, monkeypatch):  # noqa: F811
    monkeypatch.setattr(batch_collect, "LINE_SECONDS", 1000.0)
    submit(put(oss, "inbox/short.jsonl", questions(21)), fc, wire)
    until_collected(fc, wire)
    assert len(answers(oss, "inbox/short.jsonl")) == 21
    (short,) = logs.events("batch_collect_short_of_time")
    assert short["lines"] == 21 and short["seconds_needed"] > short["seconds_left"] and "timeout" in short["hint"]
