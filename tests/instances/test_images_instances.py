"""Exactly once holds for OSS images as for text files: separate processes (fresh interpreters, as FC
instances), the same event to two of them at once, asked once; and the CLI's --image."""

from __future__ import annotations

import json

import pytest

from handler.local.standin import MULTIMODAL_PATH
from handler.local.standin_oss import SAMPLE_IMAGE
from tests.support.events import oss_record
from tests.support.instances import Instance, instance_env
from tests.support.processes import run_cli as run

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_one_image_delivered_to_two_instances_at_once_is_asked_once(standin, oss):
    standin.latency = 1.5  # the first instance is still asking when the second looks
    bucket, key = "qwen-photos", "photos/dup.png"
    data = SAMPLE_IMAGE.read_bytes()
    etag = oss.put(bucket, key, data).etag
    record = oss_record(key, bucket=bucket, etag=etag, size=len(data))
    event = json.dumps({"events": [record]})
    env = instance_env(standin, oss, QWEN_OSS_BUCKETS=bucket)
    with Instance(env) as a, Instance(env) as b:
        a.send(event)
        b.send(event)
        one, two = a.receive(), b.receive()
    assert len(standin.requests) == 1 and standin.requests[0].path == MULTIMODAL_PATH
    assert one["returned"] == two["returned"] and one["returned"][0]["status_code"] == 200
    assert "[1 image part received]" in one["returned"][0]["output"]["choices"][0]["message"]["content"]
    assert oss.writes[(bucket, "answers/photos/dup.png.json")] == 1
    answer = oss.get(bucket, "answers/photos/dup.png.json")
    assert json.loads(answer.data) == one["returned"][0] and answer.metadata == {"source-etag": etag}
    ways = sorted(
        line.get("answered_by", "asked") for out in (one, two) for line in out["logs"] if line["event"] == "question"
    )
    assert ways == ["asked", "waited"]


def test_the_cli_sends_a_local_image_named_on_its_command_line():
    done = run("--offline", "--image", "handler/local/sample.png", "what is this?")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "You asked: what is this? [1 image part received]" in result["output"]["choices"][0]["message"]["content"]
    assert '"image_parts":1' in done.stderr.decode()


def test_the_cli_refuses_a_file_that_is_not_an_image():
    done = run("--offline", "--image", "index.py", "what is this?")
    assert done.returncode == 2 and b"not a PNG, JPEG, WEBP, GIF or BMP image" in done.stderr
