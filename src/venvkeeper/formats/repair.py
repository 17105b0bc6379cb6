"""Output of ``repair``, ``rollback`` and ``prune-backups``: pure functions of results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from venvkeeper import __version__
from venvkeeper.formats.json import SCHEMA_VERSION, _s
from venvkeeper.formats.predict import _table
from venvkeeper.model import Backup, Outcome, RepairResult
from venvkeeper.textutil import escape

HEADERS = ("RESULT", "PATH", "STRATEGY", "TIME", "WHAT")


def _what(r: RepairResult) -> str:
    text = r.message
    if r.recovered:
        text = f"{r.recovered}; then: {text}"
    return text


def render_table(results: Sequence[RepairResult], width: int = 0) -> str:
    rows: list[tuple[str, ...]] = [
        (
            r.outcome.value,
            escape(r.path),
            r.strategy.value,
            f"{r.seconds:.1f}s",
            escape(_what(r)),
        )
        for r in results
    ]
    lines = _table(rows, HEADERS, width)
    for r in results:
        if r.failed_pins:
            lines.append("")
            lines.append(f"{escape(r.path)}: what does not install as it was:")
            lines += [f"  {escape(p.spec)}: {escape(p.reason)}" for p in r.failed_pins]
        if r.changes:
            lines.append("")
            lines.append(f"{escape(r.path)}: versions changed:")
            lines += [
                f"  {escape(c.name)} {escape(c.old or '-')} -> {escape(c.new or 'removed')}"
                for c in r.changes
            ]
        if r.backup:
            lines.append(f"{escape(r.path)}: original kept at {escape(r.backup)}")
    lines += ["", summary(results)]
    return "\n".join(lines) + "\n"


def summary(results: Sequence[RepairResult]) -> str:
    counts = {o: sum(1 for r in results if r.outcome is o) for o in Outcome}
    parts = [f"{n} {o.value}" for o, n in counts.items() if n]
    return f"{len(results)} venv(s): " + (", ".join(parts) if parts else "nothing asked")


def result_to_dict(r: RepairResult) -> dict[str, Any]:
    t = r.target
    return {
        "path": _s(r.path),
        "outcome": r.outcome.value,
        "strategy": r.strategy.value,
        "message": _s(r.message),
        "target": None
        if t is None
        else {"path": _s(t.path), "executable": _s(t.executable), "version": t.version},
        "backend": r.backend,
        "backup": _s(r.backup),
        "recovered": _s(r.recovered),
        "changes": [{"name": c.name, "old": c.old, "new": c.new} for c in r.changes],
        "failed_pins": [{"spec": _s(p.spec), "reason": _s(p.reason)} for p in r.failed_pins],
        "seconds": round(r.seconds, 3),
    }


def render_backups_json(kept: Sequence[Backup]) -> str:
    doc = [{"path": _s(b.path), "created": b.created, "reason": _s(b.reason)} for b in kept]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_json(results: Sequence[RepairResult]) -> str:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "venvkeeper_version": __version__,
        "results": [result_to_dict(r) for r in results],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
