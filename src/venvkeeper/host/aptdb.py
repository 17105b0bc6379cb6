"""Debian's package state, read statically: who owns a file, and does an archive still offer it.

Three places of a Debian root (a parameter, so a chroot's can be read too) tell it, and
nothing is run to ask them but a decompressor for apt's ``.lz4``/``.zst`` lists:

- ``var/lib/dpkg/info/*.list``: the files of each installed package (who owns a path);
- ``var/lib/dpkg/status``: the installed version of each package;
- ``var/lib/apt/lists/*_Packages[.gz|.xz|.bz2|.lz4|.zst]``: what the configured archives
  offer, as of the last ``apt-get update``.

A package is **obsolete** when no list offers it under its name any more: ``apt-cache policy``
shows its installed version only from ``/var/lib/dpkg/status``, and no upgrade will bring it a
security fix (python3.11 after a bookworm -> trixie upgrade, until it is purged). A newer
version on offer is not obsolete: the next upgrade brings the fixes. The answer is "unknown"
(None) when the root has no lists at all (a container image that deleted them) or when a list
could not be read and the others do not offer the package.

Reading costs a fraction of a second (the lists of a release hold some 60,000 packages), so
the state is cached per root for the whole process and read again only when dpkg's status,
its info directory or the lists change. This is Debian (and Ubuntu) only: on an RPM host
there is no dpkg status and the answer is always unknown.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from venvkeeper.errors import CommandError
from venvkeeper.host import command, fsutil
from venvkeeper.model.venv import OsPackage

#: Most read of one file: dpkg's status and a release's Packages list are some 10-100 MiB.
READ_LIMIT = 1 << 30
TIMEOUT = 60.0
_LIST = re.compile(r".+_Packages(\.(gz|xz|bz2|lzma|lz4|zst))?")
_TOOLS = {"lz4": "lz4", "zst": "zstd"}
#: The directories merged-/usr Debian links into /usr: dpkg may list a file under either.
_MERGED = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")
#: Interpreter files: their owners are looked up in the lists together, in one pass.
_INTERPRETER = re.compile(rb"/bin/python\d[\d.]*t?$", re.M)


def _aliases(path: str) -> list[str]:
    for d in _MERGED:
        if path.startswith("/usr" + d):
            return [path, path[4:]]
        if path.startswith(d):
            return [path, "/usr" + path]
    return [path]


def _read(path: str) -> Optional[bytes]:
    try:
        return fsutil.read_bytes(path, READ_LIMIT)[0]
    except (OSError, ValueError):
        return None


def _decompress(path: str) -> Optional[bytes]:
    """A list's text, or None when it cannot be read (or no decompressor is installed)."""
    ext = path.rsplit(".", 1)[-1] if not path.endswith("_Packages") else ""
    if ext in _TOOLS:
        from venvkeeper.host import programs

        tool = programs.find(_TOOLS[ext], dirs=("/usr/bin", "/bin"))
        if tool is None:
            return None
        try:
            res = command.run(
                [tool, "-dc", "--", path],
                timeout=TIMEOUT,
                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
                output_limit=READ_LIMIT,
                binary=True,
            )
        except CommandError:
            return None
        return res.raw_stdout if res.returncode == 0 else None
    raw = _read(path)
    if raw is None or not ext:
        return raw
    import bz2
    import gzip
    import lzma

    try:
        if ext == "gz":
            return gzip.decompress(raw)
        if ext == "bz2":
            return bz2.decompress(raw)
        return lzma.decompress(raw)
    except (OSError, EOFError, ValueError, lzma.LZMAError):
        return None


def _parse_status(text: bytes) -> dict[str, OsPackage]:
    """Installed packages by name (and ``name:arch``) from dpkg's status file."""
    out: dict[str, OsPackage] = {}
    for stanza in text.split(b"\n\n"):
        fields: dict[bytes, bytes] = {}
        for line in stanza.split(b"\n"):
            key, sep, value = line.partition(b":")
            if sep and not key.startswith((b" ", b"\t")):
                fields[key] = value.strip()
        status = fields.get(b"Status", b"").split()
        name = fields.get(b"Package")
        if not name or len(status) != 3 or status[2] in (b"not-installed", b"config-files"):
            continue
        pkg = OsPackage(
            name.decode("utf-8", "replace"),
            fields.get(b"Version", b"?").decode("utf-8", "replace"),
            fields.get(b"Architecture", b"").decode("utf-8", "replace"),
        )
        out.setdefault(pkg.name, pkg)
        out[f"{pkg.name}:{pkg.arch}"] = pkg
    return out


