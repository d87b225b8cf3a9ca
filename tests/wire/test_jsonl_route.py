"""The `.jsonl` route end to end through the handler and the stand-ins, at its edges: 21 lines (the first past
QWEN_JSONL_REALTIME_MAX_LINES) submitted and collected, 5,000 lines, 50,001 lines, bad lines on the batch
route, a file that is not UTF-8 and a PNG under a .jsonl name with more "lines" than the real-time limit.
1 and 20 lines (real time), a PNG of one line, bad lines in real time and a bad JSON line collected are in
test_jsonl_realtime.py and test_jsonl_collect.py."""

from __future__ import annotations

import json

import pytest

from handler.local.standin_batches import answer_text
from tests.support.jsonl_wire import (  # noqa: F401  # fc, wire: fixtures
    BUCKET,
    PNG,
    answers,
    asked,
    fc,
    inputs,
    put,
    questions,
    submit,
    until_collected,
    wire,
)

pytestmark = pytest.mark.usefixtures("fc")


def submitted_and_collected(standin, oss, fc, wire, key: str, data: bytes) -> tuple[dict, list[dict]]:  # noqa: F811
    """Submit the file, read back the batch input lines its jobs were given (collect deletes them), collect
    it: the submit's record and those lines."""
    result = submit(put(oss, key, data), fc, wire)
    assert result["code"] == "BatchSubmitted", result
    record = result["output"]
    sent = [line for job in record["jobs"] for line in inputs(standin, job)]
    until_collected(fc, wire)
    return record, sent


def answered(sent: list[dict]) -> dict[str, str]:
    """custom_id of a batch input line (its line number) -> the answer the stand-in gives that line."""
    return {line["custom_id"]: answer_text(line["body"]["messages"]) for line in sent}


def contents(written: list[dict]) -> list[str | None]:
    return [
        line["output"]["choices"][0]["message"]["content"] if line["status_code"] == 200 else None for line in written
    ]


def test_21_lines_go_to_the_batch_route_and_every_answer_lands_in_its_place(standin, oss, wire, fc):  # noqa: F811
    record, sent = submitted_and_collected(standin, oss, fc, wire, "inbox/q21.jsonl", questions(21))
    written = answers(oss, "inbox/q21.jsonl")
    assert not asked(standin) and record["lines"] == 21 and record["refused"] == 0
    assert [line["custom_id"] for line in written] == [str(n) for n in range(1, 22)]
    given = answered(sent)
    assert contents(written) == [given[str(n)] for n in range(1, 22)]
    assert len(set(contents(written))) == 21  # each line's own answer, not one answer copied


def test_5000_lines_are_submitted_once_and_collected_in_input_order(standin, oss, wire, fc):  # noqa: F811
    standin.batches.shuffle = 5000  # the output file in another order than the input
    data = "".join(
        json.dumps({"custom_id": f"k{n}", "prompt": f"第 {n} 题"}, ensure_ascii=False) + "\n" for n in range(5000)
    )
    record, sent = submitted_and_collected(standin, oss, fc, wire, "inbox/q5000.jsonl", data.encode())
    written = answers(oss, "inbox/q5000.jsonl")
    assert len(standin.batches.jobs) == 1 and record["jobs"][0]["lines"] == 5000 and not asked(standin)
    assert [line["custom_id"] for line in written] == [f"k{n}" for n in range(5000)]
    given = answered(sent)
    assert contents(written) == [given[str(n + 1)] for n in range(5000)]
    assert all(line["status_code"] == 200 for line in written)


def test_50001_lines_the_last_is_refused_in_place_and_50000_are_submitted(standin, oss, wire, fc):  # noqa: F811
    data = b'"q"\n' * 50_001
    record, _ = submitted_and_collected(standin, oss, fc, wire, "inbox/q50001.jsonl", data)
    (job,) = record["jobs"]
    assert job["lines"] == 50_000 and record["refused"] == 1 and record["lines"] == 50_001
    assert standin.batches.jobs[job["id"]].total == 50_000 and not standin.batches.jobs[job["id"]].errors
    written = answers(oss, "inbox/q50001.jsonl")
    assert len(written) == 50_001 and written[-1]["custom_id"] == "50001" and written[-1]["code"] == "TooManyLines"
    assert written[-1]["status_code"] == 413 and sum(line["status_code"] == 200 for line in written) == 50_000


def test_a_line_not_json_and_a_line_over_6_mb_are_refused_in_place_on_the_batch_route(standin, oss, wire, fc):  # noqa: F811
    lines = [json.dumps(f"问题 {n}", ensure_ascii=False).encode() for n in range(1, 26)]
    lines[2] = b"{not json"
    lines[6] = b'"' + b"x" * (6 * 1024 * 1024 + 1) + b'"'
    record, sent = submitted_and_collected(standin, oss, fc, wire, "inbox/bad.jsonl", b"\n".join(lines))
    (job,) = record["jobs"]
    assert job["lines"] == 23 and record["refused"] == 2
    assert [line["custom_id"] for line in sent] == [str(n) for n in range(1, 26) if n not in (3, 7)]
    written = answers(oss, "inbox/bad.jsonl")
    assert [line["custom_id"] for line in written] == [str(n) for n in range(1, 26)]
    assert (written[2]["code"], written[2]["status_code"]) == ("InvalidLine", 400)
    assert (written[6]["code"], written[6]["status_code"]) == ("LineTooLarge", 413)
    good = [n for n in range(25) if n not in (2, 6)]
    given, said = answered(sent), contents(written)
    assert [said[n] for n in good] == [given[str(n + 1)] for n in good]


def test_a_file_not_in_utf8_over_the_limit_has_every_line_refused_and_no_job(standin, oss, wire, fc):  # noqa: F811
    gbk = "".join(json.dumps(f"问题 {n}", ensure_ascii=False) + "\n" for n in range(1, 26)).encode("gbk")
    record = submit(put(oss, "inbox/gbk.jsonl", gbk), fc, wire)["output"]
    assert record["jobs"] == [] and record["refused"] == 25 and not standin.batches.jobs and not asked(standin)
    written = answers(oss, "inbox/gbk.jsonl")  # at once: with no job to wait for, no collect timer is needed
    assert [line["custom_id"] for line in written] == [str(n) for n in range(1, 26)]
    assert {line["code"] for line in written} == {"InvalidEncoding"} and "GBK" in written[0]["message"]


def test_a_png_with_more_lines_than_the_limit_is_refused_whole_not_submitted(standin, oss, wire, fc):  # noqa: F811
    data = PNG + b"x\n" * 40  # 40 lines that are not blank
    result = submit(put(oss, "inbox/photo.jsonl", data), fc, wire)
    (line,) = answers(oss, "inbox/photo.jsonl")
    assert result["code"] == line["code"] == "NotJsonLines" and line["status_code"] == 415 and line["custom_id"] is None
    assert not standin.batches.jobs and not standin.files.files and not asked(standin)
