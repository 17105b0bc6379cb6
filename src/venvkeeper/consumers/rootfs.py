"""The files of one OS root, as its own programs see them: paths inside the root, links
resolved inside it (an absolute link target is taken from the root, as in a chroot), reads
bounded and non-blocking, venvs recognised by their ``pyvenv.cfg``.

Every path the readers handle is a path *inside* the root (``/etc/crontab``);
:meth:`RootFS.host` gives the host's path of it (``ROOT/etc/crontab``), and references carry
host paths. With the root ``/`` the two are the same and nothing is translated.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from dataclasses import replace
from typing import Optional

from venvkeeper.checks.consumers import SYNTAX, UNREADABLE
from venvkeeper.host import fsutil
from venvkeeper.model.consumers import Consumer, VenvState
from venvkeeper.model.findings import Finding, Severity

#: A consumer file larger than this is not read (a finding says so): far above any honest
#: unit, crontab or server config.
FILE_LIMIT = 1 << 20
#: Links followed in one path before giving up (the kernel's own limit).
MAX_HOPS = 40


def norm(path: str) -> str:
    """:func:`fsutil.normpath`, skipped for a path that is already normal (most are)."""
    if (
        path.startswith("/")
        and "//" not in path
        and "/./" not in path
        and "/../" not in path
        and not path.endswith(("/", "/.", "/.."))
    ) or path == "/":
        return path
    return fsutil.normpath(path)


class RootFS:
    """One OS root (``/`` for this host). Caches what it learnt for one read of consumers."""

    def __init__(self, root: str = "/") -> None:
        self.root = fsutil.normpath(os.path.abspath(root))
        self.plain = self.root == "/"
        self._real: dict[str, Optional[str]] = {}
        self._venv: dict[str, VenvState] = {}
        self.files_read = 0

    # --- paths -------------------------------------------------------------------------

    def host(self, path: str) -> str:
        """The host path of *path* (inside the root), links not resolved."""
        path = norm(path)
        return path if self.plain else self.root + path if path != "/" else self.root

    def inside(self, host_path: str) -> str:
        """*host_path* as the root sees it (the reverse of :meth:`host`)."""
        if self.plain:
            return host_path
        if host_path == self.root:
            return "/"
        if host_path.startswith(self.root + "/"):
            return host_path[len(self.root) :]
        return host_path

    def real(self, path: str) -> Optional[str]:
        """The host path of *path* with every link resolved inside the root, or None on a
        loop. A missing tail is kept as it is (like ``realpath``)."""
        path = norm(path)
        if path in self._real:
            return self._real[path]
        if self.plain:
            try:
                out: Optional[str] = os.path.realpath(path)
            except (OSError, ValueError):
                out = None
        else:
            out = self._resolve(path)
        self._real[path] = out
        return out

    def _resolve(self, path: str) -> Optional[str]:
        todo = [c for c in path.split("/") if c]
        todo.reverse()
        done: list[str] = []  # components inside the root, resolved
        hops = 0
        while todo:
            c = todo.pop()
            if c == ".":
                continue
            if c == "..":
                if done:
                    done.pop()
                continue
            cur = self.root + "/" + "/".join([*done, c])
            try:
                st = os.lstat(cur)
            except (OSError, ValueError):
                done.append(c)
                done.extend(reversed(todo))
                todo = []
                break
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_HOPS:
                    return None
                try:
                    target = os.readlink(cur)
                except OSError:
                    return None
                if target.startswith("/"):
                    done = []
                parts = [x for x in target.split("/") if x]
                todo.extend(reversed(parts))
                continue
            done.append(c)
        return fsutil.normpath(self.root + "/" + "/".join(done))

    # --- questions -----------------------------------------------------------------------

    def lstat(self, path: str) -> Optional[os.stat_result]:
        """``lstat`` of *path* itself (its directory resolved), None when absent."""
        d, name = posixpath.split(norm(path))
        parent = self.real(d)
        if parent is None or not name:
            return None
        try:
            return os.lstat(os.path.join(parent, name))
        except (OSError, ValueError):
            return None

    def stat(self, path: str) -> Optional[os.stat_result]:
        real = self.real(path)
        if real is None:
            return None
        try:
            return os.stat(real)
        except (OSError, ValueError):
            return None

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def is_dir(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_file(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and stat.S_ISREG(st.st_mode)

    def readlink(self, path: str) -> Optional[str]:
        d, name = posixpath.split(norm(path))
        parent = self.real(d)
        if parent is None:
            return None
        try:
            return os.readlink(os.path.join(parent, name))
        except (OSError, ValueError):
            return None

    def listdir(self, path: str) -> list[os.DirEntry[str]]:
        """Entries of a directory (sorted by name), [] when it cannot be listed."""
        real = self.real(path)
        if real is None:
            return []
        return sorted(fsutil.listdir(real), key=lambda e: e.name)

    def read(self, path: str, limit: int = FILE_LIMIT) -> bytes:
        """The whole regular file *path* (links resolved inside the root); raises
        :class:`OSError` (``NotRegularFile``, ``TooLarge``, permission ...). Never blocks:
        a FIFO is refused before it is opened."""
        real = self._file(path)
        if real is None:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
        self.files_read += 1
        return fsutil.read_file(real, limit, follow_links=False)

    def _file(self, path: str) -> Optional[str]:
        """The host path to open for *path*: its directory resolved (cached), and the file
        itself resolved only when it is a link (most are not)."""
        d, name = posixpath.split(norm(path))
        parent = self.real(d)
        if parent is None or not name:
            return None
        host = os.path.join(parent, name)
        try:
            if not stat.S_ISLNK(os.lstat(host).st_mode):
                return host
        except (OSError, ValueError):
            return host
        return self.real(path)

    def head(self, path: str, limit: int = 1024) -> Optional[bytes]:
        """The first bytes of a regular file, None when it cannot be read."""
        real = self._file(path)
        if real is None:
            return None
        try:
            return fsutil.read_bytes(real, limit)[0]
        except (OSError, ValueError):
            return None

    def venv_state(self, d: str) -> VenvState:
        """Whether the directory *d* (inside the root) is a venv."""
        d = norm(d)
        known = self._venv.get(d)
        if known is not None:
            return known
        real = self.real(d)
        state = VenvState.UNKNOWN
        if real is not None:
            cfg = fsutil.file_state(os.path.join(real, "pyvenv.cfg"))
            if cfg:
                state = VenvState.VENV
            else:
                where = fsutil.dir_state(real)
                if where is None or cfg is None:
                    state = VenvState.UNKNOWN
                elif where:
                    state = VenvState.NOT_VENV
                else:
                    state = VenvState.GONE if not fsutil.lexists(real) else VenvState.NOT_VENV
        self._venv[d] = state
        return state


def read_text(fs: RootFS, path: str, source: str) -> tuple[Optional[str], list[Finding]]:
    """The text of a consumer file, and the problems met: ``(None, [finding])`` when it
    cannot be read at all; text with surrogate escapes and a finding when not UTF-8."""
    try:
        data = fs.read(path)
    except OSError as e:
        return None, [unreadable(source, e)]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        return data.decode("utf-8", "surrogateescape"), [
            syntax(source, line, "not UTF-8: lines with other bytes may be misread")
        ]


def unreadable(source: str, e: OSError) -> Finding:
    reason = {
        "not-regular-file": f"is {e.strerror or 'not a regular file'}, not a regular file",
        "too-large": f"is too large to read ({e.strerror})",
        "permission-denied": "may not be read (permission denied)",
        "vanished": "vanished while being read",
        "symlink-loop": "is a symlink loop",
    }.get(fsutil.os_error_reason(e), f"cannot be read ({e.strerror or e})")
    return Finding(
        UNREADABLE,
        Severity.UNKNOWN,
        f"{source} {reason}: what it runs is unknown",
    )


def syntax(source: str, line: int, message: str) -> Finding:
    where = f"{source}:{line}" if line else source
    return Finding(SYNTAX, Severity.WARNING, f"{where}: {message}")


def with_problems(out: list[Consumer], problems: list[Finding], empty: Consumer) -> list[Consumer]:
    """*out* with a file's own *problems* on its first consumer, or on *empty* (the file as
    a consumer with no reference) when it has none."""
    if not problems:
        return out
    first = out[0] if out else empty
    merged = replace(first, problems=first.problems + tuple(problems))
    return [merged, *out[1:]]
