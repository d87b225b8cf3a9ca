"""What counts as a document: small real files built in memory, read through a head and a tail."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from handler.errors import InvalidInput
from handler.events.documents import HEAD_BYTES, TAIL_BYTES, Document, Refusal, ZipLimits, sniff
from tests.support.ole import ole

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


def seen(data: bytes, head: int = HEAD_BYTES, tail: int = TAIL_BYTES, **limits: int) -> Document | Refusal | None:
    """sniff as the caller calls it: the first and last bytes of the object, and its size."""
    return sniff(data[:head], data[-tail:] if data else b"", len(data), ZipLimits(**limits) if limits else None)


def archive(members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED, pad: int = 0) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as z:
        for name, data in members.items():
            stored = name == "mimetype"  # EPUB's first member is stored, as the format asks
            z.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored else method)
        if pad:
            z.writestr("padding.bin", bytes(range(256)) * (pad // 256), compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def office(folder: str, part: str, pad: int = 0) -> bytes:
    return archive(
        {"[Content_Types].xml": b"<Types/>", "_rels/.rels": b"<Relationships/>", f"{folder}{part}": b"<x/>"}, pad=pad
    )


def epub(mimetype: bytes = b"application/epub+zip", method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("mimetype", mimetype, compress_type=method)
        z.writestr("META-INF/container.xml", b"<container/>", compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("OEBPS/chapter1.xhtml", "<html>第一章</html>".encode(), compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def pdf(*, trailer: bytes = b"<< /Size 3 /Root 1 0 R >>", body: bytes = b"", binary: bool = True) -> bytes:
    return (
        b"%PDF-1.7\n"
        + (b"%\xe2\xe3\xcf\xd3\n" if binary else b"")
        + b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        + b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        + body
        + b"xref\n0 3\n0000000000 65535 f \n0000000015 00000 n \n0000000066 00000 n \n"
        + b"trailer\n"
        + trailer
        + b"\nstartxref\n120\n%%EOF\n"
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (office("word/", "document.xml"), "docx"),
        (office("xl/", "workbook.xml"), "xlsx"),
        (office("ppt/", "presentation.xml"), "pptx"),
        (epub(), "epub"),
        (epub(method=zipfile.ZIP_DEFLATED), "epub"),  # the format asks for it stored; a deflated one is read too
        (pdf(), "pdf"),
        (pdf(binary=False), "pdf"),  # an all-ASCII PDF is still a document, never text
        (ole("WordDocument"), "doc"),
        (ole("Workbook"), "xls"),
        (ole("PowerPoint Document"), "ppt"),
        (ole(None), "ole"),
        (bytes(60) + b"BOOKMOBI" + bytes(200), "mobi"),
    ],
)
def test_each_kind_is_told_by_its_bytes(data, kind):
    document = seen(data)
    assert isinstance(document, Document) and document.kind == kind
    assert document.mime and document.name


def test_office_97_2003_is_named_as_such_and_keeps_a_mime_per_program():
    assert seen(ole("WordDocument")) == Document("doc", "an Office 97-2003 document", "application/msword")
    assert seen(ole(None)).name == "an Office 97-2003 document"


def test_an_ole_directory_seen_in_the_tail_of_a_large_file():
    data = ole("Workbook", at=512 * 400, size=512 * 402)  # the directory is near the end, not in the head
    assert seen(data, head=4096, tail=4096).kind == "xls"


@pytest.mark.parametrize(
    "data",
    [
        PNG,  # a .pdf that is really a PNG: the caller sees an image
        "%PDF-1.7 是什么?".encode(),  # a question that opens with the signature, without a PDF's end marker
        b"%PDF- is the first line of a PDF; what comes next?\n" * 40,
        "如何做西红柿炖牛腩?".encode(),
        b"PK is a pair of letters",
        b"{}",
    ],
)
def test_what_is_no_document(data):
    assert seen(data) is None


def test_a_question_opening_with_pdf_cut_in_a_character_is_still_text():
    data = "%PDF-1.7 是什么?".encode() * 10
    assert sniff(data[:13], data[-20:], len(data)) is None  # the head ends inside 是


def test_an_empty_object_is_refused():
    assert seen(b"") == Refusal("DocumentEmpty", "is empty (0 bytes): there is nothing to read", status_code=400)


def test_a_binary_pdf_without_its_end_is_cut_off():
    refused = seen(pdf()[:-40])
    assert isinstance(refused, Refusal) and refused.code == "DocumentCorrupt" and refused.status_code == 415


@pytest.mark.parametrize(
    "data",
    [
        pdf(trailer=b"<< /Size 6 /Root 1 0 R /Encrypt 5 0 R /ID [<ab><ab>] >>"),
        pdf(trailer=b"<</Size 6/Root 1 0 R/Encrypt<</Filter/Standard/V 2>>>>"),
        # A linearized file: its first trailer, near the start, names /Encrypt; the last one need not.
        b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\ntrailer << /Size 9 /Encrypt 8 0 R >>\n" + bytes(300_000) + pdf()[9:],
    ],
)
def test_an_encrypted_pdf_is_refused(data):
    refused = seen(data)
    assert isinstance(refused, Refusal) and refused.code == "DocumentEncrypted" and refused.status_code == 415


def test_an_encrypt_key_in_a_cross_reference_stream_far_from_the_end():
    start = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n" + bytes(100_000)
    xref = b"9 0 obj << /Type /XRef /Size 10 /Root 1 0 R /Encrypt 8 0 R /Length 20000 >> stream\n"
    end = b"\nendstream endobj\nstartxref\n%d\n%%%%EOF\n" % len(start)
    data = start + xref + bytes(20_000) + end
    assert seen(data, head=4096).code == "DocumentEncrypted"
    assert seen(data.replace(b"/Encrypt 8 0 R", b"/Info 8 0 R    "), head=4096).kind == "pdf"


def test_encrypt_metadata_alone_is_no_encryption():
    assert seen(pdf(body=b"3 0 obj << /EncryptMetadata false >> endobj\n")).kind == "pdf"


def test_a_password_protected_office_file_is_refused():
    refused = seen(ole("EncryptedPackage"))
    assert isinstance(refused, Refusal) and refused.code == "DocumentEncrypted"


def test_an_ole_file_shorter_than_its_header_is_cut_off():
    assert seen(ole(None)[:300]).code == "DocumentCorrupt"


def test_a_truncated_zip_has_no_end_record():
    refused = seen(office("word/", "document.xml")[:-30])
    assert refused.code == "DocumentCorrupt" and "end record" in refused.message


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (archive({"notes.txt": b"hello", "photo.jpg": b"\xff\xd8\xff"}), "ZIP archive"),
        (epub(b"application/vnd.oasis.opendocument.text"), "ZIP archive"),  # an OpenDocument file
        (archive({"[Content_Types].xml": b"<Types/>", "visio/document.xml": b"<x/>"}), "not Word, Excel or PowerPoint"),
        (archive({"content.xml": b"<x/>", "mimetype": b"application/epub+zip"}), "ZIP archive"),  # not first
    ],
)
def test_a_zip_that_is_no_document_is_refused(data, says):
    refused = seen(data)
    assert isinstance(refused, Refusal) and refused.code == "DocumentUnsupported" and says in refused.message


def test_a_large_document_is_read_from_its_head_and_tail():
    data = office("word/", "document.xml", pad=3 * 1024 * 1024)  # the central directory is in the last bytes only
    assert seen(data, head=64 * 1024, tail=64 * 1024).kind == "docx"
    assert seen(epub(), head=4096, tail=4096).kind == "epub"


def test_a_zip64_archive_is_read():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        with z.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(b"<x/>")
        z.writestr("[Content_Types].xml", b"<Types/>")
    data = buffer.getvalue()
    assert b"PK\x06\x06" not in data  # zipfile writes a ZIP64 end record only when counts need it: patch one in
    data = _with_zip64_end(data)
    assert seen(data).kind == "docx"


def _with_zip64_end(data: bytes) -> bytes:
    """The same archive with a ZIP64 end record and locator, and the classic record's fields at 0xFFFF..."""
    end = data.rindex(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack_from("<10xHII", data, end)
    record = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, end, 1)
    classic = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:end] + record + locator + classic


