"""`python -m handler batches`: the open Batch API submissions of the configured buckets with each job's state
from DashScope, `--json`, `--cancel` by key or job id, and one-line refusals; against the stand-ins."""

from __future__ import annotations

import io
import json

import pytest

from handler.local import cli
from tests.conftest import API_KEY
from tests.support.jsonl_wire import (  # noqa: F401  # fc, wire: fixtures
    BUCKET,
    answers,
    collect,
    fc,
    put,
    questions,
    submit,
    wire,
    wire_env,
)
from tests.support.processes import run_cli as run

CANCEL = "POST /compatible-mode/v1/batches/{}/cancel"


@pytest.fixture
def shell(standin, oss, monkeypatch):
    """The deployment's variables and an AccessKey in this process's environment, as an operator's shell has."""
    for name, value in wire_env(standin, oss).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-cli-0001")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "cli-secret-0001")
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)


@pytest.fixture
def submitted(standin, oss, fc, wire, shell) -> dict[str, dict]:  # noqa: F811
    """Two open submissions: 21 questions (one job), and 25 of two models with one refused line (two jobs)."""
    mixed = [json.dumps({"prompt": f"q{n}", "model": "qwen-plus" if n % 2 else "qwen-turbo"}) for n in range(25)]
    mixed[3] = "{broken"
    return {
        "inbox/q21.jsonl": submit(put(oss, "inbox/q21.jsonl", questions(21)), fc, wire)["output"],
        "inbox/two.jsonl": submit(put(oss, "inbox/two.jsonl", "\n".join(mixed).encode()), fc, wire)["output"],
    }


def all_collected(fc, wire) -> None:  # noqa: F811
    for _ in range(8):  # the stand-in moves a job one state per retrieve
        if not collect(fc, wire)["output"]["running"]:
            return
    raise AssertionError("still running")


