"""The central model: frozen values, no I/O.

Inspection turns a directory into a :class:`VenvFacts`; checks turn facts into
:class:`Finding` values; a :class:`Report` gathers every judged venv of a scan.
Paths are ``str`` as the OS gave them (undecodable bytes kept as surrogate escapes);
they are escaped only when rendered.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Optional


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


class VenvKind(enum.Enum):
    VENV = "venv"  # has pyvenv.cfg (venv, virtualenv 20+, uv, ...)
    LEGACY_VIRTUALENV = "legacy-virtualenv"  # virtualenv < 20: orig-prefix.txt
    CONDA = "conda"  # listed, never judged


class Creator(enum.Enum):
    VENV = "venv"
    VIRTUALENV = "virtualenv"
    UV = "uv"
    PIPX = "pipx"
    POETRY = "poetry"
    PIPENV = "pipenv"
    PDM = "pdm"
    HATCH = "hatch"
    TOX = "tox"
    NOX = "nox"
    PYENV_VIRTUALENV = "pyenv-virtualenv"
    LEGACY_VIRTUALENV = "legacy-virtualenv"
    CONDA = "conda"
    UNKNOWN = "unknown"


class BaseOrigin(enum.Enum):
    """Who keeps a base interpreter patched, judged from its real path."""

    SYSTEM = "system"  # the OS package manager (/usr/bin, /bin, /usr/libexec)
    PYENV = "pyenv"
    UV = "uv"
    HOMEBREW = "homebrew"
    CONDA = "conda"
    LOCAL = "local"  # /usr/local, /opt: built or installed by hand
    VENV_COPY = "venv-copy"  # a private copy inside the venv itself
    OTHER = "other"


class DirectUrlKind(enum.Enum):
    """PEP 610 ``direct_url.json``: how a distribution was installed when not from an index."""

    ARCHIVE = "archive"
    DIRECTORY = "directory"
    EDITABLE = "editable"
    VCS = "vcs"
    INVALID = "invalid"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class CfgProblem:
    line: int  # 1-based; 0 for whole-file problems
    message: str


@dataclass(frozen=True)
class PyvenvCfg:
    """A leniently parsed ``pyvenv.cfg``: every key kept (last one wins), problems collected."""

    values: dict[str, str]
    duplicates: tuple[str, ...] = ()
    problems: tuple[CfgProblem, ...] = ()
    truncated: bool = False

    def get(self, key: str) -> Optional[str]:
        return self.values.get(key)

    @property
    def include_system_site_packages(self) -> bool:
        return (self.values.get("include-system-site-packages") or "").lower() == "true"

    @property
    def relocatable(self) -> bool:
        return (self.values.get("relocatable") or "").lower() == "true"


@dataclass(frozen=True)
class LinkChain:
    """Every hop from one ``bin/python*`` entry to a real file (absolute paths)."""

    name: str  # e.g. "python3"
    hops: tuple[str, ...]  # the entry itself first, then each link target
    resolved: Optional[str]  # the real file reached, None when the chain breaks
    broken_at: Optional[str] = None  # the hop that does not exist
    error: Optional[str] = None  # a loop, a permission problem, ...
    unreadable: bool = False  # a hop could not be examined (permission): broken or not, unknown
    unrunnable: Optional[str] = None  # the file reached cannot be executed ("an empty file")

    @property
    def is_symlink(self) -> bool:
        return len(self.hops) > 1

    @property
    def is_copy(self) -> bool:
        return self.resolved is not None and not self.is_symlink


@dataclass(frozen=True)
class OsPackage:
    """An installed package of the OS package manager (dpkg)."""

    name: str
    version: str
    arch: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class BaseInterpreter:
    """The interpreter a venv really starts, judged statically."""

    executable: str  # real path of the binary
    version: Optional[str]  # "X.Y", or "X.Yt" for free-threaded builds
    patch_version: Optional[str]  # "X.Y.Z" when files tell it
    prefix: Optional[str]  # where the stdlib landmark was found
    stdlib_present: Optional[bool]  # None: hidden from the scanning user
    origin: BaseOrigin
    is_copy: bool
    is_script: bool = False  # a shell wrapper such as a pyenv shim, not an interpreter
    copy_source: Optional[str] = None  # for a copy: the base binary it was copied from
    copy_identical: Optional[bool] = None  # same bytes as copy_source (None: unknown)
    #: The OS package the base (a copy's source) belongs to, when no configured archive
    #: offers it any more: it will never get a security fix (None: offered, or unknown).
    obsolete_package: Optional[OsPackage] = None


@dataclass(frozen=True)
class Extension:
    path: str  # relative to its site-packages
    abi_tag: Optional[str]  # "cpython-310-x86_64-linux-gnu", "abi3", or None when untagged
    python_version: Optional[str]  # "3.10" for version-specific tags, "abi3" floors later


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    site_dir: str
    dist_info: str  # directory name
    installer: Optional[str] = None
    requested: bool = False
    requires_python: Optional[str] = None
    direct_url_kind: Optional[DirectUrlKind] = None
    direct_url: Optional[str] = None
    vcs: Optional[str] = None
    commit_id: Optional[str] = None
    editable_path: Optional[str] = None  # local source directory of an editable install
    editable_path_exists: Optional[bool] = None
    extensions: tuple[Extension, ...] = ()
    wheel_tags: tuple[str, ...] = ()
    top_level: tuple[str, ...] = ()  # importable names; collected only for --deep
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class SiteDir:
    path: str
    python_version: Optional[str]  # from lib/pythonX.Y, "X.Yt" for free-threaded
    distributions: tuple[Distribution, ...]
    pth_imports: tuple[str, ...] = ()  # ".pth file: line" for lines that execute code
    egg_links: tuple[tuple[str, str, bool], ...] = ()  # (egg-link file, target, exists)
    writable_by_others: bool = False


@dataclass(frozen=True)
class Script:
    name: str
    interpreter: Optional[str]  # path named by the shebang (or the /bin/sh exec trick)
    interpreter_exists: Optional[bool]
    relative: bool = False  # resolved relative to the script at run time (uv relocatable)


@dataclass(frozen=True)
class RecordedLocation:
    """A place where the venv recorded its own absolute path."""

    source: str  # "activate", "pyvenv.cfg command", "script NAME"
    path: str  # the venv directory it names
    same_as_venv: bool  # names this very directory (also through symlinks)


@dataclass(frozen=True)
class ToolMarks:
    """What the tool that owns a venv wrote about it in the venv's root (read statically)."""

    package: Optional[str] = None  # pipx: the app's package (pipx_metadata.json)
    project: Optional[str] = None  # pipenv (.project), poetry in-project: the project directory
    shared_libs: bool = False  # pipx's shared libraries venv (PIPX_HOME/shared)