def test_a_central_directory_longer_than_the_tail_is_refused():
    data = archive({"[Content_Types].xml": b"<Types/>", **{f"word/media/image{i}.bin": b"x" for i in range(300)}})
    refused = seen(data, tail=4096)
    assert refused.code == "DocumentTooComplex" and "301 members" in refused.message
    assert seen(data).kind == "docx"  # with the default tail it is read


class TestZipBombs:
    """Decided from the central directory alone: declared sizes, ratios, member count, overlaps."""

    def test_a_member_that_inflates_more_than_the_ratio(self):
        data = archive({"[Content_Types].xml": b"<Types/>", "word/document.xml": bytes(8 * 1024 * 1024)})
        refused = seen(data)
        assert isinstance(refused, Refusal) and refused.code == "ZipBomb" and ":1" in refused.message
        assert seen(data, ratio=100_000).kind == "docx"  # the same bytes under a looser limit

    def test_the_total_declared_size(self):
        data = office("word/", "document.xml")
        assert seen(data, unpacked=10).code == "ZipBomb"
        assert seen(data).kind == "docx"

    def test_too_many_members_from_the_end_record_alone(self):
        data = office("word/", "document.xml")
        refused = seen(data, members=2)
        assert refused.code == "ZipBomb" and "3 members" in refused.message

    def test_members_that_overlap(self):
        data = bytearray(archive({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<x/>" * 100}))
        second = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
        data[second + 42 : second + 46] = (0).to_bytes(4, "little")  # its local header offset: the first member's
        refused = seen(bytes(data))
        assert refused.code == "ZipBomb" and "overlap" in refused.message


def test_a_refusal_becomes_the_projects_input_error():
    error = seen(pdf()[:-40]).error("oss://inbox/report.pdf")
    assert isinstance(error, InvalidInput)
    assert (error.status_code, error.code) == (415, "DocumentCorrupt")
    assert error.message.startswith("oss://inbox/report.pdf starts like a PDF")


def test_head_and_tail_must_be_parts_of_the_object():
    with pytest.raises(ValueError, match="parts of an object"):
        sniff(b"abc", b"abc", 2)
