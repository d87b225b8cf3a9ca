"""Images: what counts as one (its first bytes, never its name), and which image values a request may send.

A header that starts like an image and breaks off is corrupt (415), unless the bytes are text after all
("BM..." and "GIF8..." can open a sentence). An image part may be an `https://` URL or a
`data:image/<type>;base64,` URI; every other form is refused before any SDK call (docs/events.md#images).
"""

from __future__ import annotations

import binascii
import re
from urllib.parse import urlsplit

from handler.values import Value

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif", "bmp": "image/bmp"}
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
_DATA_URI = r"(?i)^data:image/(png|jpeg|jpg|webp|gif|bmp);base64,([A-Za-z0-9+/]*={0,2})$"
_SLICE = 3 * 64 * 1024  # bytes encoded at a time: a multiple of 3, so the slices' base64 joins up
_BMP_HEADERS = frozenset({12, 40, 52, 56, 64, 108, 124})  # the DIB header sizes Windows and OS/2 write


class Sniffed(Value):
    """What an object's first bytes say: an image type, a corrupt image header, or neither (None)."""

    kind: str | None = None  # "png", "jpeg", "webp", "gif", "bmp"
    corrupt: bool = False

    @property
    def mime(self) -> str:
        return MIME[self.kind or "png"]


def sniff(data: bytes) -> Sniffed:
    """The image type of these bytes; corrupt when a signature matches but the header around it does not."""
    for kind, signature, whole in (
        ("png", data.startswith(b"\x89PNG\r\n\x1a\n"), len(data) >= 24 and data[12:16] == b"IHDR"),
        ("jpeg", data.startswith(b"\xff\xd8\xff"), len(data) >= 4 and 0xC0 <= data[3] <= 0xFE),
        ("gif", data[:6] in (b"GIF87a", b"GIF89a"), len(data) >= 13),
        ("webp", data[:4] == b"RIFF", len(data) >= 16 and data[8:12] == b"WEBP" and data[12:15] == b"VP8"),
        ("bmp", data[:2] == b"BM", len(data) >= 26 and int.from_bytes(data[14:18], "little") in _BMP_HEADERS),
    ):
        if signature and whole:
            return Sniffed(kind)
        if signature and not _is_text(data):
            return Sniffed(kind, corrupt=True)
    return Sniffed()


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return "\x00" not in text


def data_uri(data: bytes, sniffed: Sniffed) -> str:
    return encoded(data, sniffed).decode("ascii")


def encoded(data: bytes, sniffed: Sniffed) -> bytearray:
    """The data: URI as ASCII bytes, made in one buffer (base64 in slices): no whole-size temporary beside it."""
    head = f"data:{sniffed.mime};base64,".encode()
    uri = bytearray(len(head) + (len(data) + 2) // 3 * 4)
    uri[: len(head)] = head
    view, at = memoryview(data), len(head)
    for start in range(0, len(data), _SLICE):
        piece = binascii.b2a_base64(view[start : start + _SLICE], newline=False)
        uri[at : at + len(piece)] = piece
        at += len(piece)
    return uri


def part_problem(value: object) -> str | None:
    """Why an image part's value is refused, or None when it may be sent to DashScope as it is."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if value[:8].lower() == "https://":
        try:
            host = urlsplit(value).hostname
        except ValueError:
            host = None
        if host and not any(ch.isspace() or not ch.isprintable() for ch in value):
            return None
        return "must be an https:// URL with a host"
    if value[:5].lower() == "data:":
        match = re.fullmatch(_DATA_URI, value)
        if match is None or (match.end(2) - match.start(2)) % 4:  # no copy of a data: URI's megabytes
            return "must be a data:image/<png|jpeg|webp|gif|bmp>;base64,<data> URI with valid base64"
        return None
    return (
        "must be an https:// URL or a data:image/...;base64 URI; local paths, file://, oss://, ftp://, http:// "
        "and bare names are refused (the function reads no file of its own disk, and DashScope's SDK would upload one)"
    )


def data_bytes(value: str) -> int:
    """The decoded size of a data: URI already accepted by part_problem (0 for an https URL)."""
    match = re.fullmatch(_DATA_URI, value)
    if match is None:
        return 0
    return (match.end(2) - match.start(2)) * 3 // 4 - value.count("=", -2)
