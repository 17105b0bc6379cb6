"""The one way venvkeeper finds a program it runs (uv, restorecon, cp, setpriv,
dpkg-query, rpm, apt-config, ...), and the path that then runs.

- **As root**, a program comes from fixed system directories only (:data:`SYSTEM_DIRS`, and
  :data:`LOCAL_DIRS` for what an admin installs by hand, such as uv), and, for
  venvkeeper's own tools, from the directory of the interpreter running venvkeeper. Each
  candidate must pass the trust rule (:func:`venvkeeper.host.trust.distrust`) for the user
  it will run as; PATH and HOME are never consulted (under ``sudo -E`` they are a user's).
- **As another user**, their own PATH, as any program they start would, then the same
  fixed directories (``/usr/sbin`` is often not on a user's PATH).
- A path named explicitly (``--uv PATH``, the configuration) is checked by the same rule
  as root, and refused with the reason when it fails.

The absolute path found is what runs: callers never pass a bare name to
:func:`venvkeeper.host.command.run`.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from venvkeeper.errors import UsageError
from venvkeeper.host.trust import Distrust, TrustCache, distrust
from venvkeeper.textutil import escape

#: The system's own programs, in the order root's default PATH has them.
SYSTEM_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
#: What an admin installs by hand (``pip install uv`` as root, a downloaded uv).
LOCAL_DIRS = ("/usr/local/sbin", "/usr/local/bin")


@dataclass(frozen=True)
class Located:
    """Where a program was found (None: nowhere usable), and the candidates refused by
    the trust rule on the way (a ``uv`` in a directory a user can write)."""

    name: str
    path: Optional[str]
    refused: tuple[Distrust, ...] = ()


def _executable(path: str) -> bool:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)


def own_dir() -> str:
    """The directory of the interpreter running venvkeeper (a venv's ``bin``, where
    ``pip install venvkeeper[uv]`` puts uv beside it)."""
    return os.path.dirname(os.path.abspath(sys.executable))


def locate(
    name: str,
    *,
    run_as: Optional[int] = None,
    local: bool = False,
    own: bool = False,
    dirs: Optional[Sequence[str]] = None,
    user_dirs: Sequence[str] = (),
    cache: Optional[TrustCache] = None,
) -> Located:
    """Find program *name* as the rule above says. *run_as*: the uid it will run as
    (default: ours); it must be trusted for that user. *local*: also :data:`LOCAL_DIRS`
    (first, as in root's PATH). *own*: also the running interpreter's directory (last).
    *dirs*: exactly these directories instead (a caller's stand-in tools: still checked).
    *user_dirs*: for a caller other than root only, after their PATH (``~/.local/bin``)."""
    me = os.geteuid()
    uid = me if run_as is None else run_as
    if dirs is not None:
        places = [d for d in dirs if d]
    else:
        places = [*(LOCAL_DIRS if local else ()), *SYSTEM_DIRS, *([own_dir()] if own else [])]
        if me != 0:  # another user: their PATH first, then their own places
            found = shutil.which(name)
            if found is not None:
                return Located(name, os.path.abspath(found))
            places[:0] = [os.path.expanduser(d) for d in user_dirs]
    refused: list[Distrust] = []
    c = cache if cache is not None else TrustCache()
    for d in dict.fromkeys(places):
        cand = os.path.join(d, name)
        if not _executable(cand):
            continue
        if me == 0 or uid == 0 or dirs is not None:
            problem = distrust(cand, uid, cache=c)
            if problem is not None:
                refused.append(problem)
                continue
        return Located(name, cand, tuple(refused))
    return Located(name, None, tuple(refused))


def find(
    name: str,
    *,
    run_as: Optional[int] = None,
    local: bool = False,
    own: bool = False,
    dirs: Optional[Sequence[str]] = None,
) -> Optional[str]:
    """:func:`locate`'s path alone."""
    return locate(name, run_as=run_as, local=local, own=own, dirs=dirs).path


class ProgramRefused(UsageError):
    """A program named explicitly that the trust rule refuses, or that is not there."""


def checked(path: str, *, what: str, run_as: Optional[int] = None) -> str:
    """The program at *path*, named explicitly (*what*: ``--uv`` or the configuration
    key), when it may run: an absolute path to an executable file, and, when root or
    another user is involved, trusted by the rule for the user it runs as. Raises
    :class:`ProgramRefused` saying why."""
    if not path.startswith("/"):
        raise ProgramRefused(f"{what} {escape(path)}: give an absolute path")
    if not _executable(path):
        raise ProgramRefused(f"{what} {escape(path)}: not an executable file")
    uid = os.geteuid() if run_as is None else run_as
    if os.geteuid() == 0 or uid != os.geteuid():
        problem = distrust(path, uid)
        if problem is not None:
            raise ProgramRefused(
                f"{what} {escape(path)}: refused: {escape(str(problem))}: it would run as"
                f" {'root' if uid == 0 else f'uid {uid}'}, and another user could change"
                " it. Install it where only root can write (/usr/local/bin)"
            )
    return path


def require(
    name: str,
    *,
    run_as: Optional[int] = None,
    local: bool = False,
    own: bool = False,
    dirs: Optional[Sequence[str]] = None,
) -> str:
    """:func:`locate`'s path, or :class:`ProgramRefused` naming where it was looked for
    and what was refused."""
    found = locate(name, run_as=run_as, local=local, own=own, dirs=dirs)
    if found.path is not None:
        return found.path
    why = "; ".join(escape(str(r)) for r in found.refused)
    where = "the system directories" if os.geteuid() == 0 else "PATH or the system directories"
    raise ProgramRefused(f"{name} was not found in {where}" + (f" (refused: {why})" if why else ""))
