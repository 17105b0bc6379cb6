"""Whether venvkeeper's own state files (the inventory, the apt hooks' record) may be
trusted: a file another user could have written or replaced would let that user decide
what root is told about the venvs, or which venvs root judges."""

from __future__ import annotations

import os
import stat
from typing import Optional


def untrusted(path: str, euid: Optional[int] = None) -> Optional[str]:
    """Why the state file *path* may not be trusted by this process: None when it may.
    Root trusts only a regular file root owns, in a directory root owns, neither writable
    by anyone else (a group other than root's, or others); another user also trusts what
    it owns itself."""
    euid = os.geteuid() if euid is None else euid
    owners = (0,) if euid == 0 else (0, euid)
    for p, want_dir in ((os.path.dirname(path) or "/", True), (path, False)):
        try:
            st = os.lstat(p)
        except OSError as e:
            return f"{p}: {e.strerror or e}"
        if want_dir != stat.S_ISDIR(st.st_mode) or not (want_dir or stat.S_ISREG(st.st_mode)):
            return f"{p} is not a {'directory' if want_dir else 'regular file'}"
        if st.st_uid not in owners:
            who = "root" if euid == 0 else "root or this user"
            return f"{p} is owned by uid {st.st_uid}, not {who}"
        if st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and st.st_gid != 0):
            return f"{p} may be written by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None
