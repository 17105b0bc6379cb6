"""Severities and findings: what a check reports about a venv."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Severity(enum.Enum):
    """How bad a finding is. ``INFO`` is worth knowing but leaves a venv ``ok``."""

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    UNKNOWN = "unknown"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def status(self) -> Severity:
        """The venv status this severity gives: INFO counts as OK."""
        return Severity.OK if self is Severity.INFO else self


def worst_of(statuses: Iterable[Severity]) -> Severity:
    """The worst of *statuses* (``OK`` for none)."""
    return max(statuses, key=lambda s: s.rank, default=Severity.OK)


_RANK = {
    Severity.OK: 0,
    Severity.INFO: 1,
    Severity.WARNING: 2,
    Severity.UNKNOWN: 3,
    Severity.CRITICAL: 4,
}


@dataclass(frozen=True)
class Finding:
    """One thing a check found about a venv: a code, its severity and a message in words."""

    code: str
    severity: Severity
    message: str
