"""`answer_key` has one form in every log line: oss://bucket/key, as `source` names the question's object."""

from __future__ import annotations

import json
from types import SimpleNamespace

from handler.app import handle
from handler.deliver.store import StoredObject
from handler.errors import ObjectNotFound
from tests.support.events import oss_event_bytes, oss_record

CREDS = SimpleNamespace(access_key_id="STS.AKID0002", access_key_secret="sts-secret-0002", security_token="sts-tok-02")


def test_an_oss_question_line_names_its_answer_as_oss_bucket_key(runtime, context, env, store, transport, logs):
    env["QWEN_OSS_BUCKETS"] = "bkt"
    context.credentials = CREDS
    question = "牛腩炖多久?".encode()

    def read(bucket, key, *, max_bytes=None):
        if key.startswith("answers/"):
            raise ObjectNotFound("no answer yet")
        return StoredObject(data=question, size=len(question), etag="ETAG1")

    store.read.side_effect = read
    event = oss_event_bytes(oss_record("questions/q.txt", bucket="bkt", etag="ETAG1", size=len(question)))
    assert json.loads(handle(event, context, runtime))[0]["status_code"] == 200
    line = logs.events("question")[0]
    assert line["source"] == "oss://bkt/questions/q.txt"
    assert line["answer_key"] == "oss://bkt/answers/questions/q.txt.json"
