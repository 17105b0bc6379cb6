"""What static inspection reads from one venv: :class:`VenvFacts` and its parts.

Inspection turns a directory into a :class:`VenvFacts`; checks turn facts into
:class:`~venvkeeper.model.findings.Finding` values; a
:class:`~venvkeeper.model.report.Report` gathers every judged venv of a scan.
Paths are ``str`` as the OS gave them (undecodable bytes kept as surrogate escapes);
they are escaped only when rendered.

A venv inside another OS root (a chroot, a container's root filesystem: ``VenvFacts.root``)
is judged as that root sees it. Its ``path`` and its site directories are this host's paths
(where it is, what a repair acts on); every path it names outside itself (the link hops,
the base interpreter, shebangs, recorded locations, editable sources) is a path *inside*
its root, as a process chrooted there reads it (``path_in_root`` is the venv's own).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional


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
class CfgProblem:
    """A problem in ``pyvenv.cfg``, at a line (0 for the whole file)."""

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
    """A compiled extension module in a site directory, with the ABI its tag names."""

    path: str  # relative to its site-packages
    abi_tag: Optional[str]  # "cpython-310-x86_64-linux-gnu", "abi3", or None when untagged
    python_version: Optional[str]  # "3.10" for version-specific tags, "abi3" floors later


@dataclass(frozen=True)
class Distribution:
    """An installed distribution, read statically from its dist-info (or egg-info)."""

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
    #: Why no package index can provide this distribution (a placeholder a distro made,
    #: such as the ``pkg_resources 0.0.0`` of Debian's pip wheel): a rebuild leaves it out.
    placeholder: Optional[str] = None
    #: A legacy editable install (``setup.py develop``): only an ``.egg-link`` (named by
    #: ``dist_info``) in the site directory, its metadata in this ``.egg-info`` directory of
    #: the source tree, outside the venv.
    egg_info: Optional[str] = None


@dataclass(frozen=True)
class SiteDir:
    """A site-packages directory of a venv, with what it holds."""

    path: str
    python_version: Optional[str]  # from lib/pythonX.Y, "X.Yt" for free-threaded
    distributions: tuple[Distribution, ...]
    pth_imports: tuple[str, ...] = ()  # ".pth file: line" for lines that execute code
    egg_links: tuple[tuple[str, str, bool], ...] = ()  # (egg-link file, target, exists)
    writable_by_others: bool = False
    #: (.pth file, absolute directory it adds to sys.path, exists) for .pth files no
    #: distribution owns (easy-install.pth left to its egg-links).
    pth_paths: tuple[tuple[str, str, bool], ...] = ()


@dataclass(frozen=True)
class Script:
    """A script in ``bin/`` and the interpreter its shebang names."""

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
    #: The OS root the venv belongs to, as this host names it (a chroot, a container's
    #: root filesystem), when it is not this host's ``/``: the venv is judged as a process
    #: chrooted there sees it. None: the host's own venv.
    root: Optional[str] = None
    #: The Python version a package manager recorded (conda: ``conda-meta/python-X.Y.Z-*.json``).
    recorded_python: Optional[str] = None

    @property
    def path_in_root(self) -> str:
        """The venv's path as its root sees it (its ``path`` on the host itself)."""
        return path_in_root(self.root, self.path)

    @property
    def recorded_version(self) -> Optional[str]:
        if self.cfg is None:
            return self.recorded_python
        for key in ("version_info", "version", "python-version"):
            v = self.cfg.get(key)
            if v:
                return v
        return None

    @property
    def distributions(self) -> tuple[Distribution, ...]:
        return tuple(d for s in self.site_dirs for d in s.distributions)


def path_in_root(root: Optional[str], path: str) -> str:
    """*path*, a path on this host at or below the OS root *root*, as that root names it
    (``/srv/r`` and ``/srv/r/opt/app`` -> ``/opt/app``); *path* itself when *root* is None
    (the host) or *path* is not below it."""
    if not root or root == "/":
        return path
    base = root.rstrip("/")
    if path == base:
        return "/"
    if not path.startswith(base + "/"):
        return path
    return path[len(base) :]


@dataclass(frozen=True)
class DeepResult:
    """What running the venv's interpreter (``--deep`` only) showed."""

    ran: bool
    version: Optional[str] = None
    failed_imports: tuple[str, ...] = ()
    error: Optional[str] = None
    uid: Optional[int] = None  # the user the probe ran as
