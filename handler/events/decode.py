"""Event bytes -> questions. Pure: no I/O, no configuration, nothing but the bytes.

Rules, in order:
  not UTF-8                         -> 400 InvalidEncoding
  blank                             -> 400 EmptyEvent (with how to pass a question)
  JSON object with prompt/question/messages -> a request
  a trigger envelope (timer, MNS topic, CloudEvents, OSS) -> its question(s); a payload inside one
                                       follows these rules again, envelopes excepted
  other JSON object or array        -> 400 InvalidEvent (a mis-wired trigger, not a question)
  JSON string                       -> its content is the question
  JSON number or boolean            -> the text as written is the question; null is empty
  text that is not JSON             -> the question ("[紧急] 牛腩要炖多久?", "{draft} ..."), unless it is
                                       clearly broken JSON (400 InvalidEvent): one bracketed group
                                       ({...} or [...] closing at the end), or it opens like an
                                       object or a batch cut short ('{"prompt": ...', '[{"spec...')

An empty payload inside an envelope is EmptyEvent too, without the `s invoke -e` hint.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from handler.errors import BatchTooLarge, InvalidInput
from handler.events import parameters
from handler.events.question import ROLES, CollectBatches, Message, OssObject, OssRef, Part, Question, Skipped
from handler.events.sources import segment, shown_object
from handler.values import Value, replace

if TYPE_CHECKING:
    from handler.events.triggers import OssRecord

Record = Question | OssObject | Skipped | CollectBatches | InvalidInput

REQUEST_KEYS = frozenset({"prompt", "question", "messages", "model", "parameters", "documents"})
_QUESTION_KEYS = ("prompt", "question", "messages")

_DECODE_SLICE = 1024 * 1024
_NOT_JSON = object()
_BOM = "\ufeff"
_JSON_STARTS = frozenset('{["-0123456789tfnNI')  # plain questions skip the parse attempt
_MAX_KEY_BYTES = 1023  # OSS's limit on an object key, in UTF-8 bytes
_MAX_SHOWN = 64
MAX_DOCUMENTS = 10  # documents one request may name (Qwen-Doc-Turbo's limit too): each is read and uploaded
DOCUMENT_REF_FORM = (
    "an oss://bucket/key string naming an object of a bucket in QWEN_OSS_BUCKETS; "
    "local paths, file:// and http(s):// URLs are never read"
)

# Pattern strings, compiled at first use (docs/performance.md). OSS bucket names: 3-63 of a-z 0-9 -.
_BUCKET = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
_ETAG = r'^"?[0-9A-Za-z*-]{1,64}"?$'  # hex, "-<parts>" for multipart, "*" in published samples

EMPTY_HINT = (
    "the event is empty: send the question as the event body, for example "
    "s invoke -e '如何做西红柿炖牛腩?' or s invoke -e '{\"prompt\": \"如何做西红柿炖牛腩?\"}'"
)
EMPTY_RECORD = "the record is empty: its message body, file or payload holds no question"
BROKEN_JSON = (
    'the event starts like JSON but is not valid JSON; send plain text, or a JSON object such as {"prompt": "..."}'
)


class Decoded(Value):
    """The records of one event, and whether the caller expects an array of results back."""

    records: tuple[Record, ...]
    batch: bool = False
    # Delivered by a synchronous invocation (EventBridge's MNS queue trigger): FC's destinations never see it.
    synchronous: bool = False
    # A trigger's envelope: nobody waits on the result, so a broken deployment is raised for FC to retry.
    envelope: bool = False

    @classmethod
    def single(cls, record: Record) -> Decoded:
        return cls(records=(record,))


def decode(event: bytes | bytearray | memoryview | str | None, *, max_bytes: int | None = None) -> Decoded:
    """Turn FC's event bytes into the question(s) they carry, or the reason they carry none."""
    if max_bytes is not None and event is not None:
        size = len(event.encode()) if isinstance(event, str) else len(event)
        if size > max_bytes:
            # Never decoded or parsed; an array is a batch, whose messages must not be consumed by one 413.
            if _opens_an_array(event):
                error = BatchTooLarge(
                    f"the batch is {size} bytes, over the {max_bytes}-byte limit (QWEN_MAX_EVENT_BYTES); "
                    "raised so the trigger delivers it again and then to its dead-letter queue: lower the "
                    "trigger's batch size (runOptions.batchWindow.CountBasedWindow in s.yaml) or raise "
                    "QWEN_MAX_EVENT_BYTES",
                )
                return Decoded(records=(error,), batch=True)
            return Decoded.single(
                InvalidInput(
                    f"the event is {size} bytes, over the {max_bytes}-byte limit (QWEN_MAX_EVENT_BYTES); "
                    "put large documents in OSS and send their events instead",
                    code="EventTooLarge",
                    status_code=413,
                )
            )
    text = _text(event)
    if isinstance(text, InvalidInput):
        return Decoded.single(text)
    stripped = text.lstrip(_BOM).strip()
    value = _parse(stripped)
    if value is not _NOT_JSON and _may_be_an_envelope(value) and (envelope := _envelope(value)) is not None:
        return replace(envelope, envelope=True)
    return Decoded.single(_decode_parsed(stripped, value, empty=EMPTY_HINT))


