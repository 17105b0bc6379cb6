"""Running as the venv's owner: the identity a build takes, and the environment its
installers see (the admin's proxy and index settings; nothing from the venv)."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from venvkeeper.errors import (
    CommandError,
)
from venvkeeper.host import command
from venvkeeper.host.command import Completed
from venvkeeper.repair.safety import Actor
from venvkeeper.repair.transaction import (
    Journal,
    RepairError,
)

#: Environment variables passed to installers (the invoking admin's settings: proxies,
#: certificates, pip and uv configuration). Nothing comes from the venv or a process.
_PASS_PREFIXES = ("PIP_", "UV_")


_PASS = frozenset(
    {
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "TMPDIR",
    }
)


@dataclass(frozen=True)
class Owner:
    """The user a venv's build runs as (the venv's owner), and their home directory."""

    uid: int
    gid: int
    home: str


def owner_of(actor: Actor) -> Owner:
    try:
        home = pwd.getpwuid(actor.owner_uid).pw_dir
    except KeyError:
        home = "/nonexistent"
    return Owner(actor.owner_uid, actor.owner_gid, home)


def _installer_env(home: str) -> dict[str, str]:
    """The environment installers run in: the admin's proxy and index settings, nothing
    else inherited."""
    env = {k: v for k, v in os.environ.items() if k in _PASS or k.startswith(_PASS_PREFIXES)}
    env.update(
        PATH="/usr/local/bin:/usr/bin:/bin",
        HOME=home,
        LANG="C.UTF-8",
        UV_PYTHON_DOWNLOADS="never",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    return env


class OwnerRunner:
    """Runs commands as the venv's owner (privileges dropped when we are root) with a
    minimal environment, in ``/``, under a timeout, stoppable through *cancel*."""

    def __init__(self, owner: Owner, cancel: Optional[threading.Event]) -> None:
        self.owner = owner
        self.cancel = cancel
        me = os.geteuid()
        if me != 0 and me != owner.uid:
            raise RepairError(
                f"the venv belongs to uid {owner.uid}: run the repair as that user or as root"
            )
        self.user = owner.uid if me == 0 and owner.uid != 0 else None
        env = _installer_env(owner.home)
        self.tmp: Optional[str] = None
        #: Told the process group of each program started (the journal records them).
        self.on_start: Optional[Callable[[int], None]] = None
        if self.user is not None and not _writable_home(owner):
            # A system account without a home: caches in a private directory of its own.
            self.tmp = tempfile.mkdtemp(prefix="venvkeeper-cache-")
            os.chown(self.tmp, owner.uid, owner.gid)
            env["UV_CACHE_DIR"] = self.tmp
            env["PIP_NO_CACHE_DIR"] = "1"
            env["HOME"] = self.tmp
        if self.user is not None and not _shared_tmp(env.get("TMPDIR")):
            env.pop("TMPDIR", None)  # the admin's own: the owner could not use it
        self.env = env

    def _spawn(self, argv: Sequence[str]) -> tuple[list[str], Optional[int]]:
        """The program to start for *argv*, and the user to start it as (None: as we are)."""
        return list(argv), self.user

    def __call__(
        self, argv: Sequence[str], timeout: float, input: Optional[str] = None
    ) -> Completed:
        spawn, user = self._spawn(argv)
        try:
            return command.run(
                spawn,
                timeout=timeout,
                env=self.env,
                cwd="/",
                user=user,
                group=self.owner.gid if user is not None else None,
                input=input,
                cancel=self.cancel,
                on_start=self.on_start,
                die_with_parent=True,
            )
        except CommandError as e:
            raise RepairError(str(e)) from e

    def record_in(self, journal: Journal, actor: Actor) -> None:
        """From now on, each program's process group goes into *journal* (written as
        the acting user, whichever identity the calling thread has)."""

        def note(pgid: int) -> None:
            with actor.beside():
                journal.add_group(pgid)

        self.on_start = note

    def close(self) -> None:
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _shared_tmp(path: Optional[str]) -> bool:
    """*path* is a temporary directory every user may use (sticky, world-writable)."""
    try:
        return path is not None and os.stat(path).st_mode & 0o1777 == 0o1777
    except OSError:
        return False


def _writable_home(owner: Owner) -> bool:
    try:
        st = os.stat(owner.home)
    except OSError:
        return False
    return st.st_uid == owner.uid and bool(st.st_mode & 0o200)


class ChrootRunner(OwnerRunner):
    """Runs commands inside the OS root *root* (a chroot, a container's root filesystem)
    as the venv's owner, through coreutils' ``chroot`` started as root: the root's own
    interpreter and tools run, never this host's. A path of this host below the root in
    an argument becomes the path the root names (``ROOT/opt/app`` -> ``/opt/app``). The
    environment is the installers' one, with the root's ``HOME`` of the owner and no
    ``TMPDIR`` (a path of this host)."""

    def __init__(self, root: str, owner: Owner, cancel: Optional[threading.Event]) -> None:
        if os.geteuid() != 0:
            raise RepairError(
                f"the venv is inside the OS root {root}: it is repaired with that root's own"
                " Python through chroot, which needs root"
            )
        self.root = root.rstrip("/") or "/"
        home = _home_in_root(self.root, owner.uid)
        self.owner = Owner(owner.uid, owner.gid, home)
        self.cancel = cancel
        self.user = owner.uid if owner.uid != 0 else None  # who the code runs as
        self.tmp = None
        self.on_start = None
        self.env = _installer_env(home)
        self.env.pop("TMPDIR", None)  # a directory of this host
        self.env["PIP_NO_CACHE_DIR"] = "1"  # no cache of this host's, none left in the root

    def inside(self, arg: str) -> str:
        """*arg* as the root names it, when it is a path of this host below the root."""
        if arg == self.root:
            return "/"
        if arg.startswith(self.root + "/"):
            return arg[len(self.root) :]
        return arg

    def _spawn(self, argv: Sequence[str]) -> tuple[list[str], Optional[int]]:
        """``chroot`` (started as root: it changes the user after the root) and *argv*."""
        from venvkeeper.host.osroots import chroot_argv

        inner = [self.inside(a) for a in argv]
        try:
            return chroot_argv(self.root, inner, self.owner.uid, self.owner.gid), None
        except OSError as e:
            raise RepairError(f"cannot run in the OS root {self.root}: {e.strerror}") from e


def _home_in_root(root: str, uid: int) -> str:
    """The home directory of *uid* in the root's ``/etc/passwd`` (``/`` when unknown)."""
    from venvkeeper.host.hostfs import RootFS

    head = RootFS(root).read_head("/etc/passwd", 4 << 20)
    for line in (head or b"").decode("utf-8", "surrogateescape").splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2] == str(uid) and fields[5].startswith("/"):
            return fields[5]
    return "/"
