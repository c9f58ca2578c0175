"""Decoding an uploaded text file (posts or orders): UTF-8, UTF-16 with BOM or GB18030, never binary.

Moved unchanged from listening/ingest.py so commerce (order files) can use it without importing
listening.
"""

from __future__ import annotations

from nlp.ingest_schema import looks_binary

_ENCODINGS = ("utf-8-sig", "gb18030")  # utf-8-sig also reads plain UTF-8; GB18030 is a superset of GBK


class FileRejected(Exception):
    """The whole file is unusable (binary, unknown encoding or type); the message says why."""


def decode_file(data: bytes) -> tuple[str, str]:
    """(text, encoding) trying UTF-8, UTF-8 with BOM, UTF-16 with BOM and GB18030, or FileRejected."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise FileRejected("broken UTF-16 text / UTF-16 编码损坏") from None
    if b"\x00" in data[:65536]:
        raise FileRejected("binary file (contains NUL bytes), not JSONL/CSV text / 二进制文件")
    for encoding in _ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if looks_binary(text[:65536]):
            raise FileRejected("binary file (control characters), not JSONL/CSV text / 二进制文件")
        return text, encoding
    raise FileRejected(
        "unknown text encoding: save the file as UTF-8 (GBK/GB18030 also accepted) / 编码无法识别"
    )
