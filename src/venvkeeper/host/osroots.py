"""Other OS roots on this host: chroots, debootstrapped trees, containers' root filesystems.

A venv inside one is judged as that root sees it (:class:`~venvkeeper.host.hostfs.RootFS`):
``/usr/bin/python3`` in its links is the root's own Python, not this host's. This module
only tells where the roots are; nothing here judges.

**The rule.** A directory *D* other than ``/`` is an OS root when either

1. it holds an ``os-release`` (``etc/os-release`` or ``usr/lib/os-release``, a regular
   file) and a ``usr/bin`` directory, both looked up *inside D* (an absolute link such as
   merged-/usr's ``bin -> /usr/bin`` or ``etc/os-release -> /usr/lib/os-release`` names
   D's own file, never this host's), or
2. it is a known container store (:data:`STORES`: ``/var/lib/machines/NAME``,
   ``/var/lib/lxc/NAME/rootfs``, Docker's and Podman's overlay ``merged`` and ``diff``
   directories, mock's, LXD's) or a chroot configured for schroot (``directory=`` in
   ``/etc/schroot/schroot.conf`` and ``/etc/schroot/chroot.d/*``): such a directory is
   another system's files even where it lacks the markers (an image layer), and is then
   *incomplete*: what it links to lives in layers below it.

A venv belongs to the deepest OS root among the directories above it (a root inside a
root belongs to the inner one); the host itself (``/``) is nobody's other root. The test
looks only at the directory's own entries, so a root that is a bind mount, or holds bind
mounts, is a root like any other, and one without a dpkg database is a root too (its
packages then cannot be asked: ``base-obsolete`` is unknown there).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from typing import Optional

from venvkeeper.host import fsutil
from venvkeeper.host.hostfs import RootFS

#: Known container and chroot stores: each directory matching one of these patterns
#: (``*`` one path component) is an OS root. Keep in step with docs/scan.md.
STORES = (
    "/var/lib/machines/*",  # systemd-nspawn, machinectl
    "/var/lib/lxc/*/rootfs",  # LXC
    "/var/lib/lxd/containers/*/rootfs",
    "/var/lib/lxd/storage-pools/*/containers/*/rootfs",
    "/var/snap/lxd/common/lxd/storage-pools/*/containers/*/rootfs",
    "/var/lib/docker/overlay2/*/merged",  # a running container's whole root
    "/var/lib/docker/overlay2/*/diff",  # one image layer
    "/var/lib/containers/storage/overlay/*/merged",  # Podman, CRI-O
    "/var/lib/containers/storage/overlay/*/diff",
    "/var/lib/mock/*/root",  # Fedora's mock
    "/srv/chroot/*",  # sbuild's and schroot's usual place
    "/var/lib/schroot/chroots/*",
)
_STORES = tuple(re.compile(re.escape(p).replace(r"\*", "[^/]+")) for p in STORES)
SCHROOT_CONFIG = ("/etc/schroot/schroot.conf", "/etc/schroot/chroot.d")
_DIRECTORY = re.compile(r"^\s*directory\s*=\s*(/\S*)\s*$", re.M)


def schroot_dirs(config: Optional[tuple[str, ...]] = None) -> frozenset[str]:
    """The chroot directories schroot is configured with (``directory=`` keys), read from
    *config* (default :data:`SCHROOT_CONFIG`)."""
    files: list[str] = []
    for c in SCHROOT_CONFIG if config is None else config:
        if fsutil.is_dir(c):
            files += sorted(e.path for e in fsutil.listdir(c) if not e.name.startswith("."))
        else:
            files.append(c)
    found: set[str] = set()
    for f in files:
        head = fsutil.read_head(f, 1 << 20)
        if head:
            text = head.decode("utf-8", "surrogateescape")
            found.update(os.path.normpath(m.group(1)) for m in _DIRECTORY.finditer(text))
    return frozenset(found)


def is_store(path: str, configured: frozenset[str] = frozenset()) -> bool:
    """Whether *path* is a known container store's root (rule 2)."""
    return path in configured or any(p.fullmatch(path) for p in _STORES)


