"""Output of ``restarts``: pure functions from a :class:`RestartReport` to text.

Command lines and names come from other users' processes: everything is escaped (in JSON
by :func:`venvkeeper.formats.envelope.dumps`)."""

from __future__ import annotations

import shlex
from typing import Any

from venvkeeper.formats.envelope import Kind, dumps, envelope
from venvkeeper.formats.layout import Column, Row, lay_out, shorten_end, to_text, wrap
from venvkeeper.model.restarts import Elsewhere, ProcessReport, RestartReport
from venvkeeper.textutil import escape, noun, plural

COLUMNS = (
    Column("PID", shrink=False),
    Column("USER"),
    Column("UNIT"),
    Column("VENV", path=True),
    Column("COMMAND", drop=True),
)
DETAIL = "WHY"
COMMAND_WIDTH = 60


def _command(p: ProcessReport) -> str:
    text = escape(" ".join(p.argv) or f"[{p.comm}]")
    return shorten_end(text, COMMAND_WIDTH)


def _venv(p: ProcessReport) -> str:
    """The venv's path, and the chroot the process runs in (its venv judged as it sees it)."""
    if p.venv and p.root:
        return escape(f"{p.venv} (chroot {p.root})")
    return escape(p.venv or "-")


def _unit(p: ProcessReport) -> str:
    if p.unit:
        return escape(p.unit) + (" (user)" if p.user_unit else "")
    return escape(p.session) if p.session else "-"


def _why(p: ProcessReport) -> str:
    parts = [f"{r.code}: {r.message}" for r in p.reasons]
    if p.restart_fails:
        f = p.venv_finding
        parts.append(
            "REPAIR FIRST: its venv is broken now"
            + (f" ({f.code}: {f.message})" if f else "")
            + ", a restart would fail"
        )
    return escape("; ".join(parts))


def units(report: RestartReport) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """(system units, (user, user unit) pairs, units that would restart into a broken venv)."""
    system: dict[str, None] = {}
    user: dict[tuple[str, str], None] = {}
    broken: dict[str, None] = {}
    for p in report.processes:
        if not p.unit:
            continue
        if p.restart_fails:
            broken[p.unit] = None
        elif p.needs_restart:
            if p.user_unit:
                user[(p.user, p.unit)] = None
            else:
                system[p.unit] = None
    clean_system = [u for u in system if u not in broken]
    clean_user = [(who, u) for who, u in user if u not in broken]
    return clean_system, clean_user, list(broken)


def unit_commands(report: RestartReport) -> str:
    """``systemctl restart`` lines for the units to restart (printed, never run). Units that
    would restart into a broken venv come out commented: repair them first. So do the
    processes outside any unit, with what to do about each."""
    system, user, broken = units(report)
    lines = []
    if system:
        lines.append("systemctl restart " + " ".join(shlex.quote(u) for u in system))
    for who, u in user:
        lines.append(f"systemctl --user --machine={shlex.quote(who)}@ restart {shlex.quote(u)}")
    for u in broken:
        lines.append(f"# repair its venv first: systemctl restart {shlex.quote(u)}")
    for p in report.processes:
        if p.unit or not p.needs_restart:
            continue
        where = f" (in {p.session})" if p.session else ""
        head = f"# pid {p.pid} ({shorten_end(' '.join(p.argv) or p.comm, COMMAND_WIDTH)})"
        if p.restart_fails:
            todo = "repair its venv first, then restart it by hand"
        else:
            todo = "restart it by hand (or restart its supervisor; kill -HUP if it reloads)"
        lines.append(f"{head} runs outside any unit{where}: {todo}")
    return "".join(escape(line) + "\n" for line in lines)


