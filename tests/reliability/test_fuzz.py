"""Property-based: whatever the bytes, the handler answers with JSON results, 200s or 4xx with a code."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from handler.errors import InvalidInput
from handler.events.decode import REQUEST_KEYS, _shown, decode, decode_text
from handler.events.question import OssObject, Question, Skipped
from handler.events.triggers.cloudevents import CloudEvent
from handler.events.triggers.mns_topic import MnsTopicMessage
from handler.events.triggers.timer import TimerEvent
from tests.reliability.conftest import CASES, assert_well_formed, run_offline

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = {p.name: json.loads(p.read_text()) for p in sorted(EVENTS.glob("*.json"))}

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)

# Values a mutation puts in place of a field: wrong types, empties, nulls, huge and deep ones.
replacements = st.one_of(
    st.none(),
    st.just(""),
    st.just("   "),
    st.integers(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    st.just("长" * 200_000),
    st.just(json.loads("[" * 50 + "]" * 50)),
    st.text(max_size=30),
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a field inside a sample (dict keys and list indexes)."""
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, key))
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*prefix, index))
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated_samples(draw: st.DrawFn) -> Any:
    name = draw(st.sampled_from(sorted(SAMPLES)))
    sample = copy.deepcopy(SAMPLES[name])
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(sample)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = sample
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = copy.deepcopy(draw(replacements))  # a shared value must not be mutated later
    return sample


@FUZZ
@given(st.binary(max_size=3000))
def test_decode_takes_any_bytes(event):
    """The decoder returns records for any bytes and never raises."""
    CASES["decode: arbitrary bytes"] += 1
    decoded = decode(event)
    assert decoded.records
    assert all(isinstance(r, Question | InvalidInput | OssObject | Skipped) for r in decoded.records)


@FUZZ
@given(json_values)
def test_decode_takes_any_json(value):
    """The decoder returns records for any JSON document and never raises."""
    CASES["decode: arbitrary JSON"] += 1
    assert decode(json.dumps(value).encode()).records


@FUZZ
@given(st.binary(max_size=3000))
def test_the_handler_takes_any_bytes(event):
    """Any bytes: well-formed results, no traceback, no upstream call for an invalid record."""
    CASES["handler: arbitrary bytes"] += 1
    assert_well_formed(*run_offline(event))


@FUZZ
@given(json_values)
def test_the_handler_takes_any_json(value):
    """Any JSON document: well-formed results, and only valid records are asked."""
    CASES["handler: arbitrary JSON"] += 1
    assert_well_formed(*run_offline(json.dumps(value).encode()))


@FUZZ
@given(mutated_samples())
def test_the_handler_takes_mutated_trigger_samples(sample):
    """Every published sample with fields removed, retyped, emptied, nulled, huge or deeply nested."""
    CASES["handler: mutated trigger samples"] += 1
    assert_well_formed(*run_offline(json.dumps(sample, ensure_ascii=False).encode()))


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "prompt": json_values,
            "question": json_values,
            "messages": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "role": st.sampled_from(["user", "assistant", "system", "tool", ""]),
                        "content": json_values,
                    },
                ),
                max_size=4,
            ),
            "model": json_values,
            "parameters": st.dictionaries(
                st.sampled_from(
                    ["temperature", "max_tokens", "seed", "stream", "api_key", "headers", "top_p", "stop", "n"]
                ),
                json_values,
                max_size=3,
            ),
        },
    )
)
def test_the_handler_takes_any_request_shape(request_body):
    """Requests with every combination of fields and value types are answered or refused cleanly."""
    CASES["handler: request shapes"] += 1
    assert_well_formed(*run_offline(json.dumps(request_body).encode()))


def test_deep_nesting_is_refused_cleanly():
    """A hundred thousand nested brackets are an InvalidEvent, not a RecursionError."""
    for event in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        results, _, transport = run_offline(event)
        assert results[0]["code"] == "InvalidEvent" and transport.calls == 0


