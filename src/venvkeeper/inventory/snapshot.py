"""A scan as the inventory keeps it: :class:`~venvkeeper.model.inventory.ScanSnapshot`, a pure
conversion of a :class:`~venvkeeper.model.report.Report` (no database: monitoring and
exports use it straight from a scan)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from venvkeeper.model.inventory import (
    ScanSnapshot,
    VenvSnapshot,
)
from venvkeeper.model.report import Report, VenvReport


def snapshot_of_venv(rep: VenvReport) -> VenvSnapshot:
    kept = getattr(rep, "snapshot", None)  # a verdict an incremental scan kept as it was
    if kept is not None and kept.findings == rep.findings:
        return kept  # type: ignore[no-any-return]
    f = rep.facts
    base = f.base
    return VenvSnapshot(
        path=f.path,
        status=rep.status,
        kind=f.kind,
        creator=f.creator,
        python_recorded=f.recorded_version,
        python=base.version if base else None,
        python_patch=base.patch_version if base else None,
        base_executable=base.executable if base else None,
        packages=len(f.distributions),
        findings=rep.findings,
    )


def snapshot_of(
    report: Report, excludes: Sequence[str] = (), finished_at: Optional[float] = None
) -> ScanSnapshot:
    """The inventory's view of a scan (pure)."""
    duration = report.stats.duration_seconds
    return ScanSnapshot(
        scan_id=None,
        started_at=report.started_at,
        finished_at=finished_at if finished_at is not None else report.started_at + duration,
        host=report.hostname,
        roots=report.roots,
        excludes=tuple(excludes),
        duration_seconds=duration,
        venvs=tuple(snapshot_of_venv(v) for v in report.venvs),
    )


def hostname() -> str:
    """This host's name, as a snapshot records it."""
    import socket

    return socket.gethostname()
