"""The pure event decoder: bytes in, question(s) or a reason out."""

from __future__ import annotations

import json

import pytest

from handler.errors import InvalidInput
from handler.events.decode import decode, decode_text
from handler.events.question import Message, Question


def one(event: bytes | str | None):
    decoded = decode(event)
    assert len(decoded.records) == 1 and not decoded.batch
    return decoded.records[0]


def code_of(event: bytes | str | None) -> str:
    record = one(event)
    assert isinstance(record, InvalidInput), record
    assert record.status_code == 400
    return record.code


def test_plain_text_is_the_question():
    """Console test events and `s invoke -e` send the question as raw UTF-8 text."""
    assert one("如何做西红柿炖牛腩?".encode()) == Question(text="如何做西红柿炖牛腩?")


def test_surrounding_whitespace_and_bom_are_dropped():
    """A question saved by an editor with a BOM and a trailing newline is still just the question."""
    assert one("\ufeff  你好\n".encode()) == Question(text="你好")


@pytest.mark.parametrize("event", [b"", b"   \n\t", None, b"null", b'""', b'"   "'])
def test_empty_events_say_how_to_pass_a_question(event):
    """Empty, blank, null and empty-string events are refused with an `s invoke -e` hint."""
    record = one(event)
    assert isinstance(record, InvalidInput) and record.code == "EmptyEvent"
    assert "s invoke -e" in record.message


def test_non_utf8_bytes_are_refused():
    """Bytes that are not UTF-8 get InvalidEncoding with the offset of the bad byte."""
    record = one("你好".encode("gbk"))
    assert isinstance(record, InvalidInput) and record.code == "InvalidEncoding"
    assert "offset 0" in record.message


def test_a_bad_byte_deep_in_a_large_event_is_located():
    """The offset of an invalid byte is reported even past the first decoding slice."""
    event = "问".encode() * 1_000_000 + b"\xff" + b"tail"
    record = one(event)
    assert isinstance(record, InvalidInput) and record.code == "InvalidEncoding"
    assert "offset 3000000" in record.message


def test_no_printable_character_is_refused():
    """Control characters alone are not a question."""
    assert code_of(b"\x00\x01\x1b\x7f") == "NoPrintableText"


def test_json_string_is_its_content():
    """A JSON string event is answered as the text it holds."""
    assert one(json.dumps("什么是函数计算?").encode()) == Question(text="什么是函数计算?")


def test_json_string_content_is_not_decoded_again():
    """A JSON string holding JSON is a question about that text, not a request."""
    assert one(json.dumps('{"prompt": "x"}').encode()) == Question(text='{"prompt": "x"}')


@pytest.mark.parametrize("event", [b"42", b"1e3", b"-0.5", b"true", b"false"])
def test_numbers_and_booleans_are_the_text_as_written(event):
    """A JSON number or boolean is asked about as written, not re-serialized."""
    assert one(event) == Question(text=event.decode())


@pytest.mark.parametrize("key", ["prompt", "question"])
def test_prompt_and_question_requests(key):
    """{"prompt": ...} and {"question": ...} are the same request."""
    event = json.dumps({key: " 你好 ", "model": "qwen-plus", "parameters": {"temperature": 0.3}}).encode()
    assert one(event) == Question(text="你好", model="qwen-plus", parameters={"temperature": 0.3})


