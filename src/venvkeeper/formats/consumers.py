"""``venvkeeper consumers``: the table and the JSON document (kind ``consumers``), and the
short labels that ``scan`` and ``show`` print in USED BY. Pure functions of the model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from venvkeeper.formats.envelope import Kind
from venvkeeper.formats.envelope import render as render_doc
from venvkeeper.formats.layout import PLAIN, Column, Row, Terminal, lay_out, more, to_text, wrap
from venvkeeper.formats.table import STYLE
from venvkeeper.model.consumers import (
    Consumer,
    ConsumerReport,
    JudgedConsumer,
    Reference,
)
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.textutil import escape, plural

COLUMNS = (
    Column("STATUS", shrink=False),
    Column("KIND"),
    Column("NAME", path=True),
    Column("USER", drop=True),
    Column("VENV", path=True),
    Column("STATE", drop=True),
)
DETAIL = "FINDING"


def label(c: Consumer) -> str:
    """How USED BY names a consumer: ``app.service``, ``cron /etc/cron.d/x:3``,
    ``uapp.service (user alice)``, ``pipx /home/u/.local/bin/x``. Raw: escape it."""
    return c.label


def labels(consumers: Iterable[Consumer], limit: int = 3) -> str:
    """USED BY's cell: the first few labels and how many more."""
    names = list(dict.fromkeys(label(c) for c in consumers))
    return ", ".join(names[:limit]) + more(len(names) - limit)


def state(c: Consumer) -> str:
    words = []
    if c.running:
        words.append("running")
    if c.enabled is True:
        words.append("enabled")
    elif c.enabled is False:
        words.append("disabled")
    if c.trigger:
        words.append(c.trigger)
    return ", ".join(words) or "-"


def _ref(r: Reference | None) -> str:
    if r is None:
        return "-"
    return f"{r.kind.value} ({r.confidence.value})"


def _detail(j: JudgedConsumer) -> str:
    main = next(iter(j.findings), None)
    if main is None:
        if j.venv_status is not None and j.venv_status.rank > Severity.INFO.rank:
            return f"its venv is {j.venv_status.value}: see venvkeeper show"
        return ""
    return f"{main.code}: {main.message}" + more(len(j.findings) - 1)


def rows(report: ConsumerReport) -> list[Row]:
    out = []
    for j in report.consumers:
        c = j.consumer
        cells = (
            j.status.value,
            c.kind.value,
            c.name,
            c.user or "-",
            c.venv or "-",
            state(c),
        )
        out.append(Row(tuple(escape(x) for x in cells), escape(_detail(j)), STYLE[j.status]))
    return out


def summary(report: ConsumerReport, listed: bool = False) -> str:
    """The last line; the venvs nothing uses are counted (*listed*: they are listed
    above, else how to list them)."""
    counts: dict[Severity, int] = {}
    for j in report.consumers:
        counts[j.status] = counts.get(j.status, 0) + 1
    parts = ", ".join(
        f"{counts.get(s, 0)} {s.value}"
        for s in (Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN, Severity.OK)
    )
    unused = plural(len(report.unused), "venv")
    hint = " (--unused lists them)" if report.unused and not listed else ""
    return (
        f"{plural(len(report.consumers), 'consumer')}: {parts}; {unused} nothing uses{hint}"
        f" ({report.seconds:.2f}s)"
    )


def render_table(report: ConsumerReport, term: Terminal = PLAIN, unused: bool = False) -> str:
    """The consumers' table, the readers' problems and the summary; with *unused*, the
    venvs nothing uses, one a line (else only their count)."""
    text = ""
    if report.consumers:
        text = to_text(lay_out(COLUMNS, rows(report), term.width, DETAIL), term.color) + "\n"
    if unused and report.unused:
        text += "venvs nothing uses:\n" + "".join(f"  {escape(p)}\n" for p in report.unused)
    lines = [f"{p.code}: {escape(p.message)}" for p in report.problems]
    lines.append(summary(report, listed=unused))
    width = term.width
    return text + "".join(t + "\n" for ln in lines for t in (wrap(ln, width) if width else [ln]))


