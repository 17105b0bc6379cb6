"""Where the inventory lives (and beside it, in the state directory, the apt hooks' record).
Its own small module: the apt hook asks it on every apt run, without loading SQLite."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Optional


def default_path(environ: Optional[Mapping[str, str]] = None, euid: Optional[int] = None) -> str:
    """Where the inventory lives: ``$VENVKEEPER_DB``, else ``inventory.db`` in the state
    directory (:func:`venvkeeper.host.state.state_dir`: ``$VENVKEEPER_STATE_DIR``, else
    ``/var/lib/venvkeeper`` for root, else ``$XDG_STATE_HOME/venvkeeper``)."""
    from venvkeeper.host.state import state_dir

    env = os.environ if environ is None else environ
    if env.get("VENVKEEPER_DB"):
        return os.path.abspath(env["VENVKEEPER_DB"])
    return os.path.join(state_dir(env, euid), "inventory.db")
