"""An OSS key cannot forge lines in FC's plain-text error log nor swell a message: keys with control
characters or over OSS's 1023-byte limit are refused with a 400, and keys are shown escaped and bounded
in every message, raised ones included."""

from __future__ import annotations

import json

import pytest

from handler.app import Runtime, handle
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.errors import InvalidInput, TransientUpstreamError
from handler.events.decode import decode
from handler.events.sources import shown_object
from tests.conftest import API_KEY, echo
from tests.support.oss_once import BUCKET, fc, oss_event  # noqa: F401  # the fixture is shared with tests/deliver/test_oss_once.py

FORGED = "q.txt\n2026-11-27 10:00:00 [INFO] forged line: all good"


def record(key: str):
    (found,) = decode(oss_event((BUCKET, key, "E1"))).records
    return found


@pytest.mark.parametrize(
    "key",
    [FORGED, "q\r.txt", "q\x00.txt", "q\u2028.txt", "q\x1b[31m.txt", "k" * 1024, "问" * 342],
    ids=["newline", "cr", "nul", "line-separator", "escape", "1024-bytes", "1026-utf8-bytes"],
)
def test_keys_with_control_characters_or_over_1023_bytes_are_refused(key):
    """A 400 InvalidObjectKey, whose source is one bounded line."""
    found = record(key)
    assert isinstance(found, InvalidInput) and found.status_code == 400 and found.code == "InvalidObjectKey"
    assert found.source is not None and found.source.isprintable() and len(found.source) < 300


def test_a_1023_byte_key_is_still_a_question_file():
    """OSS's limit is 1023 bytes of UTF-8: a key of exactly that is accepted."""
    assert record("问" * 341).key == "问" * 341


def test_a_200000_character_key_gives_a_short_refusal():
    """The refusal and its source stay short, whatever the key's length."""
    found = record("k" * 200_000)
    assert isinstance(found, InvalidInput) and len(found.message) < 200 and len(found.source or "") < 300


def test_shown_keys_are_one_line_and_bounded_and_distinct():
    """Control characters escaped, printable ones (Chinese too) kept, long keys cut with a hash of the whole."""
    assert shown_object("b", "答案/a\nb") == "oss://b/答案/a\\nb"
    long_a, long_b = shown_object("b", "x" * 5000 + "a"), shown_object("b", "x" * 5000 + "b")
    assert long_a != long_b and len(long_a) < 300 and long_a.isprintable()


@pytest.fixture
def run(oss, transport, clock):
    """handle() with the fake SDK, oss2 against the stand-in; raised errors returned as they are."""
    transport.side_effect = echo

    def invoke(event: bytes, context):
        runtime = Runtime(
            transport=transport,
            env={"DASHSCOPE_API_KEY": API_KEY, "QWEN_OSS_ENDPOINT": oss.url, "QWEN_OSS_BUCKETS": BUCKET},
            sleep=clock.sleep,
            clock=clock,
            backoff=Backoff(base=0.01, cap=0.02),
            memory=AnsweredRecords(),
        )
        try:
            return json.loads(handle(event, context, runtime))
        except TransientUpstreamError as error:
            return error

    return invoke


def test_a_forged_key_in_a_batch_is_refused_not_raised(run, oss, fc):  # noqa: F811
    """The forging record gets its 400; no OSS request is made for it, and nothing raised carries its line break."""
    oss.fail_next(*([503] * 20), prefix="q.txt\n")
    results = run(oss_event((BUCKET, "ok.txt", "E1"), (BUCKET, FORGED, "E1")), fc)
    assert isinstance(results, list), results
    assert results[1]["status_code"] == 400 and results[1]["code"] == "InvalidObjectKey"
    assert "\n" not in results[1]["message"]
    assert all(r.key != FORGED for r in oss.requests)


def test_a_long_key_is_bounded_in_the_raised_message(run, oss, fc):  # noqa: F811
    """OSS down for a 1000-character key: the raised OssUnavailable names it in under 400 characters."""
    key = "q/" + "y" * 1000
    oss.put(BUCKET, key, "问题")
    oss.fail_next(*([503] * 20))
    raised = run(oss_event((BUCKET, key, None)), fc)
    assert isinstance(raised, TransientUpstreamError), raised
    assert len(raised.message) < 400 and "y" * 300 not in str(raised)
