"""The questions venvkeeper asks about files outside a venv, behind one small interface.

Scanning asks the real host (:data:`REAL`). Prediction asks a *changed* host: an
:class:`Overlay` that answers like the OS would after a planned change (``python3``
repointed, a prefix removed, a package's files gone) or like another host described by a
profile, while every path the change does not touch is answered by the host below it.

The methods mirror :mod:`os` (same return values, same :class:`OSError` subclasses), so code
written against the real filesystem runs unchanged against an overlay.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterable, Mapping
from typing import Callable, Optional

from venvkeeper.host import fsutil
from venvkeeper.host.fsutil import normpath

MAX_HOPS = 40
MAX_DEPTH = 256  # path components resolved by the overlay (recursion bound)


class HostFS:
    """The real host: every answer comes from the OS."""

    def lstat(self, path: str) -> os.stat_result:
        return os.lstat(path)

    def stat(self, path: str) -> os.stat_result:
        return os.stat(path)

    def readlink(self, path: str) -> str:
        return os.readlink(path)

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)

    def listdir(self, path: str) -> list[str]:
        """Names in a directory; [] when it cannot be read."""
        try:
            return os.listdir(path)
        except (OSError, ValueError):
            return []

    def read_head(self, path: str, limit: int) -> Optional[bytes]:
        return fsutil.read_head(path, limit)

    def same_bytes(self, a: str, b: str, limit: int = 256 << 20) -> Optional[bool]:
        """Whether two regular files hold the same bytes (None when unreadable or huge).
        *a* is a venv's copy of an interpreter: both are opened as
        :func:`fsutil.open_regular` does (a FIFO swapped in never blocks)."""
        return fsutil.same_content(a, b, limit)

    # Derived questions, the same for every host.

    def _state(
        self, path: str, follow: bool, kind: Optional[Callable[[int], bool]]
    ) -> Optional[bool]:
        return fsutil.state(path, follow, kind, self.stat, self.lstat)

    def path_state(self, path: str) -> Optional[bool]:
        """Whether *path* exists, links not followed (None: we may not look)."""
        return self._state(path, False, None)

    def file_state(self, path: str) -> Optional[bool]:
        """Whether *path* is a regular file, links followed (None: we may not look)."""
        return self._state(path, True, stat.S_ISREG)

    def dir_state(self, path: str) -> Optional[bool]:
        return self._state(path, True, stat.S_ISDIR)

    def is_file(self, path: str) -> bool:
        return self.file_state(path) is True


#: The real host.
REAL = HostFS()

_ELF = b"\x7fELF\x02\x01\x01\x00"


def _fake_stat(mode: int, size: int = 0) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, 0, 0, size, 0, 0, 0))


def _missing(path: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)


class Overlay(HostFS):
    """A host as it will be (or as another host is): some entries added, some removed.

    - *links*: path -> link target (a relative target is read as the OS would);
    - *files*: path -> the first bytes of a file that will exist (an interpreter binary, a
      stdlib landmark, a ``patchlevel.h``); their parent directories exist too;
    - *removed*: paths that will not exist, with everything below them;
    - *hidden*: (directory, name pattern): entries of that directory matching the pattern
      will not exist unless added (a profile lists a directory's interpreters completely);
    - *dir_links*: directory aliases of another host (``/bin`` -> ``/usr/bin``);
    - *denied*: paths (with everything below them) that may not be looked at: what the
      other host's profile could not tell (a stdlib its user could not read).

    Added entries win over removed ones. Paths are compared after resolving the links of
    their directories through the overlay itself, so ``/bin/python3`` and
    ``/usr/bin/python3`` are the same entry on a merged-``/usr`` system.
    """

    def __init__(
        self,
        base: HostFS = REAL,
        *,
        links: Optional[Mapping[str, str]] = None,
        files: Optional[Mapping[str, bytes]] = None,
        removed: Iterable[str] = (),
        hidden: Iterable[tuple[str, str]] = (),
        dir_links: Optional[Mapping[str, str]] = None,
        denied: Iterable[str] = (),
    ) -> None:
        self.base = base
        self.denied = frozenset(normpath(d) for d in denied)
        self.links = {normpath(k): v for k, v in (links or {}).items()}
        self.files = {normpath(k): v for k, v in (files or {}).items()}
        self.dir_links = {normpath(k): v for k, v in (dir_links or {}).items()}
        self.dirs: set[str] = set()
        for p in list(self.links) + list(self.files) + list(self.dir_links):
            d = os.path.dirname(p)
            while d not in self.dirs and d != "/":
                self.dirs.add(d)
                d = os.path.dirname(d)
        self.removed: set[str] = set()
        for r in removed:
            r = normpath(r)
            self.removed.add(r)
            # The same entry through its directory's real name (merged /usr).
            with contextlib.suppress(OSError, ValueError):
                real_dir = base.realpath(os.path.dirname(r))
                self.removed.add(os.path.join(real_dir, os.path.basename(r)))
        self.hidden: dict[str, list[re.Pattern[str]]] = {}
        for d, pattern in hidden:
            self.hidden.setdefault(normpath(d), []).append(re.compile(pattern))
        self._canon: dict[str, str] = {}
        for d in list(self.hidden):  # also under the directory's real name
            with contextlib.suppress(OSError, ValueError):
                real = self._resolve_dir(d)
                if real != d:
                    self.hidden.setdefault(real, []).extend(self.hidden[d])
        self._canon.clear()

    # --- the entries themselves -------------------------------------------------------

    def _gone(self, p: str) -> bool:
        """Whether *p*, or a directory above it, will not exist."""
        while p not in ("/", ""):
            if p in self.removed:
                return True
            d, name = os.path.split(p)
            if any(x.fullmatch(name) for x in self.hidden.get(d, ())):
                return True
            if d == p:  # not normalised ("//"): nothing above it
                break
            p = d
        return False

    def _denied(self, p: str) -> bool:
        while p not in ("/", ""):
            if p in self.denied:
                return True
            d = os.path.dirname(p)
            if d == p:
                break
            p = d
        return False

    def _lstat_exact(self, p: str) -> os.stat_result:
        """lstat of *p*, whose directory part has no links left."""
        if p in self.links or p in self.dir_links:
            return _fake_stat(stat.S_IFLNK | 0o777)
        if p in self.files:
            return _fake_stat(stat.S_IFREG | 0o755, len(self.files[p]))
        if p in self.dirs:
            return _fake_stat(stat.S_IFDIR | 0o755)
        if self.denied and self._denied(p):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), p)
        if self._gone(p):
            raise _missing(p)
        return self.base.lstat(p)

    def _readlink_exact(self, p: str) -> str:
        if p in self.links:
            return self.links[p]
        if p in self.dir_links:
            return self.dir_links[p]
        if self._gone(p):
            raise _missing(p)
        return self.base.readlink(p)

    def _resolve_dir(self, d: str) -> str:
        """The directory *d* with every link in it resolved through the overlay.

        Iterative, the way the kernel walks a path: one component at a time, a link's
        target pushed in its place, ``..`` taken from the directory reached (not the path
        as written), at most :data:`MAX_HOPS` links per walk (then ``ELOOP``). Every
        directory of *d* met on the way is remembered."""
        d = normpath(d)
        if d == "/" or d in self._canon:
            return self._canon.get(d, d)
        if d.count("/") > MAX_DEPTH:  # the kernel would say so too (PATH_MAX)
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), d)
        # Start from the longest prefix of d already resolved.
        start = d
        while start != "/" and start not in self._canon:
            start = os.path.dirname(start)
        cur = self._canon.get(start, "/")
        # A stack of (component, the prefix of d it completes, or None inside a link's
        # target); (None, prefix) marks where a link's target ends.
        todo: list[tuple[Optional[str], Optional[str]]] = []
        prefix = start.rstrip("/")
        for part in d[len(start) :].strip("/").split("/"):
            prefix = f"{prefix}/{part}"
            todo.append((part, prefix))
        todo.reverse()
        hops = 0
        while todo:
            name, completes = todo.pop()
            if name is None:  # the end of a link's target: the link's path is resolved
                if completes is not None:
                    self._canon[completes] = cur
                continue
            if name in ("", "."):
                pass
            elif name == "..":
                cur = os.path.dirname(cur)
            else:
                p = f"{cur.rstrip('/')}/{name}"
                st = self._lstat_exact(p)
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > MAX_HOPS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), d)
                    target = self._readlink_exact(p)
                    if target.startswith("/"):
                        cur = "/"
                    todo.append((None, completes))
                    todo.extend((x, None) for x in reversed(target.split("/")))
                    if len(todo) > MAX_DEPTH * MAX_HOPS:
                        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), d)
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), d)
                cur = p
            if completes is not None:
                self._canon[completes] = cur
        return cur

    def _exact(self, path: str) -> str:
        path = normpath(path)
        if path == "/":
            return path
        return os.path.join(self._resolve_dir(os.path.dirname(path)), os.path.basename(path))

    # --- the os-like interface ----------------------------------------------------------

    def lstat(self, path: str) -> os.stat_result:
        return self._lstat_exact(self._exact(path))

    def readlink(self, path: str) -> str:
        return self._readlink_exact(self._exact(path))

    def _follow(self, path: str) -> str:
        """The exact path a chain of links from *path* ends at (raises like ``stat``)."""
        p = self._exact(path)
        for _ in range(MAX_HOPS):
            st = self._lstat_exact(p)
            if not stat.S_ISLNK(st.st_mode):
                return p
            p = self._exact(os.path.join(os.path.dirname(p), self._readlink_exact(p)))
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)

    def stat(self, path: str) -> os.stat_result:
        p = self._follow(path)
        if p in self.files or p in self.dirs or p in self.links or p in self.dir_links:
            return self._lstat_exact(p)
        return self.base.stat(p)

    def realpath(self, path: str) -> str:
        try:
            return self._follow(path)
        except OSError:
            pass
        try:  # like os.path.realpath: what cannot be resolved stays as written
            return os.path.join(self._resolve_dir(os.path.dirname(path)), os.path.basename(path))
        except OSError:
            return normpath(path)

    def listdir(self, path: str) -> list[str]:
        try:
            d = self._follow(path)
        except OSError:
            return []
        names: set[str] = set()
        if not self._gone(d):
            names.update(n for n in self.base.listdir(d) if not self._gone(f"{d}/{n}"))
        prefix = d.rstrip("/") + "/"
        for p in list(self.links) + list(self.files) + list(self.dirs) + list(self.dir_links):
            if p.startswith(prefix) and "/" not in p[len(prefix) :]:
                names.add(p[len(prefix) :])
        return sorted(names)

    def read_head(self, path: str, limit: int) -> Optional[bytes]:
        try:
            p = self._follow(path)
        except OSError:
            return None
        if p in self.files:
            return self.files[p][:limit]
        if p in self.dirs:
            return None
        return self.base.read_head(p, limit)

    def same_bytes(self, a: str, b: str, limit: int = 256 << 20) -> Optional[bool]:
        try:
            pa, pb = self._follow(a), self._follow(b)
        except OSError:
            return None
        if pa in self.files or pb in self.files:
            return True if pa == pb else None
        return self.base.same_bytes(pa, pb, limit)


class _Below(HostFS):
    """The files below the directory *root*, each path taken exactly as given: no link is
    resolved here. :class:`RootFS` above it resolves every link inside the root first, so
    the paths it hands down have none left (but their last component, for ``lstat`` and
    ``readlink``)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def _host(self, path: str) -> str:
        return self.root + path if path != "/" else (self.root or "/")

    def lstat(self, path: str) -> os.stat_result:
        return os.lstat(self._host(path))

    def stat(self, path: str) -> os.stat_result:
        return os.stat(self._host(path))

    def readlink(self, path: str) -> str:
        return os.readlink(self._host(path))

    def realpath(self, path: str) -> str:  # never asked: RootFS resolves by itself
        return normpath(path)

    def listdir(self, path: str) -> list[str]:
        return super().listdir(self._host(path))

    def read_head(self, path: str, limit: int) -> Optional[bytes]:
        return fsutil.read_head(self._host(path), limit)

    def same_bytes(self, a: str, b: str, limit: int = 256 << 20) -> Optional[bool]:
        return super().same_bytes(self._host(a), self._host(b), limit)


class RootFS(Overlay):
    """Another OS root (a chroot, a container's root filesystem) as a process chrooted
    into it sees it: every path is a path inside the root, an absolute link target
    (``/usr/bin/python3``) means the root's own file, and ``..`` never climbs out of it
    (the kernel's ``chroot``, or ``openat2``'s ``RESOLVE_IN_ROOT``). Answers use the root
    directory's real path on this host, *host_root*.

    An :class:`Overlay` can stand on a ``RootFS`` like on the host: a change predicted
    inside the root."""

    def __init__(self, root: str) -> None:
        host_root = os.path.realpath(root)
        super().__init__(_Below(host_root))
        self.host_root = host_root

    def host_path(self, path: str) -> str:
        """Where *path* of the root (its links resolved inside the root) is on this host."""
        inner = self.realpath(path)
        return self.host_root.rstrip("/") + inner if inner != "/" else self.host_root


def interpreter_bytes(script: bool = False) -> bytes:
    """The head of a file standing for an interpreter in an overlay."""
    return b"#!/bin/sh\n" if script else _ELF


def patchlevel_bytes(patch: str) -> bytes:
    """A ``patchlevel.h`` head that tells *patch* the way CPython's does."""
    return f'#define PY_VERSION "{patch}"\n'.encode()