@dataclass(frozen=True)
class VenvFacts:
    """Everything static inspection learnt about one venv."""

    path: str
    kind: VenvKind
    creator: Creator
    cfg: Optional[PyvenvCfg]
    cfg_error: Optional[str]
    chains: tuple[LinkChain, ...]
    base: Optional[BaseInterpreter]
    site_dirs: tuple[SiteDir, ...]
    scripts: tuple[Script, ...]
    activate_virtual_env: Optional[str]
    recorded_path: Optional[str]  # destination recorded in pyvenv.cfg `command`
    locations: tuple[RecordedLocation, ...]  # every recorded own path, for moved venvs
    owner_uid: int
    mode: int
    writable_by_others: tuple[str, ...]  # relative paths writable by group/other
    orig_prefix: Optional[str] = None  # legacy virtualenv
    size_bytes: Optional[int] = None
    errors: tuple[str, ...] = ()  # I/O problems met while reading (counted, never raised)
    tool: ToolMarks = ToolMarks()

    @property
    def recorded_version(self) -> Optional[str]:
        if self.cfg is None:
            return None
        for key in ("version_info", "version", "python-version"):
            v = self.cfg.get(key)
            if v:
                return v
        return None

    @property
    def distributions(self) -> tuple[Distribution, ...]:
        return tuple(d for s in self.site_dirs for d in s.distributions)


@dataclass(frozen=True)
class DeepResult:
    """What running the venv's interpreter (``--deep`` only) showed."""

    ran: bool
    version: Optional[str] = None
    failed_imports: tuple[str, ...] = ()
    error: Optional[str] = None
    uid: Optional[int] = None  # the user the probe ran as


@dataclass(frozen=True)
class VenvReport:
    facts: VenvFacts
    findings: tuple[Finding, ...]
    alias_of: Optional[str] = None
    deep: Optional[DeepResult] = None

    @property
    def path(self) -> str:
        return self.facts.path

    @property
    def status(self) -> Severity:
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
    path: str


@dataclass(frozen=True)
class ScanStats:
    directories: int = 0
    entries: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped_examples: tuple[tuple[str, str], ...] = ()  # (path, reason), first few
    duration_seconds: float = 0.0


@dataclass(frozen=True)
class Report:
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


# --- interpreters and hosts (host-profile, predict, plan) --------------------------------


@dataclass(frozen=True)
class InterpreterName:
    """One name an interpreter is reached by, e.g. ``/usr/bin/python3``, with its hops."""

    path: str
    hops: tuple[str, ...]  # path first, then each link target; the last is the binary


