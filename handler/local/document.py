"""`python -m handler --document PATH "question"`: ask QWEN_DOCUMENT_MODEL about a local document.

The user's own command line, never an event: no event can make the function read a local file. The file
is checked as an OSS document is (its bytes decide, handler/events/documents.py; QWEN_OSS_MAX_DOCUMENT_BYTES),
then asked through the file route (handler/ask/documents.py) with chunks read from the file, so a large
document is streamed into the upload and never held whole. Only a model that reads files by id
(qwen-long) can: a URL-route model (qwen-doc-turbo) needs a URL DashScope can fetch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from handler.ask.models import FILE, URL
from handler.events import documents
from handler.events.question import DocumentSource, Question

CHUNK = 1024 * 1024  # bytes read from the file at a time, as the OSS stream's


class DocumentUsage(Exception):
    """The document cannot be asked about from the CLI: the message says why and what to do."""


def source(path: str) -> DocumentSource:
    """The document at `path`, checked before anything starts; DocumentUsage when it cannot be asked about."""
    from handler.local import deployed_env

    file = Path(path)
    try:
        size = file.stat().st_size
        with file.open("rb") as f:
            head = f.read(documents.HEAD_BYTES)
            f.seek(max(0, size - documents.TAIL_BYTES))
            tail = f.read(documents.TAIL_BYTES)
            digest = _md5(f)
    except FileNotFoundError:
        raise DocumentUsage(f"--document {path}: no such file") from None
    except OSError as error:
        raise DocumentUsage(f"--document {path}: cannot read it ({error.strerror})") from None
    limit = deployed_env.setting("QWEN_OSS_MAX_DOCUMENT_BYTES", "oss_max_document_bytes")
    if size > limit:
        raise DocumentUsage(f"--document {path}: {size:,} bytes, larger than QWEN_OSS_MAX_DOCUMENT_BYTES ({limit:,})")
    found = documents.sniff(head, tail, size)
    if isinstance(found, documents.Refusal):
        raise DocumentUsage(f"--document {path}: {found.code}: the file {found.message}")
    if found is None:
        raise DocumentUsage(
            f"--document {path}: not a document (PDF, DOCX, XLSX, PPTX, EPUB or MOBI); for a text file, ask "
            "with --event-file or --oss-file, for an image with --image"
        )

    def chunks() -> Iterator[bytes]:
        with file.open("rb") as f:
            while piece := f.read(CHUNK):
                yield piece

    # The key and the file's MD5 (as OSS's eTag of a simple upload) name the upload: the same bytes, the same name.
    return DocumentSource(file.name, found.kind, size, digest, f"local/{file.name}", chunks)


def check_route() -> str:
    """QWEN_DOCUMENT_MODEL, when it reads files by id; DocumentUsage for a URL-route model."""
    from handler.ask.models import parse_table
    from handler.local import deployed_env

    model = deployed_env.setting("QWEN_DOCUMENT_MODEL", "document_model")
    table = parse_table(os.environ.get("QWEN_MODEL_TABLE", ""))  # the defaults and the deployment's rows
    info = table.get(model)
    if info is not None and info.document == URL:
        raise DocumentUsage(
            f"QWEN_DOCUMENT_MODEL is {model}, which reads a document from a URL DashScope fetches, not a local "
            "file: ask with --offline --oss-file PATH (the local OSS stand-in serves it), or set "
            "QWEN_DOCUMENT_MODEL=qwen-long (or --model qwen-long) to read it by file id"
        )
    if info is not None and info.document != FILE:
        raise DocumentUsage(
            f"QWEN_DOCUMENT_MODEL is {model}, which reads no documents: set it to qwen-long (or --model qwen-long)"
        )
    return model


def ask(document: DocumentSource, text: str, context: Any) -> str:
    """The handler's answer JSON for one question about `document`, asked as an invocation would ask it."""
    from handler import app, logs, redact
    from handler.ask.asker import Asker
    from handler.ask.attempts import Deadline
    from handler.config import settings_for
    from handler.errors import QwenError, TransientUpstreamError
    from handler.fc_context import Invocation
    from handler.outcome import Outcome
    from handler.result import Result, dumps

    runtime = app.DEFAULT_RUNTIME
    began = runtime.clock()
    invocation = Invocation.of(context, runtime.environ)
    settings = settings_for(runtime.environ)
    redact.pin("api_key", [settings.api_key])
    question = Question(text=text.strip() or settings.document_prompt, documents=(document,))
    deadline = Deadline.for_function(invocation.timeout, started=began, clock=runtime.clock)
    asker = Asker(settings, deadline, runtime, runtime.apis, function_timeout=invocation.timeout)
    outcome = Outcome(f"local file {document.name}")
    with logs.bound(fc_request_id=invocation.request_id):
        try:
            result = asker.ask(question, outcome)
        except TransientUpstreamError as error:
            outcome.log_raised(error, round((runtime.clock() - began) * 1000))
            raise
        except QwenError as error:
            result = Result.failure(error, invocation.request_id)
        outcome.log(result, round((runtime.clock() - began) * 1000))
    return redact.redact(dumps(result))


def _md5(f: Any) -> str:
    f.seek(0)
    digest = hashlib.md5(usedforsecurity=False)
    while piece := f.read(CHUNK):
        digest.update(piece)
    return digest.hexdigest().upper()