def _finding(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "severity": f.severity.value, "message": f.message}


def reference_to_dict(r: Reference) -> dict[str, Any]:
    return {
        "kind": r.kind.value,
        "confidence": r.confidence.value,
        "text": r.text,
        "path": r.path,
        "venv": r.venv,
        "venv_state": r.venv_state.value,
        "source": r.source,
        "line": r.line,
        "key": r.key,
        "minor": r.minor,
        "via": list(r.via),
    }


def consumer_to_dict(
    c: Consumer, findings: Sequence[Finding] = (), status: str = "ok"
) -> dict[str, Any]:
    p = c.primary
    return {
        "kind": c.kind.value,
        "name": c.name,
        "source": c.source,
        "line": c.line,
        "user": c.user,
        "venv": c.venv,
        "venvs": list(c.venvs),
        "ref": p.kind.value if p else None,
        "confidence": p.confidence.value if p else None,
        "enabled": c.enabled,
        "running": c.running,
        "activation": c.activation.value,
        "trigger": c.trigger,
        "embedded_python": c.embedded_python,
        "embedded_module": c.embedded_module,
        "status": status,
        "findings": [_finding(f) for f in findings],
        "fails_how": {"loud": c.fails_how(True).value, "silent": c.fails_how(False).value},
        "restart": {
            "manager": c.restart.manager.value,
            "unit": c.restart.unit,
            "verb": c.restart.verb.value,
            "user": c.restart.user,
            "command": c.restart.command,
        },
        "via": list(c.via),
        "files": list(c.files),
        "references": [reference_to_dict(r) for r in c.refs],
    }


def judged_to_dict(j: JudgedConsumer) -> dict[str, Any]:
    return consumer_to_dict(j.consumer, j.findings, j.status.value)


def report_to_dict(report: ConsumerReport) -> dict[str, Any]:
    counts = {s.value: 0 for s in Severity if s is not Severity.INFO}
    for j in report.consumers:
        counts[j.status.value] = counts.get(j.status.value, 0) + 1
    return {
        "duration_seconds": round(report.seconds, 3),
        "summary": {
            "consumers": len(report.consumers),
            **counts,
            "worst": report.worst.value,
            "unused": len(report.unused),
        },
        "consumers": [judged_to_dict(j) for j in report.consumers],
        "unused": list(report.unused),
        "problems": [_finding(f) for f in report.problems],
    }


def render_json(report: ConsumerReport) -> str:
    return render_doc(Kind.CONSUMERS, report_to_dict(report))


def used_by_dicts(consumers: Iterable[Consumer]) -> list[dict[str, Any]]:
    """``scan``'s and ``show``'s ``consumers`` of a venv: each consumer, briefly."""
    out = []
    for c in consumers:
        p = c.primary
        out.append(
            {
                "kind": c.kind.value,
                "name": c.name,
                "source": c.source,
                "line": c.line,
                "user": c.user,
                "ref": p.kind.value if p else None,
                "confidence": p.confidence.value if p else None,
                "enabled": c.enabled,
                "running": c.running,
                "trigger": c.trigger,
            }
        )
    return out


def show_lines(consumers: Sequence[Consumer]) -> list[str]:
    """``show``'s "used by" block (escaped)."""
    if not consumers:
        return ["used by:", "  nothing found (units, cron, commands, web servers)"]
    out = ["used by:"]
    for c in consumers:
        p = c.primary
        where = f"{c.source}:{c.line}" if c.line else c.source
        out.append("  " + escape(f"{label(c)}: {_ref(p)}, {state(c)}, {where}"))
    return out


def by_label(consumers: Mapping[str, Sequence[Consumer]]) -> dict[str, str]:
    return {k: labels(v) for k, v in consumers.items()}
