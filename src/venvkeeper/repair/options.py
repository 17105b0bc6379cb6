"""How a repair is asked to run (:class:`RepairOptions`: the command line's and the
configuration's choices), and the installer those choices give a venv (:func:`backend_for`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from venvkeeper.repair.backends import Backend, BackendChoice, Pip, Sources, choose


@dataclass(frozen=True)
class RepairOptions:
    """How to repair: the interpreter, the backend, the package sources, the backups kept."""

    python: Optional[str] = None  # --python: the new base interpreter
    backend: BackendChoice = BackendChoice.AUTO
    sources: Sources = field(default_factory=Sources)
    allow_upgrades: bool = False
    force: bool = False
    dry_run: bool = False
    keep_backups: int = 2
    copies: bool = False  # policy: copy the interpreter instead of linking it
    jobs: int = 2
    package_tools: Optional[str] = None  # where dpkg-query/rpm are (None: the system's dirs)
    uv: Optional[str] = None  # --uv / [repair] uv: this uv binary, checked by the trust rule
    #: The Python ``X.Y`` a venv (by its real path) must be rebuilt for when no ``python``
    #: is given: the minor of the server that embeds it (mod_wsgi, uWSGI).
    minor_for: tuple[tuple[str, str], ...] = ()


def backend_for(options: RepairOptions, root: Optional[str], uid: int, gid: int) -> Backend:
    """The installer: uv or pip as chosen (:func:`choose`); inside another OS root always
    the new venv's own pip, which runs there (uv would be this host's program)."""
    if root is not None:
        return Pip()
    return choose(options.backend, uid, gid, uv=options.uv)
