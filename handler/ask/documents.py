"""A question about documents, asked of QWEN_DOCUMENT_MODEL by file id (docs/documents.md).

Each document is uploaded to DashScope's files API (streamed from its source), or found there under its
name when an earlier delivery uploaded it; then its parsing is awaited, the model asked with one system
message of `fileid://` references, and every file deleted, whatever the answer was.
"""

from __future__ import annotations

import logging

from handler import logs
from handler.ask.attempts import MIN_ATTEMPT_SECONDS, Asked, Deadline, Seams, call_with_retries
from handler.ask.files import DashScopeFiles, FileInfo, upload_name
from handler.ask.invokers import invoker_for
from handler.ask.models import FILE, TEXT
from handler.ask.plan import Call, document_call
from handler.config import Settings
from handler.errors import InvalidInput, QwenError, TransientUpstreamError
from handler.events.question import DocumentSource, Question
from handler.outcome import Outcome
from handler.result import Result
from handler.values import replace

PROCESSED = "processed"
FAILED = "error"  # the files API's status of a file it could not parse
PARSING = "File parsing in progress"  # the start of the model's 400 while a file is still parsed
# Kinds Qwen-Long reads by file id: the Office 97-2003 formats are Qwen-Doc-Turbo's only.
FILE_KINDS = frozenset({"pdf", "docx", "xlsx", "pptx", "epub", "mobi", "txt"})


class DocumentAsker:
    """Asks the document questions of one invocation; its files client is made on first use."""

    def __init__(self, settings: Settings, deadline: Deadline, seams: Seams, *, function_timeout: float) -> None:
        self.settings = settings
        self.deadline = deadline
        self.seams = seams
        self.function_timeout = function_timeout
        self._files: DashScopeFiles | None = None

    @property
    def files(self) -> DashScopeFiles:
        if self._files is None:
            self._files = DashScopeFiles(
                self.settings.api_key,
                self.settings.base_url,
                remaining=self.deadline.remaining,
                connect_timeout=self.settings.connect_timeout,
                read_timeout=self.settings.request_timeout,
            )
        return self._files

    def ask(self, question: Question, outcome: Outcome, deadline: Deadline) -> tuple[Call, Asked]:
        """Upload, await parsing, ask, delete: the call made and its attempts' final result."""
        model = self._model()
        outcome.note(model=model, mode="messages", api=TEXT, document_parts=len(question.documents))
        outcome.note(document_route=FILE)
        _check_kinds(question.documents, model)
        uploaded: list[str] = []
        try:
            for document in question.documents:
                uploaded.append(self._upload(document).id)
            self._await_parsing(uploaded, deadline)
            call = document_call(question, self.settings, model, uploaded)
            return call, self._attempts(call, deadline)
        finally:
            for file_id in uploaded:
                self._delete(file_id)

    def _model(self) -> str:
        """QWEN_DOCUMENT_MODEL, when allowed and able to read files by id; else a refusal naming the variable."""
        model = self.settings.document_model
        if model not in self.settings.allowed_models:
            raise InvalidInput(
                f"documents are answered by QWEN_DOCUMENT_MODEL ({model}), which is not in QWEN_ALLOWED_MODELS; "
                f"the operator adds {model} to QWEN_ALLOWED_MODELS to answer documents",
                code="ModelNotAllowed",
                status_code=403,
            )
        info = self.settings.models.get(model)
        if info is None or info.document != FILE:
            raise InvalidInput(
                f"QWEN_DOCUMENT_MODEL ({model}) does not read documents by file id: set it to qwen-long, or mark "
                'the model {"document": "file"} in QWEN_MODEL_TABLE',
                code="DocumentModelUnsupported",
                status_code=400,
            )
        return model

    def _upload(self, document: DocumentSource) -> FileInfo:
        """The file of an earlier delivery of this version (same name), else a new streamed upload."""
        name = upload_name(document.key, document.etag, document.kind)
        for known in self.files.list():
            if known.filename == name and known.status != FAILED:
                return known
        return self.files.upload(name, document.size, document.chunks())

    def _await_parsing(self, file_ids: list[str], deadline: Deadline) -> None:
        """Poll each file with backoff until processed; TransientUpstreamError (redelivered) past the deadline."""
        for file_id in file_ids:
            polls = 0
            while (info := self.files.retrieve(file_id)).status != PROCESSED:
                if info.status == FAILED:
                    detail = info.status_details or "no detail"
                    raise InvalidInput(
                        f"DashScope could not parse the document (file {file_id}): {detail}",
                        code="DocumentParseFailed",
                        status_code=422,
                    )
                polls += 1
                self._pause(polls, deadline, f"file {file_id} was still being parsed")

    def _attempts(self, call: Call, deadline: Deadline) -> Asked:
        """The normal attempts, again after a backoff while the model says a file is still being parsed."""
        invoker = invoker_for(call.mode, TEXT)
        waits = attempts = 0
        while True:
            asked = call_with_retries(
                call, invoker, self.settings, deadline, self.seams, function_timeout=self.function_timeout
            )
            attempts += asked.attempts
            if not _parsing(asked.result):
                return replace(asked, attempts=attempts)  # the log line counts every call made
            waits += 1
            self._pause(waits, deadline, "the model said a file was still being parsed")

    def _pause(self, count: int, deadline: Deadline, why: str) -> None:
        pause = self.seams.backoff.wait(count, None)
        if pause > deadline.remaining() - MIN_ATTEMPT_SECONDS:
            raise TransientUpstreamError(
                f"DocumentNotReady: {why} at the function's deadline; the event is delivered again",
                code="DocumentNotReady",
                request_id="",
                attempts=count,
            )
        self.seams.sleep(pause)

    def _delete(self, file_id: str) -> None:
        try:
            self.files.delete(file_id)
        except QwenError as error:  # the answer stands; the file is left for a purge (docs/documents.md)
            logs.emit("document_delete_failed", level=logging.WARNING, file_id=file_id, code=error.code)


def _check_kinds(sources: tuple[DocumentSource, ...], model: str) -> None:
    for document in sources:
        if document.kind not in FILE_KINDS:
            raise InvalidInput(
                f"{document.name} is an Office 97-2003 ({document.kind}) document, which {model} does not read by "
                "file id: save it as .docx, .xlsx or .pptx and upload it again",
                code="DocumentUnsupported",
                status_code=415,
            )


def _parsing(result: Result) -> bool:
    return result.status_code == 400 and PARSING in result.message
