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
