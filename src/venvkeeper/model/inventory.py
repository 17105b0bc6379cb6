"""The inventory's recorded scans, the changes between them, and one venv's history."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from venvkeeper.model.findings import Finding, Severity, worst_of
from venvkeeper.model.venv import Creator, VenvKind


@dataclass(frozen=True)
class VenvSnapshot:
    """What the inventory keeps of one venv in one scan: its verdict, its findings and a
    summary of its facts. Built from a :class:`VenvReport`, or read back from the database."""

    path: str
    status: Severity
    kind: VenvKind
    creator: Creator
    python_recorded: Optional[str]  # what pyvenv.cfg says it was made with
    python: Optional[str]  # "X.Y" it runs now, None when its interpreter is gone or unknown
    python_patch: Optional[str]  # "X.Y.Z" when files tell it
    base_executable: Optional[str]  # the real path of the interpreter it starts
    packages: int
    findings: tuple[Finding, ...]

    @property
    def python_label(self) -> str:
        """The version it runs now, as precisely as known ("" when unknown)."""
        return self.python_patch or self.python or ""


@dataclass(frozen=True)
class ScanSnapshot:
    """One scan as the inventory sees it. ``scan_id`` is None until it is recorded."""

    scan_id: Optional[int]
    started_at: float  # epoch seconds
    finished_at: float
    host: str
    roots: tuple[str, ...]
    excludes: tuple[str, ...]
    duration_seconds: float
    venvs: tuple[VenvSnapshot, ...]

    def count(self, status: Severity) -> int:
        return sum(1 for v in self.venvs if v.status is status)

    @property
    def worst(self) -> Severity:
        return worst_of(v.status for v in self.venvs)


class Presence(enum.Enum):
    """Where a known venv stands after the latest recorded scan."""

    SEEN = "seen"  # the latest scan found it
    NOT_SEEN = "not-seen"  # the latest scan did not look there (other roots), or could not
    VANISHED = "vanished"  # a scan that covered its place found it gone


@dataclass(frozen=True)
class ScanInfo:
    """A recorded scan, without its venvs."""

    scan_id: int
    started_at: float
    finished_at: float
    host: str
    roots: tuple[str, ...]
    excludes: tuple[str, ...]
    duration_seconds: float
    counts: dict[str, int]  # "venvs", "ok", "warning", "unknown", "critical"
    tool_version: str


@dataclass(frozen=True)
class KnownVenv:
    """A venv of the inventory: its last verdict and when it was first and last seen."""

    path: str
    presence: Presence
    last: VenvSnapshot  # as the last scan that saw it judged it
    first_seen_scan: int
    first_seen_at: float
    last_seen_scan: int
    last_seen_at: float
    vanished_scan: Optional[int] = None
    vanished_at: Optional[float] = None


@dataclass(frozen=True)
class Inventory:
    """Every venv the recorded scans know, after the latest one."""

    latest: Optional[ScanInfo]
    scans: int  # how many scans are recorded
    venvs: tuple[KnownVenv, ...]


class ChangeKind(enum.Enum):
    """How a venv changed between two points of the inventory (in the order reports tell)."""

    NEW = "new"  # unknown (or vanished) before, present after
    VANISHED = "vanished"  # present before, found gone after
    BROKEN = "broken"  # its status worsened to warning, unknown or critical
    FIXED = "fixed"  # back to ok
    IMPROVED = "improved"  # better, still not ok (critical -> warning)


@dataclass(frozen=True)
class VenvChange:
    """How one venv changed between two points of the inventory's history."""

    path: str
    kind: ChangeKind
    before: Optional[Severity]  # None: not known (or vanished) at the starting point
    after: Optional[Severity]  # None: vanished
    snapshot: VenvSnapshot  # the latest known state (the last sighting for a vanished one)
    reappeared: bool = False  # NEW after having vanished


@dataclass(frozen=True)
class Changes:
    """Every venv that changed since a scan or a time."""

    since: Optional[ScanInfo]  # None: from an empty inventory (everything is new)
    until: ScanInfo
    changes: tuple[VenvChange, ...]

    def of(self, kind: ChangeKind) -> tuple[VenvChange, ...]:
        return tuple(c for c in self.changes if c.kind is kind)


@dataclass(frozen=True)
class HistoryEntry:
    """One point of a venv's history: a scan that saw it, or the scan that found it gone."""

    scan: ScanInfo
    vanished: bool
    snapshot: Optional[VenvSnapshot]  # None when vanished


@dataclass(frozen=True)
class VenvHistory:
    """One venv over the recorded scans."""

    path: str
    presence: Presence
    entries: tuple[HistoryEntry, ...]  # oldest first
