"""Predictions of a planned change, and the repair plan of a venv."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from venvkeeper.model.consumers import ConsumerPrediction
from venvkeeper.model.findings import Severity, worst_of
from venvkeeper.model.report import Report, VenvReport
from venvkeeper.model.restarts import VenvUser


class Effect(enum.Enum):
    """What a planned change does to one venv (declared in the order reports tell them)."""

    BREAKS_LOUDLY = "breaks-loudly"  # its interpreter link will dangle
    BREAKS_SILENTLY = "breaks-silently"  # it will start another minor: packages invisible
    LOSES_STDLIB = "loses-stdlib"  # a copied interpreter left without its stdlib
    ABI_MISMATCH = "abi-mismatch"  # its compiled extensions will not load
    BREAKS = "breaks"  # critical for another reason (a removed editable source, ...)
    REMOVED = "removed"  # the change removes the venv itself
    UNKNOWN = "unknown"  # the change hides what we need to judge it
    DEGRADES = "degrades"  # new warnings, still starts
    ALREADY_BROKEN = "already-broken"  # critical before the change
    SURVIVES = "survives"

    @property
    def breaks(self) -> bool:
        return self in _BREAKING


_BREAKING = frozenset(
    {
        Effect.BREAKS_LOUDLY,
        Effect.BREAKS_SILENTLY,
        Effect.LOSES_STDLIB,
        Effect.ABI_MISMATCH,
        Effect.BREAKS,
        Effect.REMOVED,
    }
)


class Strategy(enum.Enum):
    """How a venv would be repaired (the repair command executes it)."""

    NONE = "none"  # nothing to repair
    RELINK = "relink"  # the same minor exists elsewhere: point the links at it
    REWRITE_PATHS = "rewrite-paths"  # moved: fix shebangs, activate, pyvenv.cfg
    REBUILD = "rebuild"  # a new venv on another interpreter, the same packages
    USE_TOOL = "use-tool"  # managed by pipx, poetry, ...: run that tool's command
    MANUAL = "manual"  # needs a person: no usable interpreter, a lost source, ...


class Remedy(enum.Enum):
    """The repair that answers a finding code: each code declares its own in its
    :class:`~venvkeeper.checks._base.CodeDoc`, and the planner
    (:func:`venvkeeper.predict.plan.make_plan`) reads it from the registry."""

    #: no repair answers it: when it is critical, a person must act (manual)
    NONE = "none"
    #: the interpreter or its version: relink to the same minor, else rebuild
    INTERPRETER = "interpreter"
    #: what bin/python runs is no interpreter (a shim): rebuild, never relink
    REBUILD = "rebuild"
    #: it works, on a Python no archive patches any more: move it onto a supported minor
    NEWER_PYTHON = "newer-python"
    #: moved: rewrite the paths (with the relink, when the interpreter needs one too)
    PATHS = "paths"

    @property
    def interpreter(self) -> bool:
        """The venv needs another interpreter (a relink or a rebuild)."""
        return self in (Remedy.INTERPRETER, Remedy.REBUILD, Remedy.NEWER_PYTHON)


class RequirementKind(enum.Enum):
    INDEX = "index"  # name==version from an index (or a wheelhouse)
    EDITABLE = "editable"  # -e the local source directory
    LOCAL = "local"  # a local directory or archive
    ARCHIVE = "archive"  # an archive URL
    VCS = "vcs"  # a VCS URL at the recorded commit


@dataclass(frozen=True)
class Requirement:
    """One package of a rebuild: how to install it again, exactly as it was."""

    name: str
    version: str
    kind: RequirementKind
    spec: str  # what an installer is given: "alpha==1.0", "-e /src/gamma", "x @ git+...@abc"
    source: Optional[str] = None  # the local path or URL, when not from an index


class BlockerCode(str, enum.Enum):
    """What may stop a rebuild (the ``code`` of a blocker in plans and their JSON)."""

    REQUIRES_PYTHON = "requires-python"  # the pin's Requires-Python excludes the new Python
    NEEDS_NEW_WHEEL = "needs-new-wheel"  # extensions built for another minor
    SOURCE_MISSING = "source-missing"  # an editable or local source is gone
    VCS_SOURCE = "vcs-source"  # the rebuild needs a repository (network, credentials)
    NO_METADATA = "no-metadata"  # a distribution without Name/Version: nothing to pin


@dataclass(frozen=True)
class Blocker:
    """Something that may stop a rebuild, with the package it concerns."""

    code: BlockerCode
    package: str
    message: str
    fatal: bool = True  # False: a risk to know about, not a certain failure

    @property
    def upgradable(self) -> bool:
        """``repair --allow-upgrades`` answers it: the nearest version that installs."""
        return self.code is BlockerCode.REQUIRES_PYTHON


@dataclass(frozen=True)
class Target:
    """The interpreter a repair would use."""

    path: str  # the name to link to (e.g. /usr/bin/python3.12)
    executable: str
    version: str
    patch_version: Optional[str] = None


@dataclass(frozen=True)
class RepairPlan:
    """How one venv would be repaired: the strategy, the target, the packages, the blockers."""

    path: str
    strategy: Strategy
    reason: str
    target: Optional[Target] = None
    packages: tuple[Requirement, ...] = ()
    skipped: tuple[str, ...] = ()  # distributions left to the new venv's seed (pip, ...)
    blockers: tuple[Blocker, ...] = ()
    system_site_packages: bool = False
    prompt: Optional[str] = None
    copies: bool = False  # the old venv held a copied interpreter
    old_location: Optional[str] = None  # rewrite-paths: where the venv was
    tool_command: Optional[str] = None  # use-tool: what to run instead (a shell command line)
    #: What goes with the command, outside it: where to run it ("in the project directory").
    tool_note: Optional[str] = None
    #: What the user should know about the package set (placeholders left out, ...).
    notes: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        return any(b.fatal for b in self.blockers)


@dataclass(frozen=True)
class VenvPrediction:
    """One venv under a planned change: its state now and then, the effect, the plan."""

    now: VenvReport
    then: Optional[VenvReport]  # None when the change removes the venv
    effect: Effect
    plan: Optional[RepairPlan] = None
    used_by: tuple[VenvUser, ...] = ()  # its running processes (services)
    #: What it serves (units, cron jobs, web servers ...) under the change; empty when the
    #: consumers were not read.
    consumers: tuple[ConsumerPrediction, ...] = ()

    @property
    def path(self) -> str:
        return self.now.path

    @property
    def breaking_consumers(self) -> tuple[ConsumerPrediction, ...]:
        return tuple(c for c in self.consumers if c.breaks)

    @property
    def status(self) -> Severity:
        """The venv's status after the change; a venv the change deletes counts as broken."""
        return self.then.status if self.then is not None else Severity.CRITICAL


