"""One JSON line per question and nothing else at INFO: the libraries (oss2, urllib3, dashscope, requests)
log nothing below WARNING, and what they log at WARNING or above is one masked project JSON line. FC's
runtime sets the root logger to INFO; its handlers are FC's and stay as they are."""

from __future__ import annotations

import json
import logging

import pytest

from handler import redact
from tests.conftest import API_KEY, oss_invoker
from tests.support.oss_once import BUCKET, fc, oss_event  # noqa: F401  # fc: a context with credentials


@pytest.fixture
def root_at_info(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def test_an_oss_event_logs_no_library_line_below_warning(oss, transport, clock, fc, root_at_info):  # noqa: F811
    etag = oss.put(BUCKET, "questions/q.txt", "牛腩炖多久?").etag  # with an eTag: its answer file is looked up
    run = oss_invoker(oss, transport, clock, QWEN_OSS_BUCKETS=BUCKET)
    (result,) = run(oss_event((BUCKET, "questions/q.txt", etag)), fc)
    assert result["status_code"] == 200
    chatter = [(r.name, r.levelname, r.getMessage()[:80]) for r in root_at_info.records if r.name != "qwen"]
    assert not [c for c in chatter if logging.getLevelName(c[1]) < logging.WARNING], chatter
    for record in root_at_info.records:
        json.loads(record.getMessage())


@pytest.mark.parametrize("name", ["oss2.api", "urllib3.connectionpool", "dashscope", "requests"])
def test_a_library_warning_is_one_masked_json_line(name, root_at_info):
    redact.install()
    redact.pin("api_key", [API_KEY])
    try:
        raise ValueError(f"bad key {API_KEY}")
    except ValueError:
        logging.getLogger(name).warning("retrying with %s\nnext line", API_KEY, exc_info=True)
    (record,) = [r for r in root_at_info.records if r.name == name]
    assert record.exc_info is None and "\n" not in record.getMessage()
    line = json.loads(record.getMessage())
    assert line["event"] == "library_log" and line["logger"] == name and line["level"] == "WARNING"
    assert line["message"] == "retrying with ***\nnext line"
    assert "ValueError: bad key ***" in line["traceback"]
    assert API_KEY not in record.getMessage()


def test_the_root_loggers_handlers_are_fcs(root_at_info):
    before = list(logging.getLogger().handlers)
    import handler.app  # noqa: F401  # the import that quiets the libraries

    assert logging.getLogger().handlers == before
    assert logging.getLogger("oss2").getEffectiveLevel() == logging.WARNING
