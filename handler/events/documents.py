"""Documents: what counts as one, decided by its bytes, never its name (docs/documents.md).

Pure and bounded: the caller reads the object's first bytes (`head`, HEAD_BYTES) and its last (`tail`,
TAIL_BYTES; the two may overlap for a small object) and passes its whole `size`. A ZIP's central
directory is at its end, so the Office Open XML and EPUB kinds are told from the tail; nothing is
decompressed but an EPUB's `mimetype` member, a few bytes, and that only within bounds.

`sniff` answers a Document, a Refusal (broken, encrypted or a ZIP bomb: 415; empty: 400) or None: the
bytes are no document (text, an image, an archive of another kind is a Refusal, not None).
"""

from __future__ import annotations

import codecs
import itertools
import re
import struct
import zlib

from handler.errors import InvalidInput
from handler.values import Value

HEAD_BYTES = 64 * 1024  # the header of every kind, a linearized PDF's first trailer, an EPUB's mimetype
TAIL_BYTES = 256 * 1024  # a ZIP's central directory of a few thousand members, a PDF's trailer

PDF_EOF_WINDOW = 1024  # readers accept a %%EOF marker this far from the end
ENCRYPT_WINDOW = 4096  # where a PDF's trailer (and a linearized file's first trailer) sits
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OPENXML = "application/vnd.openxmlformats-officedocument."
OOXML = {
    "word/": ("docx", "a Word document", _OPENXML + "wordprocessingml.document"),
    "xl/": ("xlsx", "an Excel workbook", _OPENXML + "spreadsheetml.sheet"),
    "ppt/": ("pptx", "a PowerPoint presentation", _OPENXML + "presentationml.presentation"),
}
# An OLE compound file's directory names the stream that says which Office 97-2003 program wrote it.
OLE_STREAMS = {
    "WordDocument": ("doc", "application/msword"),
    "Workbook": ("xls", "application/vnd.ms-excel"),
    "Book": ("xls", "application/vnd.ms-excel"),
    "PowerPoint Document": ("ppt", "application/vnd.ms-powerpoint"),
}
OLD_OFFICE = "an Office 97-2003 document"
EPUB_MIME = b"application/epub+zip"
# The name /Encrypt as a whole token: /EncryptMetadata (inside an encryption dictionary) is not it.
_ENCRYPT = re.compile(rb"/Encrypt(?=[\s()<>\[\]{}/%])")
_STARTXREF = re.compile(rb"startxref\s+(\d{1,12})\s+%%EOF")

_EOCD, _EOCD64, _LOCATOR64, _CENTRAL, _LOCAL = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"PK\x01\x02", b"PK\x03\x04"
_MAX_COMMENT = 0xFFFF


class Document(Value):
    """A document's kind ("pdf", "docx", "xlsx", "pptx", "epub", "mobi", "doc", "xls", "ppt", or "ole"
    for an Office 97-2003 file whose program was not seen), how to name it to a person, its MIME type."""

    kind: str
    name: str
    mime: str


class Refusal(Value):
    """Why these bytes cannot be answered as a document: a code and a sentence that follows the object's name."""

    code: str
    message: str
    status_code: int = 415

    def error(self, where: str) -> InvalidInput:
        return InvalidInput(f"{where} {self.message}", code=self.code, status_code=self.status_code)


class ZipLimits(Value):
    """What a ZIP's central directory may declare before it is refused as a ZIP bomb (docs/documents.md)."""

    members: int = 10_000
    unpacked: int = 2 * 1024**3  # every member's declared size, summed
    ratio: int = 100  # uncompressed : compressed, for a member larger than `grace`
    grace: int = 1024 * 1024


def sniff(head: bytes, tail: bytes, size: int, limits: ZipLimits | None = None) -> Document | Refusal | None:
    """The document these bytes are, why it is refused, or None when they are no document."""
    if len(head) > size or len(tail) > size:
        raise ValueError("head and tail are parts of an object of `size` bytes")
    if size == 0:
        return Refusal("DocumentEmpty", "is empty (0 bytes): there is nothing to read", status_code=400)
    if head.startswith(b"%PDF-"):
        return _pdf(head, tail, size)
    if head.startswith((_LOCAL, _EOCD)):
        return _zip(head, tail, size, limits or ZipLimits())
    if head.startswith(OLE_SIGNATURE):
        return _ole(head, tail, size)
    if head[60:68] == b"BOOKMOBI":
        return Document("mobi", "a MOBI e-book", "application/x-mobipocket-ebook")
    return None


