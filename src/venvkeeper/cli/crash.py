"""An internal error (a bug: an exception no stage turned into a
:class:`~venvkeeper.errors.VenvkeeperError`) is one line for the user, and its traceback
is kept in a file of the state directory (:func:`venvkeeper.host.state.state_dir`:
``/var/lib/venvkeeper`` for root, ``$XDG_STATE_HOME/venvkeeper`` for a user) that the line
names: what a bug report needs, without a traceback on the screen. ``--debug`` prints it
too.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Optional

from venvkeeper import __version__

#: The prefix of the files: ``crash-20250101T120000Z-1234.txt``.
PREFIX = "crash-"


def traceback_text(e: BaseException, argv: Sequence[str]) -> str:
    """What the file holds: the version, the Python, the command line, the traceback."""
    return (
        f"venvkeeper {__version__} on Python {sys.version.split()[0]}"
        f" ({sys.executable or 'unknown'})\n"
        f"command line: {' '.join(['venvkeeper', *argv])!r}\n\n"
        + "".join(traceback.format_exception(type(e), e, e.__traceback__))
    )


def save_traceback(
    e: BaseException, argv: Sequence[str], directory: Optional[str] = None
) -> tuple[Optional[str], str]:
    """(the file the traceback of *e* went to, or None, and why not), in *directory*
    (default: the state directory). The file is new (never an existing one followed or
    overwritten) and private (mode 600: a traceback names paths and values)."""
    from venvkeeper.errors import os_reason
    from venvkeeper.host.state import state_dir

    directory = directory or state_dir()
    stamp = f"{PREFIX}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for n in range(100):  # another error of this process in the same second
            path = os.path.join(directory, f"{stamp}{f'-{n}' if n else ''}.txt")
            try:
                fd = os.open(path, flags, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
                f.write(traceback_text(e, argv))
            return path, ""
    except OSError as why:
        return None, f"{directory}: {os_reason(why)}"
    return None, f"{directory}: too many tracebacks of this process in one second"


def internal_error_line(
    message: str, saved: Optional[str], why_not: str, brief: bool = False
) -> str:
    """The one line an internal error prints (escaped by the caller); *brief* for a
    monitoring plugin's status line."""
    if brief:
        where = f"traceback in {saved}" if saved else f"traceback not saved: {why_not}"
        return f"internal error: {message} ({where})"
    if saved is not None:
        return (
            f"internal error: {message}; its traceback is in {saved}: please report it with"
            " the command line you used"
        )
    return (
        f"internal error: {message}; its traceback could not be saved ({why_not}): run the"
        " command again with --debug to see it, and please report it"
    )
