"""Careful file access for scanned trees: regular files only, every read capped, no hangs."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import threading
from itertools import accumulate
from typing import Callable, Optional

#: Default cap for one read: far above any honest pyvenv.cfg, METADATA header or RECORD.
READ_LIMIT = 1 << 20


class NotRegularFile(OSError):
    """The path exists but is a FIFO, socket, device or directory: we never open those."""


def normpath(path: str) -> str:
    """:func:`os.path.normpath`, with a leading ``//`` collapsed as well.

    POSIX leaves the meaning of exactly two leading slashes to the system, so ``normpath``
    keeps them; Linux reads them as ``/``. Paths built by joining onto ``/`` (the prefix of
    ``/bin`` is ``/``, and ``/`` + ``/lib`` is ``//lib``) must compare equal to the same
    path written with one slash, and ``dirname("//")`` is ``//`` again: a walk up that
    stops at ``/`` would never end.
    """
    p = os.path.normpath(path)
    return p[1:] if p.startswith("//") else p


def describe_mode(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "not a regular file"


_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_O_PATH = getattr(os, "O_PATH", 0)


def open_regular(path: str, *, follow_links: bool = False) -> int:
    """Open the regular file *path* for reading: **the one way to open a file in a tree
    another user may control** (a venv, its site-packages, a file a repair copies). Returns
    the descriptor; the caller closes it.

    - Its type is looked at first (``lstat``): a FIFO, socket, device or directory is
      never opened (:class:`NotRegularFile`), a link is refused unless *follow_links*
      (``ELOOP``).
    - It is then opened with ``O_NOFOLLOW|O_NONBLOCK``, and ``fstat`` of the open file must
      show a regular file still: one swapped in after the look (a FIFO, a link) is refused
      without a read, and nothing ever blocks.
    - With *follow_links*, a link is followed by opening what it leads to as a path only
      (``O_PATH``), checking that object, and reopening exactly it (``/proc/self/fd``):
      no device behind a link is ever opened either.

    Reads from the descriptor are the caller's to bound (:func:`read_fd`)."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        if not follow_links:
            raise OSError(errno.ELOOP, "a symbolic link: not followed", path)
        return _open_through_link(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(errno.EINVAL, describe_mode(st.st_mode), path)
    return _open_checked(path, _READ_FLAGS | os.O_NOFOLLOW)


def _open_checked(path: str, flags: int) -> int:
    """``open`` with *flags*, then ``fstat``: the descriptor of a regular file, or
    :class:`NotRegularFile` (the file was swapped since it was looked at)."""
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, describe_mode(st.st_mode), path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_through_link(path: str) -> int:
    if _O_PATH:
        pfd = os.open(path, _O_PATH | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(pfd)
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFile(errno.EINVAL, describe_mode(st.st_mode), path)
            try:
                return _open_checked(f"/proc/self/fd/{pfd}", _READ_FLAGS)
            except FileNotFoundError:  # no /proc here: as below
                pass
        finally:
            os.close(pfd)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(errno.EINVAL, describe_mode(st.st_mode), path)
    return _open_checked(path, _READ_FLAGS)


def read_fd(fd: int, limit: int) -> tuple[bytes, bool]:
    """At most *limit* bytes of the open regular file *fd*, and whether there was more."""
    data = _read_upto(fd, os.fstat(fd), limit)
    if len(data) > limit:
        return data[:limit], True
    return data, False


def read_bytes(
    path: str, limit: int = READ_LIMIT, *, follow_links: bool = True
) -> tuple[bytes, bool]:
    """Read at most *limit* bytes of the regular file *path* (symlinks followed unless
    told), through :func:`open_regular`.

    Returns ``(data, truncated)``. Raises :class:`NotRegularFile` for anything that is not a
    regular file (never opened, so a FIFO or a device never blocks) and the usual
    :class:`OSError` subclasses otherwise.
    """
    fd = open_regular(path, follow_links=follow_links)
    try:
        return read_fd(fd, limit)
    finally:
        os.close(fd)


def read_open(path: str, limit: int) -> tuple[bytes, bool]:
    """Open and read at most *limit* bytes, checking on the open file that it is regular
    (files of /proc are, and report a size of 0: they are read until their end). For
    files of the kernel's (/proc): no look before the open, which costs a system call
    for each of thousands; a tree another user controls goes through
    :func:`open_regular`."""
    fd = _open_checked(path, _READ_FLAGS)
    try:
        return read_fd(fd, limit)
    finally:
        os.close(fd)


def _read_upto(fd: int, st: os.stat_result, limit: int) -> bytes:
    """At most *limit* + 1 bytes of the open regular file *fd* (one more than allowed
    tells the caller it is larger)."""
    if st.st_size <= limit:  # the common case: one read
        data = os.read(fd, st.st_size + 1)
        if len(data) <= st.st_size:
            return data
        chunks = [data]
        left = limit + 1 - len(data)
    else:
        chunks = []
        left = limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_listed(entry: os.DirEntry[str], limit: int = READ_LIMIT) -> tuple[bytes, bool]:
    """Like :func:`read_bytes` for a file met in a directory listing: its type is already
    known from the listing (no extra ``stat``), so only regular files are opened."""
    if entry.is_symlink():
        return read_bytes(entry.path, limit)
    if not entry.is_file(follow_symlinks=False):
        raise NotRegularFile(errno.EINVAL, "not a regular file", entry.path)
    fd = _open_checked(entry.path, _READ_FLAGS | os.O_NOFOLLOW)
    try:
        return read_fd(fd, limit)
    finally:
        os.close(fd)


def read_text(path: str, limit: int = READ_LIMIT) -> tuple[str, bool]:
    from venvkeeper.textutil import decode

    data, truncated = read_bytes(path, limit)
    return decode(data), truncated


class TooLarge(OSError):
    """A file larger than the caller will read whole."""


def read_file(path: str, limit: int, *, follow_links: bool = False) -> bytes:
    """The whole of the regular file *path*, refused when larger than *limit* bytes.

    Never blocks and never follows a link unless told (``O_NOFOLLOW``: a link is
    ``ELOOP``); FIFOs, devices and directories raise :class:`NotRegularFile` without being
    read, a file over *limit* raises :class:`TooLarge` (its size is checked before reading,
    and again while reading, for a file that grows). Other failures are the usual
    :class:`OSError` subclasses."""
    fd = open_regular(path, follow_links=follow_links)
    try:
        st = os.fstat(fd)
        if st.st_size > limit:
            raise TooLarge(errno.EFBIG, f"larger than {limit} bytes ({st.st_size})", path)
        data = _read_upto(fd, st, limit)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise TooLarge(errno.EFBIG, f"larger than {limit} bytes", path)
    return data


#: Default bounds of :func:`load_json`: far above any file venvkeeper reads or writes.
JSON_LIMIT = 16 << 20
JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_JSON_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONError(ValueError):
    """JSON venvkeeper refuses to read: too large, too deep, not UTF-8, or not JSON.
    The message says which, in a few words, for a finding or a one-line error."""


def _json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in *text*, brackets inside strings not
    counted (an unterminated string's brackets are: the text is not JSON anyway)."""
    brackets = _JSON_NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(_BRACKET_STEP[c] for c in brackets), default=0)


def load_json(
    data: bytes | str, *, limit_bytes: int = JSON_LIMIT, max_depth: int = JSON_DEPTH
) -> object:
    """Parse untrusted JSON within bounds: the one JSON reader of venvkeeper.

    Refuses with :class:`JSONError` (a ``ValueError``) input over *limit_bytes*, nested
    deeper than *max_depth* (checked before parsing, so ``[[[[...`` a million deep costs a
    scan, not a ``RecursionError``), bytes that are not UTF-8 (a leading BOM is allowed),
    and anything :func:`json.loads` rejects. Never raises anything else."""
    if len(data) > limit_bytes:
        raise JSONError(f"larger than {limit_bytes} bytes")
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONError(f"not UTF-8 (byte {e.start})") from None
    else:
        text = data
    # Cheap first: fewer opening brackets than the limit cannot nest deeper than it.
    if text.count("[") + text.count("{") > max_depth and _json_depth(text) > max_depth:
        raise JSONError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError:  # the stack was already deep: still a clean refusal
        raise JSONError("nested too deeply to read") from None
    except ValueError as e:  # JSONDecodeError, and integers too long to convert
        raise JSONError(f"not valid JSON: {e}") from None


def load_json_file(
    path: str,
    *,
    limit_bytes: int = JSON_LIMIT,
    max_depth: int = JSON_DEPTH,
    follow_links: bool = False,
) -> object:
    """:func:`read_file` then :func:`load_json`: raises :class:`OSError` (the file cannot
    be read, is not regular, is a link, is too large) or :class:`JSONError` (its content)."""
    return load_json(
        read_file(path, limit_bytes, follow_links=follow_links),
        limit_bytes=limit_bytes,
        max_depth=max_depth,
    )


def read_head(path: str, limit: int = 512, *, follow_links: bool = True) -> Optional[bytes]:
    """The first bytes of a regular file, or None when it cannot be read for any reason."""
    try:
        return read_bytes(path, limit, follow_links=follow_links)[0]
    except OSError:
        return None


def same_content(a: str, b: str, limit: int, *, follow_links: bool = True) -> Optional[bool]:
    """Whether the regular files *a* and *b* hold the same bytes, both opened through
    :func:`open_regular`; None when either cannot be read or is larger than *limit*."""
    try:
        fa = open_regular(a, follow_links=follow_links)
    except OSError:
        return None
    try:
        fb = open_regular(b, follow_links=follow_links)
    except OSError:
        os.close(fa)
        return None
    try:
        sa, sb = os.fstat(fa), os.fstat(fb)
        if sa.st_size != sb.st_size:
            return False
        if sa.st_size > limit:
            return None
        left = limit
        while left >= 0:
            ca, cb = os.read(fa, 1 << 20), os.read(fb, 1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True
            left -= len(ca)
        return None  # grew past the limit while read
    except OSError:
        return None
    finally:
        os.close(fa)
        os.close(fb)


def copy_regular(src: str, dst: str, limit: int) -> None:
    """Copy the regular file *src* (opened through :func:`open_regular`, links not
    followed) to the new file *dst* (created, never opened through a link), with its
    mode and times. Raises :class:`TooLarge` over *limit* bytes (nothing left at *dst*),
    :class:`NotRegularFile`, or another :class:`OSError`."""
    fd = open_regular(src)
    try:
        st = os.fstat(fd)
        if st.st_size > limit:
            raise TooLarge(errno.EFBIG, f"larger than {limit} bytes ({st.st_size})", src)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        out = os.open(dst, flags, 0o600)
        try:
            left = limit
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                left -= len(chunk)
                if left < 0:
                    raise TooLarge(errno.EFBIG, f"larger than {limit} bytes", src)
                while chunk:
                    chunk = chunk[os.write(out, chunk) :]
            os.fchmod(out, stat.S_IMODE(st.st_mode))
        except BaseException:
            os.close(out)
            with contextlib.suppress(OSError):
                os.unlink(dst)
            raise
        os.close(out)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    finally:
        os.close(fd)


def os_error_reason(e: OSError) -> str:
    """A short, stable reason for a counted skip."""
    code = e.errno
    if isinstance(e, NotRegularFile):
        return "not-regular-file"
    if isinstance(e, TooLarge):
        return "too-large"
    if code in (errno.EACCES, errno.EPERM):
        return "permission-denied"
    if code in (errno.ENOENT, errno.ENOTDIR):
        return "vanished"
    if code == errno.ESTALE:
        return "stale-handle"
    if code == errno.ELOOP:
        return "symlink-loop"
    if code == errno.ENAMETOOLONG:
        return "name-too-long"
    if code == errno.EIO:
        return "io-error"
    return "os-error"


def lexists(path: str) -> bool:
    try:
        os.lstat(path)
    except (OSError, ValueError):
        return False
    return True


def is_file(path: str) -> bool:
    """True for an existing regular file (symlinks followed); never raises."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def state(
    path: str,
    follow: bool,
    kind: Optional[Callable[[int], bool]],
    stat_: Callable[[str], os.stat_result] = os.stat,
    lstat: Callable[[str], os.stat_result] = os.lstat,
) -> Optional[bool]:
    """Whether *path* exists (and is of *kind*): False when it is not there (or a link to
    nothing, or a loop), None when we may not look (permission): unknown, not absent.
    *stat_* and *lstat* ask the host (the OS, or an overlay of a changed host)."""
    try:
        st = stat_(path) if follow else lstat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return False
    except OSError as e:
        return False if e.errno == errno.ELOOP else None
    return True if kind is None else kind(st.st_mode)


def path_state(path: str) -> Optional[bool]:
    """Whether *path* exists, links not followed."""
    return state(path, False, None)


def file_state(path: str) -> Optional[bool]:
    """Whether *path* is a regular file, symlinks followed."""
    return state(path, True, stat.S_ISREG)


def dir_state(path: str) -> Optional[bool]:
    """Whether *path* is a directory, symlinks followed."""
    return state(path, True, stat.S_ISDIR)


def is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def check_directory(path: str, *, listable: bool = True) -> None:
    """Raise a :class:`~venvkeeper.errors.VenvkeeperError` (exit code 3) unless *path*
    (a directory named by the user: a root, a venv, a backup directory) is a directory,
    and with *listable* one this process may list and enter. The message says which:
    it does not exist, is not a directory, or may not be read (permission denied)."""
    from venvkeeper.errors import UsageError, os_failure

    try:
        st = os.stat(path)
    except OSError as e:
        raise os_failure(e, path=path) from e
    except ValueError as e:  # a NUL byte
        raise UsageError(f"{path!r} is not a valid path") from e
    if not stat.S_ISDIR(st.st_mode):
        what = "a file" if stat.S_ISREG(st.st_mode) else describe_mode(st.st_mode)
        raise UsageError(f"{path} is not a directory (it is {what})")
    if not listable:
        return
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | os.O_CLOEXEC))
        if not os.access(path, os.X_OK, effective_ids=os.access in os.supports_effective_ids):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    except OSError as e:
        raise os_failure(e, path=path) from e


def listdir(path: str) -> list[os.DirEntry[str]]:
    """Entries of a directory, or [] when it cannot be read."""
    try:
        with os.scandir(path) as it:
            return list(it)
    except (OSError, ValueError):
        return []


def fsync_dir(path: str) -> None:
    """Sync the directory *path*, so a rename in it survives a crash; best effort (a
    filesystem that cannot sync a directory is left as it is)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(path: str, text: str, mode: int = 0o644, exact_mode: bool = False) -> None:
    """Write *text* to *path* as one step: a temporary file beside it, fsync, rename. A
    reader sees the old file or the new one, never half of one. *mode* is masked by the
    umask, unless *exact_mode* (a file another user's daemon must read)."""
    write_bytes_atomically(path, text.encode(), mode, exact_mode=exact_mode)


def write_bytes_atomically(
    path: str, data: bytes, mode: int = 0o644, *, exact_mode: bool = False, durable: bool = False
) -> None:
    """:func:`write_atomically` for bytes; *durable* also syncs the directory, so the
    rename itself survives a crash (a journal must)."""
    from venvkeeper.errors import OSFailure, os_reason

    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            if exact_mode:
                os.fchmod(fd, mode)
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if durable:
            dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OSFailure(f"cannot write {path}: {os_reason(e)}", e) from e