def _pdf(head: bytes, tail: bytes, size: int) -> Document | Refusal | None:
    """A PDF ends with %%EOF; without it, text that merely opens with "%PDF-" is a question, else a cut-off file.

    Encryption is a heuristic: the /Encrypt key is looked for in the trailer (the last ENCRYPT_WINDOW
    bytes), in a cross-reference stream's dictionary (at startxref, when the tail holds it) and in a
    linearized file's first trailer (the first ENCRYPT_WINDOW bytes); a trailer further away is missed.
    """
    if b"%%EOF" not in tail[-PDF_EOF_WINDOW:]:
        if _is_text(head, whole=len(head) == size):
            return None
        return Refusal("DocumentCorrupt", "starts like a PDF but has no %%EOF marker at its end: it is cut off")
    places = [head[:ENCRYPT_WINDOW], tail[-ENCRYPT_WINDOW:]]
    start = size - len(tail)
    found = _STARTXREF.search(tail, max(0, len(tail) - PDF_EOF_WINDOW - 64))
    if found and start <= int(found.group(1)) < size:
        at = int(found.group(1)) - start
        places.append(tail[at : at + ENCRYPT_WINDOW])
    if any(_ENCRYPT.search(place) for place in places):
        return Refusal(
            "DocumentEncrypted",
            "is an encrypted (password-protected) PDF, which the model cannot read: save it without a password",
        )
    return Document("pdf", "a PDF document", "application/pdf")


def _is_text(data: bytes, *, whole: bool) -> bool:
    """UTF-8 without NUL; a prefix may end inside a character."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=whole)
    except UnicodeDecodeError:
        return False
    return "\x00" not in text


def _ole(head: bytes, tail: bytes, size: int) -> Document | Refusal:
    """An OLE compound file; its directory entries (128 bytes each, 128-aligned) name its program's stream."""
    if size < 512:
        return Refusal("DocumentCorrupt", f"starts like {OLD_OFFICE} but is shorter than its 512-byte header")
    names = _ole_names(head, 0) | _ole_names(tail, size - len(tail))
    if "EncryptedPackage" in names:
        return Refusal(
            "DocumentEncrypted",
            "is a password-protected Office document, which the model cannot read: save it without a password",
        )
    for stream, (kind, mime) in OLE_STREAMS.items():
        if stream in names:
            return Document(kind, OLD_OFFICE, mime)
    return Document("ole", OLD_OFFICE, "application/x-ole-storage")


def _ole_names(data: bytes, offset: int) -> set[str]:
    # A password-protected .docx, .xlsx or .pptx is an OLE file holding an EncryptedPackage stream, not a ZIP.
    wanted = {*OLE_STREAMS, "EncryptedPackage"}
    found = set()
    for at in range(-offset % 128, len(data) - 127, 128):
        length = int.from_bytes(data[at + 64 : at + 66], "little")
        if 2 <= length <= 64 and length % 2 == 0:
            name = data[at : at + length - 2].decode("utf-16-le", "replace")
            if name in wanted:
                found.add(name)
    return found


class _Member(Value):
    name: str
    name_length: int  # in bytes, as stored
    offset: int  # of its local header, from the object's first byte
    compressed: int
    unpacked: int


def _zip(head: bytes, tail: bytes, size: int, limits: ZipLimits) -> Document | Refusal:
    """A ZIP told by its central directory, read from the tail alone; bombs refused from what it declares."""
    members = _central_directory(tail, size, limits)
    if isinstance(members, Refusal):
        return members
    bomb = _bomb(members, limits)
    if bomb:
        return Refusal("ZipBomb", f"is a ZIP whose members {bomb}: refused unread as a ZIP bomb")
    names = {m.name for m in members}
    if "[Content_Types].xml" in names:
        for folder, (kind, name, mime) in OOXML.items():
            if any(n.startswith(folder) for n in names):
                return Document(kind, name, mime)
        return Refusal("DocumentUnsupported", "is an Office Open XML package that is not Word, Excel or PowerPoint")
    first = min(members, key=lambda m: m.offset, default=None)
    if first is not None and first.name == "mimetype" and _mimetype(head, first) == EPUB_MIME:
        return Document("epub", "an EPUB e-book", "application/epub+zip")
    return Refusal(
        "DocumentUnsupported", "is a ZIP archive, not a Word, Excel, PowerPoint or EPUB document: send the file itself"
    )


