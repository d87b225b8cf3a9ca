"""Small documents of each family the file route answers (PDF, DOCX, XLSX, PPTX, EPUB), as bytes."""

from __future__ import annotations

import io
import zipfile


def archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def office(folder: str, part: str) -> bytes:
    return archive({"[Content_Types].xml": b"<Types/>", "_rels/.rels": b"<Relationships/>", f"{folder}{part}": b"<x/>"})


def pdf(filler: bytes = b"") -> bytes:
    """A minimal PDF; `filler` goes into a comment before the trailer (a large PDF's bulk)."""
    return (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n%" + filler + b"\n"
        b"xref\n0 3\n0000000000 65535 f \n0000000015 00000 n \n0000000066 00000 n \ntrailer\n"
        b"<< /Size 3 /Root 1 0 R >>\nstartxref\n120\n%%EOF\n"
    )


EPUB = archive({"mimetype": b"application/epub+zip", "OEBPS/c1.xhtml": "<html>第一章</html>".encode()})
FAMILIES = {
    "report.pdf": pdf(),
    "letter.docx": office("word/", "document.xml"),
    "sheet.xlsx": office("xl/", "workbook.xml"),
    "slides.pptx": office("ppt/", "presentation.xml"),
    "book.epub": EPUB,
}
