"""Tables for people: the one layout of every command's table, and what the terminal allows.

Every table has a few short columns and one long one, the *detail* (a finding, a reason):

- When every row fits the width on one line (or there is no width: output to a file or a
  pipe without ``COLUMNS``), each row is one line, the detail last.
- Otherwise the detail goes on its own lines below its row, indented by :data:`INDENT`
  and wrapped between words. If the short columns still do not fit, paths are shortened
  in the middle (``/srv/…/app/venv``: the last components stay whole), then other text
  at its end (``…``), then columns marked ``drop`` are left out.

Nothing is ever wrapped inside a cell, so a path is never split across lines. Cells come
in escaped (each renderer escapes what it got from a scanned tree): this module only
measures, pads and shortens them. :func:`decide` is the rule for the width, colour and
live progress of a stream, a pure function of what the command line found out
(:mod:`venvkeeper.formats.terminal`, re-exported here).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from venvkeeper.formats.terminal import DEFAULT_WIDTH as DEFAULT_WIDTH
from venvkeeper.formats.terminal import PLAIN as PLAIN
from venvkeeper.formats.terminal import Terminal as Terminal
from venvkeeper.formats.terminal import decide as decide

ELLIPSIS = "…"
INDENT = 4
GAP = 2
#: The narrowest a path column gets before other columns give way.
MIN_PATH = 20


def cells(text: str) -> int:
    """The terminal cells *text* takes: East Asian wide characters two, combining none."""
    if text.isascii():
        return len(text)
    n = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        n += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return n


def _fit(text: str, n: int, from_end: bool = False) -> str:
    """The longest start (or end) of *text* that takes at most *n* cells."""
    out: list[str] = []
    used = 0
    for ch in reversed(text) if from_end else text:
        w = cells(ch)
        if used + w > n:
            break
        out.append(ch)
        used += w
    return "".join(reversed(out)) if from_end else "".join(out)


def shorten_end(text: str, n: int) -> str:
    """*text* in at most *n* cells: cut at its end, with ``…``."""
    if cells(text) <= n:
        return text
    return _fit(text, max(n - 1, 0)) + ELLIPSIS if n > 0 else ""


def shorten_path(text: str, n: int) -> str:
    """*text* (a path) in at most *n* cells, shortened in the middle: its first component
    and as many of its last as fit stay whole (``/srv/…/app/venv``), else only its last
    ones (``…/app/venv``). A last component too long on its own is cut in its middle."""
    if cells(text) <= n:
        return text
    parts = text.split("/")
    first = 2 if text.startswith("/") else 1  # "/srv", or a relative path's first name
    for j in (first, 0):
        head = "/".join(parts[:j]) + "/" if j else ""
        for k in range(len(parts) - j - 1, 0, -1):
            cand = head + ELLIPSIS + "/" + "/".join(parts[-k:])
            if cells(cand) <= n:
                return cand
    if n < 3:
        return shorten_end(text, n)
    back = (n - 1) // 2
    return _fit(text, n - 1 - back) + ELLIPSIS + _fit(text, back, from_end=True)


def shorten(text: str, n: int, path: bool) -> str:
    return shorten_path(text, n) if path else shorten_end(text, n)


def pad(text: str, n: int) -> str:
    return text + " " * max(n - cells(text), 0)


def more(n: int) -> str:
    """The mark of a row's other findings: `` [+2 more]`` (nothing for none), kept on one
    line by :func:`wrap`."""
    return f" [+{n} more]" if n > 0 else ""


_WORDS = re.compile(r"\[\+\d+ more\]|[^ ]+")


def wrap(text: str, n: int) -> list[str]:
    """*text* in lines of at most *n* cells, broken between words only; a word longer
    than a line is shortened (in its middle when it holds a ``/``: a path stays readable
    and is never split across lines)."""
    lines: list[str] = []
    line = ""
    for word in _WORDS.findall(text):
        if cells(word) > n:
            word = shorten(word, n, "/" in word)
        if not line:
            line = word
        elif cells(line) + 1 + cells(word) <= n:
            line += " " + word
        else:
            lines.append(line)
            line = word
    if line or not lines:
        lines.append(line)
    return lines


@dataclass(frozen=True)
class Column:
    """One short column. ``path``: shortened in the middle; ``shrink``: may be shortened
    at its end (numbers and states are never shortened); ``drop``: may be left out on a
    narrow terminal."""

    header: str
    path: bool = False
    shrink: bool = True
    drop: bool = False


@dataclass(frozen=True)
class Row:
    """One row: its short cells, its detail (the long last column), and the style (words of
    :data:`SGR`, e.g. ``"bold red"``) of its first cell."""

    cells: tuple[str, ...]
    detail: str = ""
    style: Optional[str] = None


#: A rendered line: (text, style) segments.
Line = list[tuple[str, Optional[str]]]


def _widths(columns: Sequence[Column], rows: Sequence[Row], keep: Sequence[int]) -> list[int]:
    return [max([cells(columns[i].header)] + [cells(r.cells[i]) for r in rows]) for i in keep]


def _narrow(
    columns: Sequence[Column], rows: Sequence[Row], width: int
) -> tuple[list[int], list[int]]:
    """The columns kept and their widths, shortened to fit *width* where they can: paths
    down to :data:`MIN_PATH`, then other text down to its header; then the columns that
    may go leave, the last first; only then do paths get narrower still."""
    keep = list(range(len(columns)))
    while True:
        last = not any(columns[i].drop for i in keep)
        widths = _widths(columns, rows, keep)
        excess = sum(widths) + GAP * (len(keep) - 1) - width
        passes = [(True, MIN_PATH), (False, 0)] + ([(True, 0)] if last else [])
        for paths, floor in passes:
            order = sorted(
                (p for p, i in enumerate(keep) if columns[i].shrink and columns[i].path is paths),
                key=lambda p: -widths[p],
            )
            for pos in order:
                if excess <= 0:
                    break
                least = max(floor, cells(columns[keep[pos]].header), 1)
                give = min(excess, max(widths[pos] - least, 0))
                widths[pos] -= give
                excess -= give
        if excess <= 0 or last:
            return keep, widths
        keep.remove([i for i in keep if columns[i].drop][-1])


def lay_out(
    columns: Sequence[Column],
    rows: Sequence[Row],
    width: Optional[int],
    detail: str = "",
) -> list[Line]:
    """The table's lines: its header, then each row (see the module for the rule)."""
    head = Row(tuple(c.header for c in columns), detail, "bold")
    if width is None or _fits(columns, [head, *rows], width):
        keep = list(range(len(columns)))
        widths = _widths(columns, rows, keep)
        return [_line(columns, r, keep, widths, inline=True) for r in [head, *rows]]
    keep, widths = _narrow(columns, rows, width)
    # a shortened path may come out narrower than its room: the column takes what it uses
    widths = [
        max(
            [cells(columns[i].header)]
            + [cells(shorten(r.cells[i], w, columns[i].path)) for r in rows]
        )
        for i, w in zip(keep, widths)
    ]
    out: list[Line] = []
    for r in [head, *rows]:
        line = _line(columns, r, keep, widths, inline=False)
        if sum(cells(t) for t, _ in line) > width:  # nothing left to shorten: cut
            line = _cut(line, width)
        out.append(line)
        if r.detail:
            style = "bold" if r is head else None
            out += [[(" " * INDENT + t, style)] for t in wrap(r.detail, width - INDENT)]
    return out


