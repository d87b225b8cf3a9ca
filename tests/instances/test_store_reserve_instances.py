"""A stream still going near the deadline is cut early enough to store its PartialAnswer and free the
marker: separate processes (tests/support/fc_instance.py), the real SDK and oss2 against the stand-ins. The
reproduction of the defect: a 6 s function timeout and 100 chunks 0.1 s apart (a 10 s answer)."""

from __future__ import annotations

import json

import pytest

from handler.local.standin import stream
from tests.support.events import oss_event as event_text
from tests.support.events import oss_record, topic_message
from tests.support.instances import ANSWER_BUCKET, Instance, instance_env

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

LONG = "红烧肉要先焯水, 再炒糖色, 然后小火慢炖一个小时。" * 20


def test_a_partial_answer_cut_at_the_deadline_is_stored(standin, oss):
    standin.script(stream(LONG, chunks=100, every=0.1))
    with Instance(instance_env(standin, oss)) as a:
        out = a.invoke(topic_message("reserve-1", "红烧肉怎么做?"), timeout=6)
    result = out["returned"]
    assert result["code"] == "PartialAnswer" and "stored" not in result, result
    events = [line["event"] for line in out["logs"]]
    assert "answer_not_stored" not in events and "answer_marker_kept" not in events
    stored = oss.get(ANSWER_BUCKET, "answers/mns/reserve-1.json")
    assert stored is not None and stored.metadata["status"] == "completed"
    assert json.loads(stored.data) == result  # the cut answer, marked partial by its code
    assert len(standin.requests) == 1
    # The redelivery on another instance gets the stored partial answer, not a second paid call.
    with Instance(instance_env(standin, oss)) as b:
        again = b.invoke(topic_message("reserve-1", "红烧肉怎么做?"), timeout=6)
    assert again["returned"] == result and len(standin.requests) == 1


def test_a_partial_answer_that_cannot_be_stored_says_so_in_its_own_field(standin, oss):
    standin.script(stream(LONG, chunks=100, every=0.1))
    oss.deny("PUT", "answers/mns/")
    with Instance(instance_env(standin, oss)) as a:
        out = a.invoke(topic_message("reserve-2", "红烧肉怎么做?"), timeout=6)
    result = out["returned"]
    assert result["code"] == "PartialAnswer" and result["stored"] is False, result
    assert "could not be stored at oss://qwen-answers/answers/mns/reserve-2.json" in result["message"]
    (line,) = [line for line in out["logs"] if line["event"] == "question"]
    assert line["stored"] is False and line["code"] == "PartialAnswer"
    (not_stored,) = [line for line in out["logs"] if line["event"] == "answer_not_stored"]
    assert not_stored["result_code"] == "PartialAnswer"


def oss_event(key: str, etag: str) -> str:
    return event_text(oss_record(key, bucket="questions", etag=etag, size=40))


def test_a_question_files_partial_answer_is_written(standin, oss):
    v1 = oss.put("questions", "q/long.txt", "红烧肉怎么做?")
    standin.script(stream(LONG, chunks=100, every=0.1))
    with Instance(instance_env(standin, oss, QWEN_OSS_BUCKETS="questions")) as a:
        out = a.invoke(oss_event("q/long.txt", v1.etag), timeout=6)
    (result,) = out["returned"]
    assert result["code"] == "PartialAnswer" and "stored" not in result, result
    written = oss.get("questions", "answers/q/long.txt.json")
    assert written is not None and json.loads(written.data) == result
