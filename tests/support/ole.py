"""An OLE compound file's bytes (Office 97-2003), shared by tests/events/test_documents.py and
tests/wire/test_documents_url_route.py."""

from __future__ import annotations


def ole(stream: str | None, *, at: int = 512, size: int = 2048) -> bytes:
    """An OLE header, and a directory sector at `at` whose second entry names `stream`."""
    data = bytearray(size)
    data[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    for index, name in enumerate(("Root Entry", stream)):
        if name is not None:
            encoded = name.encode("utf-16-le") + b"\x00\x00"
            entry = at + 128 * index
            data[entry : entry + len(encoded)] = encoded
            data[entry + 64 : entry + 66] = len(encoded).to_bytes(2, "little")
    return bytes(data)
