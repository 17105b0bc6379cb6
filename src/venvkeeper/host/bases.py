"""Base interpreters as venvs see them: links followed hop by hop as the kernel would,
their origin (system, pyenv, uv, Homebrew...), and the facts about their stdlib that many
venvs share, cached per scan in a :class:`HostCache`.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import threading
from typing import Any, Optional, TypeVar

from venvkeeper.host import aptdb, fsutil
from venvkeeper.host.aptdb import AptState
from venvkeeper.host.hostfs import REAL, HostFS
from venvkeeper.model.venv import (
    BaseOrigin,
    LinkChain,
    OsPackage,
)

MAX_HOPS = 40


_PATCHLEVEL = re.compile(rb'#define\s+PY_VERSION\s+"(\d+\.\d+\.\d+)[^"]*"')


_PATH_VERSION = re.compile(
    r"/(?:versions/|cpython-|Cellar/python@\d+\.\d+/|python-)(\d+\.\d+\.\d+)(?:[-_/+]|$)"
)


class HostCache:
    """Facts about files outside the venvs (base interpreters, their stdlib), cached per
    scan, asked of *fs*: the real host, or a changed one when predicting. Thread-safe: the
    worst a race does is compute one value twice."""

    def __init__(self, fs: HostFS = REAL, packages_root: Optional[str] = "/") -> None:
        """*packages_root* is the Debian root whose dpkg status and apt lists tell whether a
        base's package is still offered (:mod:`venvkeeper.host.aptdb`); None: do not ask (the
        host judged is another one, as a profile describes it)."""
        self.fs = fs
        self.packages_root = packages_root
        self._apt: Optional[AptState] = None
        self._lock = threading.Lock()
        self._stdlib: dict[tuple[str, str], tuple[Optional[str], bool]] = {}
        self._patch: dict[tuple[str, str], Optional[str]] = {}
        self._head: dict[str, Optional[bytes]] = {}
        self._obsolete: dict[str, Optional[OsPackage]] = {}
        #: follow_links results by path, shared by the venvs of a scan (links to one base)
        self.links: dict[str, LinkChain] = {}
        self._real: dict[str, str] = {"/": "/"}

    def realpath(self, path: str) -> str:
        """``os.path.realpath`` of the absolute, normalized *path*, with the directories
        on its way remembered: the venvs of a scan share their parents, so each directory
        costs one ``lstat`` per scan instead of one per venv below it."""
        if self.fs is not REAL:
            return self.fs.realpath(path)
        found = self._real.get(path)
        if found is not None:
            return found
        parent, _, name = path.rpartition("/")
        if not path.startswith("/") or not name or name in (".", ".."):
            return os.path.realpath(path)
        above = self.realpath(parent or "/")
        try:
            link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            link = False  # realpath treats what it cannot look at as no link
        real = os.path.realpath(path) if link else (above.rstrip("/") + "/" + name)
        self._real[path] = real
        return real

    def stdlib_prefix(self, start_dir: str, version: str) -> tuple[Optional[str], bool]:
        """Search upwards from *start_dir* for the stdlib landmark, as getpath does:
        ``lib/pythonX.Y/os.py`` (``lib/python3.13t`` for free-threaded builds) or the
        zipped ``lib/pythonXY.zip``. Returns (prefix found, whether a permission error hid
        a candidate): not found *and* hidden means "cannot tell", not "gone"."""
        key = (start_dir, version)
        if key in self._stdlib:
            return self._stdlib[key]
        found: Optional[str] = None
        denied = False
        zipped = "python" + version.rstrip("t").replace(".", "") + ".zip"
        d = start_dir
        for _ in range(64):
            for lib in ("lib", "lib64"):
                root = f"{d.rstrip('/')}/{lib}"
                for landmark in (f"{root}/python{version}/os.py", f"{root}/{zipped}"):
                    state = self.fs.file_state(landmark)
                    if state:
                        found = d
                        break
                    denied = denied or state is None
                if found is not None:
                    break
            if found is not None:
                break
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
        with self._lock:
            self._stdlib[key] = (found, denied)
        return found, denied

    def patch_version(self, prefix: Optional[str], version: str, executable: str) -> Optional[str]:
        key = (prefix or "", executable)
        if key in self._patch:
            return self._patch[key]
        found: Optional[str] = None
        if prefix:
            head = self.fs.read_head(f"{prefix}/include/python{version}/patchlevel.h", 64 << 10)
            if head:
                m = _PATCHLEVEL.search(head)
                if m:
                    found = m.group(1).decode()
        if found is None:
            m2 = _PATH_VERSION.search(executable)
            if m2 and m2.group(1).startswith(version.rstrip("t") + "."):
                found = m2.group(1)
        with self._lock:
            self._patch[key] = found
        return found

    def obsolete_package(self, path: str) -> Optional[OsPackage]:
        """The OS package owning *path* when no configured archive offers it any more."""
        if self.packages_root is None:
            return None
        if path in self._obsolete:
            return self._obsolete[path]
        if self._apt is None:
            self._apt = aptdb.state(self.packages_root)
        found = self._obsolete[path] = self._apt.obsolete(path)
        return found

    def same_bytes(self, a: str, b: str, limit: int = 256 << 20) -> Optional[bool]:
        """Whether two regular files hold the same bytes (None when unreadable or huge)."""
        return self.fs.same_bytes(a, b, limit)

    def is_script(self, path: str) -> bool:
        """True when *path* starts with ``#!``: a shell wrapper (a pyenv shim), not a binary."""
        if path not in self._head:
            self._head[path] = self.fs.read_head(path, 4)
        head = self._head[path]
        return bool(head and head.startswith(b"#!"))