def _opens_an_array(event: bytes | bytearray | memoryview | str) -> bool:
    head = event[:64]
    text = head if isinstance(head, str) else bytes(head).decode("utf-8", "ignore")
    return text.lstrip(_BOM + " \t\r\n")[:1] == "["


def _may_be_an_envelope(value: Any) -> bool:
    """Every envelope is a JSON array or an object with a key no request has: a request is never one."""
    return isinstance(value, list) or (isinstance(value, dict) and not value.keys() <= REQUEST_KEYS)


def _triggers() -> ModuleType:
    """handler/events/triggers, imported at the first event that may be an envelope."""
    from handler.events import triggers

    return triggers


def _envelope(value: Any) -> Decoded | None:
    """The records of a trigger envelope, or None when `value` is not one."""
    t = _triggers()
    if t.TimerEvent.matches(value):
        timer = t.TimerEvent(value)
        payload, source = timer.payload, timer.source
        if payload is None or (isinstance(payload, str) and not payload.strip()):
            hint = "the timer trigger has no payload: set the trigger's payload to the question"
            return Decoded.single(_with_source(InvalidInput(hint, code="EmptyEvent"), source))
        from handler.events.triggers import timer as timers  # loaded with the triggers, as _triggers()

        if timers.asks_to_collect(payload):
            return Decoded.single(timers.CollectBatches(source=source))
        return Decoded.single(_payload(payload, source=source))
    if t.MnsTopicMessage.matches(value):
        message = t.MnsTopicMessage(value)
        return Decoded.single(_payload(message.message, source=_named("mns", message.message_id)))
    if t.MnsTopicStreamMessage.matches(value):
        return Decoded.single(_payload(t.MnsTopicStreamMessage(value).body, source=None))
    for view, read in ((t.CloudEvent, _cloud_event), (t.MnsRawMessage, _raw_message)):
        if view.matches(value):
            return Decoded(records=(read(value),), synchronous=True)
        if view.matches_batch(value):
            return Decoded(records=tuple(read(item) for item in value), batch=True, synchronous=True)
    if t.OssEvent.matches(value):
        records = t.OssEvent(value).records
        if not records:
            return Decoded.single(InvalidInput("the OSS event has no records", code="InvalidEvent"))
        return Decoded(records=tuple(_oss_record(r, i) for i, r in enumerate(records)), batch=True)
    return None


def _payload(value: Any, *, source: str | None) -> Record:
    """A message body inside an envelope: decoded by the core rules, never as another envelope."""
    record = decode_text(value) if isinstance(value, str) else _decode_value(value, raw=None, empty=EMPTY_RECORD)
    return _with_source(record, source)


