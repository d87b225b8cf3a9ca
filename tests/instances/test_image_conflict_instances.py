"""An MNS message id reused with the same text and another image, across FC instances (separate processes,
empty memory each) through the real SDK and oss2 against the stand-ins: with QWEN_ANSWER_BUCKET the second
instance refuses it 409 AnswerConflict with no DashScope call; without a store the same instance asks again."""

from __future__ import annotations

import json

import pytest

from handler.local.standin import MULTIMODAL_PATH
from tests.support.events import topic_message
from tests.support.instances import ANSWER_BUCKET, Instance, instance_env

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

CAT, PASSPORT = "https://example.com/cat.jpg", "https://example.com/passport.jpg"


def about(image: str) -> str:
    return topic_message(
        "msg-1", json.dumps({"messages": [{"role": "user", "content": [{"image": image}, {"text": "这是什么?"}]}]})
    )


def sent_images(standin) -> list[str]:
    asked = [r.body["input"]["messages"][-1]["content"] for r in standin.requests]
    return [part["image"] for content in asked for part in content if "image" in part]


def test_another_image_under_a_stored_message_id_is_a_conflict_on_a_fresh_instance(standin, oss):
    env = instance_env(standin, oss)
    with Instance(env) as a:
        first = a.invoke(about(CAT))["returned"]
    with Instance(env) as b:
        second = b.invoke(about(PASSPORT))
    assert first["status_code"] == 200
    assert second["returned"]["status_code"] == 409 and second["returned"]["code"] == "AnswerConflict"
    assert "oss://qwen-answers/answers/mns/msg-1.json" in second["returned"]["message"]
    assert sent_images(standin) == [CAT] and standin.requests[0].path == MULTIMODAL_PATH
    assert json.loads(oss.get(ANSWER_BUCKET, "answers/mns/msg-1.json").data) == first
    (line,) = [line for line in second["logs"] if line["event"] == "question"]
    assert line["answered_by"] == "conflict"


def test_another_image_under_a_remembered_message_id_is_asked_again_without_a_store(standin, oss):
    env = instance_env(standin, oss, QWEN_ANSWER_BUCKET="")
    with Instance(env) as a:
        first = a.invoke(about(CAT))["returned"]
        again = a.invoke(about(CAT))["returned"]
        second = a.invoke(about(PASSPORT))["returned"]
    assert first["status_code"] == second["status_code"] == 200 and again == first  # the redelivery: remembered
    assert sent_images(standin) == [CAT, PASSPORT]
    assert oss.requests == []
