"""Where venvkeeper keeps its state: the inventory, and beside it the apt hooks' record.
Its own small module: the apt hook asks it on every apt run, without loading SQLite."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Optional


def default_path(environ: Optional[Mapping[str, str]] = None, euid: Optional[int] = None) -> str:
    """Where the inventory lives: ``$VENVKEEPER_DB``, else ``/var/lib/venvkeeper`` for
    root, else ``$XDG_STATE_HOME/venvkeeper`` (``~/.local/state/venvkeeper``)."""
    env = os.environ if environ is None else environ
    if env.get("VENVKEEPER_DB"):
        return os.path.abspath(env["VENVKEEPER_DB"])
    if (os.geteuid() if euid is None else euid) == 0:
        return "/var/lib/venvkeeper/inventory.db"
    state = env.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(state):  # the XDG spec: relative values are to be ignored
        state = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "venvkeeper", "inventory.db")