@dataclass(frozen=True)
class ChangeDescription:
    """A planned change, as the user described it (for reports)."""

    python_becomes: tuple[tuple[str, str], ...] = ()  # (unversioned link, X.Y)
    removed: tuple[str, ...] = ()
    removed_packages: tuple[str, ...] = ()
    host_profile: Optional[str] = None  # the profiled host's name
    #: The OS root the change happens in (``predict --in-root``), as this host names it;
    #: None: this host. Venvs of other roots are judged as they are.
    root: Optional[str] = None

    @property
    def empty(self) -> bool:
        return not (
            self.python_becomes or self.removed or self.removed_packages or self.host_profile
        )


@dataclass(frozen=True)
class Prediction:
    """Every venv under a planned change, with the change described."""

    change: ChangeDescription
    scan: Report
    venvs: tuple[VenvPrediction, ...]
    #: The consumers were read and judged (:mod:`venvkeeper.predict.consumers`).
    consumers_read: bool = False

    @property
    def worst(self) -> Severity:
        return worst_of(v.status for v in self.venvs)

    def count(self, effect: Effect) -> int:
        return sum(1 for v in self.venvs if v.effect is effect)

    @property
    def breaking_consumers(self) -> tuple[ConsumerPrediction, ...]:
        """Every consumer the change breaks, once (a consumer of two venvs is one)."""
        seen: dict[tuple[str, str, str, int], ConsumerPrediction] = {}
        for v in self.venvs:
            for c in v.breaking_consumers:
                k = c.consumer
                seen.setdefault((k.kind.value, k.name, k.source, k.line), c)
        return tuple(seen.values())
