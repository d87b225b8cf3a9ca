"""Every line the project logs fits FC's log frame: at most 64 KiB of UTF-8, valid JSON, content cut at a
character boundary with `truncated` and the original lengths (FC's runtime cuts a record at 128 KiB)."""

from __future__ import annotations

import json
import logging

import pytest

from handler import logs as project_logs
from handler.app import handle
from tests.conftest import echo

LIMIT = 64 * 1024


def project_lines(caplog_records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in caplog_records if r.name == "qwen"]


@pytest.mark.parametrize("question", ["q" * 150_000, "问" * 30_000, '问\u2028\n"' * 15_000])
def test_a_long_question_logged_with_its_content_fits_the_frame(runtime, context, transport, env, logs, question):
    env["QWEN_LOG_CONTENT"] = "true"
    transport.side_effect = echo
    result = json.loads(handle(question.encode(), context, runtime))
    assert result["status_code"] == 200
    lines = project_lines(logs.records)
    assert lines
    for line in lines:
        assert len(line.encode()) <= LIMIT
        json.loads(line)
    (line,) = logs.events("question")
    assert line["truncated"] is True
    assert line["original_lengths"]["question"] == len(question)
    assert question.startswith(line["question"]) and line["question"]
    assert line["answer"].startswith("answer to ")
    assert line["status_code"] == 200 and line["total_tokens"] == 227


def test_any_field_that_grows_is_cut_to_fit():
    """Not only content: a message, a traceback, a list of ids; the event and small fields stay whole."""
    fields = {"event": "x", "code": "C", "message": "m" * 50_000, "traceback": "t" * 60_000, "ids": list(range(30_000))}
    line = project_logs.render(fields)
    assert len(line.encode()) <= LIMIT
    value = json.loads(line)
    assert value["event"] == "x" and value["code"] == "C" and value["truncated"] is True
    assert value["original_lengths"]["traceback"] == 60_000
    assert set(value["original_lengths"]) <= {"message", "traceback", "ids"}


def test_a_line_under_the_limit_is_unchanged():
    fields = {"event": "question", "question": "问" * 5000}
    assert json.loads(project_logs.render(fields)) == fields


def test_a_short_line_is_never_encoded_to_be_measured(mocker):
    """The common case stays cheap: a line whose characters cannot reach the limit is not encoded again."""
    measured = mocker.patch.object(project_logs, "_size", side_effect=lambda text: len(text.encode()))
    project_logs.render({"event": "question", "message": "问" * 1000})
    measured.assert_not_called()
    project_logs.render({"event": "question", "message": "问" * 20_000})
    assert measured.called