def _raw_message(value: Any) -> Record:
    """An MNS queue message in the RawData push format; its messageId makes it answered once."""
    t = _triggers()
    if not t.MnsRawMessage.matches(value):
        return InvalidInput(
            f"this batch element is not an MNS queue message: {t.PUSH_FORMAT_HINT}", code="InvalidEvent"
        )
    message = t.MnsRawMessage(value)
    return _payload(message.message_body, source=_named("mns", message.message_id))


def _cloud_event(value: Any) -> Record:
    t = _triggers()
    if not t.CloudEvent.matches(value):
        return InvalidInput(
            f"this batch element is not a CloudEvents object: {t.PUSH_FORMAT_HINT}", code="InvalidEvent"
        )
    event = t.CloudEvent(value)
    message = event.mns_queue_message
    if message is None:
        return InvalidInput(
            f"CloudEvents type {_shown(event.type)} is not a question source; expected an MNS queue message "
            "(mns:Queue:SendMessage) with data.messageBody",
            code="InvalidEvent",
            source=_named("event", event.id),
        )
    return _payload(message.message_body, source=_named("mns", message.message_id or event.id))


def _named(kind: str, value: Any) -> str | None:
    """`kind:<id>`, the id encoded as in its answer key (`segment`: one line, bounded, one-to-one); None
    without a usable id, so records without one are never given each other's answer."""
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        return None
    return f"{kind}:{segment(str(value))}"