def has_markers(path: str) -> bool:
    """Whether the directory *path* holds an ``os-release`` and a ``usr/bin`` (rule 1),
    looked up inside it. A directory without ``usr`` costs one ``lstat``."""
    base = path.rstrip("/")
    if not fsutil.lexists(base + "/usr"):
        return False
    fs = RootFS(path)
    if fs.dir_state("/usr/bin") is not True:
        return False
    return any(fs.file_state(p) is True for p in ("/etc/os-release", "/usr/lib/os-release"))


def is_complete(root: str) -> bool:
    """Whether the OS root *root* holds a ``usr/bin`` of its own (an image layer does not:
    its venvs cannot be judged from it alone)."""
    return RootFS(root).dir_state("/usr/bin") is True


class Roots:
    """Which OS root each path belongs to, with every directory's answer cached (venvs
    share their parents). Thread-safe: the worst a race does is look twice."""

    def __init__(self, configured: Optional[frozenset[str]] = None) -> None:
        self.configured = schroot_dirs() if configured is None else configured
        self._is_root: dict[str, bool] = {}
        self._lock = threading.Lock()
        #: directory -> the deepest OS root at or above it (None: this host's)
        self._at_or_above: dict[str, Optional[str]] = {}

    def is_root(self, path: str) -> bool:
        """Whether the directory *path* (absolute, normalised) is an OS root."""
        if path in ("/", ""):
            return False
        known = self._is_root.get(path)
        if known is None:
            known = is_store(path, self.configured) or has_markers(path)
            with self._lock:
                self._is_root[path] = known
        return known

    def root_of(self, path: str) -> Optional[str]:
        """The deepest OS root strictly above *path* (a venv is never its own root), or
        None when *path* belongs to this host."""
        path = os.path.normpath(os.path.abspath(path))
        return self._root_at_or_above(os.path.dirname(path))

    def _root_at_or_above(self, d: str) -> Optional[str]:
        # venvs share their parents: each directory is answered once
        known = self._at_or_above.get(d, False)
        if known is not False:
            return known  # type: ignore[return-value]
        found: Optional[str] = None
        if d not in ("/", ""):
            found = d if self.is_root(d) else self._root_at_or_above(os.path.dirname(d))
        with self._lock:
            self._at_or_above[d] = found
        return found


def root_of(path: str) -> Optional[str]:
    """The OS root *path* belongs to (None: this host), without a shared cache."""
    return Roots().root_of(path)


#: Where the ``chroot`` program is looked for: the system's directories, never ``PATH``.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def chroot_program() -> Optional[str]:
    """coreutils' ``chroot`` from the system's directories, or None."""
    import shutil

    return shutil.which("chroot", path=SYSTEM_PATH)


def chroot_argv(root: str, argv: Sequence[str], uid: int, gid: int) -> list[str]:
    """*argv* (its paths as *root* names them) run inside the OS root *root* as *uid*/*gid*
    (supplementary groups: *gid* only) by coreutils' ``chroot``, which must be started as
    root. Raises :class:`OSError` when there is no ``chroot`` program."""
    exe = chroot_program()
    if exe is None:
        raise FileNotFoundError(2, "no chroot program in " + SYSTEM_PATH, "chroot")
    return [exe, f"--userspec={uid}:{gid}", f"--groups={gid}", "--", root, *argv]


def changeable_by_others(path: str) -> Optional[str]:
    """The first of *path* and the directories above it that a user other than root could
    change (owned by another user, or writable by group or others: a sticky directory such
    as ``/tmp`` only lets them add entries, so it passes when what follows is root's), or
    None when only root can change what runs from *path*. A path that cannot be examined
    counts as changeable."""
    import stat

    parts = [p for p in os.path.normpath(path).split("/") if p]
    cur = "/"
    for part in ["", *parts]:
        cur = os.path.join(cur, part) if part else "/"
        try:
            st = os.lstat(cur)
        except OSError:
            return cur
        if st.st_uid != 0:
            return cur
        sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_dir:
            return cur
    return None
