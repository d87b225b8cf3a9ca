"""What a decoded event asks: plain text or a conversation, plus the choices the event made."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from handler.values import Value, field

Role = Literal["system", "user", "assistant"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


Part = tuple[str, str]  # ("text" | "image", its value)


class Message(Value):
    role: Role
    content: str  # the text (a multimodal message's text parts, joined): prompt mode, the guard, the logs
    images: tuple[str, ...] = ()  # https:// URLs or data:image URIs, checked by decode
    # A message with images: its parts in the event's order; empty means the images, then `content`.
    parts: tuple[Part, ...] = ()

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}

    def ordered(self) -> tuple[Part, ...]:
        """The parts as they are sent to multimodal-generation."""
        return self.parts or (*(("image", image) for image in self.images), ("text", self.content))


class DocumentSource(Value):
    """A document to read: uploaded from `chunks()` (streamed, never held whole in memory), or fetched by
    DashScope from `signed_url()`."""

    name: str  # for people: oss://bucket/key
    kind: str  # documents.Document.kind: pdf, docx, xlsx, pptx, epub, mobi, doc, xls, ppt, ole
    size: int
    etag: str
    key: str  # with the eTag, names the upload (handler/ask/files.py upload_name)
    chunks: Callable[[], Iterable[bytes]] = field(compare=False, repr=False)
    # A short-lived signed GET URL of this version, made when asked (the url route); a secret, never shown.
    signed_url: Callable[[], str] | None = field(compare=False, repr=False, default=None)


class OssRef(Value):
    """An OSS object a request names (`oss://bucket/key`): read only when its bucket is in QWEN_OSS_BUCKETS."""

    bucket: str
    key: str

    @property
    def source(self) -> str:
        return f"oss://{self.bucket}/{self.key}"


class Question(Value):
    """One question: `text` (answered in the configured mode) or `messages` (a conversation)."""

    text: str | None = None
    messages: tuple[Message, ...] | None = None
    model: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # Where the question came from inside a batch envelope (message id, object key); None otherwise.
    source: str | None = None
    documents: tuple[DocumentSource, ...] = ()  # read by QWEN_DOCUMENT_MODEL, `text` is the instruction
    # The objects a request names: resolved into `documents` by the delivery stage before anything is asked.
    document_refs: tuple[OssRef, ...] = ()
    # An OSS text file's own text as a `txt` document: asked of the document model when it does not fit the text model.
    text_document: DocumentSource | None = None


class OssObject(Value):
    """A question stored in OSS: read its text, answer it, write the answer back beside it."""

    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None  # no region: the OSS endpoint is the function's own, never an event's

    @property
    def source(self) -> str:
        return f"oss://{self.bucket}/{self.key}"


class Skipped(Value):
    """A record that asks nothing by design (an object deletion, our own answer file): no call."""

    reason: str
    source: str | None = None


class CollectBatches(Value):
    """The collect timer's record: no question, the open batch jobs of the configured buckets."""

    source: str | None = None