# A bracketed tag and a question: no brackets or quotes in the tag, and the question does not end
# with a closing bracket (that would make the whole text look like a wrapped document).
_TAG_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters='{}[]"\\'),
    min_size=1,
    max_size=12,
).filter(lambda t: t.strip() != "")


def _askable(text: str) -> bool:
    return (
        text.strip() != "" and text.strip()[-1] not in "]}" and any(c.isprintable() and not c.isspace() for c in text)
    )


_QUESTION_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=40
).filter(_askable)


@FUZZ
@given(st.sampled_from(["[]", "{}"]), _TAG_TEXT, _QUESTION_TEXT, st.none() | _TAG_TEXT)
def test_a_bracketed_tag_before_a_question_keeps_it_a_question(brackets, tag, question, last):
    """'[tag] question' and '{tag} question' (and '[tag] question [tag]') are questions, as an event, a
    message body or a question file."""
    CASES["decode: bracketed questions"] += 1
    text = f"{brackets[0]}{tag}{brackets[1]} {question}"
    if last is not None:
        text += f" {brackets[0]}{last}{brackets[1]}"
    expected = text.strip()
    assert decode(text.encode()).records[0] == Question(text=expected)
    message = decode(json.dumps({"TopicName": "t", "MessageId": "m", "Message": text}).encode()).records[0]
    assert isinstance(message, Question) and message.text == expected
    assert decode_text(text) == Question(text=expected)


@FUZZ
@given(
    st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=4),
    st.booleans(),
    st.integers(min_value=2),
)
def test_a_json_document_cut_short_stays_invalid_event(body, batch, cut):
    """A request object or a batch that lost its end is refused as broken JSON, never asked as text."""
    CASES["decode: truncated documents"] += 1
    document = json.dumps([body] if batch else body)
    truncated = document[: 2 + cut % (len(document) - 2)]
    record = decode(truncated.encode()).records[0]
    assert isinstance(record, InvalidInput) and record.code == "InvalidEvent", truncated


# Names a client might plausibly send, beside arbitrary text: the fields an attacker or a confused caller tries.
PLAUSIBLE_FIELDS = ["api_key", "headers", "stream", "base_address", "url", "result_format", "input", "Prompt", "model "]


@st.composite
def requests_with_unknown_fields(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A valid request plus one to three top-level fields a request may not have, at random places."""
    body: dict[str, Any] = draw(
        st.sampled_from([{"prompt": "你好"}, {"question": "hi"}, {"messages": [{"role": "user", "content": "hi"}]}])
    )
    if draw(st.booleans()):
        body["parameters"] = {"temperature": 0.5}
    names = st.text(max_size=20) | st.sampled_from(PLAUSIBLE_FIELDS)
    unknown = draw(st.lists(names.filter(lambda k: k not in REQUEST_KEYS), min_size=1, max_size=3, unique=True))
    items = list(body.items())
    for name in unknown:
        items.insert(draw(st.integers(0, len(items))), (name, draw(json_values)))
    mixed = dict(items)
    # A field that makes the object a trigger envelope is judged as that envelope, not as a request.
    assume(not (TimerEvent.matches(mixed) or MnsTopicMessage.matches(mixed) or CloudEvent.matches(mixed)))
    return mixed, unknown


@FUZZ
@given(requests_with_unknown_fields())
def test_unknown_top_level_fields_are_refused_by_name(case):
    """Any field outside the allowlist is a 400 InvalidRequest naming such a field, and DashScope is not called."""
    CASES["handler: requests with unknown fields"] += 1
    body, unknown = case
    results, returned, transport = run_offline(json.dumps(body, ensure_ascii=False).encode())
    assert_well_formed(results, returned, transport)
    [result] = results
    assert (result["status_code"], result["code"]) == (400, "InvalidRequest"), result
    # Names are shown quoted, escaped and bounded (handler.events.decode._shown), never raw.
    assert any(_shown(name) in result["message"] for name in unknown), (unknown, result["message"])
    assert transport.calls == 0
