"""The answer store's key of an MNS record follows docs/answers-and-exactly-once.md exactly: the id's UTF-8 bytes
percent-encoded (letters, digits and -_.: kept), `.`/`..` encoded whole, an encoding over 200 characters
cut to 183 plus `~` and 16 hex digits of the id's SHA-256; the record's logged source shows the same."""

from __future__ import annotations

import hashlib
import json

import pytest

from handler.deliver.answers import answer_key
from handler.events.decode import decode


def mns_key(message_id) -> tuple[str, str]:
    (record,) = decode(json.dumps({"TopicName": "t", "MessageId": message_id, "Message": "hi"})).records
    key = answer_key(record.source)
    assert key is not None
    return record.source, key


@pytest.mark.parametrize(
    ("message_id", "key"),
    [
        ("2F5B3C281B283D4EAC694B7425288675", "mns/2F5B3C281B283D4EAC694B7425288675.json"),
        ("é/🙂", "mns/%C3%A9%2F%F0%9F%99%82.json"),
        ("x\nINFO {}", "mns/x%0AINFO%20%7B%7D.json"),
        ("%2F..%2F", "mns/%252F..%252F.json"),
        ("..", "mns/%2E%2E.json"),
        ("a~b", "mns/a%7Eb.json"),
        (12345, "mns/12345.json"),  # shares "12345"'s key: MNS ids are strings, documented
        ("12345", "mns/12345.json"),
    ],
)
def test_mns_keys_percent_encode_the_ids_utf8(message_id, key):
    """Each id's key is the documented encoding of its UTF-8 bytes, and its source shows the same text."""
    source, found = mns_key(message_id)
    assert found == key and source == "mns:" + key[len("mns/") : -len(".json")]


def test_a_long_id_is_cut_with_a_hash_of_the_whole_id():
    """5,000 characters: the first 183 of the encoding, `~`, then 16 hex digits of the id's SHA-256."""
    long_id = "é" * 2500
    _, key = mns_key(long_id)
    digest = hashlib.sha256(long_id.encode()).hexdigest()[:16]
    assert key == "mns/" + ("%C3%A9" * 31)[:183] + "~" + digest + ".json"
    assert mns_key(long_id + "x")[1] != key
