"""Output of ``inventory``, ``changes`` and ``history``: pure functions to text.

Tables for people (local time), JSON for programs (``schema_version``, ISO 8601 UTC times
beside epoch seconds). Paths and messages come from scanned trees: escaped in tables, and
in JSON by :func:`venvkeeper.formats.envelope.dumps`, as in the scan's JSON."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Optional

from venvkeeper.formats.envelope import Kind, render
from venvkeeper.formats.layout import Column, Row, lay_out, more, to_text, wrap
from venvkeeper.model.inventory import (
    ChangeKind,
    Changes,
    Inventory,
    KnownVenv,
    Presence,
    ScanInfo,
    VenvChange,
    VenvHistory,
    VenvSnapshot,
)
from venvkeeper.textutil import escape, plural

INVENTORY = (
    Column("STATE", shrink=False),
    Column("STATUS", shrink=False),
    Column("PATH", path=True),
    Column("PYTHON"),
    Column("FIRST SEEN", shrink=False, drop=True),
    Column("LAST SEEN", shrink=False),
)
CHANGES = (Column("CHANGE", shrink=False), Column("PATH", path=True), Column("STATUS"))
HISTORY = (
    Column("SCAN", shrink=False),
    Column("WHEN", shrink=False),
    Column("STATUS", shrink=False),
    Column("PYTHON"),
)


def _lines(text: str, width: int) -> str:
    return "".join(t + "\n" for t in (wrap(text, width) if width else [text]))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def _local(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _table(columns: Sequence[Column], rows: Sequence[Row], detail: str, width: int) -> str:
    return to_text(lay_out(columns, rows, width or None, detail))


def _python(v: VenvSnapshot) -> str:
    now = v.python_label or "missing"
    rec = v.python_recorded
    rec_minor = ".".join(rec.split(".")[:2]) if rec else None
    if rec_minor and not now.startswith(rec_minor):
        return escape(f"{rec_minor} -> {now}")
    return escape(now)


def _main(v: VenvSnapshot) -> str:
    """The worst finding and how many more there are, escaped."""
    main = max(v.findings, key=lambda f: f.severity.rank, default=None)
    if main is None:
        return ""
    return escape(f"{main.code}: {main.message}" + more(len(v.findings) - 1))


def scan_to_dict(s: ScanInfo) -> dict[str, Any]:
    return {
        "id": s.scan_id,
        "started_at": _iso(s.started_at),
        "finished_at": _iso(s.finished_at),
        "started_at_epoch": s.started_at,
        "host": s.host,
        "roots": list(s.roots),
        "excludes": list(s.excludes),
        "duration_seconds": round(s.duration_seconds, 3),
        "summary": dict(s.counts),
        "tool_version": s.tool_version,
    }


def snapshot_to_dict(v: VenvSnapshot) -> dict[str, Any]:
    return {
        "path": v.path,
        "status": v.status.value,
        "kind": v.kind.value,
        "creator": v.creator.value,
        "python": {
            "recorded": v.python_recorded,
            "now": v.python,
            "patch": v.python_patch,
            "executable": v.base_executable,
        },
        "packages": v.packages,
        "findings": [
            {"code": f.code, "severity": f.severity.value, "message": f.message} for f in v.findings
        ],
    }


def _point(scan: Optional[int], at: Optional[float]) -> Optional[dict[str, Any]]:
    if scan is None or at is None:
        return None
    return {"scan": scan, "at": _iso(at)}


def _known_to_dict(k: KnownVenv) -> dict[str, Any]:
    return {
        "path": k.path,
        "presence": k.presence.value,
        "status": k.last.status.value,
        "first_seen": _point(k.first_seen_scan, k.first_seen_at),
        "last_seen": _point(k.last_seen_scan, k.last_seen_at),
        "vanished": _point(k.vanished_scan, k.vanished_at),
        "last": snapshot_to_dict(k.last),
    }


# --- inventory ----------------------------------------------------------------------------


def inventory_json(inv: Inventory, db: str) -> str:
    return render(
        Kind.INVENTORY,
        {
            "db": db,
            "scans": inv.scans,
            "latest_scan": scan_to_dict(inv.latest) if inv.latest else None,
            "venvs": [_known_to_dict(k) for k in inv.venvs],
        },
    )


def inventory_table(inv: Inventory, width: int = 0) -> str:
    if inv.latest is None:
        return "no scan recorded yet: venvkeeper scan records one\n"
    rows = []
    for k in inv.venvs:
        cells = (
            k.presence.value,
            k.last.status.value,
            escape(k.path),
            _python(k.last),
            _local(k.first_seen_at),
            _local(k.last_seen_at),
        )
        rows.append(Row(cells, _main(k.last)))
    text = ""
    if rows:
        text = _table(INVENTORY, rows, "FINDING", width) + "\n"
    n = {p: sum(1 for k in inv.venvs if k.presence is p) for p in Presence}
    latest = inv.latest
    roots = ", ".join(escape(r) for r in latest.roots)
    summary = (
        f"{plural(len(inv.venvs), 'venv')} known from {plural(inv.scans, 'scan')}:"
        f" {n[Presence.SEEN]} seen by the"
        f" latest, {n[Presence.NOT_SEEN]} not seen (outside its roots, or not reached),"
        f" {n[Presence.VANISHED]} vanished (latest: scan {latest.scan_id} of {roots}"
        f" at {_local(latest.started_at)})"
    )
    return text + _lines(summary, width)


# --- changes ------------------------------------------------------------------------------


def _change_to_dict(c: VenvChange) -> dict[str, Any]:
    return {
        "path": c.path,
        "before": c.before.value if c.before else None,
        "after": c.after.value if c.after else None,
        "reappeared": c.reappeared,
        "venv": snapshot_to_dict(c.snapshot),
    }


def changes_json(ch: Changes) -> str:
    body: dict[str, Any] = {
        "since": scan_to_dict(ch.since) if ch.since else None,
        "until": scan_to_dict(ch.until),
    }
    for kind in ChangeKind:
        body[kind.value] = [_change_to_dict(c) for c in ch.of(kind)]
    return render(Kind.CHANGES, body)


def _scan_label(s: ScanInfo) -> str:
    return f"scan {s.scan_id} ({_local(s.started_at)})"


def changes_table(ch: Changes, width: int = 0) -> str:
    since = _scan_label(ch.since) if ch.since else "an empty inventory"
    head = _lines(f"changes from {since} to {_scan_label(ch.until)}:", width)
    if not ch.changes:
        return head + "no changes\n"
    rows = []
    for c in ch.changes:
        before = c.before.value if c.before else "-"
        after = c.after.value if c.after else "gone"
        label = c.kind.value + (" (again)" if c.reappeared else "")
        why = _main(c.snapshot) if c.after is not None else ""
        rows.append(Row((label, escape(c.path), f"{before} -> {after}"), why))
    counts = ", ".join(f"{len(ch.of(k))} {k.value}" for k in ChangeKind)
    return head + _table(CHANGES, rows, "FINDING", width) + f"\n{counts}\n"


# --- history ------------------------------------------------------------------------------


def history_json(h: VenvHistory) -> str:
    entries = []
    for e in h.entries:
        entry: dict[str, Any] = {
            "scan": e.scan.scan_id,
            "at": _iso(e.scan.started_at),
            "event": "vanished" if e.vanished else "seen",
        }
        if e.snapshot is not None:
            v = e.snapshot
            entry.update(
                {
                    "status": v.status.value,
                    "python": v.python_label or None,
                    "python_recorded": v.python_recorded,
                    "creator": v.creator.value,
                    "codes": [f.code for f in v.findings],
                }
            )
        entries.append(entry)
    gone = [e for e in h.entries if e.vanished]
    last_gone = gone[-1] if gone and h.entries[-1].vanished else None
    return render(
        Kind.HISTORY,
        {
            "path": h.path,
            "presence": h.presence.value,
            "vanished": None
            if last_gone is None
            else {"scan": last_gone.scan.scan_id, "at": _iso(last_gone.scan.started_at)},
            "entries": entries,
        },
    )


def history_table(h: VenvHistory, width: int = 0) -> str:
    rows = []
    for e in h.entries:
        if e.snapshot is None:
            rows.append(Row((str(e.scan.scan_id), _local(e.scan.started_at), "vanished", "")))
            continue
        v = e.snapshot
        codes = ", ".join(escape(f.code) for f in v.findings) or "-"
        rows.append(
            Row((str(e.scan.scan_id), _local(e.scan.started_at), v.status.value, _python(v)), codes)
        )
    head = _lines(f"{escape(h.path)}: {h.presence.value} as of the latest scan", width)
    return head + _table(HISTORY, rows, "FINDINGS", width)
