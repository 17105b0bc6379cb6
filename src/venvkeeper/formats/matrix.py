"""Output of ``matrix``: pure functions from a :class:`~venvkeeper.model.matrix.Matrix` to
text (a table of venvs by host groups, a legend, each venv's layout) and JSON."""

from __future__ import annotations

from typing import Any

from venvkeeper.formats.envelope import Kind, dumps, envelope
from venvkeeper.model.matrix import Cell, CellState, HostGroup, Layout, Matrix, VenvRow
from venvkeeper.model.plan import Effect
from venvkeeper.textutil import escape

#: The one shell expression that gives a host's python3 minor (the recipe of the layout).
MINOR_OF_HOST = "$(python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])')"

#: Each effect of a broken cell as a short word (every Effect that breaks has one).
BREAK_WORDS = {
    Effect.BREAKS_LOUDLY: "loudly",
    Effect.BREAKS_SILENTLY: "silent",
    Effect.LOSES_STDLIB: "stdlib",
    Effect.ABI_MISMATCH: "abi",
    Effect.BREAKS: "broken",
    Effect.REMOVED: "gone",
}
STATE_WORDS = {CellState.WORKS: "ok", CellState.UNKNOWN: "?", CellState.OTHER_MINOR: "-"}

LEGEND = (
    ("ok", "works on those hosts"),
    ("silent", "breaks-silently: starts another minor, its packages are invisible"),
    ("loudly", "breaks-loudly: its interpreter link dangles there"),
    ("stdlib", "loses-stdlib: a copied interpreter without its standard library"),
    ("abi", "abi-mismatch: compiled extensions for another minor"),
    ("broken", "breaks: critical for another reason (see --json)"),
    ("gone", "the venv is not there on that host"),
    ("?", "unknown: the profile lacks what a verdict needs"),
    ("-", "a per-minor sibling (NAME-pyX.Y) on a host of another minor: not its host"),
)

MIN_PATH = 24


def word(cell: Cell) -> str:
    if cell.state is CellState.BREAKS:
        return BREAK_WORDS.get(cell.effect, "broken")
    return STATE_WORDS[cell.state]


def _cut(text: str, width: int) -> str:
    """*text* in *width* columns: its tail (where paths differ), after dots."""
    if len(text) <= width:
        return text
    return "..." + text[-(width - 3) :] if width > 3 else text[:width]


def _hosts(n: int) -> str:
    return f"{n} host" + ("" if n == 1 else "s")


def _columns(m: Matrix, width: int) -> tuple[list[str], list[int]]:
    """The headers of the host columns and their widths: the groups' labels when they fit
    in *width* beside a path column of MIN_PATH, else their ids (h1, h2, ...)."""
    cell = max([len(w) for w in (*BREAK_WORDS.values(), *STATE_WORDS.values())])
    for names in ([escape(g.label) for g in m.groups], [g.id for g in m.groups]):
        heads = [_cut(n, 12) for n in names]
        widths = [max(cell, len(h)) for h in heads]
        if not width or MIN_PATH + sum(w + 2 for w in widths) <= width:
            return heads, widths
    return heads, widths


def render_table(m: Matrix, width: int = 80) -> str:
    """The matrix for people: the host groups, the table (rows venvs, columns groups),
    the legend, then the layout of every venv that does not serve every host."""
    out: list[str] = []
    kinds = len(m.groups)
    out.append(
        f"hosts: {m.profiles} profile(s), {kinds} kind(s) of host ({m.judgements}"
        f" judgement{'s' if m.judgements != 1 else ''}):"
    )
    for g in m.groups:
        release = escape(g.os_releases[0]) if g.os_releases else "?"
        py = g.python3 or "?"
        out.append(
            f"  {g.id:<4} {escape(g.label):<16} {_hosts(len(g.hosts)):<10} python3 {py:<6}"
            f" {release}"
        )
    out.append("")
    heads, widths = _columns(m, width)
    paths = [escape(r.path) for r in m.rows]
    rest = sum(w + 2 for w in widths)
    longest = max([len(p) for p in paths] + [len("VENV")])
    pw = min(longest, max(MIN_PATH, width - rest)) if width else longest
    line = "VENV".ljust(pw) + "".join("  " + h.ljust(w) for h, w in zip(heads, widths))
    out.append(line.rstrip())
    for r, p in zip(m.rows, paths):
        cells = "".join("  " + word(c).ljust(w) for c, w in zip(r.cells, widths))
        out.append((_cut(p, pw).ljust(pw) + cells).rstrip())
    out.append("")
    used = {word(c) for r in m.rows for c in r.cells}
    shown = [(w, t) for w, t in LEGEND if w in used]
    if shown:
        out.append("legend:")
        out.extend(f"  {w:<7} {t}" for w, t in shown)
    blocks = [_layout_block(r, r.layout, m.groups) for r in m.rows if r.layout is not None]
    for b in blocks:
        out.append("")
        out.extend(b)
    out.append("")
    out.append(_summary(m))
    return "\n".join(out) + "\n"


