"""The offline OSS stand-in serves what a real bucket would, so the samples show the documented results."""

from __future__ import annotations

import json

from handler.local.standin_oss import emulated
from tests.local.test_cli import run


def test_the_png_sample_gets_the_documented_415_offline():
    """events/oss.json names source/example.png: offline, as deployed, it is refused as not text."""
    done = run("--offline", "--quiet", "--event-file", "events/oss.json")
    assert done.returncode == 1, done.stderr
    (result,) = json.loads(done.stdout)
    assert result["status_code"] == 415 and result["code"] == "ObjectNotText"
    assert "oss://testbucket/source/example.png" in result["message"]


def test_the_text_sample_is_still_answered_offline():
    """events/oss-question.json names a text file: answered from the emulated text."""
    done = run("--offline", "--quiet", "--event-file", "events/oss-question.json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["status_code"] == 200


def test_missing_objects_are_emulated_by_suffix():
    """Image and archive keys read as binary bytes, other keys as a text question."""
    assert emulated("a/photo.PNG").data.startswith(b"\x89PNG") and emulated("x.pdf").content_type != "text/plain"
    text = emulated("questions/q.txt")
    assert text.data.decode().startswith("What is stored at questions/q.txt?")