#: A uv-managed installation's directory: ``cpython-3.12.11-linux-x86_64-gnu`` (also
#: ``cpython-3.13.1+freethreaded-...``, pre-releases ``cpython-3.14.0rc2-...``).
_UV_INSTALL = re.compile(
    r"^(?P<impl>cpython)-(?P<minor>\d+\.\d+)\.\d+(?:(?:a|b|rc)\d+)?(?P<variant>\+[a-z]+)?-(?P<platform>.+)$"
)


def uv_minor_link(path: str, fs: HostFS = REAL) -> Optional[str]:
    """*path* (a file or directory inside a uv-managed Python installation, or the
    installation itself) through uv's minor-version link directory, when uv keeps one for
    it: ``.../uv/python/cpython-3.12.11-linux-x86_64-gnu/bin/python3.12`` ->
    ``.../uv/python/cpython-3.12-linux-x86_64-gnu/bin/python3.12``. uv repoints that link at
    each patch upgrade, so a venv linked through it follows them. None when *path* is not
    in such an installation, or no such link exists (an older uv, or a link that points at
    another installation: then the path itself is the one to keep)."""
    parts = path.rstrip("/").split("/")
    for i in range(len(parts) - 1, 0, -1):
        m = _UV_INSTALL.match(parts[i])
        if m is None:
            continue
        if parts[i - 1] != "python":
            return None
        link_name = f"{m['impl']}-{m['minor']}{m['variant'] or ''}-{m['platform']}"
        parent = "/".join(parts[:i])
        link = f"{parent}/{link_name}"
        try:
            if not stat.S_ISLNK(fs.lstat(link).st_mode):
                return None
            if fs.realpath(link) != fs.realpath("/".join(parts[: i + 1])):
                return None
        except (OSError, ValueError):
            return None
        return "/".join([link, *parts[i + 1 :]])
    return None


def classify_origin(executable: str, venv_path: str) -> BaseOrigin:
    p = executable
    if p.startswith(venv_path.rstrip("/") + "/"):
        return BaseOrigin.VENV_COPY
    if "/.pyenv/versions/" in p or "/pyenv/versions/" in p:
        return BaseOrigin.PYENV
    if "/uv/python/" in p:
        return BaseOrigin.UV
    if "/Cellar/" in p or "/homebrew/" in p or "/linuxbrew/" in p:
        return BaseOrigin.HOMEBREW
    if any(s in p for s in ("/conda", "/miniconda", "/anaconda", "/miniforge", "/mambaforge")):
        return BaseOrigin.CONDA
    if p.startswith(("/usr/local/", "/opt/")):
        return BaseOrigin.LOCAL
    if p.startswith(("/usr/bin/", "/bin/", "/usr/libexec/", "/usr/lib/", "/usr/lib64/")):
        return BaseOrigin.SYSTEM
    return BaseOrigin.OTHER


@functools.lru_cache(maxsize=4096)
def _realdir(path: str) -> str:
    """``realpath`` of a directory, cached: the bases of many venvs share a few directories."""
    try:
        return os.path.realpath(path).rstrip("/") or ""
    except (OSError, RuntimeError, ValueError):
        return path


