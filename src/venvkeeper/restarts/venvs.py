"""Which venv a process runs (its command line, its mapped files, ``VIRTUAL_ENV`` as a hint)
and what changed in that venv since the process started.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from venvkeeper.host import fsutil
from venvkeeper.host.hostfs import HostFS
from venvkeeper.restarts.procfs import MappedFile, read_proc

if TYPE_CHECKING:
    from venvkeeper.model.report import VenvReport

#: Executables worth reading the maps of: Pythons and programs that embed one.
PYTHONISH = re.compile(
    r"(python|pypy)(\d+(\.\d+)?t?)?(-dbg|d|m)?|uwsgi.*|apache2|httpd|unitd|gunicorn.*"
)


_SITE = re.compile(r"^(/.+?)/lib(?:64)?/python\d+\.\d+t?/site-packages/")


BASE_LIB = re.compile(r"/lib(?:64)?/python\d+\.\d+t?/")


LIBPYTHON = re.compile(r"libpython\d+\.\d+t?\w*\.so")


#: Interpreter options that take a value (``-X dev``), which is then not the script.
_VALUE_OPTS = {"-X", "-W", "-Q", "--check-hash-based-pycs"}


_UWSGI_HOME = {"-H", "--home", "--virtualenv", "--venv", "--pyhome"}


def _is_venv(path: str, fs: Optional[HostFS] = None) -> bool:
    cfg = path.rstrip("/") + "/pyvenv.cfg"
    return fsutil.is_file(cfg) if fs is None else fs.file_state(cfg) is True


def venv_above(path: str, levels: int = 5, fs: Optional[HostFS] = None) -> Optional[str]:
    """The venv a file lies in (``VENV/bin/x``, ``VENV/lib/.../x``), looking a few levels up."""
    d = os.path.dirname(path)
    for _ in range(levels):
        if d in ("/", ""):
            return None
        if _is_venv(d, fs):
            return d
        d = os.path.dirname(d)
    return None


def venv_from_argv(
    argv: tuple[str, ...], cwd: Optional[str], fs: Optional[HostFS] = None
) -> Optional[str]:
    """The venv a command line names: its interpreter, its script, or uwsgi's home. *fs*:
    the process's root (a chroot) when it is not ours; *cwd* and the paths found are then
    that root's."""
    args = list(argv)
    # env [-i] [-u NAME] [NAME=VALUE...] PROGRAM ...
    if args and os.path.basename(args[0]) == "env":
        args = args[1:]
        while args and (args[0].startswith("-") or "=" in args[0]):
            if args[0] in ("-u", "--unset", "-C", "--chdir", "-S", "--split-string"):
                args = args[1:]
            args = args[1:]
    if not args:
        return None

    def absolute(p: str) -> Optional[str]:
        if p.startswith("/"):
            return os.path.normpath(p)
        if cwd and "/" in p:
            return os.path.normpath(os.path.join(cwd, p))
        return None

    for i, a in enumerate(args):
        if a in _UWSGI_HOME and i + 1 < len(args):
            home = absolute(args[i + 1])
            if home and _is_venv(home, fs):
                return home
        if a.startswith("--home=") or a.startswith("--virtualenv="):
            home = absolute(a.split("=", 1)[1])
            if home and _is_venv(home, fs):
                return home
    first = absolute(args[0])
    if first is not None:
        found = venv_above(first, 2, fs)
        if found:
            return found
    # the script: the first argument that is not an option (or an option's value)
    i = 1
    while i < len(args):
        a = args[i]
        if a in ("-c", "-m"):
            return None
        if a in _VALUE_OPTS:
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        script = absolute(a)
        return venv_above(script, fs=fs) if script else None
    return None


def venv_from_maps(maps: list[MappedFile]) -> list[str]:
    """Venvs whose site-packages files the process has mapped."""
    found: list[str] = []
    for m in maps:
        hit = _SITE.match(m.path)
        if hit and hit.group(1) not in found and _is_venv(hit.group(1)):
            found.append(hit.group(1))
    return found


def environ_hint(proc_pid: str, fs: Optional[HostFS] = None) -> Optional[str]:
    """``VIRTUAL_ENV`` from the environment: a hint only, and used for nothing else (*fs*:
    the process's root, whose path it is, when not ours)."""
    try:
        data = read_proc(f"{proc_pid}/environ", 256 << 10)
    except OSError:
        return None
    for item in data.split(b"\0"):
        if item.startswith(b"VIRTUAL_ENV="):
            value = item[12:].decode("utf-8", "surrogateescape")
            if value.startswith("/") and _is_venv(value, fs):
                return os.path.normpath(value)
    return None


@dataclass
class VenvState:
    """What changed last in a venv, and its verdict when judged."""

    newest: float
    newest_path: str
    report: Optional[VenvReport] = None


def newest_change(venv: str) -> tuple[float, str]:
    """The latest change to what decides a venv's code: the venv directory itself (a swap
    by rename changes its ctime), ``pyvenv.cfg``, ``bin/``, every site-packages and every
    distribution directory in it. Files inside packages are not walked (cost)."""
    best = (0.0, venv)

    def see(path: str, ctime: bool = False) -> None:
        nonlocal best
        try:
            st = os.lstat(path)
        except OSError:
            return
        t = max(st.st_mtime, st.st_ctime) if ctime else st.st_mtime
        if t > best[0]:
            best = (t, path)

    see(venv, ctime=True)
    see(f"{venv}/pyvenv.cfg")
    see(f"{venv}/bin")
    for lib in ("lib", "lib64"):
        for e in fsutil.listdir(f"{venv}/{lib}"):
            site = f"{e.path}/site-packages"
            if not _only_bytecode_since(site):
                see(site)  # a package removed (installs also show in their dist-info)
            for d in fsutil.listdir(site):
                if d.name.endswith((".dist-info", ".egg-info")):
                    see(d.path)
    return best


def _only_bytecode_since(site: str) -> bool:
    """Whether the last change to *site* may have been Python creating its
    ``__pycache__`` (the first import of a top-level module, by any process): then the
    directory's time says nothing about packages."""
    try:
        site_mtime = os.lstat(site).st_mtime
        cache_ctime = os.lstat(f"{site}/__pycache__").st_ctime
    except OSError:
        return False
    return cache_ctime >= site_mtime - TOLERANCE


#: A file counts as changed when it is newer than the process by more than this (the start
#: time is known to a clock tick, the boot time to 10 ms).
TOLERANCE = 0.05
