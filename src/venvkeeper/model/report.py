"""A scan's results: each venv's facts with its findings, and the whole :class:`Report`."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Optional

from venvkeeper.model.findings import Finding, Severity, worst_of
from venvkeeper.model.venv import DeepResult, VenvFacts


@dataclass(frozen=True)
class VenvReport:
    """One venv as a scan judged it: its facts, its findings (worst first) and its status."""

    facts: VenvFacts
    findings: tuple[Finding, ...]
    alias_of: Optional[str] = None
    deep: Optional[DeepResult] = None

    @property
    def path(self) -> str:
        return self.facts.path

    @property
    def root(self) -> Optional[str]:
        """The other OS root the venv lies in (None: this host's)."""
        return self.facts.root

    @functools.cached_property
    def status(self) -> Severity:
        # cached: sorting, counting and recording ask it many times per venv
        worst = Severity.OK
        for f in self.findings:
            if f.severity.status.rank > worst.rank:
                worst = f.severity.status
        return worst

    @property
    def main_finding(self) -> Optional[Finding]:
        best: Optional[Finding] = None
        for f in self.findings:
            if best is None or f.severity.rank > best.severity.rank:
                best = f
        return best


@dataclass(frozen=True)
class Alias:
    """A symlink named ``.venv`` that points at a venv (uv's centralized environments)."""

    path: str
    target: str


@dataclass(frozen=True)
class CondaEnv:
    """A conda environment found by the walk: listed, not judged."""

    path: str
    python: Optional[str] = None  # X.Y.Z from conda-meta (None: no Python installed)


@dataclass(frozen=True)
class ScanStats:
    """What a scan walked and how long it took."""

    directories: int = 0
    entries: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped_examples: tuple[tuple[str, str], ...] = ()  # (path, reason), first few
    duration_seconds: float = 0.0


@dataclass(frozen=True)
class Report:
    """A whole scan: the roots, every venv judged, aliases, conda environments, the host
    and the walk's statistics."""

    roots: tuple[str, ...]
    venvs: tuple[VenvReport, ...]
    aliases: tuple[Alias, ...]
    conda_envs: tuple[CondaEnv, ...]
    stats: ScanStats
    hostname: str = ""
    started_at: float = 0.0

    @property
    def worst(self) -> Severity:
        return worst_of(v.status for v in self.venvs)

    def count(self, status: Severity) -> int:
        return sum(1 for v in self.venvs if v.status is status)
