"""The state directory: where venvkeeper keeps what it writes for itself (the inventory's
default place, the tracebacks of internal errors).

``$VENVKEEPER_STATE_DIR`` when set; else ``/var/lib/venvkeeper`` for root; else
``$XDG_STATE_HOME/venvkeeper`` (``~/.local/state/venvkeeper``). Tests name their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Optional

ENV_VAR = "VENVKEEPER_STATE_DIR"
#: root's state directory (the Debian package's, the systemd unit's StateDirectory).
SYSTEM_STATE_DIR = "/var/lib/venvkeeper"


def state_dir(environ: Optional[Mapping[str, str]] = None, euid: Optional[int] = None) -> str:
    """The state directory of this process (see the module), absolute."""
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR):
        return os.path.abspath(env[ENV_VAR])
    if (os.geteuid() if euid is None else euid) == 0:
        return SYSTEM_STATE_DIR
    state = env.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(state):  # the XDG spec: relative values are to be ignored
        state = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "venvkeeper")


def untrusted(path: str, euid: Optional[int] = None) -> Optional[str]:
    """Why the state file *path* (the inventory, the apt hooks' record) may not be trusted
    by this process, None when it may: by the one trust rule
    (:func:`venvkeeper.host.trust.distrust`), only this user or root can change it and
    every directory above it; and it is a regular file. A state file another user could
    write or replace would let that user decide what root is told about the venvs, or
    which venvs root judges."""
    import stat

    from venvkeeper.host.trust import distrust

    uid = os.geteuid() if euid is None else euid
    found = distrust(path, uid)
    if found is not None:
        return str(found)
    try:
        st = os.stat(path)
    except OSError as e:
        return f"{path}: {e.strerror or e}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    return None
