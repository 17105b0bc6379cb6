"""Running processes that use a replaced interpreter or a changed venv."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from venvkeeper.model.findings import Finding, Severity


@dataclass(frozen=True)
class RestartReason:
    """Why a process needs a restart: a replaced interpreter or library, a changed venv."""

    code: str  # interpreter-replaced, library-replaced, venv-changed, venv-swapped
    message: str
    path: Optional[str] = None


@dataclass(frozen=True)
class ProcessReport:
    """One process that needs a restart, or that runs from a venv broken now."""

    pid: int
    ppid: int
    uid: int
    user: str
    comm: str
    argv: tuple[str, ...]
    exe: Optional[str]
    started_at: float  # epoch seconds
    unit: Optional[str]  # systemd unit, e.g. "app.service"
    user_unit: bool = False  # a unit of a user's systemd (user@UID.service)
    session: Optional[str] = None  # e.g. "session-3.scope": no unit to restart
    venv: Optional[str] = None
    venv_evidence: Optional[str] = None  # "cmdline", "maps", "environ (hint)"
    reasons: tuple[RestartReason, ...] = ()
    venv_status: Optional[Severity] = None  # the venv's verdict now
    venv_finding: Optional[Finding] = None  # its main finding when it is broken
    #: The chroot it runs in, as this host names it (None: our root). Its venv is judged
    #: as that root sees it; ``venv`` is still the venv's path on this host.
    root: Optional[str] = None

    @property
    def needs_restart(self) -> bool:
        return bool(self.reasons)

    @property
    def restart_fails(self) -> bool:
        """Restarting it would land in a venv that is broken now: repair first."""
        return self.venv_status is Severity.CRITICAL


class Elsewhere(enum.Enum):
    """Why a process's paths are not this host's, so that it is listed, not judged."""

    MOUNT_NAMESPACE = "mount-namespace"  # a container: its own mount table
    CHROOT = "chroot"  # our mounts, another root directory: its paths are under it


@dataclass(frozen=True)
class ForeignProcess:
    """A process in another mount namespace (a container) or under another root directory
    (a chroot): the paths of its command line and maps are not ours."""

    pid: int
    comm: str
    exe: Optional[str]
    exe_deleted: bool
    where: Elsewhere = Elsewhere.MOUNT_NAMESPACE
    root: Optional[str] = None  # a chroot's root directory, as this host names it


@dataclass(frozen=True)
class RestartReport:
    """The processes judged (those that need a restart among them), those of other
    namespaces, and those skipped by reason."""

    processes: tuple[ProcessReport, ...]
    foreign: tuple[ForeignProcess, ...]
    scanned: int
    skipped: dict[str, int]  # reason -> count (kernel-thread, zombie, vanished, permission)
    duration_seconds: float = 0.0

    @property
    def needing_restart(self) -> tuple[ProcessReport, ...]:
        return tuple(p for p in self.processes if p.needs_restart)

    @property
    def broken(self) -> tuple[ProcessReport, ...]:
        return tuple(p for p in self.processes if p.restart_fails)


@dataclass(frozen=True)
class VenvUser:
    """A running process of a venv: what a change that breaks the venv would break next."""

    pid: int
    user: str
    comm: str
    unit: Optional[str] = None
    user_unit: bool = False
    session: Optional[str] = None

    @property
    def label(self) -> str:
        return self.unit or f"pid {self.pid} ({self.comm})"
