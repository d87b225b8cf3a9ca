"""Every in-progress marker, however deep its question's key, falls under the one markers folder that the
role's DeleteObject grant and the lifecycle rule name; s.yaml's role comment names the same resources.
The resources are built from the code's own key functions."""

from __future__ import annotations

import fnmatch
import re

import pytest

from handler.deliver.answers import MARKERS, answer_key, pending_key
from handler.deliver.oss_files import QuestionFileAnswers
from tests.conftest import ROOT

OUTPUT = "answers/"  # s.yaml's QWEN_OSS_OUTPUT_PREFIX
WATCHED = "questions/"  # the commented OSS trigger's prefix


def policy(bucket: str) -> dict[str, list[str]]:
    """The least-privilege grants for the OSS-trigger example and the answer store, from the code's key rules."""
    markers = f"acs:oss:*:*:{bucket}/{OUTPUT}{MARKERS}{WATCHED}*"
    answers = f"acs:oss:*:*:{bucket}/{OUTPUT}{WATCHED}*"
    return {
        "oss:GetObject": [f"acs:oss:*:*:{bucket}/{WATCHED}*", answers, markers],
        "oss:PutObject": [answers, markers],
        "oss:DeleteObject": [markers],
        "oss:GetBucketVersioning": [f"acs:oss:*:*:{bucket}"],
    }


def lifecycle_prefix() -> str:
    return OUTPUT + MARKERS


@pytest.mark.parametrize("key", ["questions/q.txt", "questions/2024/05/q.txt", "questions/a/b/c/d.md"])
def test_every_question_files_marker_is_under_the_grant_and_the_lifecycle_rule(key):
    marker = OUTPUT + QuestionFileAnswers(None, "qwen-questions", OUTPUT, key, "ETAG1").marker  # type: ignore[arg-type]
    resource = f"acs:oss:*:*:qwen-questions/{marker}"
    assert any(fnmatch.fnmatchcase(resource, grant) for grant in policy("qwen-questions")["oss:DeleteObject"])
    assert marker.startswith(lifecycle_prefix())


@pytest.mark.parametrize("source", ["mns:m-1", "timer:daily/2026-11-27T08:00:00Z"])
def test_every_answer_store_marker_is_under_the_lifecycle_rule(source):
    key = answer_key(source)
    assert key is not None
    marker = OUTPUT + pending_key(key)
    assert marker.startswith(lifecycle_prefix())
    assert fnmatch.fnmatchcase(f"acs:oss:*:*:qwen-answers/{marker}", f"acs:oss:*:*:qwen-answers/{OUTPUT}*")


def test_the_role_comment_in_s_yaml_names_the_codes_resources():
    text = " ".join(re.sub(r"^\s*#", "", line) for line in (ROOT / "s.yaml").read_text().splitlines())
    text = " ".join(text.split())
    markers = f"{OUTPUT}{MARKERS}{WATCHED}*"
    assert f"oss:DeleteObject on its in-progress markers {markers}" in text
    assert f"oss:PutObject on {OUTPUT}{WATCHED}*" in text
    assert "oss:GetBucketVersioning on the bucket" in text
    assert "oss:GetBucketVersioning on <bucket>" in text
