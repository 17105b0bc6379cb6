"""Recording a scan into the inventory, and when a venv missing from it counts as
vanished (:func:`covers`, :func:`landmark_gone`).
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from venvkeeper import __version__
from venvkeeper.inventory.snapshot import snapshot_of
from venvkeeper.inventory.store import Store, enum_or, from_db, open_store, opt_to_db, to_db
from venvkeeper.model.findings import Severity
from venvkeeper.model.inventory import (
    ScanSnapshot,
)
from venvkeeper.model.report import Report
from venvkeeper.model.venv import VenvKind
from venvkeeper.textutil import escape


def covers(path: str, roots: Iterable[str], excludes: Sequence[str] = ()) -> bool:
    """Whether a scan of *roots* with these ``--exclude`` globs walks to *path*: a root is
    *path* or an ancestor of it, and no directory on the way down is excluded."""
    from venvkeeper.scan.discovery import compile_excludes

    excluded = compile_excludes(excludes) if excludes else None
    for root in roots:
        root = root.rstrip("/") or "/"
        if path == root:
            below = ""
        elif path.startswith(root if root == "/" else root + "/"):
            below = path[len(root) :].lstrip("/")
        else:
            continue
        if excluded is None:
            return True
        here = root
        hidden = False
        for name in below.split("/") if below else ():
            here = os.path.join(here, name)
            if excluded(here, name):
                hidden = True
                break
        if not hidden:
            return True
    return False


def landmark_gone(path: str, kind: VenvKind) -> bool:
    """True only when the venv at *path* is certainly no longer there: its ``pyvenv.cfg``
    (a legacy virtualenv's ``lib/python*/orig-prefix.txt``) is gone. What we may not look
    at counts as still there."""
    from venvkeeper.host.fsutil import path_state

    if kind is VenvKind.LEGACY_VIRTUALENV:
        lib = os.path.join(path, "lib")
        state = path_state(lib)
        if state is not True:
            return state is False
        try:
            names = os.listdir(lib)
        except OSError as e:
            return e.errno in (errno.ENOENT, errno.ENOTDIR)
        return not any(
            path_state(os.path.join(lib, n, "orig-prefix.txt")) is not False
            for n in names
            if n.startswith("python")
        )
    if kind is VenvKind.CONDA:
        return path_state(os.path.join(path, "conda-meta")) is False
    return path_state(os.path.join(path, "pyvenv.cfg")) is False


def record(store: Store, snap: ScanSnapshot) -> int:
    """Record one scan in one transaction; returns its id. Venvs this scan covered but did
    not find, and whose landmark is gone, are marked vanished (see the module docstring)."""
    with store.transaction("recording the scan") as conn:
        cur = conn.execute(
            "INSERT INTO scans (started_at, finished_at, host, roots, excludes,"
            " duration_seconds, venvs, ok, warning, unknown, critical, tool_version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                snap.started_at,
                snap.finished_at,
                escape(snap.host),
                json.dumps(list(snap.roots)),
                json.dumps(list(snap.excludes)),
                snap.duration_seconds,
                len(snap.venvs),
                snap.count(Severity.OK),
                snap.count(Severity.WARNING),
                snap.count(Severity.UNKNOWN),
                snap.count(Severity.CRITICAL),
                __version__,
            ),
        )
        scan_id = int(cur.lastrowid or 0)
        known: dict[str, tuple[int, Optional[int]]] = {
            from_db(p): (i, v)
            for i, p, v in conn.execute("SELECT id, path, vanished_scan FROM venvs")
        }
        seen: set[int] = set()
        # Rows gathered first and written a statement per table: a host's ten thousand
        # venvs are three statements, not thirty thousand.
        updated: list[tuple[int, int]] = []
        sightings: list[tuple[Any, ...]] = []
        findings: list[tuple[Any, ...]] = []
        for v in snap.venvs:
            entry = known.get(v.path)
            if entry is None:
                cur = conn.execute(
                    "INSERT INTO venvs (path, first_seen_scan, last_seen_scan) VALUES (?, ?, ?)",
                    (to_db(v.path), scan_id, scan_id),
                )
                venv_id = int(cur.lastrowid or 0)
                known[v.path] = (venv_id, None)
            else:
                venv_id = entry[0]
                updated.append((scan_id, venv_id))
            if venv_id in seen:  # the same venv twice in one scan (an alias): keep the first
                continue
            seen.add(venv_id)
            sightings.append(
                (
                    scan_id,
                    venv_id,
                    v.status.value,
                    v.kind.value,
                    v.creator.value,
                    opt_to_db(v.python_recorded),
                    opt_to_db(v.python),
                    opt_to_db(v.python_patch),
                    opt_to_db(v.base_executable),
                    v.packages,
                )
            )
            findings += [
                (scan_id, venv_id, f.code, f.severity.value, to_db(f.message)) for f in v.findings
            ]
        conn.executemany(
            "UPDATE venvs SET last_seen_scan = ?, vanished_scan = NULL WHERE id = ?", updated
        )
        conn.executemany(
            "INSERT INTO sightings (scan_id, venv_id, status, kind, creator,"
            " python_recorded, python, python_patch, base_executable, packages)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            sightings,
        )
        conn.executemany(
            "INSERT INTO findings (scan_id, venv_id, code, severity, message)"
            " VALUES (?, ?, ?, ?, ?)",
            findings,
        )
        # Candidates for vanishing: known, not vanished already, not seen now.
        missing = [
            (path, venv_id)
            for path, (venv_id, vanished) in known.items()
            if vanished is None and venv_id not in seen
        ]
        kinds = dict(
            conn.execute(
                "SELECT s.venv_id, s.kind FROM sightings s JOIN venvs v ON v.id = s.venv_id"
                " AND s.scan_id = v.last_seen_scan"
            ).fetchall()
        )
        for path, venv_id in missing:
            if not covers(path, snap.roots, snap.excludes):
                continue
            kind = enum_or(VenvKind, kinds.get(venv_id), VenvKind.VENV)
            if landmark_gone(path, kind):
                conn.execute("UPDATE venvs SET vanished_scan = ? WHERE id = ?", (scan_id, venv_id))
                conn.execute(
                    "INSERT INTO vanishings (venv_id, scan_id) VALUES (?, ?)", (venv_id, scan_id)
                )
    return scan_id


def record_report(
    path: str,
    report: Report,
    excludes: Sequence[str] = (),
    finished_at: Optional[float] = None,
    *,
    make_parents: bool = False,
) -> int:
    """Open the inventory at *path*, record *report* in it, close it: the scan's id."""
    snap = snapshot_of(report, excludes, time.time() if finished_at is None else finished_at)
    with open_store(path, make_parents=make_parents) as store:
        return record(store, snap)
