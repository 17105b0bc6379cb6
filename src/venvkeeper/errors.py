"""One error hierarchy. A problem with one venv is a finding, never an exception;
these are for problems with the run itself (bad usage, an unusable root, an internal failure).

Every error carries the exit code it ends the command with (:attr:`VenvkeeperError.exit_code`,
3 for all of them: the README's "usage error or failure of the run"). An :class:`OSError`
that reaches the command line is turned into one line by :func:`os_failure`, the one mapping
of OS errors to words: the path it names and what went wrong (permission denied, no space
left, a read-only filesystem, a symlink loop, ...)."""

from __future__ import annotations

import errno
import os
import re
from typing import Optional, Union

#: The exit code of every error of the run (bad usage, an unusable file, an OS failure).
ERROR_EXIT_CODE = 3


class VenvkeeperError(Exception):
    """Base of every error venvkeeper raises on purpose. The message says what to do."""

    exit_code: int = ERROR_EXIT_CODE

    def lines(self) -> tuple[str, ...]:
        """The message as the lines to print (one problem a line)."""
        return (str(self),)


class UsageError(VenvkeeperError):
    """The command line or its arguments are wrong."""


class OSFailure(VenvkeeperError):
    """An operation failed for an OS reason (permission, a missing file, a full disk, a
    read-only filesystem, ...): see :func:`os_failure`."""

    def __init__(self, message: str, cause: OSError) -> None:
        super().__init__(message)
        self.errno = cause.errno


class CommandError(VenvkeeperError):
    """A subprocess failed; carries the command and what it printed."""

    def __init__(self, message: str, argv: list[str], stderr: str = "") -> None:
        super().__init__(message)
        self.argv = argv
        self.stderr = stderr


class WorkerFailed(VenvkeeperError):
    """A worker (a walker thread, a pool's task, the forked walker) raised: the command
    ends, with one line that says where, instead of a spin or a thread's traceback."""


def worker_failed(e: BaseException, doing: str) -> VenvkeeperError:
    """The error that ends a command whose worker raised *e* while *doing* something:
    *e* itself when venvkeeper raised it on purpose, else :class:`WorkerFailed` naming it
    (an OS error in words, anything else as the bug it is)."""
    if isinstance(e, VenvkeeperError):
        return e
    if isinstance(e, OSError):
        return WorkerFailed(f"{doing} failed: {describe_os_error(e)}")
    text = " ".join(str(e).split())[:500]
    return WorkerFailed(
        f"{doing} failed: {type(e).__name__}: {text} (a bug: please report it with the"
        " command line you used)"
    )


class InventoryError(VenvkeeperError):
    """The inventory database cannot be used: corrupt, written by a newer venvkeeper, not a
    venvkeeper inventory, or not writable. The file is always left as it was."""


class InventoryUnavailable(InventoryError):
    """The inventory cannot be created or opened for an OS reason (permission, a
    read-only filesystem): nothing is wrong with its contents."""


