"""A question about documents, asked of QWEN_DOCUMENT_MODEL by the route its row names (docs/documents.md).

The file route (Qwen-Long): each document is uploaded to DashScope's files API (streamed from its source),
or found there under its name when an earlier delivery uploaded it; then its parsing is awaited, the model
asked with one system message of `fileid://` references, and every file deleted, whatever the answer was.
The url route (Qwen-Doc-Turbo): nothing is uploaded; each document's short-lived signed URL goes into one
`doc_url` part and DashScope fetches it. The URLs are secrets: a refusal that echoes one names the object.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from handler import logs
from handler.ask import account
from handler.ask.attempts import MIN_ATTEMPT_SECONDS, Asked, Deadline, Seams, call_with_retries
from handler.ask.files import DashScopeFiles, FileInfo, upload_name
from handler.ask.invokers import invoker_for
from handler.ask.models import DOCUMENTS, FILE, TEXT, URL
from handler.ask.plan import Call, document_call, document_url_call
from handler.config import Settings
from handler.errors import AccountFailure, InvalidInput, QwenError, TransientUpstreamError
from handler.events.question import DocumentSource, Question
from handler.outcome import Outcome
from handler.result import Result
from handler.values import replace

PROCESSED = "processed"
FAILED = "error"  # the files API's status of a file it could not parse
NOT_READY = "DocumentNotReady"  # raised for redelivery while a file is still parsed
PARSING = "File parsing in progress"  # the start of the model's 400 while a file is still parsed
# Kinds each route's model reads: the Office 97-2003 formats only by URL, e-books only by file id.
FILE_KINDS = frozenset({"pdf", "docx", "xlsx", "pptx", "epub", "mobi", "txt"})
# "ole": an Office 97-2003 file whose directory the head and tail did not show; DashScope decides.
URL_KINDS = frozenset({"pdf", "docx", "xlsx", "pptx", "doc", "xls", "ppt", "ole", "txt"})
MAX_DOC_URLS = 10  # Qwen-Doc-Turbo reads at most 10 URLs in one call
_KIND_NAMES = {"epub": "an EPUB e-book", "mobi": "a MOBI e-book"}


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
        """The call made and its attempts' final result, by the route of the model's row."""
        model, route = self._model()
        outcome.note(model=model, mode="messages", api=TEXT, document_parts=len(question.documents))
        outcome.note(document_route=route)
        _check_kinds(question.documents, model, route)
        if route == URL:
            return self._ask_by_url(question, model, deadline)
        account.check_file_region(self.settings.base_url, model)
        uploaded: list[str] = []
        keep = False
        try:
            for document in question.documents:
                uploaded.append(self._upload(document).id)
            self._await_parsing(uploaded, deadline)
            call = document_call(question, self.settings, model, uploaded)
            return call, self._attempts(call, deadline)
        except AccountFailure as refused:
            if refused.status_code in (401, 403):  # the files API's: most often a RAM user's key
                raise account.file_ids_refused(refused, model) from None
            raise
        except TransientUpstreamError as waiting:
            # Still parsed at the deadline: the redelivery finds these files by name instead of uploading again.
            keep = waiting.code == NOT_READY
            raise
        finally:
            if keep:
                logs.emit("document_files_kept", file_ids=uploaded, reason=NOT_READY)
            else:
                for file_id in uploaded:
                    self._delete(file_id)

    def _ask_by_url(self, question: Question, model: str, deadline: Deadline) -> tuple[Call, Asked]:
        """Sign each document's URL, ask once through the normal attempts; a refusal's echoed URL is named instead."""
        if len(question.documents) > MAX_DOC_URLS:
            raise InvalidInput(
                f"{len(question.documents)} documents in one question, over the {MAX_DOC_URLS} {model} reads by URL in "
                f"one call; ask about at most {MAX_DOC_URLS} at a time",
                code="TooManyDocuments",
            )
        urls = [_signed(document, model) for document in question.documents]
        call = document_url_call(question, self.settings, model, urls)
        invoker, timeout = invoker_for(call.mode, TEXT), self.function_timeout
        asked = call_with_retries(call, invoker, self.settings, deadline, self.seams, function_timeout=timeout)
        return call, replace(asked, result=_unsigned(asked.result, urls, question.documents))

    def _model(self) -> tuple[str, str]:
        """QWEN_DOCUMENT_MODEL and its route, when allowed and able to read documents; else a refusal naming it."""
        model = self.settings.document_model
        if model not in self.settings.allowed_models:
            raise InvalidInput(
                f"documents are answered by QWEN_DOCUMENT_MODEL ({model}), which is not in QWEN_ALLOWED_MODELS; "
                f"the operator adds {model} to QWEN_ALLOWED_MODELS to answer documents",
                code="ModelNotAllowed",
                status_code=403,
            )
        info = self.settings.models.get(model)
        if info is None or info.document not in DOCUMENTS:
            raise InvalidInput(
                f"QWEN_DOCUMENT_MODEL ({model}) does not read documents: set it to qwen-long (by file id) or "
                'qwen-doc-turbo (by signed URL), or mark the model {"document": "file"} or {"document": "url"} in '
                "QWEN_MODEL_TABLE",
                code="DocumentModelUnsupported",
                status_code=400,
            )
        return model, info.document

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
                f"{NOT_READY}: {why} at the function's deadline; the event is delivered again",
                code=NOT_READY,
                request_id="",
                attempts=count,
            )
        self.seams.sleep(pause)

    def _delete(self, file_id: str) -> None:
        try:
            self.files.delete(file_id)
        except QwenError as error:  # the answer stands; the file is left for a purge (docs/documents.md)
            logs.emit("document_delete_failed", level=logging.WARNING, file_id=file_id, code=error.code)


def _check_kinds(sources: tuple[DocumentSource, ...], model: str, route: str) -> None:
    """Every document of a kind the route's model reads, before anything is uploaded or signed."""
    for document in sources:
        if route == URL and document.kind not in URL_KINDS:
            what = _KIND_NAMES.get(document.kind, f"a {document.kind} document")
            raise InvalidInput(
                f"{document.name} is {what}, which {model} does not read by URL: qwen-long reads it by file id "
                "(QWEN_DOCUMENT_MODEL=qwen-long, in QWEN_ALLOWED_MODELS), or convert it to PDF and upload it again",
                code="DocumentUnsupported",
                status_code=415,
            )
        if route == FILE and document.kind not in FILE_KINDS:
            raise InvalidInput(
                f"{document.name} is an Office 97-2003 ({document.kind}) document, which {model} does not read by "
                "file id: save it as .docx, .xlsx or .pptx and upload it again, or read it by URL "
                "(QWEN_DOCUMENT_MODEL=qwen-doc-turbo, in QWEN_ALLOWED_MODELS)",
                code="DocumentUnsupported",
                status_code=415,
            )


