"""Commands in PATH directories that run a venv: ``/usr/local/bin``, ``/usr/local/sbin``,
``/opt/*/bin`` and users' ``~/.local/bin`` and ``~/bin``.

A link is followed hop by hop up to the first path inside a venv's ``bin/``
(``exec-via-link``; into ``PIPX_HOME/venvs/PKG`` it is a pipx app: user
``~/.local/share/pipx``, legacy ``~/.local/pipx``, ``--global`` ``/opt/pipx``); a script's
shebang (also pip's ``'''exec'`` trampoline and uv's relocatable form) naming a venv's
interpreter is ``exec-via-shebang``. A ``bin/`` that is itself a venv's is skipped: its
scripts are the venv's own.
"""

from __future__ import annotations

import posixpath
from typing import Optional

from venvkeeper.consumers.refs import Classifier, Where
from venvkeeper.consumers.rootfs import RootFS
from venvkeeper.consumers.users import User, Users
from venvkeeper.model.consumers import (
    Activation,
    Confidence,
    Consumer,
    ConsumerKind,
    Reference,
    VenvState,
)

SYSTEM_BIN = ("/usr/local/bin", "/usr/local/sbin")
#: Where pipx keeps its venvs, by PIPX_HOME (relative to a home, or absolute).
PIPX_HOMES = (".local/share/pipx", ".local/pipx")
PIPX_GLOBAL = "/opt/pipx"
#: Most entries read from one directory: a hostile directory of millions is cut short.
MAX_ENTRIES = 20000
EXEC_TRICK = b"\x27\x27\x27exec\x27"  # pip's and uv's /bin/sh trampoline


def bin_dirs(fs: RootFS, users: Users) -> list[tuple[str, Optional[User]]]:
    """Every directory to look in, with the user whose it is (None: the system's)."""
    out: list[tuple[str, Optional[User]]] = [(d, None) for d in SYSTEM_BIN]
    for e in fs.listdir("/opt"):
        out.append((f"/opt/{e.name}/bin", None))
    seen = set()
    for u in users.all():
        if not u.home.startswith("/") or u.home in ("/", "/nonexistent") or u.home in seen:
            continue
        seen.add(u.home)
        out += [(f"{u.home}/.local/bin", u), (f"{u.home}/bin", u)]
    return out


def pipx_venv(venv: str) -> bool:
    parent = posixpath.dirname(venv)
    return posixpath.basename(parent) == "venvs" and (
        parent.endswith(tuple(f"/{h}/venvs" for h in PIPX_HOMES))
        or parent == f"{PIPX_GLOBAL}/venvs"
    )


def read_commands(fs: RootFS, cls: Classifier, users: Users) -> list[Consumer]:
    out: list[Consumer] = []
    for d, owner in bin_dirs(fs, users):
        if posixpath.basename(d) == "bin" and fs.venv_state(posixpath.dirname(d)) is VenvState.VENV:
            continue  # a venv's own bin/
        entries = fs.listdir(d)[:MAX_ENTRIES]
        for e in entries:
            path = f"{d}/{e.name}"
            try:
                if e.is_dir(follow_symlinks=False):
                    continue
                link = e.is_symlink()
            except OSError:
                continue
            where = Where(fs.host(path), 1 if not link else 0, "link" if link else "shebang")
            if not link and not _may_name_a_venv(fs.head(path, 1024)):
                continue
            ref = cls.executable(path, text=path, confidence=Confidence.EXACT, where=where)
            if ref is None:
                continue
            out.append(_consumer(fs, path, ref, owner))
    return out


def _may_name_a_venv(head: Optional[bytes]) -> bool:
    """Whether a script's first lines may name a venv's interpreter (cheap: no I/O)."""
    if not head or not head.startswith(b"#!"):
        return False
    first = head.split(b"\n", 1)[0]
    return b"python" in first or EXEC_TRICK in head


def _consumer(fs: RootFS, path: str, ref: Reference, owner: Optional[User]) -> Consumer:
    venv_inside = fs.inside(ref.venv) if ref.venv else ""
    kind = ConsumerKind.PIPX if ref.venv and pipx_venv(venv_inside) else ConsumerKind.COMMAND
    return Consumer(
        kind=kind,
        name=fs.host(path),
        source=fs.host(path),
        line=ref.line,
        user=owner.name if owner is not None else None,
        refs=(ref,),
        activation=Activation.COMMAND,
    )
