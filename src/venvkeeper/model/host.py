"""Interpreters on a host, and a :class:`HostProfile` describing another host."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from venvkeeper.model.venv import BaseOrigin


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
