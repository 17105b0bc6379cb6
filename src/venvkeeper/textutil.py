"""Making untrusted text safe to print: file names and file contents come from scanned trees.

One rule for every output. A character is safe when :meth:`str.isprintable` says so: that
leaves out the C0 controls and DEL, the C1 controls (``\\x9b`` is an 8-bit CSI), the bidi
embeddings, overrides, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F,
U+061C) and every other format character, line and paragraph separators, and lone
surrogates (``surrogateescape``'s stand-ins for bytes that were not UTF-8). Unsafe
characters are written as ``\\xNN`` (undecodable bytes and code points below U+0100),
``\\uNNNN`` or ``\\UNNNNNNNN``.

- Text for people (tables, ``show``, messages): :func:`escape`, which also doubles every
  backslash, so that what is printed reads back to exactly one string.
- Error messages name what they are about through :func:`escape`; where they are printed,
  :func:`escape_value` (text that is already safe, escaped or not, is not escaped twice).
- Values in structured output (JSON strings, Prometheus label values): :func:`escape_value`,
  the text as found when every character is safe, else all of it through :func:`escape`
  (a backslash is then doubled). :func:`to_json` is the one JSON encoder of the command
  line: it applies :func:`escape_value` to every string of a document, keys too, so that
  the document is always valid UTF-8 and prints safely, even read with ``jq -r``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional


def escape(text: str) -> str:
    """Return *text* with unsafe characters (see the module) and backslashes escaped, so
    that it prints on one line and cannot drive a terminal or reorder the text around it.

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


def escape_value(text: str) -> str:
    """A string value for structured output: *text* as found when every character of it is
    safe, else :func:`escape` of all of it. Always printable, and idempotent."""
    return text if text.isprintable() else escape(text)


def json_safe(value: Any) -> Any:
    """*value* (a JSON-able tree of dicts, lists, tuples and scalars) with every string,
    dictionary keys too, through :func:`escape_value`."""
    if isinstance(value, str):
        return value if value.isprintable() else escape(value)
    if isinstance(value, dict):
        return {
            (escape_value(k) if isinstance(k, str) else k): json_safe(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


#: In JSON text, a control character that the encoder escaped (or a literal backslash
#: before one of these letters: a false alarm only costs the slow path).
_ESCAPED_CONTROL = re.compile(r"\\(?:u00[01]|[bfnrt])")


def _all_safe(text: str) -> bool:
    """Whether every string in the JSON *text* is printable ASCII (C-speed checks)."""
    return (
        text.isascii()
        and "\x7f" not in text
        and ("\\" not in text or _ESCAPED_CONTROL.search(text) is None)
    )


def to_json(value: Any, indent: Optional[int] = None) -> str:
    """The JSON text of *value* under the one rule (:func:`json_safe`), without a final
    newline. Without *indent* the C encoder is used (fast on the scan of a whole host)."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    if _all_safe(text):
        return text  # nearly always: then json_safe would change nothing
    return json.dumps(json_safe(value), indent=indent, ensure_ascii=False)


def decode(data: bytes) -> str:
    """Decode file contents leniently: UTF-8 (BOM dropped), undecodable bytes kept as escapes."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "surrogateescape")


def noun(n: int, word: str, many: Optional[str] = None) -> str:
    """*word* as it goes with the number *n*: itself for 1, else *many* (default: *word*
    and an ``s``)."""
    return word if n == 1 else (many if many is not None else word + "s")


def plural(n: int, word: str, many: Optional[str] = None) -> str:
    """``1 venv``, ``2 venvs``, ``0 venvs``: the one rule for counted words in messages
    (``plural(n, "process", "processes")`` for the irregular ones)."""
    return f"{n} {noun(n, word, many)}"


_NAME_NORMALIZE = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares it (``Foo_Bar`` and ``foo-bar`` are one)."""
    return _NAME_NORMALIZE.sub("-", name).lower()
