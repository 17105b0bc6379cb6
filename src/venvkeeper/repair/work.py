"""What one repair job works from and what it records.

:class:`Work` is every input the steps of a job read (the venv, its plan, where the new
tree will live, who runs its programs); it never changes. :class:`Log` is what the steps
report as they go (notes for the result's message, the package versions that changed);
the engine reads it once the transaction is done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from venvkeeper.model.plan import RepairPlan, Target
from venvkeeper.model.repair import PackageChange
from venvkeeper.model.report import VenvReport
from venvkeeper.model.venv import path_in_root
from venvkeeper.predict.seeds import KEEP_ALL, SeedNeeds
from venvkeeper.repair.options import RepairOptions
from venvkeeper.repair.owner import OwnerRunner
from venvkeeper.repair.transaction import Hook
from venvkeeper.textutil import canonical_name


def no_step(step: str) -> None:
    """A hook that observes nothing."""


@dataclass(frozen=True)
class Work:
    """One job's inputs. *source* is the venv (only read); *dest* is where the new tree
    will live: *source* itself, or (``repair --sibling``) a new venv beside it. *run*
    runs a program as the venv's owner (a :class:`~.owner.ChrootRunner` inside another
    OS root); *hook* is told each step of the transaction's build."""

    source: str
    dest: str
    rep: VenvReport
    plan: RepairPlan
    options: RepairOptions
    run: OwnerRunner
    hook: Hook = no_step
    seeds: SeedNeeds = KEEP_ALL

    @property
    def root(self) -> Optional[str]:
        """The OS root the venv is in (None: this host): the paths the venv records, and
        the programs run, are that root's."""
        return self.rep.facts.root

    @property
    def target(self) -> Target:
        """The interpreter a relink or a rebuild moves to (the plan has one)."""
        if self.plan.target is None:
            raise ValueError(f"the plan of {self.source} has no target")
        return self.plan.target

    @property
    def uid(self) -> int:
        """The user the job's programs run as (whose trust the rule asks about)."""
        return self.run.user if self.run.user is not None else os.geteuid()

    def in_root(self, path: str) -> str:
        """*path* (of this host) as the venv's root names it: what the venv records."""
        return path_in_root(self.root, path)


@dataclass
class Log:
    """What a job's steps report: notes (said in the result's message, in order) and the
    package versions that differ from the old venv's (one per distribution)."""

    notes: list[str] = field(default_factory=list)
    changes: tuple[PackageChange, ...] = ()

    def note(self, text: str) -> None:
        self.notes.append(text)

    def changed(self, change: PackageChange) -> None:
        """Record *change*, replacing an earlier one of the same distribution."""
        key = canonical_name(change.name)
        self.changes = tuple(c for c in self.changes if canonical_name(c.name) != key)
        self.changes += (change,)
