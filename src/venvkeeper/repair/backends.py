"""Installers a rebuild can use: uv (fast) when installed, else pip from the new venv.

Both take the same requirement lines (``name==1.0``, ``-e /src``, ``name @ file:///...``,
``name @ git+https://...@commit``), the same source options, and run as the venv's owner
through :class:`Runner`.
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional, Protocol

from packaging.version import InvalidVersion, Version

from venvkeeper.errors import UsageError
from venvkeeper.host import programs
from venvkeeper.host.command import Completed


class BackendChoice(enum.Enum):
    AUTO = "auto"
    UV = "uv"
    PIP = "pip"


@dataclass(frozen=True)
class Sources:
    """Where packages come from (``--index-url``, ``--find-links``, ``--offline``)."""

    index_url: Optional[str] = None
    find_links: tuple[str, ...] = ()
    offline: bool = False

    def args(self, offline_flag: str) -> list[str]:
        """The installer options (uv and pip agree but for the "no network" flag)."""
        out: list[str] = []
        if self.index_url:
            out += ["--index-url", self.index_url]
        for d in self.find_links:
            out += ["--find-links", d]
        if self.offline:
            out.append(offline_flag)
        return out


class Run(Protocol):
    """Runs argv as the venv's owner; never raises on a non-zero exit."""

    def __call__(
        self, argv: Sequence[str], timeout: float, input: Optional[str] = None
    ) -> Completed: ...


def find_uv(run_as: Optional[int] = None) -> Optional[str]:
    """The uv binary (:mod:`venvkeeper.host.programs`): as root, from /usr/local/bin and
    the system directories, else beside the interpreter running venvkeeper (a
    pip-installed uv), each trusted for *run_as* (the venv's owner, who runs it) by the
    one trust rule; never from PATH or HOME, which under ``sudo -E`` are a user's. As
    another user: their PATH, then ``~/.local/bin`` and ``~/.cargo/bin``, the same
    directories."""
    return programs.locate(
        "uv",
        run_as=run_as,
        local=True,
        own=True,
        user_dirs=("~/.local/bin", "~/.cargo/bin"),
    ).path


def usable_by(path: str, uid: int, gid: int) -> bool:
    """Whether user *uid* can execute *path* (every directory on the way searchable)."""
    if uid == 0:
        return True
    p = os.path.realpath(path)
    parts = [p] + [d for d in _parents(p)]
    for part in parts:
        try:
            st = os.stat(part)
        except OSError:
            return False
        bit = stat.S_IXOTH
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        if not st.st_mode & bit:
            return False
    return True


def _parents(p: str) -> list[str]:
    out: list[str] = []
    while True:
        d = os.path.dirname(p)
        if d == p:
            return out
        out.append(d)
        p = d


class Backend:
    name = "?"

    def venv_args(self) -> list[str]:
        """Options for ``python -m venv`` when this backend installs."""
        return []

    def install(
        self, python: str, reqs: Sequence[str], sources: Sources, run: Run, *, upgrade: bool
    ) -> Completed:
        raise NotImplementedError

    def check_pin(self, python: str, req: str, sources: Sources, run: Run) -> Optional[str]:
        """None when *req* alone would install (no dependencies), else why not."""
        raise NotImplementedError

    def versions(self, python: str, name: str, sources: Sources, run: Run) -> Optional[list[str]]:
        """Every version of *name* the sources offer, or None when this backend cannot
        list them (the caller then asks for ranges)."""
        return None


def nearest_first(versions: Iterable[str], old: str) -> list[str]:
    """*versions* other than *old*, nearest first: those above it in ascending order, then
    those below it in descending order (by version, not by text: 9.10 comes after 9.5).
    Versions that do not parse are left out."""
    try:
        key = Version(old)
    except InvalidVersion:
        return []
    parsed = []
    for v in versions:
        try:
            parsed.append((Version(v), v))
        except InvalidVersion:
            continue
    above = sorted(p for p in parsed if p[0] > key)
    below = sorted((p for p in parsed if p[0] < key), reverse=True)
    return [v for _, v in above + below]


def index_versions(stdout: str) -> Optional[list[str]]:
    """The versions ``pip index versions`` printed, or None when it printed none."""
    for line in stdout.splitlines():
        if line.startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    return None


def _last_lines(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " / ".join(lines[-n:])[:500] or "no output"


def _req_args(reqs: Sequence[str]) -> list[str]:
    out: list[str] = []
    for r in reqs:
        if r.startswith("-e "):
            out += ["-e", r[3:]]
        else:
            out.append(r)
    return out


class Uv(Backend):
    name = "uv"

    def __init__(self, exe: str) -> None:
        self.exe = exe

    def venv_args(self) -> list[str]:
        return ["--without-pip"]

    def _src(self, sources: Sources) -> list[str]:
        return sources.args("--offline")

    def install(
        self, python: str, reqs: Sequence[str], sources: Sources, run: Run, *, upgrade: bool
    ) -> Completed:
        argv = [self.exe, "pip", "install", "--python", python, "--no-progress"]
        if upgrade:
            # the lowest version at or above the old one that installs: the nearest
            argv += ["--resolution", "lowest-direct"]
        return run([*argv, *self._src(sources), *_req_args(reqs)], 1800)

    def check_pin(self, python: str, req: str, sources: Sources, run: Run) -> Optional[str]:
        argv = [self.exe, "pip", "install", "--python", python, "--dry-run", "--no-deps"]
        done = run([*argv, *self._src(sources), *_req_args([req])], 300)
        return None if done.returncode == 0 else _last_lines(done.stderr)


class Pip(Backend):
    name = "pip"

    def _src(self, sources: Sources) -> list[str]:
        return sources.args("--no-index")

    def _base(self, python: str) -> list[str]:
        return [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]

    def install(
        self, python: str, reqs: Sequence[str], sources: Sources, run: Run, *, upgrade: bool
    ) -> Completed:
        argv = [*self._base(python), "--no-compile", "--progress-bar", "off"]
        return run([*argv, *self._src(sources), *_req_args(reqs)], 1800)

    def versions(self, python: str, name: str, sources: Sources, run: Run) -> Optional[list[str]]:
        argv = [python, "-m", "pip", "index", "versions", "--disable-pip-version-check", name]
        return index_versions(run([*argv, *self._src(sources)], 300).stdout)

    def check_pin(self, python: str, req: str, sources: Sources, run: Run) -> Optional[str]:
        argv = [*self._base(python), "--dry-run", "--no-deps", "--ignore-installed", "-q"]
        done = run([*argv, *self._src(sources), *_req_args([req])], 300)
        return None if done.returncode == 0 else _last_lines(done.stderr)


def choose(choice: BackendChoice, uid: int, gid: int, uv: Optional[str] = None) -> Backend:
    """The backend for a venv owned by *uid*: uv when asked or found (and the owner can
    run it), pip otherwise. *uv*: this binary (``--uv``, ``[repair] uv``), checked by the
    trust rule for *uid*: a refusal is an error, never a fallback."""
    if choice is BackendChoice.PIP:
        return Pip()
    found = programs.checked(uv, what="--uv", run_as=uid) if uv else find_uv(uid)
    if found is not None and usable_by(found, uid, gid):
        return Uv(found)
    if choice is BackendChoice.UV or uv:
        where = f"usable by uid {uid}" if found else "installed"
        raise UsageError(f"--backend uv: uv is not {where}; install it or use --backend pip")
    return Pip()
