"""A line a finished Batch API job never answered: its code says how the job ended (the collect timer's
answer file, handler/deliver/batch_collect.py)."""

from __future__ import annotations

import pytest

from handler.deliver import batch_collect


@pytest.mark.parametrize(
    ("status", "code", "http"),
    [
        ("failed", "BatchFailed", 500),
        ("expired", "BatchExpired", 504),
        ("cancelled", "BatchCancelled", 504),
        ("completed", "BatchLineMissing", 504),
    ],
)
def test_a_line_the_job_never_answered_says_how_the_job_ended(status, code, http):
    result = batch_collect._result(None, (status, "validation_failed: bad model"))
    assert (result.status_code, result.code) == (http, code)
    assert result.message == f"the batch job ended {status} before answering this line: validation_failed: bad model"
