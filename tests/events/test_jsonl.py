"""Line parsing of `.jsonl` question files: each line a question or the refusal written in its place."""

from __future__ import annotations

import json

from handler.errors import InvalidInput
from handler.events import jsonl
from handler.events.question import Question


def parsed(data: bytes, chunk: int = 7, **kwargs) -> list[jsonl.Line]:
    return list(jsonl.lines(iter([data[i : i + chunk] for i in range(0, len(data), chunk)]), **kwargs))


def codes(found: list[jsonl.Line]) -> list[str]:
    return [line.record.code if isinstance(line.record, InvalidInput) else "ok" for line in found]


def test_lines_split_across_chunks_keep_their_numbers_and_order():
    found = parsed(b'"one"\r\n{"prompt": "two", "custom_id": 7}\n\n"four"')
    assert [(line.number, line.custom_id) for line in found] == [(1, "1"), (2, "7"), (4, "4")]
    assert [line.record.text for line in found] == ["one", "two", "four"]


def test_a_request_line_keeps_model_and_parameters():
    (line,) = parsed(
        b'{"messages": [{"role": "user", "content": "hi"}], "model": "qwen-plus", "parameters": {"top_p": 0.5}}'
    )
    assert isinstance(line.record, Question) and line.record.model == "qwen-plus"
    assert dict(line.record.parameters) == {"top_p": 0.5}


def test_each_bad_line_gets_its_own_refusal():
    data = b'not json\n[1, 2]\n{"prompt": ""}\n{"prompt": "x", "custom_id": []}\n'
    data += b'\xff\xfe\n{"prompt": "y", "custom_id": "a"}\n{"prompt": "z", "custom_id": "a"}\n'
    assert codes(parsed(data)) == [
        "InvalidLine",
        "InvalidLine",
        "InvalidRequest",
        "InvalidLine",
        "InvalidEncoding",
        "ok",
        "DuplicateCustomId",
    ]


def test_a_line_giving_no_custom_id_is_never_a_duplicate_even_of_an_id_equal_to_its_number():
    data = b'"one"\n{"prompt": "two", "custom_id": "3"}\n"three"\n{"prompt": "four", "custom_id": 1}\n'
    found = parsed(data)
    assert [(line.number, line.custom_id, code) for line, code in zip(found, codes(found), strict=True)] == [
        (1, "1", "ok"),
        (2, "3", "ok"),
        (3, "3", "ok"),
        (4, "1", "ok"),
    ]


def test_ids_given_are_compared_as_the_strings_they_are_returned_as():
    found = parsed(
        b'{"prompt": "a", "custom_id": 7}\n{"prompt": "b", "custom_id": " 7 "}\n{"prompt": "c", "custom_id": "07"}\n'
    )
    assert [line.custom_id for line in found] == ["7", "7", "07"]
    assert codes(found) == ["ok", "DuplicateCustomId", "ok"]
    assert "custom_id '7' is given to an earlier line" in found[1].record.message


def test_a_bom_on_the_first_line_is_dropped():
    (line,) = parsed(b'\xef\xbb\xbf"q"\n')
    assert line.record == Question(text="q")


def test_a_line_over_the_limit_is_refused_without_being_held():
    pieces = list(jsonl.split(iter([b"ab", b"cdefgh", b"ij\nk"]), max_bytes=4))
    assert pieces == [(1, None), (2, b"k")]


def test_lines_past_the_limit_are_refused_the_others_kept():
    assert codes(parsed(b'"a"\n"b"\n"c"\n', max_lines=2)) == ["ok", "ok", "TooManyLines"]


def test_whole_file_refusals():
    assert jsonl.file_refusal(b"", 0).code == "EmptyFile"
    assert jsonl.file_refusal(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20, 40).code == "NotJsonLines"
    assert jsonl.file_refusal(b'"question"\n', 11) is None


def test_the_collect_timer_is_decoded_as_a_collect_not_a_question():
    from handler.events.decode import decode
    from handler.events.triggers.timer import CollectBatches

    for payload in ('{"collect": "batches"}', {"collect": "batches"}):
        event = json.dumps({"triggerTime": "2026-12-06T18:00:00Z", "triggerName": "collect", "payload": payload})
        (record,) = decode(event).records
        assert isinstance(record, CollectBatches)
    other = json.dumps({"triggerTime": "t", "triggerName": "n", "payload": '{"collect": "other"}'})
    assert not isinstance(decode(other).records[0], CollectBatches)
