"""Making untrusted text safe to print: file names and file contents come from scanned trees."""

from __future__ import annotations


def escape(text: str) -> str:
    """Return *text* with control characters, lone surrogates (bytes that were not UTF-8)
    and backslashes escaped, so that it prints on one line and cannot drive a terminal.

    Printable text (any script) passes unchanged.
    """
    if text.isprintable() and "\\" not in text:
        return text
    out: list[str] = []
    for ch in text:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= o <= 0xDCFF:  # surrogateescape of an undecodable byte
            out.append(f"\\x{o - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x100:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    return "".join(out)


def decode(data: bytes) -> str:
    """Decode file contents leniently: UTF-8 (BOM dropped), undecodable bytes kept as escapes."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "surrogateescape")
