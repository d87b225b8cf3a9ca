"""An instance waiting for another's answer stops waiting once that marker's deadline passes, and takes
the delivery over: proved with separate processes (tests/support/fc_instance.py), the first one killed mid-ask."""

from __future__ import annotations

import time

import pytest

from handler.local.standin import answer
from tests.support.events import topic_message
from tests.support.instances import ANSWER_BUCKET, Instance, instance_env

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

MARKER = "answers/.pending/mns/takeover-1.json"


def test_a_waiting_instance_takes_over_once_the_markers_deadline_passes(standin, oss):
    """A (function timeout 4 s) claims the message and dies while asking; B (timeout 30 s) gets the
    redelivery, waits for A's answer while A's marker is fresh, then takes over and answers it."""
    standin.script(answer("never delivered", delay=60))  # A's call: DashScope is slow, A dies first
    env = instance_env(standin, oss)
    message = topic_message("takeover-1", "红烧肉怎么做?")
    a = Instance(env)
    a.send(message, timeout=4)
    for _ in range(200):  # until A's marker is in the bucket and its request reached DashScope
        if oss.get(ANSWER_BUCKET, MARKER) is not None and standin.requests:
            break
        time.sleep(0.05)
    a.proc.kill()  # FC reclaims the instance: its marker stays, with A's deadline in it
    a.close()
    deadline = float(oss.get(ANSWER_BUCKET, MARKER).metadata["deadline"])
    assert deadline > time.time(), "the marker must still be fresh when B looks"
    with Instance(env) as b:
        out = b.invoke(message, timeout=30)
    assert "returned" in out, out
    result = out["returned"]
    assert result["status_code"] == 200 and result["code"] == ""
    assert len(standin.requests) == 2  # A's lost call and B's own
    events = [line["event"] for line in out["logs"]]
    assert "answer_taken_over" in events
    stored = oss.get(ANSWER_BUCKET, "answers/mns/takeover-1.json")
    assert stored is not None and stored.metadata["status"] == "completed"
