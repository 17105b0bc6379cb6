"""Output of ``repair``, ``rollback`` and ``prune-backups``: pure functions of results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from venvkeeper.formats.envelope import Kind, render
from venvkeeper.formats.layout import Column, Row, lay_out, to_text, wrap
from venvkeeper.model.consumers import ActionKind, ConsumerAction
from venvkeeper.model.repair import Backup, FetchOutcome, Outcome, RepairResult, WheelhouseReport
from venvkeeper.textutil import escape, plural

COLUMNS = (
    Column("RESULT", shrink=False),
    Column("PATH", path=True),
    Column("STRATEGY"),
    Column("TIME", shrink=False),
)
DETAIL = "WHAT"


def _what(r: RepairResult) -> str:
    text = r.message
    if r.recovered:
        text = f"{r.recovered}; then: {text}"
    return text


def render_table(
    results: Sequence[RepairResult], width: int = 0, actions: Sequence[ConsumerAction] = ()
) -> str:
    rows = [
        Row(
            (r.outcome.value, escape(r.path), r.strategy.value, f"{r.seconds:.1f}s"),
            escape(_what(r)),
        )
        for r in results
    ]
    lines = to_text(lay_out(COLUMNS, rows, width or None, DETAIL)).splitlines()
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
    if actions:
        lines += ["", *action_lines(actions, width)]
    lines += ["", summary(results)]
    return "\n".join(lines) + "\n"


def _action_head(a: ConsumerAction) -> str:
    """What the action is (raw): the command, or the file and line to edit."""
    if a.kind is ActionKind.EDIT:
        where = f"{a.edit.path}:{a.edit.line}" if a.edit else "a consumer's file"
        return f"edit {where}"
    return a.command or f"restart {a.unit or '?'}"


def action_lines(actions: Sequence[ConsumerAction], width: int = 0) -> list[str]:
    """The consumers' block of ``repair``: one item per restart or edit (what came of it,
    what, for which consumers, why), an edit with its line before and after (escaped)."""
    out = ["consumers of the repaired venvs:"]
    pad = max(len(a.outcome.value) for a in actions) + 1 if actions else 0
    for a in actions:
        text = _action_head(a)
        if a.consumers:
            text += f" ({', '.join(a.consumers)})"
        if a.detail:
            text += f": {a.detail}"
        text = escape(text)
        head = f"  {a.outcome.value:{pad}}"
        body = wrap(text, max(20, width - len(head))) if width else [text]
        out += [head + body[0], *(" " * len(head) + b for b in body[1:])]
        if a.edit is not None and a.edit.old:
            out.append(" " * len(head) + f"- {escape(a.edit.old)}")
            out.append(" " * len(head) + f"+ {escape(a.edit.new)}")
    return out


def action_to_dict(a: ConsumerAction) -> dict[str, Any]:
    e = a.edit
    return {
        "kind": a.kind.value,
        "outcome": a.outcome.value,
        "venv": a.venv,
        "consumers": list(a.consumers),
        "unit": a.unit,
        "user": a.user,
        "command": a.command,
        "edit": None if e is None else {"path": e.path, "line": e.line, "old": e.old, "new": e.new},
        "detail": a.detail,
    }


def summary(results: Sequence[RepairResult]) -> str:
    counts = {o: sum(1 for r in results if r.outcome is o) for o in Outcome}
    parts = [f"{n} {o.value}" for o, n in counts.items() if n]
    return f"{plural(len(results), 'venv')}: " + (", ".join(parts) if parts else "nothing asked")


def result_to_dict(r: RepairResult) -> dict[str, Any]:
    t = r.target
    return {
        "path": r.path,
        "outcome": r.outcome.value,
        "strategy": r.strategy.value,
        "message": r.message,
        "target": None
        if t is None
        else {"path": t.path, "executable": t.executable, "version": t.version},
        "backend": r.backend,
        "backup": r.backup,
        "recovered": r.recovered,
        "changes": [{"name": c.name, "old": c.old, "new": c.new} for c in r.changes],
        "failed_pins": [{"spec": p.spec, "reason": p.reason} for p in r.failed_pins],
        "seconds": round(r.seconds, 3),
    }


def render_backups(venv: str, kept: Sequence[Backup]) -> str:
    """``rollback --list``: the backups of *venv*, newest first, one a line."""
    import time

    lines = [
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(b.created))}"
        f"  {escape(b.reason):20}  {escape(b.path)}\n"
        for b in kept
    ]
    return "".join(lines) if kept else f"no backups of {escape(venv)}\n"


def render_pruned(pruned: Sequence[tuple[str, Sequence[str], Optional[str]]]) -> str:
    """``prune-backups``: each backup deleted, each venv refused and why, then the count."""
    lines: list[str] = []
    for venv, gone, why in pruned:
        lines += [f"deleted {escape(g)}\n" for g in gone]
        if why is not None:
            lines.append(f"refused {escape(venv)}: {escape(why)}\n")
    n = sum(len(gone) for _, gone, _ in pruned)
    lines.append(f"{plural(n, 'backup')} deleted, {plural(len(pruned), 'venv')} with backups\n")
    return "".join(lines)


def render_backups_json(venv: str, kept: Sequence[Backup]) -> str:
    """``rollback --list --json``: the backups of *venv*, newest first."""
    return render(
        Kind.ROLLBACK_LIST,
        {
            "venv": venv,
            "backups": [{"path": b.path, "created": b.created, "reason": b.reason} for b in kept],
        },
    )


def render_json(
    results: Sequence[RepairResult],
    kind: Kind = Kind.REPAIR,
    consumers: Optional[Sequence[ConsumerAction]] = None,
) -> str:
    """``repair --json``, or (*kind* ``rollback``) ``rollback --json``: one result each;
    with *consumers* (``repair`` read them), the restarts and edits for them."""
    if kind not in (Kind.REPAIR, Kind.ROLLBACK):
        raise ValueError(f"repair results are not a {kind.value} document")
    doc: dict[str, Any] = {"results": [result_to_dict(r) for r in results]}
    if consumers is not None:
        doc["consumers"] = [action_to_dict(a) for a in consumers]
    return render(kind, doc)


def render_pruned_json(pruned: Sequence[tuple[str, Sequence[str], Optional[str]]]) -> str:
    """``prune-backups --json``: per venv with backups, the ones deleted and why it was
    refused (``null``: not refused)."""
    return render(
        Kind.PRUNE_BACKUPS,
        {
            "venvs": [
                {"venv": venv, "deleted": list(gone), "refused": why} for venv, gone, why in pruned
            ],
            "deleted": sum(len(gone) for _, gone, _ in pruned),
        },
    )


def render_wheelhouse(report: WheelhouseReport) -> str:
    """The prefetch, one line per requirement that needs more than a fetched wheel."""
    lines: list[str] = []
    fetched = sum(1 for f in report.fetches if f.outcome is FetchOutcome.FETCHED)
    for f in report.fetches:
        if f.outcome is not FetchOutcome.FETCHED:
            what = f"{escape(f.venv)}: {escape(f.spec)}: {escape(f.detail)}"
            lines.append(f"{f.outcome.value:11}  {what}")
    for venv, why in report.skipped:
        lines.append(f"{'skipped':11}  {escape(venv)}: {escape(why)}")
    venvs = len({f.venv for f in report.fetches})
    lines.append(
        f"{fetched} of {plural(len(report.fetches), 'requirement')} of {plural(venvs, 'venv')}"
        " are wheels in"
        f" {escape(report.directory)}; after the upgrade: venvkeeper repair --all --offline"
        f" --find-links {escape(report.directory)}"
    )
    return "\n".join(lines) + "\n"


def render_wheelhouse_json(report: WheelhouseReport) -> str:
    doc: dict[str, Any] = {
        "directory": report.directory,
        "fetches": [
            {"venv": f.venv, "spec": f.spec, "outcome": f.outcome.value, "detail": f.detail}
            for f in report.fetches
        ],
        "skipped": [{"venv": v, "why": w} for v, w in report.skipped],
    }
    return render(Kind.WHEELHOUSE, doc)
