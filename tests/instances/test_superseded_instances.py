"""A slow answer to an older upload never overwrites the newer upload's answer file: separate processes
(tests/support/fc_instance.py), the real SDK and oss2 against the stand-ins."""

from __future__ import annotations

import json
import time

import pytest

from handler.local.standin import answer
from tests.support.events import oss_event as event_text
from tests.support.events import oss_record
from tests.support.instances import Instance, instance_env

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def oss_event(key: str, etag: str) -> str:
    return event_text(oss_record(key, bucket="questions", etag=etag, size=40))


def test_a_slow_answer_to_version_1_does_not_replace_version_2s_answer(standin, oss):
    v1 = oss.put("questions", "q/menu.txt", "第一版: 红烧肉怎么做?")
    standin.script(answer("answer to version 1", delay=3), answer("answer to version 2"))
    env = instance_env(standin, oss, QWEN_OSS_BUCKETS="questions")
    with Instance(env) as a, Instance(env) as b:
        a.send(oss_event("q/menu.txt", v1.etag))
        for _ in range(200):  # A has read version 1 and is waiting for DashScope
            if standin.requests:
                break
            time.sleep(0.05)
        v2 = oss.put("questions", "q/menu.txt", "第二版: 糖醋排骨怎么做?")
        (second,) = b.invoke(oss_event("q/menu.txt", v2.etag))["returned"]
        first = a.receive()
    assert second["code"] == "" and second["output"]["choices"][0]["message"]["content"] == "answer to version 2"
    (older,) = first["returned"]
    assert older["code"] == "Superseded", older
    assert v1.etag in older["message"] and v2.etag in older["message"]
    assert older["output"]["choices"][0]["message"]["content"] == "answer to version 1"  # paid: still returned
    kept = oss.get("questions", "answers/q/menu.txt.json")
    assert kept.metadata["source-etag"] == v2.etag
    assert json.loads(kept.data)["output"]["choices"][0]["message"]["content"] == "answer to version 2"
    assert "answer_superseded" in [line["event"] for line in first["logs"]]