def forget() -> None:
    """Drop what :func:`_realdir` remembered: a scan, or a search for interpreters, starts
    from the host as it is now (a long-lived process, a test running commands in turn:
    a uv minor link repointed since the last one must not be followed to its old target)."""
    _realdir.cache_clear()


def _realdir_in(fs: HostFS, path: str) -> str:
    if fs is REAL:
        return _realdir(path)
    try:
        return fs.realpath(path).rstrip("/") or ""
    except (OSError, RuntimeError, ValueError):
        return path


def resolve_chain(
    venv: str, name: str, fs: HostFS = REAL, memo: Optional[dict[str, LinkChain]] = None
) -> LinkChain:
    """Follow ``bin/NAME`` hop by hop without resolving anything the OS would not."""
    return follow_links(f"{venv}/bin/{name}", name, fs, memo)


def follow_links(
    path: str, name: str, fs: HostFS = REAL, memo: Optional[dict[str, LinkChain]] = None
) -> LinkChain:
    """Follow the absolute *path* hop by hop, as the kernel would when executing it.

    *memo* (:attr:`HostCache.links`, for one state of *fs*) keeps the chain from each hop
    on: the venvs of a scan link to a few bases, and each venv's ``python``,
    ``python3`` and ``python3.X`` to one another."""
    if memo is None:
        return _follow(path, name, fs)
    found = memo.get(path)
    if found is None:
        found = memo[path] = _follow(path, name, fs, memo)
        if found.error is None:  # what every later hop leads to, for the next venvs
            for i in range(1, len(found.hops)):
                if found.hops[i] not in memo:
                    memo[found.hops[i]] = evolve(found, hops=found.hops[i:])
    return found if found.name == name else evolve(found, name=name)


_T = TypeVar("_T")


def evolve(obj: _T, **changes: Any) -> _T:
    """:func:`dataclasses.replace` for the model's frozen dataclasses (no ``__post_init__``,
    no init-only fields), without its per-call machinery: a scan makes one for every link
    and script of every venv."""
    new = object.__new__(type(obj))
    vars(new).update(vars(obj), **changes)
    return new


def _follow(
    path: str, name: str, fs: HostFS, memo: Optional[dict[str, LinkChain]] = None
) -> LinkChain:
    hops = [path]
    for _ in range(MAX_HOPS):
        if memo is not None and len(hops) > 1:
            tail = memo.get(path)
            # a tail that ended in a loop would end elsewhere with the hops spent so far
            if tail is not None and tail.error is None and len(hops) + len(tail.hops) <= MAX_HOPS:
                return evolve(tail, name=name, hops=tuple(hops[:-1]) + tail.hops)
        try:
            st = fs.lstat(path)
        except FileNotFoundError:
            return LinkChain(name, tuple(hops), None, broken_at=path)
        except PermissionError as e:
            return LinkChain(
                name, tuple(hops), None, broken_at=path, error=str(e.strerror), unreadable=True
            )
        except OSError as e:
            return LinkChain(name, tuple(hops), None, broken_at=path, error=str(e.strerror))
        if not stat.S_ISLNK(st.st_mode):
            real = _realdir_in(fs, os.path.dirname(path)) + "/" + os.path.basename(path)
            if not stat.S_ISREG(st.st_mode):
                what = fsutil.describe_mode(st.st_mode)
                return LinkChain(name, tuple(hops), None, broken_at=path, error=f"is {what}")
            unrunnable = None
            if st.st_size == 0:
                unrunnable = "an empty file"
            elif not st.st_mode & 0o111:
                unrunnable = "a file without execute permission"
            return LinkChain(name, tuple(hops), real, unrunnable=unrunnable)
        try:
            target = fs.readlink(path)
        except OSError as e:
            return LinkChain(name, tuple(hops), None, broken_at=path, error=str(e.strerror))
        joined = os.path.join(os.path.dirname(path), target)
        path = os.path.normpath(joined)
        if ".." in joined.split("/"):
            # The kernel resolves ".." against the real directory it reached, not the
            # path it came by, so the lexical normpath may be wrong.
            try:
                real_dir = fs.realpath(os.path.dirname(joined))
                path = os.path.join(real_dir, os.path.basename(joined))
            except (OSError, ValueError):
                pass
        hops.append(path)
    return LinkChain(name, tuple(hops), None, error="too many symlinks (a loop?)")