def _oss_record(record: OssRecord, index: int) -> Record:
    bucket, key = record.bucket_name, record.object_key
    if record.event_source != "acs:oss" or not isinstance(bucket, str) or not bucket or not isinstance(key, str):
        return InvalidInput(
            f"OSS record {index} lacks eventSource acs:oss, oss.bucket.name or oss.object.key",
            code="InvalidEvent",
        )
    source = shown_object(bucket, key)  # escaped and bounded: it travels into plain-text log lines
    if not record.is_object_created:
        return Skipped(f"{_shown(record.event_name)} does not create an object to answer", source=source)
    if len(key.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        return InvalidInput(
            f"the object key is longer than OSS's {_MAX_KEY_BYTES}-byte limit", code="InvalidObjectKey", source=source
        )
    if any(not ch.isprintable() and ch != " " for ch in key):
        # A line break or other control character would forge lines in FC's plain-text error log.
        return InvalidInput(
            "the object key holds a control or non-printable character", code="InvalidObjectKey", source=source
        )
    if not key or key.startswith("/") or "\\" in key or ".." in key.split("/") or not _printable(key):
        return InvalidInput("the object key is not a plain OSS key", code="InvalidObjectKey", source=source)
    if not re.fullmatch(_BUCKET, bucket):  # it becomes part of the host name (bucket.endpoint)
        return InvalidInput("the bucket is not an OSS bucket name", code="InvalidObjectKey", source=source)
    # The eTag travels back as a header value (x-oss-meta-source-etag): only what OSS itself writes.
    etag = (
        record.object_etag if isinstance(record.object_etag, str) and re.fullmatch(_ETAG, record.object_etag) else None
    )
    size = record.object_size
    size = size if isinstance(size, int) and not isinstance(size, bool) else None
    # The record's region is never read: the endpoint receiving our credentials is the function's own.
    return OssObject(bucket=bucket, key=key, etag=etag, size=size)


def _with_source(record: Record, source: str | None) -> Record:
    if source is None:
        return record
    if isinstance(record, InvalidInput):
        record.source = source
    elif isinstance(record, Question):
        return replace(record, source=source)
    return record


def decode_text(text: str) -> Record:
    """Decode one text payload inside an envelope: a request object, a JSON scalar, or the question itself."""
    stripped = text.lstrip(_BOM).strip()
    return _decode_parsed(stripped, _parse(stripped), empty=EMPTY_RECORD)


def _parse(stripped: str) -> Any:
    if not stripped or stripped[0] not in _JSON_STARTS:
        return _NOT_JSON
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        return _NOT_JSON


def _decode_parsed(stripped: str, value: Any, *, empty: str) -> Record:
    if not stripped:
        return InvalidInput(empty, code="EmptyEvent")
    if value is _NOT_JSON:
        if broken_json(stripped):
            return InvalidInput(BROKEN_JSON, code="InvalidEvent")
        return question_text(stripped, empty=empty)
    return _decode_value(value, raw=stripped, empty=empty)


def broken_json(stripped: str) -> bool:
    """Whether text that did not parse is a JSON document gone wrong rather than a question (which may
    carry bracketed tags): it opens like an object or a batch ('{"', '[{'), or its opening bracket
    closes at its last character (brackets in strings skipped)."""
    after = stripped[1:].lstrip()[:1]
    if (stripped[0] == "{" and after == '"') or (stripped[0] == "[" and after == "{"):
        return True
    depth, in_string, escaped = 0, False, False
    for position, char in enumerate(stripped):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return position == len(stripped) - 1
    return False  # never closed: a tag or a question, not a wrapped document


def _decode_value(value: Any, *, raw: str | None, empty: str) -> Record:
    if value is None:
        return InvalidInput(empty, code="EmptyEvent")
    if isinstance(value, str):
        return question_text(value, empty=empty)
    if isinstance(value, bool | int | float):
        # The text as written: 1e3 stays "1e3", true stays "true".
        return question_text(raw if raw is not None else json.dumps(value), empty=empty)
    if isinstance(value, dict) and any(k in value for k in _QUESTION_KEYS):
        return request(value)
    kind = "object" if isinstance(value, dict) else "array"
    return InvalidInput(
        f'the event is a JSON {kind} that is neither a request ({{"prompt": ...}}, '
        '{"question": ...} or {"messages": [...]}) nor a trigger event this function knows; '
        f"{_triggers().PUSH_FORMAT_HINT}",
        code="InvalidEvent",
    )


def question_text(text: str, *, source: str | None = None, empty: str = EMPTY_HINT) -> Record:
    """A plain question, refused when it has nothing printable to ask."""
    stripped = text.strip()
    if not stripped:
        return InvalidInput(empty, code="EmptyEvent")
    if not _printable(stripped):
        return InvalidInput("the event has no printable character to ask about", code="NoPrintableText")
    return Question(text=stripped, source=source)


def request(body: Mapping[str, Any], *, source: str | None = None) -> Record:
    """A JSON request object; every field is checked, unknown ones are refused by name."""
    unknown = [k for k in body if k not in REQUEST_KEYS]
    if unknown:
        return _invalid(
            f"field {_shown(unknown[0])} is not allowed; a request may have {', '.join(sorted(REQUEST_KEYS))}"
        )
    given = [k for k in _QUESTION_KEYS if k in body]
    if len(given) > 1:
        return _invalid(f"give only one of 'prompt', 'question' or 'messages', not {' and '.join(given)}")

    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        return _invalid("field 'model' must be a non-empty string")
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        return _invalid("field 'parameters' must be a JSON object")
    if found := parameters.problems(params):
        name, problem = found[0]
        return InvalidInput(f"parameter {_shown(name)} {problem}", code="InvalidParameter")
    model = model.strip() if model else None
    refs: tuple[OssRef, ...] = ()
    if "documents" in body:
        read = _document_refs(body["documents"], "documents")
        if isinstance(read, InvalidInput):
            return read
        refs = read

    if "messages" in body:
        messages = _messages(body["messages"])
        if isinstance(messages, InvalidInput):
            return messages
        if isinstance(messages, _WithDocuments):
            if refs:
                return _invalid("name the documents once: in field 'documents' or in the last user message")
            messages, refs = messages.messages, messages.refs
        if refs:
            return _with_documents(messages, refs, model, params, source)
        return Question(messages=messages, model=model, parameters=params, source=source)

    key = given[0]
    text = body[key]
    if not isinstance(text, str) or not text.strip():
        return _invalid(f"field '{key}' must be a non-empty string")
    record = question_text(text, source=source)
    if isinstance(record, InvalidInput):
        return record
    if refs and model is not None:
        return _invalid(_DOCUMENT_MODEL)
    return Question(text=record.text, model=model, parameters=params, source=source, document_refs=refs)


_DOCUMENT_MODEL = (
    "a request with documents is answered by the operator's document model (QWEN_DOCUMENT_MODEL): leave out 'model'"
)


class _WithDocuments(Value):
    """A conversation whose last user message names documents."""

    messages: tuple[Message, ...]
    refs: tuple[OssRef, ...]


def _with_documents(
    messages: tuple[Message, ...],
    refs: tuple[OssRef, ...],
    model: str | None,
    params: dict[str, Any],
    source: str | None,
) -> Record:
    """Documents are asked with one instruction (the files, then the text): a longer conversation would lose turns."""
    if model is not None:
        return _invalid(_DOCUMENT_MODEL)
    if len(messages) != 1:
        return _invalid(
            "a conversation naming documents must be one user message: the document model reads the files with that "
            'one instruction, and earlier turns or a system message would not be sent; use {"prompt": ..., '
            '"documents": [...]}'
        )
    if messages[0].images:
        return _invalid("a message naming documents cannot hold images too; ask about them in separate requests")
    return Question(text=messages[0].content.strip(), parameters=params, source=source, document_refs=refs)


def _document_refs(value: Any, where: str) -> tuple[OssRef, ...] | InvalidInput:
    """The oss://bucket/key names of a `documents` list, checked for form only: the bucket against
    QWEN_OSS_BUCKETS in the delivery stage, before any request is made."""
    if not isinstance(value, list) or not value:
        return _invalid(f"{where} must be a non-empty list, each entry {DOCUMENT_REF_FORM}")
    if len(value) > MAX_DOCUMENTS:
        return _invalid(f"{where} names {len(value)} documents; a request may name at most {MAX_DOCUMENTS}")
    refs: list[OssRef] = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, str):
            return _invalid(f"{at} must be {DOCUMENT_REF_FORM}")
        ref = _oss_ref(item)
        if ref is None:
            return _invalid(f"{at} ({_shown(item)}) is not {DOCUMENT_REF_FORM}")
        if ref in refs:
            return _invalid(f"{at} names {_shown(item)} a second time")
        refs.append(ref)
    return tuple(refs)