def test_messages_request_keeps_the_conversation():
    """A multi-turn conversation decodes into Message values in order."""
    event = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "how are you?"},
        ]
    }
    record = one(json.dumps(event))
    assert record == Question(
        messages=(
            Message("system", "be brief"),
            Message("user", "hi"),
            Message("assistant", "hello"),
            Message("user", "how are you?"),
        )
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt": 5}, "'prompt' must be a non-empty string"),
        ({"prompt": "  "}, "'prompt' must be a non-empty string"),
        ({"question": None}, "'question' must be a non-empty string"),
        ({"prompt": "a", "messages": []}, "only one of"),
        ({"messages": []}, "non-empty list"),
        ({"messages": "hi"}, "non-empty list"),
        ({"messages": ["hi"]}, "messages[0] must be an object"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 1}]}, "messages[0].content must be a string"),
        ({"messages": [{"role": "user"}]}, "messages[0].content must be a string"),
        ({"messages": [{"role": "user", "content": "x", "name": "n"}]}, "has field 'name'"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "last message must have role 'user'"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]},
            "system message may only come first",
        ),
        ({"prompt": "x", "model": 3}, "'model' must be a non-empty string"),
        ({"prompt": "x", "parameters": []}, "'parameters' must be a JSON object"),
        ({"prompt": "x", "api_key": "sk-x"}, "field 'api_key' is not allowed"),
        ({"prompt": "x", "stream": True}, "field 'stream' is not allowed"),
    ],
)
def test_malformed_requests_name_the_problem(body, fragment):
    """Each wrong type in a request gets InvalidRequest with a message naming the field."""
    record = one(json.dumps(body))
    assert isinstance(record, InvalidInput) and record.code == "InvalidRequest"
    assert fragment in record.message


@pytest.mark.parametrize(
    ("parameters", "name"),
    [
        ({"headers": {"X": "y"}}, "headers"),
        ({"result_format": "text"}, "result_format"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 2}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"seed": True}, "seed"),
        ({"stop": [1]}, "stop"),
    ],
)
def test_parameters_outside_the_allowlist_are_refused(parameters, name):
    """An event may set only known generation parameters, each with a value of the right type."""
    record = one(json.dumps({"prompt": "x", "parameters": parameters}))
    assert isinstance(record, InvalidInput) and record.code == "InvalidParameter"
    assert f"'{name}'" in record.message


@pytest.mark.parametrize("event", [b'{"foo": "bar"}', b"[1, 2]", b"[]", b"{}", b'{"Records": []}'])
def test_unknown_objects_and_arrays_are_a_miswired_trigger(event):
    """JSON that is neither a request nor a known envelope is InvalidEvent, never sent to Qwen."""
    assert code_of(event) == "InvalidEvent"


@pytest.mark.parametrize(
    "event",
    [
        b'{"prompt": "x"',
        b"{not json}",
        b"[1, 2,]",
        b'{ "prompt": "x"} trailing',
        b'[{"specversion": "1.0"',
        b"[ {",
        "[紧急]".encode(),
        b"{[1], [2]}",
    ],
)
def test_broken_json_is_invalid_event(event):
    """A document wrapped in brackets, or an object or batch cut short, is refused with today's message."""
    record = one(event)
    assert isinstance(record, InvalidInput) and record.code == "InvalidEvent"
    assert record.message.startswith("the event starts like JSON but is not valid JSON")


@pytest.mark.parametrize(
    "text",
    [
        "[紧急] 牛腩要炖多久?",
        "{draft} 帮我润色这段话",
        "[urgent][翻译] hello",
        "[1] 什么是函数计算?",
        "[1, 2",
        "{ draft }?",
        "[求助] 牛腩要炖多久? [急]",
        "{草稿} 牛腩要炖多久 {v2}",
        "[1] 第一步 [2] 第二步",
    ],
)
def test_a_question_starting_with_a_bracketed_tag_is_a_question(text):
    """Text that fails to parse and is not clearly broken JSON is asked as written."""
    assert one(text.encode()) == Question(text=text)


@pytest.mark.parametrize(
    "envelope",
    [
        lambda text: {"TopicName": "t", "MessageId": "m1", "Message": text},
        lambda text: {"specversion": "1.0", "id": "e1", "type": "mns:Queue:SendMessage", "data": {"messageBody": text}},
        lambda text: {"triggerTime": "2024-01-01T00:00:00Z", "triggerName": "daily", "payload": text},
    ],
)
def test_a_bracketed_question_inside_an_envelope_is_a_question(envelope):
    """The same rule holds for an MNS message body, a queue message and a timer payload."""
    record = one(json.dumps(envelope("[紧急] 牛腩要炖多久?"), ensure_ascii=False))
    assert isinstance(record, Question) and record.text == "[紧急] 牛腩要炖多久?"


