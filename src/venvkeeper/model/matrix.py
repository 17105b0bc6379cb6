"""A venv x host matrix: one scan of a shared tree judged as each of many hosts sees it.

Hosts whose profiles describe the same interpreters are one :class:`HostGroup` (judged
once); every venv has one :class:`Cell` per group, the hosts it serves, and, when some host
of the tree cannot run it, the :class:`Layout` that serves them all: one venv per python3
minor beside it (:func:`sibling_path`)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Optional

from venvkeeper.model.plan import Effect

#: ``/srv/shared/app`` -> ``/srv/shared/app-py3.11``: the per-minor sibling's name.
SIBLING_SUFFIX = re.compile(r"-py(\d+\.\d+t?)$")


def sibling_path(path: str, minor: str) -> str:
    """The venv for python3 *minor* beside the shared venv *path*: ``PATH-pyX.Y``. A path
    that already is a sibling (``app-py3.11``) names its original's (``app-py3.12``)."""
    return f"{SIBLING_SUFFIX.sub('', path.rstrip('/'))}-py{minor}"


def sibling_minor(path: str) -> Optional[str]:
    """The minor a venv named like a sibling (``app-py3.11``) is for, else None."""
    m = SIBLING_SUFFIX.search(path.rstrip("/"))
    return m.group(1) if m else None


class CellState(enum.Enum):
    """A venv as one host sees it (declared from best to worst)."""

    WORKS = "works"
    OTHER_MINOR = "other-minor"  # a per-minor sibling on a host of another minor: not its host
    UNKNOWN = "unknown"  # the profile lacks what a verdict needs
    BREAKS = "breaks"

    @property
    def rank(self) -> int:
        return list(CellState).index(self)


@dataclass(frozen=True)
class HostGroup:
    """Hosts whose profiles describe the same interpreters: one judgement serves them all."""

    id: str  # "h1", "h2", ...: stable within one matrix
    hosts: tuple[str, ...]  # hostnames, the first is the one shown ("like web1")
    sources: tuple[str, ...]  # the profile files they came from
    os_releases: tuple[str, ...]
    python3: Optional[str]  # the minor /usr/bin/python3 (or another python3) runs there

    @property
    def name(self) -> str:
        return self.hosts[0]

    @property
    def label(self) -> str:
        """``web1`` alone, or ``web1 +39`` for 40 hosts like it."""
        more = len(self.hosts) - 1
        return self.name + (f" +{more}" if more else "")


@dataclass(frozen=True)
class Cell:
    state: CellState
    effect: Effect  # the predict effect on that host (survives, breaks-silently, ...)
    status: str  # the venv's status there: ok, warning, unknown, critical
    code: Optional[str] = None  # the finding that decides it
    why: str = ""  # that finding's message
    minor: Optional[str] = None  # the minor a venv for this host must be built for


@dataclass(frozen=True)
class Sibling:
    """One venv of the layout: *path* for python3 *minor*, for the hosts of *groups*."""

    minor: str
    path: str
    groups: tuple[str, ...]  # HostGroup ids
    build_on: str  # a host of that minor to run the repair on
    interpreter: Optional[str]  # what it is built with there (e.g. /usr/bin/python3)
    exists: bool  # the scan found a venv there
    works: bool  # ... and it works on every one of its hosts


@dataclass(frozen=True)
class Layout:
    """The venvs that serve every host of the tree: one per python3 minor."""

    siblings: tuple[Sibling, ...]
    unplaced: tuple[str, ...] = ()  # HostGroup ids whose minor cannot be told

    @property
    def in_place(self) -> bool:
        return not self.unplaced and all(s.exists and s.works for s in self.siblings)


@dataclass(frozen=True)
class VenvRow:
    path: str
    minor: Optional[str]  # the minor its packages were installed for
    cells: tuple[Cell, ...]  # one per HostGroup, in the matrix's order
    sibling_for: Optional[str] = None  # it is the per-minor sibling of that minor
    layout: Optional[Layout] = None  # None: it serves every host (or is a sibling)

    def serves(self, groups: tuple[HostGroup, ...]) -> tuple[HostGroup, ...]:
        return tuple(g for g, c in zip(groups, self.cells) if c.state is CellState.WORKS)


@dataclass(frozen=True)
class Matrix:
    roots: tuple[str, ...]
    groups: tuple[HostGroup, ...]
    rows: tuple[VenvRow, ...]
    judgements: int  # how many host judgements were made (one per group)
    profiles: int  # how many profiles were given

    @property
    def worst(self) -> CellState:
        states = [c.state for r in self.rows for c in r.cells]
        return max(states, key=lambda s: s.rank, default=CellState.WORKS)

    def count(self, state: CellState) -> int:
        return sum(1 for r in self.rows for c in r.cells if c.state is state)
