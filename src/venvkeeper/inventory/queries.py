"""Reading the inventory back: the scans, the current inventory, the changes since a time,
and one venv's history.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from venvkeeper.errors import InventoryError, UsageError
from venvkeeper.host import fsutil
from venvkeeper.inventory.store import Store, enum_or, from_db, opt_from_db, to_db
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.inventory import (
    ChangeKind,
    Changes,
    HistoryEntry,
    Inventory,
    KnownVenv,
    Presence,
    ScanInfo,
    ScanSnapshot,
    VenvChange,
    VenvHistory,
    VenvSnapshot,
)
from venvkeeper.model.venv import Creator, VenvKind
from venvkeeper.textutil import escape

# Constant SQL: only "?" placeholders ever carry values.
_SELECT_SCANS = (
    "SELECT id, started_at, finished_at, host, roots, excludes, duration_seconds,"
    " venvs, ok, warning, unknown, critical, tool_version FROM scans"
)


def _scan_info(row: Sequence[Any]) -> ScanInfo:
    def strings(text: str) -> tuple[str, ...]:
        try:
            value = fsutil.load_json(text)
        except ValueError:
            return ()
        return tuple(str(x) for x in value) if isinstance(value, list) else ()

    return ScanInfo(
        scan_id=int(row[0]),
        started_at=float(row[1]),
        finished_at=float(row[2]),
        host=from_db(row[3]),
        roots=strings(row[4]),
        excludes=strings(row[5]),
        duration_seconds=float(row[6]),
        counts={
            "venvs": int(row[7]),
            "ok": int(row[8]),
            "warning": int(row[9]),
            "unknown": int(row[10]),
            "critical": int(row[11]),
        },
        tool_version=from_db(row[12]),
    )


def scans(store: Store) -> list[ScanInfo]:
    """Every recorded scan, oldest first."""
    return [_scan_info(r) for r in store.query(_SELECT_SCANS + " ORDER BY id")]


def _scan(store: Store, scan_id: int) -> Optional[ScanInfo]:
    rows = store.query(_SELECT_SCANS + " WHERE id = ?", (scan_id,))
    return _scan_info(rows[0]) if rows else None


def latest_scan(store: Store) -> Optional[ScanInfo]:
    rows = store.query(_SELECT_SCANS + " ORDER BY id DESC LIMIT 1")
    return _scan_info(rows[0]) if rows else None


def _snapshots(
    store: Store, pairs: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], VenvSnapshot]:
    """The recorded (scan, venv) sightings of *pairs*, with their findings."""
    wanted = set(pairs)
    if not wanted:
        return {}
    scan_ids = sorted({s for s, _ in wanted})
    out: dict[tuple[int, int], VenvSnapshot] = {}
    findings: dict[tuple[int, int], list[Finding]] = {}
    # A few queries per scan, not one per venv.
    for sid in scan_ids:
        for venv_id, code, severity, message in store.query(
            "SELECT venv_id, code, severity, message FROM findings WHERE scan_id = ?"
            " ORDER BY rowid",
            (sid,),
        ):
            if (sid, venv_id) in wanted:
                findings.setdefault((sid, venv_id), []).append(
                    Finding(
                        from_db(code),
                        enum_or(Severity, severity, Severity.UNKNOWN),
                        from_db(message),
                    )
                )
        for row in store.query(
            "SELECT s.venv_id, v.path, s.status, s.kind, s.creator, s.python_recorded,"
            " s.python, s.python_patch, s.base_executable, s.packages"
            " FROM sightings s JOIN venvs v ON v.id = s.venv_id WHERE s.scan_id = ?",
            (sid,),
        ):
            key = (sid, int(row[0]))
            if key not in wanted:
                continue
            out[key] = VenvSnapshot(
                path=from_db(row[1]),
                status=enum_or(Severity, row[2], Severity.UNKNOWN),
                kind=enum_or(VenvKind, row[3], VenvKind.VENV),
                creator=enum_or(Creator, row[4], Creator.UNKNOWN),
                python_recorded=opt_from_db(row[5]),
                python=opt_from_db(row[6]),
                python_patch=opt_from_db(row[7]),
                base_executable=opt_from_db(row[8]),
                packages=int(row[9]),
                findings=tuple(findings.get(key, ())),
            )
    return out


def inventory(store: Store) -> Inventory:
    """Every known venv with its presence after the latest scan, worst first."""
    latest = latest_scan(store)
    count = int(store.query("SELECT COUNT(*) FROM scans")[0][0])
    rows = store.query(
        "SELECT v.id, v.first_seen_scan, f.started_at, v.last_seen_scan, l.started_at,"
        " v.vanished_scan, x.started_at"
        " FROM venvs v JOIN scans f ON f.id = v.first_seen_scan"
        " JOIN scans l ON l.id = v.last_seen_scan"
        " LEFT JOIN scans x ON x.id = v.vanished_scan"
    )
    snaps = _snapshots(store, ((int(r[3]), int(r[0])) for r in rows))
    venvs: list[KnownVenv] = []
    for vid, first, first_at, last, last_at, vanished, vanished_at in rows:
        snap = snaps.get((int(last), int(vid)))
        if snap is None:  # only a database edited by hand lacks it
            continue
        if vanished is not None:
            presence = Presence.VANISHED
        elif latest is not None and last == latest.scan_id:
            presence = Presence.SEEN
        else:
            presence = Presence.NOT_SEEN
        venvs.append(
            KnownVenv(
                path=snap.path,
                presence=presence,
                last=snap,
                first_seen_scan=int(first),
                first_seen_at=float(first_at),
                last_seen_scan=int(last),
                last_seen_at=float(last_at),
                vanished_scan=None if vanished is None else int(vanished),
                vanished_at=None if vanished_at is None else float(vanished_at),
            )
        )
    order = {Presence.SEEN: 0, Presence.NOT_SEEN: 1, Presence.VANISHED: 2}
    venvs.sort(key=lambda k: (order[k.presence], -k.last.status.rank, k.path))
    return Inventory(latest=latest, scans=count, venvs=tuple(venvs))


def last_snapshot(store: Store) -> ScanSnapshot:
    """The latest recorded scan with its venvs (``export --from-inventory``)."""
    latest = latest_scan(store)
    if latest is None:
        raise InventoryError(
            f"inventory {store.path} holds no scan yet: run `venvkeeper scan` first"
        )
    ids = [
        int(r[0])
        for r in store.query("SELECT venv_id FROM sightings WHERE scan_id = ?", (latest.scan_id,))
    ]
    snaps = _snapshots(store, ((latest.scan_id, i) for i in ids))
    venvs = sorted(snaps.values(), key=lambda v: (-v.status.rank, v.path))
    return ScanSnapshot(
        scan_id=latest.scan_id,
        started_at=latest.started_at,
        finished_at=latest.finished_at,
        host=latest.host,
        roots=latest.roots,
        excludes=latest.excludes,
        duration_seconds=latest.duration_seconds,
        venvs=tuple(venvs),
    )


_DURATION = re.compile(r"(\d+)([smhdw])")


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Since:
    """A starting point for :func:`changes`: a scan id, or an age in seconds."""

    scan_id: Optional[int] = None
    seconds: Optional[float] = None


def parse_since(text: str) -> Since:
    """``12`` is scan 12; ``30m``, ``12h``, ``1d``, ``2w`` (and ``90s``) are ages."""
    text = text.strip()
    if text.isdigit():
        return Since(scan_id=int(text))
    m = _DURATION.fullmatch(text)
    if not m:
        raise UsageError(
            f"--since {escape(text)}: give a scan id (e.g. 12) or a duration such as 30m,"
            " 12h, 1d or 2w"
        )
    return Since(seconds=float(int(m.group(1)) * _UNIT_SECONDS[m.group(2)]))


def _state_as_of(store: Store, scan_id: int) -> dict[int, tuple[int, bool]]:
    """venv id -> (scan of its latest event at or before *scan_id*, vanished by it)."""
    state: dict[int, tuple[int, bool]] = {}
    for vid, sid in store.query(
        "SELECT venv_id, MAX(scan_id) FROM sightings WHERE scan_id <= ? GROUP BY venv_id",
        (scan_id,),
    ):
        state[int(vid)] = (int(sid), False)
    for vid, sid in store.query(
        "SELECT venv_id, MAX(scan_id) FROM vanishings WHERE scan_id <= ? GROUP BY venv_id",
        (scan_id,),
    ):
        seen = state.get(int(vid))
        if seen is None or int(sid) > seen[0]:
            state[int(vid)] = (int(sid), True)
    return state


def changes(store: Store, since: Optional[Since] = None, now: Optional[float] = None) -> Changes:
    """What changed from a starting point (default: the scan before the latest) to the
    latest scan. Each venv's state at a point is its latest record at or before it, so
    scans of other roots in between neither hide nor invent changes."""
    latest = latest_scan(store)
    if latest is None:
        raise InventoryError(f"inventory {store.path} holds no scan yet: run `venvkeeper scan`")
    base: Optional[ScanInfo]
    if since is None:
        rows = store.query(
            _SELECT_SCANS + " WHERE id < ? ORDER BY id DESC LIMIT 1",
            (latest.scan_id,),
        )
        base = _scan_info(rows[0]) if rows else None
    elif since.scan_id is not None:
        base = _scan(store, since.scan_id)
        if base is None:
            raise UsageError(
                f"--since {since.scan_id}: no such scan in {store.path}"
                " (venvkeeper inventory --json lists the latest one)"
            )
    else:
        point = (time.time() if now is None else now) - (since.seconds or 0.0)
        rows = store.query(
            _SELECT_SCANS + " WHERE started_at <= ? ORDER BY id DESC LIMIT 1",
            (point,),
        )
        base = _scan_info(rows[0]) if rows else None
    before = _state_as_of(store, base.scan_id) if base is not None else {}
    after = _state_as_of(store, latest.scan_id)
    # The snapshots needed: each venv's latest sighting at both points.
    last_sighting: dict[tuple[int, int], int] = {}
    for point_state, label in ((before, 0), (after, 1)):
        for vid, (sid, vanished) in point_state.items():
            if not vanished:
                last_sighting[(label, vid)] = sid
    last_seen = {
        int(vid): int(sid)
        for vid, sid in store.query(
            "SELECT venv_id, MAX(scan_id) FROM sightings WHERE scan_id <= ? GROUP BY venv_id",
            (latest.scan_id,),
        )
    }
    pairs = {(sid, vid) for (_, vid), sid in last_sighting.items()}
    pairs |= {(sid, vid) for vid, sid in last_seen.items()}
    snaps = _snapshots(store, pairs)
    out: list[VenvChange] = []
    for vid, (_, gone_after) in after.items():
        was = before.get(vid)
        present_before = was is not None and not was[1]
        before_snap = snaps.get((last_sighting[(0, vid)], vid)) if present_before else None
        if gone_after:
            if present_before and before_snap is not None:
                snap = snaps[(last_seen[vid], vid)]
                out.append(
                    VenvChange(snap.path, ChangeKind.VANISHED, before_snap.status, None, snap)
                )
            continue
        snap = snaps[(last_sighting[(1, vid)], vid)]
        if before_snap is None:
            out.append(
                VenvChange(
                    snap.path,
                    ChangeKind.NEW,
                    None,
                    snap.status,
                    snap,
                    reappeared=was is not None,
                )
            )
            continue
        old, new = before_snap.status, snap.status
        if new.rank > old.rank:
            kind = ChangeKind.BROKEN
        elif new.rank < old.rank:
            kind = ChangeKind.FIXED if new is Severity.OK else ChangeKind.IMPROVED
        else:
            continue
        out.append(VenvChange(snap.path, kind, old, new, snap))
    order = list(ChangeKind)
    out.sort(key=lambda c: (order.index(c.kind), -(c.after or Severity.OK).rank, c.path))
    return Changes(since=base, until=latest, changes=tuple(out))


def history(store: Store, path: str) -> VenvHistory:
    """Every scan that saw the venv at *path*, and each one that found it gone."""
    candidates = [os.path.abspath(path)]
    real = os.path.realpath(path)
    if real not in candidates:
        candidates.append(real)
    row = None
    for cand in candidates:
        rows = store.query(
            "SELECT id, vanished_scan, last_seen_scan FROM venvs WHERE path = ?", (to_db(cand),)
        )
        if rows:
            row = rows[0]
            break
    if row is None:
        raise UsageError(
            f"{escape(os.path.abspath(path))} is not in the inventory {store.path}: no recorded"
            " scan found a venv there (venvkeeper inventory lists the known ones)"
        )
    venv_id = int(row[0])
    latest = latest_scan(store)
    seen = [
        int(r[0])
        for r in store.query(
            "SELECT scan_id FROM sightings WHERE venv_id = ? ORDER BY scan_id", (venv_id,)
        )
    ]
    gone = [
        int(r[0])
        for r in store.query(
            "SELECT scan_id FROM vanishings WHERE venv_id = ? ORDER BY scan_id", (venv_id,)
        )
    ]
    snaps = _snapshots(store, ((s, venv_id) for s in seen))
    infos = {s.scan_id: s for s in _scans_by_id(store, set(seen) | set(gone))}
    entries = [HistoryEntry(infos[s], False, snaps[(s, venv_id)]) for s in seen] + [
        HistoryEntry(infos[s], True, None) for s in gone
    ]
    entries.sort(key=lambda e: e.scan.scan_id)
    if row[1] is not None:
        presence = Presence.VANISHED
    elif latest is not None and int(row[2]) == latest.scan_id:
        presence = Presence.SEEN
    else:
        presence = Presence.NOT_SEEN
    name = snaps[(seen[-1], venv_id)].path if seen else os.path.abspath(path)
    return VenvHistory(path=name, presence=presence, entries=tuple(entries))


def _scans_by_id(store: Store, ids: set[int]) -> list[ScanInfo]:
    if not ids:
        return []
    # Chunked: SQLite limits the number of bound parameters.
    out: list[ScanInfo] = []
    ordered = sorted(ids)
    for i in range(0, len(ordered), 500):
        chunk = ordered[i : i + 500]
        marks = ",".join("?" * len(chunk))
        sql = _SELECT_SCANS + f" WHERE id IN ({marks})"
        out += [_scan_info(r) for r in store.query(sql, chunk)]
    return out