@dataclass(frozen=True)
class _Signature:
    """The sizes and times of the dpkg status and apt lists: when they change, read again."""

    status: tuple[int, int]
    info: tuple[int, int]
    lists: tuple[tuple[str, int, int], ...]


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


class AptState:
    """The package state of the Debian root *root*, read lazily. Thread-safe."""

    def __init__(self, root: str = "/") -> None:
        self.root = root.rstrip("/") or "/"
        self._dpkg = os.path.join(self.root, "var/lib/dpkg")
        self._lists_dir = os.path.join(self.root, "var/lib/apt/lists")
        self._lock = threading.RLock()
        self._files: Optional[list[tuple[str, bytes]]] = None  # (package, "\n" + .list text)
        self._status: Optional[dict[str, OsPackage]] = None
        self._offered: dict[str, Optional[bool]] = {}
        self._owners: dict[str, Optional[OsPackage]] = {}
        self.signature = self._signature()

    def _list_files(self) -> list[str]:
        try:
            names = sorted(os.listdir(self._lists_dir))
        except (OSError, ValueError):
            return []
        return [os.path.join(self._lists_dir, n) for n in names if _LIST.fullmatch(n)]

    def _signature(self) -> _Signature:
        lists = tuple((p, *_stat(p)) for p in self._list_files())
        return _Signature(
            _stat(os.path.join(self._dpkg, "status")),
            _stat(os.path.join(self._dpkg, "info")),
            lists,
        )

    @property
    def is_debian(self) -> bool:
        """The root has a dpkg status: the answers can be known."""
        return self.signature.status[0] >= 0

    def _load_files(self) -> list[tuple[str, bytes]]:
        if self._files is None:
            files: list[tuple[str, bytes]] = []
            info = os.path.join(self._dpkg, "info")
            try:
                names = sorted(n for n in os.listdir(info) if n.endswith(".list"))
            except (OSError, ValueError):
                names = []
            for n in names:
                data = _read(os.path.join(info, n))
                if data:
                    files.append((n[: -len(".list")].split(":")[0], b"\n" + data))
            self._files = files
        return self._files

    def _load_status(self) -> dict[str, OsPackage]:
        if self._status is None:
            data = _read(os.path.join(self._dpkg, "status"))
            self._status = _parse_status(data) if data else {}
        return self._status

    def owner(self, path: str) -> Optional[OsPackage]:
        """The installed package that owns *path* (as seen inside the root), if any."""
        with self._lock:
            if path in self._owners:
                return self._owners[path]
            found: Optional[OsPackage] = None
            if self.is_debian:
                needles = [
                    b"\n" + p.encode("utf-8", "surrogateescape") + b"\n" for p in _aliases(path)
                ]
                status = self._load_status()
                for pkg, data in self._load_files():
                    if any(n in data for n in needles) and pkg in status:
                        found = status[pkg]
                        break
            self._owners[path] = found
            return found

    def offered(self, name: str) -> Optional[bool]:
        """Whether any apt list offers the package *name* (None: cannot tell)."""
        with self._lock:
            if name not in self._offered:
                self._scan_lists([name, *self._interpreter_packages()])
            return self._offered.get(name)

    def _interpreter_packages(self) -> list[str]:
        return [pkg for pkg, data in self._load_files() if _INTERPRETER.search(data)]

    def _scan_lists(self, names: Iterable[str]) -> None:
        wanted = [n for n in dict.fromkeys(names) if n not in self._offered]
        lists = [p for p, *_ in self.signature.lists]
        if not lists:
            self._offered.update(dict.fromkeys(wanted))
            return
        found: set[str] = set()
        unread = False
        for path in lists:
            data = _decompress(path)
            if data is None:
                unread = True
                continue
            for n in wanted:
                needle = b"Package: " + n.encode("utf-8", "surrogateescape") + b"\n"
                if data.startswith(needle) or b"\n" + needle in data:
                    found.add(n)
            if found.issuperset(wanted):
                break
        for n in wanted:
            self._offered[n] = True if n in found else (None if unread else False)

    def obsolete(self, path: str) -> Optional[OsPackage]:
        """The package owning *path* when no configured archive offers it any more."""
        pkg = self.owner(path)
        if pkg is None or self.offered(pkg.name) is not False:
            return None
        return pkg


_CACHE: dict[str, AptState] = {}
_CACHE_LOCK = threading.Lock()


def state(root: str = "/") -> AptState:
    """The package state of *root*, shared by the whole process until dpkg or apt change it."""
    with _CACHE_LOCK:
        cur = _CACHE.get(root)
        if cur is None or cur.signature != cur._signature():
            cur = _CACHE[root] = AptState(root)
        return cur