def batches(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    status = cli.main(["batches", "--no-s-yaml", *args], out=out)
    return status, out.getvalue()


def test_each_open_submission_is_one_line_with_its_jobs_state(standin, submitted):
    status, said = batches()
    rows = said.splitlines()
    assert status == 0 and len(rows) == 4 and rows[2] == f"2 open submission(s) in {BUCKET}"
    one, two = submitted["inbox/q21.jsonl"], submitted["inbox/two.jsonl"]
    assert rows[0].startswith(f"{BUCKET}  inbox/q21.jsonl  eTag {one['etag']}  21 lines, 0 refused  submitted 20")
    (job,) = one["jobs"]
    assert "s ago)" in rows[0] and f"{job['id']} qwen-turbo 21 lines: in_progress, 0/21 done, 0 failed" in rows[0]
    assert "inbox/two.jsonl" in rows[1] and "25 lines, 1 refused" in rows[1]
    assert all(f"{job['id']} {job['model']} {job['lines']} lines: in_progress" in rows[1] for job in two["jobs"])
    asked = [f"GET /compatible-mode/v1/batches/{job['id']}" for record in submitted.values() for job in record["jobs"]]
    assert all(standin.batches.counts[request] == 1 for request in asked)  # each job's state asked of DashScope


def test_json_is_one_document_with_every_field(submitted):
    status, said = batches("--json")
    document = json.loads(said)
    assert status == 0 and document["buckets"] == [BUCKET] and document["errors"] == []
    first = document["open"][0]
    assert first["key"] == "inbox/q21.jsonl" and first["etag"] == submitted["inbox/q21.jsonl"]["etag"]
    assert (first["lines"], first["refused"]) == (21, 0) and 0 <= first["age_seconds"] < 60
    (job,) = first["jobs"]
    listed = submitted["inbox/q21.jsonl"]["jobs"][0]
    assert job == {"id": listed["id"], "model": "qwen-turbo", "lines": 21, "status": "in_progress"} | {
        "total": 21,
        "completed": 0,
        "failed": 0,
    }
    assert {j["model"] for j in document["open"][1]["jobs"]} == {"qwen-plus", "qwen-turbo"}


def test_a_collected_submission_is_no_longer_listed(submitted, fc, wire):  # noqa: F811
    all_collected(fc, wire)
    assert batches() == (0, f"0 open submission(s) in {BUCKET}: nothing waiting\n")


def test_cancel_by_key_cancels_its_jobs_and_the_collector_writes_what_was_done(standin, oss, submitted, fc, wire):  # noqa: F811
    batches()  # the jobs are in progress: cancelled with half their lines answered
    status, said = batches("--cancel", "inbox/two.jsonl")
    two, one = submitted["inbox/two.jsonl"], submitted["inbox/q21.jsonl"]
    assert status == 0 and all(f"cancelled {job['id']} of inbox/two.jsonl@" in said for job in two["jobs"])
    assert all(standin.batches.counts[CANCEL.format(job["id"])] == 1 for job in two["jobs"])
    assert standin.batches.counts[CANCEL.format(one["jobs"][0]["id"])] == 0  # the other submission untouched
    all_collected(fc, wire)
    written = answers(oss, "inbox/two.jsonl")
    assert len(written) == 25 and {line["code"] for line in written if line["status_code"] not in (200, 400)} == {
        "batch_cancelled"
    }


def test_cancel_by_job_id_cancels_that_job_alone(standin, submitted):
    first, second = submitted["inbox/two.jsonl"]["jobs"]
    status, said = batches("--cancel", second["id"], "--json")
    (action,) = json.loads(said)["cancel"]
    assert status == 0 and action["job"] == second["id"] and action["action"] == "cancelled"
    assert standin.batches.jobs[second["id"]].status == "cancelling"
    assert standin.batches.counts[CANCEL.format(first["id"])] == 0


def test_a_finished_job_is_not_cancelled_again(standin, submitted):
    for _ in range(3):  # the stand-in moves a job one state per look: completed, not collected yet
        batches()
    status, said = batches("--cancel", "inbox/q21.jsonl")
    (job,) = submitted["inbox/q21.jsonl"]["jobs"]
    assert status == 0 and f"unchanged {job['id']} of inbox/q21.jsonl@" in said and "already completed" in said
    assert standin.batches.counts[CANCEL.format(job["id"])] == 0


def test_cancel_of_nothing_open_says_so_in_one_line(submitted, capsys):
    status, said = batches("--cancel", "inbox/none.jsonl")
    assert status == 1 and said == ""
    assert capsys.readouterr().err == f"no open submission or job named inbox/none.jsonl in {BUCKET}\n"


def test_a_job_whose_state_cannot_be_read_is_said_without_the_key(standin, submitted):
    standin.batches.fail_next((401, "InvalidApiKey", "Invalid API-key provided."))
    status, said = batches()
    assert status == 1 and "state unknown (InvalidApiKey" in said and API_KEY not in said
    assert "in_progress" in said  # the other jobs are still listed


def test_an_unreadable_open_list_fails_then_lists_once_allowed(oss, submitted, capsys):
    oss.deny("GET", "answers/.batches/")
    status, said = batches()
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and f"cannot read oss://{BUCKET}/answers/.batches/open.json" in err
    assert "0 open submission(s)" in said
    oss._denied.clear()  # the role is granted oss:GetObject on answers/.batches/*
    status, said = batches()
    assert status == 0 and "2 open submission(s)" in said


def test_only_a_configured_bucket_is_read(oss, submitted, monkeypatch, capsys):
    status, said = batches("--bucket", BUCKET)
    assert status == 0 and "2 open submission(s)" in said
    before = len(oss.requests)
    assert batches("--bucket", "someone-elses") == (2, "")
    assert capsys.readouterr().err == f"--bucket someone-elses is not one of QWEN_OSS_BUCKETS ({BUCKET})\n"
    assert len(oss.requests) == before  # not one request to it


@pytest.mark.parametrize(
    ("unset", "said"),
    [
        ("DASHSCOPE_API_KEY", "DASHSCOPE_API_KEY is not set"),
        ("QWEN_OSS_BUCKETS", "QWEN_OSS_BUCKETS is not set"),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must be set"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must"),
    ],
)
def test_missing_configuration_is_one_line_and_status_2(oss, shell, monkeypatch, capsys, unset, said):
    monkeypatch.delenv(unset)
    assert batches() == (2, "")
    err = capsys.readouterr().err
    assert err.startswith(said) and err.count("\n") == 1 and not oss.requests


def test_missing_credentials_fail_then_the_listing_works_once_they_are_set(submitted, monkeypatch, capsys):
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    assert batches()[0] == 2 and "ALIBABA_CLOUD_ACCESS_KEY_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "cli-secret-0001")
    status, said = batches()
    assert status == 0 and "2 open submission(s)" in said


def test_offline_in_a_fresh_process():
    done = run("batches", "--offline")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"0 open submission(s) in qwen-questions, testbucket: nothing waiting\n"
    done = run("batches", "--offline", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["open"] == []


def test_without_configuration_in_a_fresh_process_it_says_so():
    done = run("batches", "--no-s-yaml")
    assert done.returncode == 2 and done.stderr.count(b"\n") == 1 and b"DASHSCOPE_API_KEY is not set" in done.stderr


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [
        (
            {"QWEN_OSS_ENDPOINT": "https://oss-cn-shanghai-internal.aliyuncs.com"},
            "https://oss-cn-shanghai.aliyuncs.com",
        ),
        ({"FC_REGION": "cn-beijing"}, "https://oss-cn-beijing.aliyuncs.com"),
        ({}, "https://oss-cn-hangzhou.aliyuncs.com"),
    ],
)
def test_oss_is_read_on_the_public_endpoint_of_the_configured_region(given, endpoint):
    from handler.config import Settings
    from handler.local import batches_cli

    env = {"DASHSCOPE_API_KEY": API_KEY, "ALIBABA_CLOUD_ACCESS_KEY_ID": "k", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}
    env |= given
    store = batches_cli._store(env, Settings.from_env(env))
    assert store._endpoint == endpoint
