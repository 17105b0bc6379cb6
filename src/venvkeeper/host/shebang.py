"""What a script's first lines say about the interpreter that runs it (no I/O here)."""

from __future__ import annotations

import os
import re
from typing import Optional

_EXEC_TRICK = re.compile(r"""^'''exec' (?:"([^"]*)"|'([^']*)'|(\S+))""")
_RELOCATABLE = re.compile(r"""^'''exec' "\$\(dirname -- "\$\(realpath -- "\$0"\)"\)"/'([^']+)'""")
SHELLS = ("/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "/bin/dash")


def parse_shebang(head: bytes) -> tuple[Optional[str], bool]:
    """(interpreter path, relative) from the start of a script.

    Like the kernel: the interpreter is the first word after ``#!``, no quoting. Also the
    ``#!/bin/sh`` + ``'''exec' "PATH"`` trick that pip and uv use for paths too long for a
    shebang, where ``"$(dirname ...)"`` marks uv's relocatable scripts.
    """
    if not head.startswith(b"#!"):
        return None, False
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\n", 2)
    words = lines[0][2:].split(None, 1)
    if not words:
        return None, False
    interp = words[0]
    if interp in SHELLS and len(lines) > 1:
        m = _EXEC_TRICK.match(lines[1])
        if m is None:
            return None, False
        found = m.group(1) or m.group(2) or m.group(3)
        if found is None:
            return None, False
        if found.startswith("$("):
            return None, True  # uv relocatable: the interpreter beside the script
        return found, False
    if os.path.basename(interp) == "env":
        return None, False  # resolved through PATH at run time
    return interp, False


def relocatable_name(head: bytes) -> Optional[str]:
    """The interpreter's name beside the script in uv's relocatable trampoline
    (``'''exec' "$(dirname -- "$(realpath -- "$0")")"/'python3' ...``), or None."""
    lines = head.decode("utf-8", "surrogateescape").split("\n", 2)
    if len(lines) < 2:
        return None
    m = _RELOCATABLE.match(lines[1])
    return m.group(1) if m else None


def env_target(head: bytes) -> Optional[tuple[str, ...]]:
    """The words after ``#!/usr/bin/env`` (``-S`` split, options dropped), or None when
    the script does not start with an ``env`` shebang."""
    if not head.startswith(b"#!"):
        return None
    first = head.split(b"\n", 1)[0][2:].decode("utf-8", "surrogateescape").split(None, 1)
    if not first or os.path.basename(first[0]) != "env":
        return None
    rest = first[1].split() if len(first) > 1 else []
    while rest and rest[0].startswith("-"):
        rest.pop(0)
    return tuple(rest)
