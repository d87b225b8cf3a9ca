"""`.jsonl` question files above QWEN_JSONL_REALTIME_MAX_LINES, submitted once to the Batch API's stand-in:
the batch input lines, one job per model, the job record and the lines file, redelivery, a replaced upload."""

from __future__ import annotations

import json

import pytest

from handler.deliver import batch_jobs
from tests.support.jsonl_wire import (  # noqa: F401  # fixtures
    BUCKET,
    asked,
    fc,
    inputs,
    put,
    questions,
    submit,
    wire,
)

pytestmark = pytest.mark.usefixtures("fc")


def test_a_file_over_the_limit_becomes_one_job_with_its_lines(standin, oss, wire, fc):  # noqa: F811
    result = submit(put(oss, "inbox/q21.jsonl", questions(21)), fc, wire)
    record = result["output"]
    (job,) = record["jobs"]
    assert result["code"] == "BatchSubmitted" and record["lines"] == 21 and job["lines"] == 21 and not asked(standin)
    sent = inputs(standin, job)
    assert [line["custom_id"] for line in sent] == [str(n) for n in range(1, 22)]
    first = sent[0]
    assert first["method"] == "POST" and first["url"] == "/v1/chat/completions"
    assert first["body"]["model"] == "qwen-turbo" and first["body"]["messages"][-1] == {
        "role": "user",
        "content": "问题 1",
    }
    assert first["body"]["messages"][0]["role"] == "system"  # the operator's system prompt, as a single question's
    assert standin.batches.jobs[job["id"]].input_file_id == job["input_file_id"]
    stored = json.loads(oss.get(BUCKET, f"answers/.batches/inbox/q21.jsonl@{record['etag']}.json").data)
    assert stored["output"]["jobs"] == record["jobs"]


def test_a_redelivered_upload_submits_one_job(standin, oss, wire, fc):  # noqa: F811
    event = put(oss, "inbox/again.jsonl", questions(25))
    first, second = submit(event, fc, wire), submit(event, fc, wire)
    assert len(standin.batches.jobs) == 1 and first["output"]["jobs"] == second["output"]["jobs"]


def test_a_file_mixing_two_models_is_one_job_per_model_and_refusals_stay_home(standin, oss, wire, fc):  # noqa: F811
    lines = [json.dumps({"prompt": f"q{n}", "model": "qwen-plus" if n % 2 else "qwen-turbo"}) for n in range(24)]
    lines[5] = json.dumps({"prompt": "not allowed", "model": "qwen-max", "custom_id": "max"})
    lines[7] = "{broken"
    record = submit(put(oss, "inbox/mixed.jsonl", "\n".join(lines).encode()), fc, wire)["output"]
    models = {job["model"]: job for job in record["jobs"]}
    assert sorted(models) == ["qwen-plus", "qwen-turbo"] and record["refused"] == 2
    assert {line["body"]["model"] for line in inputs(standin, models["qwen-plus"])} == {"qwen-plus"}
    assert models["qwen-plus"]["lines"] + models["qwen-turbo"]["lines"] == 22
    index = [
        json.loads(line)
        for line in oss.get(BUCKET, "answers/" + record["refusals"].split("answers/", 1)[1]).data.splitlines()
    ]
    assert [entry["n"] for entry in index] == list(range(1, 25))
    assert index[5]["custom_id"] == "max" and index[5]["refusal"]["code"] == "ModelNotAllowed"
    assert index[7]["refusal"]["code"] == "InvalidLine" and index[6]["model"] == "qwen-turbo"


def test_a_replaced_upload_cancels_the_older_job(standin, oss, wire, fc):  # noqa: F811
    older = submit(put(oss, "inbox/v.jsonl", questions(22)), fc, wire)["output"]["jobs"][0]
    newer = submit(put(oss, "inbox/v.jsonl", questions(23)), fc, wire)["output"]["jobs"][0]
    assert standin.batches.jobs[older["id"]].status in ("cancelling", "cancelled")
    assert standin.batches.jobs[newer["id"]].status not in ("cancelling", "cancelled")


def test_an_older_upload_submitted_after_the_newer_cancels_its_own_job(standin, oss, wire, fc, monkeypatch):  # noqa: F811
    """Two instances: the older upload's submit ends after the newer upload's whole submit."""

    older_event = put(oss, "inbox/race.jsonl", questions(22))
    real, newer = batch_jobs._submit, {}

    def then_replaced(ctx, store, obj, etag, chunks):
        result = real(ctx, store, obj, etag, chunks)
        if not newer:  # while the older upload's instance still talks to DashScope
            newer["event"] = put(oss, "inbox/race.jsonl", questions(23))
            newer.update(submit(newer["event"], fc, wire)["output"]["jobs"][0])
        return result

    monkeypatch.setattr(batch_jobs, "_submit", then_replaced)
    (older,) = submit(older_event, fc, wire)["output"]["jobs"]
    assert standin.batches.jobs[newer["id"]].status not in ("cancelling", "cancelled")
    assert standin.batches.jobs[older["id"]].status in ("cancelling", "cancelled")
    current = oss.get(BUCKET, "answers/.batches/inbox/race.jsonl.current").data.decode()
    assert current == oss.get(BUCKET, "inbox/race.jsonl").etag.strip('"').upper()


def test_a_bucket_refusing_the_records_refuses_before_any_job_is_paid_for(standin, oss, wire, fc):  # noqa: F811
    event = put(oss, "inbox/deny.jsonl", questions(21))
    oss.deny("PUT", "answers/.batches/inbox/deny")
    results = [submit(event, fc, wire) for _ in range(3)]  # FC delivers a failed async event again
    assert {result["code"] for result in results} == {"OssAccessDenied"}
    assert not standin.batches.jobs and not standin.files.files


def test_a_journal_that_cannot_be_stored_cancels_the_job_it_would_have_found(standin, oss, wire, fc):  # noqa: F811
    event = put(oss, "inbox/journal.jsonl", questions(21))
    etag = oss.get(BUCKET, "inbox/journal.jsonl").etag.strip('"').upper()
    oss.deny("PUT", f"answers/.batches/inbox/journal.jsonl@{etag}.jobs")  # the journal alone
    result = submit(event, fc, wire)
    assert result["code"] == "OssAccessDenied", result
    assert [job.status for job in standin.batches.jobs.values()] in (["cancelling"], ["cancelled"])


def test_a_key_too_long_for_the_records_is_refused_before_anything_is_sent(standin, oss, wire, fc):  # noqa: F811
    result = submit(put(oss, "inbox/" + "k" * 990 + ".jsonl", questions(21)), fc, wire)
    assert (result["status_code"], result["code"]) == (400, "KeyTooLong") and "1023" in result["message"]
    assert not standin.batches.jobs and not standin.files.files


def test_a_replacement_small_enough_for_real_time_cancels_the_older_job(standin, oss, wire, fc):  # noqa: F811
    (older,) = submit(put(oss, "inbox/rt.jsonl", questions(22)), fc, wire)["output"]["jobs"]
    result = submit(put(oss, "inbox/rt.jsonl", questions(3)), fc, wire)
    assert result["output"]["answered"] == 3, result
    assert standin.batches.jobs[older["id"]].status in ("cancelling", "cancelled")