def _central_directory(tail: bytes, size: int, limits: ZipLimits) -> list[_Member] | Refusal:
    start = size - len(tail)  # where tail[0] is in the object
    end = _end_record(tail)
    if end is None:
        return Refusal(
            "DocumentCorrupt", "starts like a ZIP (Word, Excel, PowerPoint, EPUB) but has no end record: it is cut off"
        )
    count, cd_size, cd_offset = struct.unpack_from("<10xHII", tail, end)
    cd_end = end
    if count == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset):
        zip64 = _zip64_record(tail, end, start)
        if zip64 is None:
            return Refusal("DocumentCorrupt", "is a ZIP64 archive whose end records are broken")
        cd_end, count, cd_size, cd_offset = zip64
    if count > limits.members:
        return Refusal("ZipBomb", f"is a ZIP of {count:,} members (more than {limits.members:,}): refused unread")
    cd_start = cd_end - cd_size  # in tail: where it is, whatever bytes were put before the archive
    if cd_start + start < 0:
        return Refusal("DocumentCorrupt", "is a ZIP whose central directory is larger than the file")
    if cd_start < 0:
        return Refusal(
            "DocumentTooComplex",
            f"is a ZIP whose central directory ({cd_size:,} bytes, {count:,} members) is longer than the "
            f"{len(tail):,} bytes read from its end",
        )
    return _members(tail, cd_start, cd_end, start + cd_start - cd_offset)


def _end_record(tail: bytes) -> int | None:
    """The end-of-central-directory record: the last signature whose comment reaches exactly the end."""
    at = len(tail)
    low = max(0, len(tail) - 22 - _MAX_COMMENT)
    while (at := tail.rfind(_EOCD, low, at)) >= 0:
        if len(tail) - at >= 22 and at + 22 + int.from_bytes(tail[at + 20 : at + 22], "little") == len(tail):
            return at
    return None


def _zip64_record(tail: bytes, end: int, start: int) -> tuple[int, int, int, int] | None:
    """(where the ZIP64 end record starts in tail, members, central directory size, its offset), or None."""
    locator = end - 20
    if locator < 0 or tail[locator : locator + 4] != _LOCATOR64:
        return None
    at = locator - 56  # the record sits just before its locator (an extensible data field is not written)
    if at < 0 or tail[at : at + 4] != _EOCD64:
        return None
    count, cd_size, cd_offset = struct.unpack_from("<32xQQQ", tail, at)
    return at, count, cd_size, cd_offset


def _members(tail: bytes, at: int, end: int, shift: int) -> list[_Member] | Refusal:
    members = []
    while at < end:
        if tail[at : at + 4] != _CENTRAL or at + 46 > end:
            return Refusal("DocumentCorrupt", "is a ZIP whose central directory is broken")
        flags, compressed, unpacked, name_length, extra_length, comment_length, offset = struct.unpack_from(
            "<8xH10xIIHHH8xI", tail, at
        )
        name_at = at + 46
        raw = tail[name_at : name_at + name_length]
        extra = tail[name_at + name_length : name_at + name_length + extra_length]
        if 0xFFFFFFFF in (compressed, unpacked, offset):
            unpacked, compressed, offset = _zip64_sizes(extra, unpacked, compressed, offset)
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        members.append(_Member(name, name_length, offset + shift, compressed, unpacked))
        at = name_at + name_length + extra_length + comment_length
    return members


def _zip64_sizes(extra: bytes, unpacked: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """The ZIP64 extra field (id 1) holds, in order, each of the three that reads 0xFFFFFFFF."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        if kind == 1:
            values = list(struct.unpack_from(f"<{length // 8}Q", extra, at + 4))
            unpacked = values.pop(0) if unpacked == 0xFFFFFFFF and values else unpacked
            compressed = values.pop(0) if compressed == 0xFFFFFFFF and values else compressed
            offset = values.pop(0) if offset == 0xFFFFFFFF and values else offset
            break
        at += 4 + length
    return unpacked, compressed, offset


def _bomb(members: list[_Member], limits: ZipLimits) -> str | None:
    """What makes the declared members a bomb: their total, one member's ratio, or members that overlap."""
    total = sum(m.unpacked for m in members)
    if total > limits.unpacked:
        return f"declare {total:,} bytes uncompressed (more than {limits.unpacked:,})"
    for m in members:
        if m.unpacked > limits.grace and m.unpacked > limits.ratio * max(m.compressed, 1):
            return f"compress {m.unpacked:,} bytes into {m.compressed:,} (more than {limits.ratio}:1)"
    ordered = sorted(members, key=lambda m: m.offset)
    for one, then in itertools.pairwise(ordered):
        if one.offset + 30 + one.name_length + one.compressed > then.offset:
            return "overlap: several members share the same compressed bytes"
    return None


def _mimetype(head: bytes, first: _Member) -> bytes | None:
    """The first member's content when it is a few bytes, stored or deflated, read from the head."""
    if first.offset != 0 or first.compressed > 256 or first.unpacked > 64 or head[:4] != _LOCAL:
        return None
    method, name_length, extra_length = struct.unpack_from("<8xH16xHH", head)
    at = 30 + name_length + extra_length
    data = head[at : at + first.compressed]
    if method == 0:
        return data
    if method == 8:
        try:
            return zlib.decompressobj(-15).decompress(data, 64)
        except zlib.error:
            return None
    return None
