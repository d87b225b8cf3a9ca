"""A `.jsonl` file over the real-time limit becomes one Batch API job and one answer file, whichever FC
instances see it: separate processes (a fresh interpreter each, tests/support/batch_instances.py) against the
stand-ins of this test process. The same upload on two instances at once submits one job; two collect timers
at once write the answer file once; a collect that dies after writing it, or a submit that dies after
DashScope made the job, is finished by the next invocation without a second answer file or a second job."""

from __future__ import annotations

import json

import pytest

from tests.support.batch_instances import (
    BUCKET,
    COLLECT,
    DIED,
    answer_puts,
    creates,
    died,
    events,
    finish,
    record,
    start,
    stored_json,
    upload,
    uploads,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
OPEN = "answers/.batches/open.json"


def submitted(instance, event: str) -> dict:
    (result,) = instance.invoke(event)["returned"]
    assert result["code"] == "BatchSubmitted", result
    return result["output"]


def answer_lines(oss, key: str) -> list[dict]:
    return [json.loads(line) for line in oss.get(BUCKET, f"answers/{key}.jsonl").data.decode().splitlines()]


def test_one_upload_delivered_to_two_instances_at_once_submits_one_job(standin, oss, tmp_path):
    event, etag = upload(oss, "inbox/dup.jsonl")
    # Both start submitting together, and take 1.5 s to create a job: the second looks while the first holds
    # the marker.
    hooks = {"barrier": str(tmp_path), "barrier_at": "submit", "slow_create": 1.5}
    with start(standin, oss, **hooks) as a, start(standin, oss, **hooks) as b:
        a.send(event)
        b.send(event)
        one, two = a.receive(), b.receive()
    assert creates(standin) == 1 and uploads(standin) == 1
    ((first,), (second,)) = one["returned"], two["returned"]
    assert first == second and first["code"] == "BatchSubmitted"  # the waiter returns the submitter's record
    assert len(events(one, two, name="batch_submitted")) == 1
    assert oss.writes[(BUCKET, f"answers/.batches/inbox/dup.jsonl@{etag}.json")] == 1
    assert record(oss, "inbox/dup.jsonl", etag)["jobs"] == first["output"]["jobs"]
    assert stored_json(oss, OPEN) == [f"inbox/dup.jsonl@{etag}"]  # listed once, though both added it


def collected_at_once(standin, oss, folder, key: str) -> tuple[dict, dict, dict]:
    """Submit `key`, finish its job, then collect it on two instances at once: the job and the two replies."""
    event, _ = upload(oss, key)
    # Both start collecting together, and take 1.5 s to write the answer file: the second looks while the first
    # holds the marker.
    hooks = {"barrier": str(folder), "barrier_at": "collect", "slow_answer_file": 1.5}
    with start(standin, oss, **hooks) as a, start(standin, oss, **hooks) as b:
        (job,) = submitted(a, event)["jobs"]
        finish(standin)
        a.send(COLLECT)
        b.send(COLLECT)
        return job, a.receive(), b.receive()


def test_two_collect_timers_at_once_write_the_answer_file_once(standin, oss, tmp_path):
    job, one, two = collected_at_once(standin, oss, tmp_path, "inbox/both.jsonl")
    etag = oss.get(BUCKET, "inbox/both.jsonl").etag.upper()
    assert answer_puts(oss, "inbox/both.jsonl") == 1
    written = answer_lines(oss, "inbox/both.jsonl")
    assert [line["custom_id"] for line in written] == [str(n) for n in range(1, 22)]
    assert all(line["status_code"] == 200 for line in written)
    (asker,) = [line for line in events(one, two, name="batch_collected") if line["how"] == "asked"]
    assert asker["answered"] == 21 and asker["job"] == job["id"]
    assert one["returned"]["code"] == two["returned"]["code"] == "BatchesCollected"
    assert standin.files.files == {}, "the job's input and output files are left at DashScope"
    assert record(oss, "inbox/both.jsonl", etag)["state"] == "done" and stored_json(oss, OPEN) == []


def test_two_collect_timers_at_once_log_one_batch_collected_line_for_the_job(standin, oss, tmp_path):
    _, one, two = collected_at_once(standin, oss, tmp_path, "inbox/logged.jsonl")
    logged = events(one, two, name="batch_collected")
    assert len(logged) == 1 and logged[0]["answered"] == 21 and logged[0]["cost_cny"] is not None, logged


@pytest.mark.parametrize("point", ["exit_after_answer_file", "exit_before_done"])
def test_a_collect_that_dies_after_writing_the_answer_file_is_finished_once_by_the_next(standin, oss, point):
    event, etag = upload(oss, "inbox/cut.jsonl")
    entry = f"inbox/cut.jsonl@{etag}"
    with start(standin, oss) as b, start(standin, oss, **{point: True}) as cut:
        submitted(b, event)
        finish(standin)
        cut.send(COLLECT)
        assert died(cut) == DIED
        before = oss.get(BUCKET, "answers/inbox/cut.jsonl.jsonl")
        assert before is not None and answer_puts(oss, "inbox/cut.jsonl") == 1
        assert record(oss, "inbox/cut.jsonl", etag)["state"] == "open" and stored_json(oss, OPEN) == [entry]

        again = b.invoke(COLLECT)  # the next collect, on another instance
        assert "returned" in again, again
        assert again["returned"]["output"] == {"collected": [entry], "running": 0, "failed": []}, again
        logged = events(again, name="batch_collected")
        if point == "exit_after_answer_file":  # it died before logging: the next logs, with the file's counts
            assert [(line["how"], line["answered"]) for line in logged] == [("stored", 21)]
            assert logged[0]["input_tokens"] > 0 and logged[0]["cost_cny"] is not None
        else:  # it logged before it died: one line per job, not two
            assert logged == []
        assert answer_puts(oss, "inbox/cut.jsonl") == 1
        assert oss.get(BUCKET, "answers/inbox/cut.jsonl.jsonl").data == before.data
        assert len(answer_lines(oss, "inbox/cut.jsonl")) == 21
        assert standin.files.files == {}, "the job's files are left at DashScope"
        assert record(oss, "inbox/cut.jsonl", etag)["state"] == "done" and stored_json(oss, OPEN) == []
        # And the collect after that has nothing left to do.
        assert b.invoke(COLLECT)["returned"]["output"] == {"collected": [], "running": 0, "failed": []}
    assert answer_puts(oss, "inbox/cut.jsonl") == 1


def test_a_redelivery_after_a_submit_that_died_once_its_job_was_made_reuses_that_job(standin, oss):
    event, etag = upload(oss, "inbox/killed.jsonl")
    with start(standin, oss, exit_after_journal=True) as a:
        a.send(event, timeout=4)  # its marker is abandoned 4 s later: the redelivery then takes it over
        assert died(a) == DIED
    assert creates(standin) == 1 and oss.get(BUCKET, f"answers/.batches/inbox/killed.jsonl@{etag}.json") is None
    (made,) = standin.batches.jobs

    with start(standin, oss) as b:
        again = b.invoke(event)
        (result,) = again["returned"]
        assert result["code"] == "BatchSubmitted", result
        assert creates(standin) == 1 and uploads(standin) == 1, "the redelivery paid for a second job"
        assert [job["id"] for job in result["output"]["jobs"]] == [made]
        assert [line["job"] for line in events(again, name="batch_reused")] == [made]
        assert record(oss, "inbox/killed.jsonl", etag)["jobs"] == result["output"]["jobs"]
        assert stored_json(oss, OPEN) == [f"inbox/killed.jsonl@{etag}"]
        finish(standin)  # and its answers are collected as any job's
        assert b.invoke(COLLECT)["returned"]["output"]["collected"] == [f"inbox/killed.jsonl@{etag}"]
    assert answer_puts(oss, "inbox/killed.jsonl") == 1 and len(answer_lines(oss, "inbox/killed.jsonl")) == 21