@dataclass(frozen=True)
class Interpreter:
    """A Python installed on a host (not a venv): a candidate base for venvs."""

    executable: str  # real path of the binary
    names: tuple[InterpreterName, ...]
    version: Optional[str]  # "X.Y" ("X.Yt" free-threaded)
    patch_version: Optional[str] = None
    prefix: Optional[str] = None  # where its stdlib landmark is
    stdlib_present: Optional[bool] = None
    origin: BaseOrigin = BaseOrigin.OTHER
    is_script: bool = False
    package: Optional[str] = None  # the system package that owns it
    version_source: str = "unknown"  # "name", "stdlib", "ran", "profile", "unknown"
    #: Its OS package is offered by no configured archive any more (None: cannot tell).
    obsolete: Optional[bool] = None

    @property
    def usable(self) -> bool:
        """Can be the base of a venv: a real binary of a known version with its stdlib."""
        return not self.is_script and self.version is not None and self.stdlib_present is True

    @property
    def best_name(self) -> str:
        """The path to link a venv to: the shortest versioned name (patch updates flow in
        through it and it never moves to another minor), else the executable."""
        versioned = [n.path for n in self.names if _is_versioned_name(n.path, self.version)]
        return min(versioned, key=lambda p: (len(p), p)) if versioned else self.executable


def _is_versioned_name(path: str, version: Optional[str]) -> bool:
    return version is not None and path.rsplit("/", 1)[-1] == f"python{version}"


@dataclass(frozen=True)
class HostProfile:
    """The interpreters of one host, as ``venvkeeper host-profile`` found them.

    ``bin_dirs`` and ``trees`` are the places searched: whatever Python files the profile
    does not list there do not exist on that host. Elsewhere the filesystem is assumed
    shared (the venv tree itself, an NFS mount)."""

    hostname: str
    created_at: float
    os_release: str
    bin_dirs: tuple[str, ...]
    trees: tuple[str, ...]
    dir_links: tuple[tuple[str, str], ...]  # (directory, its link target) on that host
    interpreters: tuple[Interpreter, ...]


# --- predictions and repair plans -------------------------------------------------------


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


class RequirementKind(enum.Enum):
    INDEX = "index"  # name==version from an index (or a wheelhouse)
    EDITABLE = "editable"  # -e the local source directory
    LOCAL = "local"  # a local directory or archive
    ARCHIVE = "archive"  # an archive URL
    VCS = "vcs"  # a VCS URL at the recorded commit


@dataclass(frozen=True)
class Requirement:
    name: str
    version: str
    kind: RequirementKind
    spec: str  # what an installer is given: "alpha==1.0", "-e /src/gamma", "x @ git+...@abc"
    source: Optional[str] = None  # the local path or URL, when not from an index


@dataclass(frozen=True)
class Blocker:
    """Something that may stop a rebuild, with the package it concerns."""

    code: str  # requires-python, needs-new-wheel, source-missing, vcs-source, no-metadata
    package: str
    message: str
    fatal: bool = True  # False: a risk to know about, not a certain failure


@dataclass(frozen=True)
class Target:
    """The interpreter a repair would use."""

    path: str  # the name to link to (e.g. /usr/bin/python3.12)
    executable: str
    version: str
    patch_version: Optional[str] = None


@dataclass(frozen=True)
class RepairPlan:
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
    tool_command: Optional[str] = None  # use-tool: what to run instead

    @property
    def blocked(self) -> bool:
        return any(b.fatal for b in self.blockers)


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


@dataclass(frozen=True)
class VenvPrediction:
    now: VenvReport
    then: Optional[VenvReport]  # None when the change removes the venv
    effect: Effect
    plan: Optional[RepairPlan] = None
    used_by: tuple[VenvUser, ...] = ()  # its running processes (services)

    @property
    def path(self) -> str:
        return self.now.path

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

    @property
    def empty(self) -> bool:
        return not (
            self.python_becomes or self.removed or self.removed_packages or self.host_profile
        )


@dataclass(frozen=True)
class Prediction:
    change: ChangeDescription
    scan: Report
    venvs: tuple[VenvPrediction, ...]

    @property
    def worst(self) -> Severity:
        return worst_of(v.status for v in self.venvs)

    def count(self, effect: Effect) -> int:
        return sum(1 for v in self.venvs if v.effect is effect)


# --- running processes (restarts) --------------------------------------------------------


@dataclass(frozen=True)
class RestartReason:
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


# --- the inventory: recorded scans (inventory, changes, history, check, export) ---------


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
    path: str
    kind: ChangeKind
    before: Optional[Severity]  # None: not known (or vanished) at the starting point
    after: Optional[Severity]  # None: vanished
    snapshot: VenvSnapshot  # the latest known state (the last sighting for a vanished one)
    reappeared: bool = False  # NEW after having vanished


@dataclass(frozen=True)
class Changes:
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
    path: str
    presence: Presence
    entries: tuple[HistoryEntry, ...]  # oldest first


class FetchOutcome(enum.Enum):
    """What the prefetch (``venvkeeper wheelhouse``) got for one requirement."""

    FETCHED = "fetched"  # a wheel of the pinned version (a seed: the nearest) is there
    NEAREST = "nearest"  # no wheel of the pin for the target; the nearest one is there
    FROM_SOURCE = "from-source"  # rebuilt from a path or URL: not a wheel to fetch
    MISSING = "missing"  # no wheel at all from the sources


@dataclass(frozen=True)
class WheelFetch:
    venv: str
    spec: str
    outcome: FetchOutcome
    detail: str = ""


@dataclass(frozen=True)
class WheelhouseReport:
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
