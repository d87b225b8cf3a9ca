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
    """The image type of these bytes; corrupt when a signature matches but the header after it does not parse."""
    for kind, signature, parses in _FORMATS:
        if data.startswith(signature):
            if parses(data):
                return Sniffed(kind)
            if not _is_text(data):
                return Sniffed(kind, corrupt=True)
    return Sniffed()


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return "\x00" not in text


def _int(data: bytes, at: int, size: int, *, big: bool = False) -> int:
    return int.from_bytes(data[at : at + size], "big" if big else "little")


def _png(d: bytes) -> bool:
    # IHDR comes first, 13 bytes long: a non-zero size below 2**31, a bit depth and colour type PNG defines.
    sized = all(0 < _int(d, at, 4, big=True) < 2**31 for at in (16, 20)) and d[8:16] == b"\0\0\0\rIHDR"
    return len(d) >= 26 and sized and d[24] in (1, 2, 4, 8, 16) and d[25] in (0, 2, 3, 4, 6)


def _jpeg(d: bytes) -> bool:
    # SOI is followed by a segment's marker (not a restart, SOI or EOI) and a length that counts itself.
    return len(d) >= 6 and 0xC0 <= d[3] <= 0xFE and not 0xD0 <= d[3] <= 0xD9 and _int(d, 4, 2, big=True) >= 2


def _gif(d: bytes) -> bool:
    # A non-empty screen, then (after any colour table) an extension GIF89a defines or an image with its LZW
    # code size: a GIF that holds no image is nothing to describe.
    at = 13 + _gif_table(d[10]) if len(d) > 13 and _int(d, 6, 2) and _int(d, 8, 2) else len(d)
    if d[at : at + 1] == b"!":
        return d[at + 1 : at + 2] in (b"\x01", b"\xf9", b"\xfe", b"\xff")
    code = at + 10 + (_gif_table(d[at + 9]) if len(d) > at + 9 else 0)
    return d[at : at + 1] == b"," and len(d) > code and 2 <= d[code] <= 8


def _gif_table(packed: int) -> int:
    return 3 << ((packed & 7) + 1) if packed & 0x80 else 0


def _webp(d: bytes) -> bool:
    # One of WebP's bitstreams with its own header: VP8's start code and non-zero size, VP8L's signature byte
    # and version 0, or VP8X's canvas.
    chunk = d[12:16] if len(d) >= 26 and d[8:12] == b"WEBP" else b""
    if chunk == b"VP8 ":
        sized = _int(d, 26, 2) & 0x3FFF and _int(d, 28, 2) & 0x3FFF
        return len(d) >= 30 and d[23:26] == b"\x9d\x01\x2a" and bool(sized)
    return d[20] == 0x2F and d[24] >> 5 == 0 if chunk == b"VP8L" else chunk == b"VP8X" and len(d) >= 30


def _bmp(d: bytes) -> bool:
    # A DIB header size Windows or OS/2 writes (OS/2's has 16-bit sizes), a non-zero size, one plane and a
    # bit count BMP defines.
    field = 2 if _int(d, 14, 4) == 12 else 4
    sized = len(d) >= 22 + 2 * field and _int(d, 18, field) > 0 and _int(d, 18 + field, field) > 0
    planes, bits = _int(d, 18 + 2 * field, 2), _int(d, 20 + 2 * field, 2)
    return _int(d, 14, 4) in _BMP_HEADERS and sized and planes == 1 and bits in (1, 4, 8, 16, 24, 32)


_FORMATS = (
    ("png", b"\x89PNG\r\n\x1a\n", _png),
    ("jpeg", b"\xff\xd8\xff", _jpeg),
    ("gif", (b"GIF87a", b"GIF89a"), _gif),
    ("webp", b"RIFF", _webp),
    ("bmp", b"BM", _bmp),
)


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