class ConfigError(UsageError):
    """A configuration file is unreadable or invalid; every problem names its file and line."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)

    def lines(self) -> tuple[str, ...]:
        return self.problems


# errno -> (what happened, what to do); the words follow the path in the message.
_OS_REASONS: dict[int, tuple[str, str]] = {
    errno.EACCES: ("permission denied", "run as a user who may use it, or as root"),
    errno.EPERM: ("operation not permitted", "run as a user who may use it, or as root"),
    errno.ENOENT: ("does not exist", ""),
    errno.ENOTDIR: ("not a directory (or a part of its path is not one)", ""),
    errno.EISDIR: ("is a directory", ""),
    errno.ENOSPC: ("no space left on device", "free some space and try again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space and try again"),
    errno.EROFS: ("on a read-only filesystem", ""),
    errno.ELOOP: ("too many levels of symbolic links (a symlink loop?)", ""),
    errno.ENAMETOOLONG: ("file name too long", ""),
    errno.ESTALE: ("stale file handle (a network filesystem changed under us)", "try again"),
    errno.EIO: ("input/output error", "the disk or network filesystem may be failing"),
    errno.ETXTBSY: ("text file busy (a running program holds it)", ""),
    errno.EBUSY: ("device or resource busy", ""),
    errno.EEXIST: ("already exists", ""),
    errno.ENOTEMPTY: ("directory not empty", ""),
    errno.EXDEV: ("on another filesystem", ""),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n)"),
    errno.ENFILE: ("too many open files on the system", ""),
    errno.ENXIO: ("no reader on the other end (a FIFO or device)", ""),
}

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", int, None]


def _shown(path: PathLike) -> Optional[str]:
    if path is None or isinstance(path, int):
        return None
    return os.fsdecode(path)


def os_reason(e: OSError) -> str:
    """What went wrong, in words, and what to do when that is known; no path."""
    what, hint = _OS_REASONS.get(e.errno or 0, ("", ""))
    if not what:
        what = (e.strerror or str(e) or type(e).__name__).lower()
    elif e.strerror and e.errno and e.strerror != os.strerror(e.errno):
        what = f"{what}: {e.strerror}"  # a message of its own says more than the errno
    return f"{what} ({hint})" if hint else what


#: OS errors that say something about the host (its disks, its limits), never about what
#: a program was asked to do: named when another program's output shows them.
_HOST_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EIO,
    errno.ESTALE,
    errno.EMFILE,
    errno.ENFILE,
)
_ERRNO_TAG = re.compile(r"\[Errno (\d{1,4})\]")


def os_reason_in_output(text: str) -> Optional[str]:
    """The OS error another program (an installer) reports in *text*, in the words of
    :func:`os_reason`: a Python ``[Errno N]`` of a host error, or the OS's own message for
    one (``No space left on device``). None when it shows none."""
    for m in _ERRNO_TAG.finditer(text):
        n = int(m.group(1))
        if n in _HOST_ERRNOS:
            return os_reason(OSError(n, os.strerror(n)))
    lowered = text.lower()
    for n in _HOST_ERRNOS:
        if os.strerror(n).lower() in lowered:
            return os_reason(OSError(n, os.strerror(n)))
    return None


def describe_os_error(e: OSError, path: Optional[str] = None) -> str:
    """*e* in words, after the path(s) it names (*path* when the error names none):
    ``/root: permission denied (run as a user who may use it, or as root)``."""
    target = _shown(e.filename) or path
    other = _shown(e.filename2)
    where = f"{target} -> {other}" if target and other else target
    return f"{where}: {os_reason(e)}" if where else os_reason(e)


def os_failure(e: OSError, doing: str = "", path: Optional[str] = None) -> OSFailure:
    """The :class:`OSFailure` for *e*: ``cannot DOING PATH: REASON``, or the path and the
    reason alone without *doing*. Raise it ``from e``."""
    text = describe_os_error(e, path)
    return OSFailure(f"{doing} {text}" if doing else text, e)


class Failure:
    """What an exception that ended a command prints, and the exit code it gives."""

    __slots__ = ("code", "internal", "lines")

    def __init__(self, lines: tuple[str, ...], code: int, internal: bool) -> None:
        self.lines = lines
        self.code = code
        self.internal = internal  # a bug: "internal error ... Please report this"


def failure_of(e: Exception) -> Failure:
    """The one mapping from an exception to its message and exit code (the README's
    exit codes): an error venvkeeper raised says what to do; an OS error is the path it
    names and what went wrong, in words (permission denied, no space left, ...); anything
    else is a bug."""
    if isinstance(e, OSError):
        e = os_failure(e)
    if isinstance(e, VenvkeeperError):
        return Failure(e.lines(), e.exit_code, internal=False)
    return Failure((f"{type(e).__name__}: {e}",), 3, internal=True)
