"""The offline OSS stand-in serves what a real bucket would, so the samples show the documented results."""

from __future__ import annotations

import json

from handler.local.standin_oss import emulated
from tests.support.processes import run_cli as run


def test_the_png_sample_is_answered_by_the_vision_model_offline():
    """events/oss.json names source/example.png: offline, as deployed, the image is answered by QWEN_VISION_MODEL."""
    done = run("--offline", "--quiet", "--event-file", "events/oss.json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert result["status_code"] == 200
    assert "[1 image part received]" in result["output"]["choices"][0]["message"]["content"]


def test_the_image_sample_is_answered_offline_with_the_bundled_image(tmp_path):
    """events/oss-image.json: the OSS stand-in serves handler/local/sample.png, the DashScope stand-in sees it."""
    done = run("--offline", "--event-file", "events/oss-image.json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    content = result["output"]["choices"][0]["message"]["content"]
    assert result["status_code"] == 200 and "[1 image part received]" in content
    assert "请描述这张图片" in content  # QWEN_IMAGE_PROMPT's default, the instruction asked
    line = [json.loads(x.split(" ", 1)[1]) for x in done.stderr.decode().splitlines() if '"question"' in x][-1]
    assert line["image_parts"] == 1 and line["model"] == "qwen3-vl-flash" and line["api"] == "multimodal"


def test_the_text_sample_is_still_answered_offline():
    """events/oss-question.json names a text file: answered from the emulated text."""
    done = run("--offline", "--quiet", "--event-file", "events/oss-question.json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["status_code"] == 200


def test_missing_objects_are_emulated_by_suffix():
    """Image keys read as the bundled PNG, archives as other binary bytes, sidecars not at all, other keys as text."""
    assert emulated("a/photo.PNG").data.startswith(b"\x89PNG") and emulated("x.pdf").content_type != "text/plain"
    assert emulated("a/photo.png.txt") is None and not emulated("x.pdf").data.startswith(b"\x89PNG")
    text = emulated("questions/q.txt")
    assert text.data.decode().startswith("What is stored at questions/q.txt?")
