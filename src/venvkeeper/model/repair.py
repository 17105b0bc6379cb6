"""Outcomes of repairs and rollbacks, backups, and the wheelhouse prefetch."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from venvkeeper.model.plan import Strategy, Target


class Outcome(enum.Enum):
    """What ``venvkeeper repair`` did with one venv."""

    REPAIRED = "repaired"  # the new venv is in place, the old one kept as a backup
    NOTHING = "nothing-to-do"  # the plan needs no work
    PLANNED = "planned"  # --dry-run: what would be done
    REFUSED = "refused"  # another tool or a system package owns it (use --force)
    FAILED = "failed"  # stopped; the venv at its path is the untouched original

    @property
    def ok(self) -> bool:
        return self in (Outcome.REPAIRED, Outcome.NOTHING, Outcome.PLANNED)


@dataclass(frozen=True)
class PackageChange:
    """A distribution whose version differs after a repair (``--allow-upgrades``)."""

    name: str
    old: Optional[str]
    new: Optional[str]  # None: not installed any more


@dataclass(frozen=True)
class PinFailure:
    """An exact pin that does not install on the new interpreter, and why."""

    spec: str
    reason: str


@dataclass(frozen=True)
class RepairResult:
    """What a repair (or rollback) of one venv did, in words and as an outcome."""

    path: str
    strategy: Strategy
    outcome: Outcome
    message: str
    target: Optional[Target] = None
    backend: Optional[str] = None
    backup: Optional[str] = None  # where the original now is
    changes: tuple[PackageChange, ...] = ()
    failed_pins: tuple[PinFailure, ...] = ()
    recovered: Optional[str] = None  # what an earlier, interrupted repair left and we did
    seconds: float = 0.0


@dataclass(frozen=True)
class Backup:
    """A venv kept by a repair (or a rollback) beside the venv it was."""

    path: str  # the backup directory
    venv: str  # the venv it was the original of
    created: float  # seconds since the epoch
    reason: str  # "repair (rebuild)", "rollback", ...


class FetchOutcome(enum.Enum):
    """What the prefetch (``venvkeeper wheelhouse``) got for one requirement."""

    FETCHED = "fetched"  # a wheel of the pinned version (a seed: the nearest) is there
    NEAREST = "nearest"  # no wheel of the pin for the target; the nearest one is there
    FROM_SOURCE = "from-source"  # rebuilt from a path or URL: not a wheel to fetch
    MISSING = "missing"  # no wheel at all from the sources


@dataclass(frozen=True)
class WheelFetch:
    """One pin the prefetch tried to download, and how it went."""

    venv: str
    spec: str
    outcome: FetchOutcome
    detail: str = ""


@dataclass(frozen=True)
class WheelhouseReport:
    """The prefetch of the wheels the repairs after a change will need."""

    directory: str
    fetches: tuple[WheelFetch, ...]
    skipped: tuple[tuple[str, str], ...]  # (venv, why nothing was fetched for it)

    @property
    def worst(self) -> int:
        """0 every wheel is there, 1 something needs more than the wheelhouse, 2 missing."""
        outcomes = {f.outcome for f in self.fetches}
        if FetchOutcome.MISSING in outcomes:
            return 2
        return 1 if outcomes & {FetchOutcome.NEAREST, FetchOutcome.FROM_SOURCE} else 0