def summary(report: RestartReport) -> str:
    need = len(report.needing_restart)
    broken = len(report.broken)
    text = (
        f"{plural(need, 'process', 'processes')} {noun(need, 'needs', 'need')} a restart"
        f" ({report.scanned} scanned in {report.duration_seconds:.2f}s"
    )
    if report.skipped:
        text += "; skipped " + ", ".join(f"{n} {r}" for r, n in sorted(report.skipped.items()))
    text += ")"
    if broken:
        text += f"; {broken} would restart into a broken venv: repair first"
    return text


def render_table(report: RestartReport, width: int = 0) -> str:
    rows = [
        Row((str(p.pid), escape(p.user), _unit(p), _venv(p), _command(p)), _why(p))
        for p in report.processes
    ]
    text = ""
    if rows:
        text = to_text(lay_out(COLUMNS, rows, width or None, DETAIL)) + "\n"
    lines: list[str] = []
    system, user, broken = units(report)
    if system or user:
        names = system + [f"{u} (user {who})" for who, u in user]
        lines.append("restart these units: " + escape(", ".join(names)))
    if broken:
        lines.append("repair these venvs before restarting: " + escape(", ".join(broken)))
    loose = [p for p in report.processes if not p.unit and p.needs_restart]
    if loose:
        lines.append(
            "not in a unit (restart by hand): "
            + ", ".join(f"{p.pid} ({escape(p.comm)})" for p in loose)
        )
    in_ns = [f for f in report.foreign if f.where is Elsewhere.MOUNT_NAMESPACE]
    chrooted = [f for f in report.foreign if f.where is Elsewhere.CHROOT]
    if in_ns:
        lines.append(
            f"{plural(len(in_ns), 'Python process', 'Python processes')} in other mount"
            " namespaces (containers)"
            " not judged: " + ", ".join(f"{f.pid} ({escape(f.comm)})" for f in in_ns[:10])
        )
    if chrooted:
        lines.append(
            f"{plural(len(chrooted), 'Python process', 'Python processes')} in another root"
            " (chroot) that cannot be named here, not judged: "
            + ", ".join(
                f"{f.pid} ({escape(f.comm)}) in {escape(f.root or '?')}" for f in chrooted[:10]
            )
        )
    lines.append(summary(report))
    return text + "".join(
        t + "\n" for line in lines for t in (wrap(line, width) if width else [line])
    )


def report_to_dict(report: RestartReport) -> dict[str, Any]:
    """The document of ``restarts --json``."""
    return envelope(Kind.RESTARTS, _payload(report))


def _payload(report: RestartReport) -> dict[str, Any]:
    system, user, broken = units(report)
    return {
        "scanned": report.scanned,
        "duration_seconds": round(report.duration_seconds, 4),
        "skipped": report.skipped,
        "units": {
            "restart": system,
            "restart_user": [list(x) for x in user],
            "repair_first": broken,
        },
        "processes": [
            {
                "pid": p.pid,
                "ppid": p.ppid,
                "uid": p.uid,
                "user": p.user,
                "comm": p.comm,
                "argv": list(p.argv),
                "exe": p.exe or None,
                "started_at": round(p.started_at, 2),
                "unit": p.unit,
                "user_unit": p.user_unit,
                "session": p.session,
                "venv": p.venv or None,
                "root": p.root,
                "venv_evidence": p.venv_evidence,
                "needs_restart": p.needs_restart,
                "reasons": [
                    {"code": r.code, "message": r.message, "path": r.path or ""} for r in p.reasons
                ],
                "venv_status": p.venv_status.value if p.venv_status else None,
                "restart_fails": p.restart_fails,
                "venv_finding": None
                if p.venv_finding is None
                else {"code": p.venv_finding.code, "message": p.venv_finding.message},
            }
            for p in report.processes
        ],
        "foreign": [
            {
                "pid": f.pid,
                "comm": f.comm,
                "exe": f.exe or "",
                "exe_deleted": f.exe_deleted,
                "where": f.where.value,
                "root": escape(f.root) if f.root is not None else None,
            }
            for f in report.foreign
        ],
    }


def render_json(report: RestartReport) -> str:
    return dumps(report_to_dict(report))