def like(g: HostGroup) -> str:
    """``web1``, or ``40 hosts like web1``."""
    n = len(g.hosts)
    return escape(g.name) if n == 1 else f"{n} hosts like {escape(g.name)}"


def _layout_block(r: VenvRow, layout: Layout, groups: tuple[HostGroup, ...]) -> list[str]:
    by_id = {g.id: g for g in groups}
    serves = r.serves(groups)
    served = "; ".join(f"{g.id}: {like(g)}" for g in serves) if serves else "no host"
    out = [f"{escape(r.path)}: served by {served}"]
    for g, c in zip(groups, r.cells):
        if c.state is not CellState.WORKS:
            how = c.effect.value if c.state is CellState.BREAKS else c.state.value
            why = f" ({escape(c.code)})" if c.code else ""
            out.append(f"  not by {g.id}: {like(g)}: {how}{why}")
    out.append("  the layout that serves all: one venv per python3 minor beside it")
    for s in layout.siblings:
        count = sum(len(by_id[i].hosts) for i in s.groups)
        for_ = f"for {', '.join(s.groups)} ({_hosts(count)})"
        if s.exists and s.works:
            out.append(f"    {escape(s.path)}  {for_}: in place, works")
            continue
        state = "exists, does not work there" if s.exists else "missing"
        out.append(f"    {escape(s.path)}  {for_}: {state}")
        on = f" (with {escape(s.interpreter)})" if s.interpreter else ""
        out.append(
            f"      on {escape(s.build_on)}{on}: venvkeeper repair --sibling {escape(r.path)}"
        )
    if layout.unplaced:
        out.append(
            f"    {', '.join(layout.unplaced)}: the minor cannot be told from the profile:"
            " make its profile again on that host"
        )
    base = escape(r.path.rstrip("/"))
    out.append("  a service on each host runs its own minor's venv:")
    out.append(f"    {base}-py{MINOR_OF_HOST}/bin/python")
    return out


def _summary(m: Matrix) -> str:
    hosts = sum(len(g.hosts) for g in m.groups)
    counts = {s: m.count(s) for s in CellState}
    text = (
        f"{len(m.rows)} venvs x {_hosts(hosts)}: {counts[CellState.WORKS]} work,"
        f" {counts[CellState.BREAKS]} break, {counts[CellState.UNKNOWN]} unknown"
    )
    if counts[CellState.OTHER_MINOR]:
        text += f", {counts[CellState.OTHER_MINOR]} other-minor"
    layouts = sum(1 for r in m.rows if r.layout is not None and not r.layout.in_place)
    if layouts:
        text += f"; {layouts} need a per-minor layout"
    return text


# --- JSON ----------------------------------------------------------------------------------


def _cell(c: Cell) -> dict[str, Any]:
    return {
        "state": c.state.value,
        "word": word(c),
        "effect": c.effect.value,
        "status": c.status,
        "code": c.code,
        "why": c.why,
        "minor": c.minor,
    }


def _layout(layout: Layout) -> dict[str, Any]:
    return {
        "in_place": layout.in_place,
        "unplaced": list(layout.unplaced),
        "siblings": [
            {
                "minor": s.minor,
                "path": s.path,
                "hosts": list(s.groups),
                "build_on": s.build_on,
                "interpreter": s.interpreter,
                "exists": s.exists,
                "works": s.works,
            }
            for s in layout.siblings
        ],
    }


def matrix_to_dict(m: Matrix) -> dict[str, Any]:
    return envelope(Kind.MATRIX, _payload(m))


def _payload(m: Matrix) -> dict[str, Any]:
    return {
        "roots": list(m.roots),
        "profiles": m.profiles,
        "judgements": m.judgements,
        "hosts": [
            {
                "id": g.id,
                "label": g.label,
                "hosts": list(g.hosts),
                "sources": list(g.sources),
                "os_releases": list(g.os_releases),
                "python3": g.python3,
            }
            for g in m.groups
        ],
        "summary": {
            "venvs": len(m.rows),
            **{s.value: m.count(s) for s in CellState},
            "worst": m.worst.value,
        },
        "venvs": [
            {
                "path": r.path,
                "minor": r.minor,
                "sibling_for": r.sibling_for,
                "serves": [g.id for g in r.serves(m.groups)],
                "served_hosts": sum(len(g.hosts) for g in r.serves(m.groups)),
                "cells": {g.id: _cell(c) for g, c in zip(m.groups, r.cells)},
                "layout": _layout(r.layout) if r.layout is not None else None,
            }
            for r in m.rows
        ],
    }


def render_json(m: Matrix) -> str:
    return dumps(matrix_to_dict(m))
