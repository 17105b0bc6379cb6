"""What a stream allows: its width, colour, and a live progress line. :func:`decide` is the
one rule, a pure function of what the command line found out about the stream.

A light module (no dataclasses, no regular expressions): the command line builds a
:class:`Terminal` for stdout and stderr before every command.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Optional

#: The width of a terminal that does not say (no ``COLUMNS``, no size).
DEFAULT_WIDTH = 80


class Terminal(NamedTuple):
    """What a stream allows. ``width`` None: no limit (one line per row, never cut);
    ``color``: SGR colours; ``live``: a progress line redrawn with ``\\r`` and ``ESC[K``."""

    width: Optional[int] = None
    color: bool = False
    live: bool = False


PLAIN = Terminal()


def decide(isatty: bool, environ: Mapping[str, str], size: Optional[int] = None) -> Terminal:
    """The rule. ``COLUMNS`` (a positive whole number) is the width whenever it is set, a
    terminal or not; else a terminal's own *size* (80 when unknown); else no limit.
    A terminal with ``TERM`` unset or ``dumb``, and anything that is not a terminal, gets
    plain text: no colour, no live progress. ``NO_COLOR`` (set and not empty, see
    no-color.org) turns colour off."""
    columns: Optional[int] = None
    text = environ.get("COLUMNS", "").strip()
    if text.isdigit() and int(text) > 0:
        columns = int(text)
    if columns is None and isatty:
        columns = size if size and size > 0 else DEFAULT_WIDTH
    smart = isatty and environ.get("TERM", "") not in ("", "dumb")
    return Terminal(width=columns, color=smart and not environ.get("NO_COLOR"), live=smart)