def _signed(document: DocumentSource, model: str) -> str:
    if document.signed_url is None:  # a document with no object behind it (a local file): nothing to sign
        raise InvalidInput(
            f"{document.name} has no URL {model} could fetch it from: only OSS documents are read by URL; "
            "qwen-long reads it by file id (QWEN_DOCUMENT_MODEL=qwen-long)",
            code="DocumentUnsupported",
            status_code=415,
        )
    return document.signed_url()


def _unsigned(result: Result, urls: list[str], sources: tuple[DocumentSource, ...]) -> Result:
    """A refusal that echoes a signed URL (DashScope's failed download may) names the object instead, and says
    what lets DashScope fetch it; the masking of signing values (handler/redact.py) holds beneath this."""
    if result.ok or not result.message:
        return result
    message = result.message
    echoed = False
    for url, document in zip(urls, sources, strict=True):
        for form in dict.fromkeys((url, unquote(url))):
            if form in message:
                message, echoed = message.replace(form, f"<the signed URL of {document.name}>"), True
    if not echoed:
        return result
    hint = (
        "; DashScope fetches each document by a signed URL valid for minutes: check that the bucket's policy does "
        "not limit reads by Referer or source network, and the function's role may oss:GetObject the object"
    )
    return replace(result, message=message + hint)


def _parsing(result: Result) -> bool:
    return result.status_code == 400 and PARSING in result.message