def test_a_bracketed_question_file_is_a_question():
    """An OSS question file's text goes through the same rule (decode_text)."""
    assert decode_text("[紧急] 牛腩要炖多久?\n") == Question(text="[紧急] 牛腩要炖多久?")


@pytest.mark.parametrize(
    "envelope",
    [
        {"TopicName": "t", "MessageId": "m1", "Message": "  "},
        {"specversion": "1.0", "id": "e1", "type": "mns:Queue:SendMessage", "data": {"messageBody": "null"}},
        {"body": '""', "attrs": {}},
    ],
)
def test_an_empty_record_does_not_suggest_s_invoke(envelope):
    """An empty message body is EmptyEvent without the `s invoke -e` hint its sender cannot use."""
    record = one(json.dumps(envelope))
    assert isinstance(record, InvalidInput) and record.code == "EmptyEvent"
    assert "s invoke" not in record.message and "empty" in record.message
    assert decode_text(" ").code == "EmptyEvent" and "s invoke" not in decode_text(" ").message


def test_quoted_text_that_is_not_json_is_a_question():
    """Only { and [ mark an intended JSON event; other text that fails to parse is a question."""
    assert one(b'"quoted" words') == Question(text='"quoted" words')


@pytest.mark.parametrize("message_id", [None, "", "  ", {}, [], True])
def test_a_message_without_a_usable_id_has_no_source(message_id):
    """No id means no name: two such messages must not share the memory key 'mns:None'."""
    topic = one(json.dumps({"TopicName": "t", "MessageId": message_id, "Message": "hi"}))
    queue = one(json.dumps({"specversion": "1.0", "type": "mns:Queue:SendMessage", "data": {"messageBody": "hi"}}))
    assert topic.source is None and queue.source is None


def test_messages_without_ids_each_get_their_own_answer():
    """Regression: every id-less message after the first was answered with the first one's answer."""
    from types import SimpleNamespace

    from handler.app import Runtime, handle
    from handler.deliver.memory import AnsweredRecords
    from tests.conftest import echo

    runtime = Runtime(transport=echo, env={"DASHSCOPE_API_KEY": "sk-test-12345678"}, memory=AnsweredRecords())
    context = SimpleNamespace(request_id="r", function=SimpleNamespace(timeout=60))
    answers = []
    for question in ("first question", "second question"):
        event = {"TopicName": "t", "MessageId": None, "Message": question}
        output = json.loads(handle(json.dumps(event).encode(), context, runtime))["output"]
        answers.append(output["choices"][0]["message"]["content"])
    assert answers == ["answer to first question", "answer to second question"]


def test_record_names_are_one_bounded_line_and_stay_distinct():
    """An id with line breaks cannot forge a line where FC logs an exception naming it; long ids stay apart."""
    forged = one(json.dumps({"TopicName": "t", "MessageId": "m1\nERROR forged\u2028x", "Message": "hi"}))
    assert forged.source == "mns:m1%0AERROR%20forged%E2%80%A8x"  # percent-encoded, as in its answer key
    long_a, long_b = ("x" * 10_000 + "a"), ("x" * 10_000 + "b")
    sources = {one(json.dumps({"TopicName": "t", "MessageId": i, "Message": "hi"})).source for i in (long_a, long_b)}
    assert len(sources) == 2 and all(len(s) <= len("mns:") + 200 for s in sources)
    event = one(json.dumps({"specversion": "1.0", "id": "e\r\n1", "type": "other"}))
    assert isinstance(event, InvalidInput) and event.source == "event:e%0D%0A1"


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "x", "f" * 100_000: 1},
        {"prompt": "x", "parameters": {"p\n" * 50_000: 1}},
        {"messages": [{"role": "user", "content": "x", "k" * 100_000: 1}]},
    ],
)
def test_a_name_the_event_chose_is_shown_short_and_on_one_line(body):
    """An unknown field or parameter name is quoted in the message at most 64 characters long, escaped."""
    record = one(json.dumps(body))
    assert isinstance(record, InvalidInput) and len(record.message) < 400 and "\n" not in record.message