def _fits(columns: Sequence[Column], rows: Sequence[Row], width: int) -> bool:
    widths = _widths(columns, rows, range(len(columns)))
    short = sum(widths) + GAP * (len(columns) - 1)
    return all(short + (GAP + cells(r.detail) if r.detail else 0) <= width for r in rows)


def _line(
    columns: Sequence[Column], r: Row, keep: Sequence[int], widths: Sequence[int], inline: bool
) -> Line:
    parts: Line = []
    for pos, i in enumerate(keep):
        text = shorten(r.cells[i], widths[pos], columns[i].path)
        last = pos == len(keep) - 1 and not (inline and r.detail)
        text = text if last else pad(text, widths[pos])
        style = r.style if (pos == 0 or r.style == "bold") else None
        parts.append((text, style))
        if not last:
            parts.append((" " * GAP, None))
    if inline and r.detail:
        parts.append((r.detail, "bold" if r.style == "bold" else None))
    while parts and parts[-1][0].strip() == "":
        parts.pop()
    if parts:
        parts[-1] = (parts[-1][0].rstrip(), parts[-1][1])
    return parts


def _cut(line: Line, width: int) -> Line:
    out: Line = []
    room = width - 1
    for text, style in line:
        if cells(text) <= room:
            out.append((text, style))
            room -= cells(text)
            continue
        out.append((_fit(text, room) + ELLIPSIS, style))
        break
    return out


#: The SGR parameters (ECMA-48 "select graphic rendition") of each word a style may hold:
#: a style is words such as ``"bold red"``, attributes before colours.
SGR = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "magenta": "35"}
_RESET = "\x1b[0m"


def paint(text: str, style: Optional[str]) -> str:
    """*text* in *style*: ``ESC[1;31m`` ... ``ESC[0m`` for ``"bold red"`` (nothing for no
    style, or no text)."""
    if not style or not text:
        return text
    return f"\x1b[{';'.join(SGR[w] for w in style.split())}m{text}{_RESET}"


def to_text(lines: Sequence[Line], color: bool = False) -> str:
    """The lines as text, each ended by a newline; in colour (:func:`paint`) when
    *color*."""
    if not color:
        return "".join("".join(t for t, _ in line) + "\n" for line in lines)
    return "".join("".join(paint(t, s) for t, s in line) + "\n" for line in lines)


def table(
    columns: Sequence[Column],
    rows: Sequence[Row],
    term: Terminal = PLAIN,
    detail: str = "",
) -> str:
    """The table as text for *term* (see the module)."""
    return to_text(lay_out(columns, rows, term.width, detail), term.color)


def human_size(n: int) -> str:
    """*n* bytes in binary units: ``512 B``, ``48.2 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