def _oss_ref(text: str) -> OssRef | None:
    """`oss://bucket/key` with an OSS bucket name and a plain key (the same checks as an OSS event's), else None."""
    if not text.startswith("oss://"):
        return None
    bucket, slash, key = text[len("oss://") :].partition("/")
    if (
        not slash
        or not re.fullmatch(_BUCKET, bucket)
        or not key
        or len(key.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES
    ):
        return None
    if key.startswith("/") or "\\" in key or ".." in key.split("/") or not _printable(key):
        return None
    if any(not ch.isprintable() and ch != " " for ch in key):
        return None
    return OssRef(bucket=bucket, key=key)


def _messages(value: Any) -> tuple[Message, ...] | _WithDocuments | InvalidInput:
    if not isinstance(value, list) or not value:
        return _invalid('field \'messages\' must be a non-empty list of {"role", "content"} objects')
    messages = []
    refs: tuple[OssRef, ...] = ()
    for i, item in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            return _invalid(f"{where} must be an object with 'role' and 'content'")
        extra = [k for k in item if k not in ("role", "content", "documents")]
        if extra:
            return _invalid(
                f"{where} has field {_shown(extra[0])}; a message has only 'role', 'content' and (the last "
                "user message) 'documents'"
            )
        if "documents" in item:
            if i != len(value) - 1 or item.get("role") != "user":
                return _invalid(f"{where}: only the last message, the user's question, may name documents")
            read = _document_refs(item["documents"], f"{where}.documents")
            if isinstance(read, InvalidInput):
                return read
            refs = read
        role, content = item.get("role"), item.get("content")
        if not isinstance(role, str) or role not in ROLES:
            return _invalid(f"{where}.role must be one of system, user, assistant")
        parts: tuple[Part, ...] = ()
        if isinstance(content, list) and role == "user":
            read = _parts(content, where)
            if isinstance(read, InvalidInput):
                return read
            content, parts = read
        if not isinstance(content, str):
            return _invalid(
                f"{where}.content must be a string (or, for a user message, a list of image and text parts)"
            )
        if role == "system" and i != 0:
            return _invalid(f"{where}: a system message may only come first")
        pictures = tuple(v for kind, v in parts if kind == "image")
        # Parts are kept only beside images: a text-only list is the same question as its joined string.
        messages.append(Message(role=role, content=content, images=pictures, parts=parts if pictures else ()))
    if messages[-1].role != "user":
        return _invalid("the last message must have role 'user': it is the question to answer")
    if not _printable(messages[-1].content) and not messages[-1].images:
        return _invalid("the last user message has no printable character to ask about")
    return _WithDocuments(messages=tuple(messages), refs=refs) if refs else tuple(messages)


def _parts(content: list[Any], where: str) -> tuple[str, tuple[Part, ...]] | InvalidInput:
    """DashScope's multimodal content, [{"image": "https://..."}, {"text": "..."}]: its text parts joined
    and all its parts in order, each image checked so no value the SDK would upload can reach it."""
    if not content:
        return _invalid(f"{where}.content must not be an empty list")
    texts: list[str] = []
    found: list[Part] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if not isinstance(part, dict) or len(part) != 1 or next(iter(part)) not in ("image", "text"):
            return _invalid(f'{at} must be one {{"image": ...}} or {{"text": ...}} object')
        kind, value = next(iter(part.items()))
        if kind == "text":
            if not isinstance(value, str):
                return _invalid(f"{at}.text must be a string")
            texts.append(value)
            found.append(("text", value))
            continue
        from handler.events import images  # imported at the first image part

        if (problem := images.part_problem(value)) is not None:
            return _invalid(f"{at}.image {problem}")
        found.append(("image", value))
    return "\n".join(texts), tuple(found)


def _text(event: bytes | bytearray | memoryview | str | None) -> str | InvalidInput:
    if event is None:
        return ""
    if isinstance(event, str):
        return event
    # utf-8-sig: editors on Windows save test events with a BOM.
    if len(event) <= _DECODE_SLICE:
        try:
            return bytes(event).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            return _not_utf8(error.start)
    # Large events are decoded in slices, which keeps the peak memory low (docs/performance.md).
    data = memoryview(event)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    parts: list[str] = []
    position = 0
    try:
        for position in range(0, len(data), _DECODE_SLICE):
            parts.append(decoder.decode(data[position : position + _DECODE_SLICE]))
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError as error:
        return _not_utf8(max(0, position + error.start - len(decoder.getstate()[0])))
    return "".join(parts)


# Chinese text saved on Windows is often GBK: say how to convert it.
NOT_UTF8_HINT = "if it was saved as GBK, convert it first: iconv -f GBK -t UTF-8 question.txt > question-utf8.txt"


def _not_utf8(offset: int) -> InvalidInput:
    return InvalidInput(
        f"the event is not UTF-8 text (invalid byte near offset {offset}); send the question as UTF-8 "
        f"({NOT_UTF8_HINT})",
        code="InvalidEncoding",
    )


def _printable(text: str) -> bool:
    return any(ch.isprintable() and not ch.isspace() for ch in text)


def _shown(value: Any) -> str:
    """A name the event chose, quoted for a message: one line, at most _MAX_SHOWN characters of it."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[:_MAX_SHOWN] + "..."
    return "'" + json.dumps(text, ensure_ascii=False)[1:-1] + "'"


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code="InvalidRequest")
