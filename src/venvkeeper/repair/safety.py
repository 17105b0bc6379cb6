"""Who acts on a venv's directory, and what we accept to find beside a venv.

Root never acts on what another user controls. When root repairs, rolls back or prunes:

- **A venv another user owns is changed as that user.** The thread that runs the
  transaction takes the owner's filesystem identity (``setfsuid``/``setfsgid``, which
  Linux keeps per thread, and no supplementary groups), and every program it starts runs
  as the owner. The kernel then checks each open, rename and removal exactly as it would
  check the owner's own: whatever a planted link or journal says, nothing happens that the
  owner could not do by hand. When the owner can write the venv's parent directory, the
  lock, journal, build and backups are the owner's too.
- **Otherwise root works in the parent only when no other user can change it**: the parent
  and every directory above it are root's and writable by no group or other user (a
  sticky directory such as ``/tmp`` counts as safe above the venv: others cannot move
  root's entries there). The trees' contents are still written as the venv's owner.
- Anything else is refused, with a message that says who controls which directory.

Whoever acts, every object met beside the venv is checked before use: the lock and the
journal must be regular files owned by the acting user with one link, opened without
following links and without blocking; builds and backups must be real directories owned
by the acting user or the venv's owner, named exactly ``.NAME.venvkeeper-KIND-STAMP``;
a journal must name this venv and only siblings of that form. An object that fails is
refused (:class:`Unsafe`, naming it) and left as it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import pwd
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Optional

from venvkeeper.errors import VenvkeeperError
from venvkeeper.host.trust import distrust, user_name

#: A sibling's time stamp: ``YYYYMMDDTHHMMSS-PID-SERIAL`` (see ``transaction.stamp``).
STAMP = r"[0-9]{8}T[0-9]{6}-[0-9]{1,10}-[0-9]{1,10}"

#: Bigger than any journal or backup note venvkeeper writes.
NOTE_LIMIT = 1 << 16


class Unsafe(VenvkeeperError):
    """An object beside a venv that venvkeeper did not make, or a directory another user
    controls: refused, and left as it is."""


# --- per-thread filesystem identity ------------------------------------------------------

_libc: Optional[ctypes.CDLL] = None
_libc_lock = threading.Lock()

#: ``setgroups`` as a raw system call changes only the calling thread (glibc's wrapper
#: changes every thread of the process).
_SYS_SETGROUPS = {"x86_64": 116, "aarch64": 159, "riscv64": 159}


def _c() -> ctypes.CDLL:
    global _libc
    with _libc_lock:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return _libc


def _fsids() -> tuple[int, int]:
    """The calling thread's filesystem uid and gid (``-1`` changes nothing and returns
    the current value)."""
    libc = _c()
    return libc.setfsuid(ctypes.c_uint(0xFFFFFFFF).value), libc.setfsgid(
        ctypes.c_uint(0xFFFFFFFF).value
    )


def _thread_setgroups(groups: list[int]) -> None:
    nr = _SYS_SETGROUPS.get(platform.machine())
    if nr is None:
        if set(os.getgroups()) - {0}:
            raise Unsafe(
                f"cannot drop supplementary groups for one thread on {platform.machine()}:"
                " run the repair as the venv's owner"
            )
        return  # root's own group only: the fsgid decides
    arr = (ctypes.c_uint * max(1, len(groups)))(*groups)
    if _c().syscall(nr, len(groups), arr) != 0:
        err = ctypes.get_errno()
        raise Unsafe(f"cannot drop supplementary groups: {os.strerror(err)}")


def _set(uid: int, gid: int, groups: list[int]) -> None:
    libc = _c()
    _thread_setgroups(groups)
    libc.setfsgid(gid)
    libc.setfsuid(uid)
    if _fsids() != (uid, gid):
        raise Unsafe(f"cannot take the filesystem identity {uid}:{gid}")


#: The process's own supplementary groups (read at import, before any thread changes).
_PROCESS_GROUPS = os.getgroups()


@contextlib.contextmanager
def identity(uid: int, gid: int) -> Iterator[None]:
    """Let the calling thread's file operations be checked as *uid*:*gid* (no-op unless
    we are root and it is another identity). Nests; restores the previous identity.

    The kernel's answer is the truth, not a record of ours: a thread started by a thread
    that had another identity (a pool of the verification) inherits that identity."""
    if os.geteuid() != 0:
        yield
        return
    before = _fsids()
    if before == (uid, gid):
        yield
        return
    groups_before = os.getgroups()  # the calling thread's own
    _set(uid, gid, [] if uid != 0 else _PROCESS_GROUPS)
    try:
        yield
    finally:
        _set(before[0], before[1], groups_before)


# --- who acts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """*uid* works beside the venv (lock, journal, renames, removals); *owner_uid* writes
    inside the trees (build, edits, verification)."""

    uid: int
    gid: int
    owner_uid: int
    owner_gid: int

    @classmethod
    def me(cls) -> Actor:
        uid, gid = os.geteuid(), os.getegid()
        return cls(uid, gid, uid, gid)

    def beside(self) -> contextlib.AbstractContextManager[None]:
        return identity(self.uid, self.gid)

    def inside(self) -> contextlib.AbstractContextManager[None]:
        return identity(self.owner_uid, self.owner_gid)

    @property
    def tree_owners(self) -> frozenset[int]:
        return frozenset({self.uid, self.owner_uid})


def _primary_gid(uid: int, fallback: int) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return fallback


def _groups_of(uid: int, gid: int) -> set[int]:
    try:
        name = pwd.getpwuid(uid).pw_name
        return set(os.getgrouplist(name, gid))
    except (KeyError, OSError):
        return {gid}


def who_controls(directory: str) -> Optional[str]:
    """None when only root can change *directory* and every directory above it (the one
    trust rule, :func:`venvkeeper.host.trust.distrust`, for root; a sticky *directory*
    counts as safe: others may add names there, which every check below refuses, but not
    move root's); else which directory another user controls, and how."""
    problem = distrust(directory, 0, new_names_ok=True)
    return None if problem is None else str(problem)


def _user(uid: int) -> str:
    return user_name(uid)


def _can_write(st: os.stat_result, uid: int, gid: int) -> bool:
    if st.st_uid == uid:
        return st.st_mode & 0o300 == 0o300
    if st.st_gid in _groups_of(uid, gid):
        return st.st_mode & 0o030 == 0o030
    return st.st_mode & 0o003 == 0o003


def actor_for(path: str) -> Actor:
    """Who acts on the venv at *path* (absolute, links resolved). Raises :class:`Unsafe`
    when root may not act there at all."""
    me = Actor.me()
    parent = os.path.dirname(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = os.lstat(parent)  # only backups are left: the parent's owner has them
    if stat.S_ISLNK(st.st_mode):
        raise Unsafe(f"{path} became a symbolic link: refused")
    if me.uid != 0:
        return me
    uid = st.st_uid
    gid = _primary_gid(uid, st.st_gid)
    controlled = who_controls(parent)
    if uid != 0:
        if _can_write(os.lstat(parent), uid, gid):
            return Actor(uid, gid, uid, gid)
        if controlled is None:
            return Actor(0, 0, uid, gid)
        raise Unsafe(
            f"{controlled}, and {_user(uid)}, who owns {path}, cannot write {parent}:"
            " root does not work there; run venvkeeper as the user who controls it"
        )
    if controlled is not None:
        raise Unsafe(
            f"{controlled}: another user could swap what root works on beside {path};"
            " root does not repair there. Give the venv to that user (root then works as"
            " them) or move it"
        )
    return Actor(0, 0, 0, 0)


# --- checks on what lies beside a venv -------------------------------------------------------


def sibling_pattern(path: str, kinds: str) -> re.Pattern[str]:
    """The names ``.NAME.venvkeeper-KIND-STAMP`` of *path*'s siblings, for KIND in the
    ``|``-separated *kinds*."""
    name = os.path.basename(path.rstrip("/"))
    return re.compile(rf"\.{re.escape(name)}\.venvkeeper-(?:{kinds})-{STAMP}")


def is_sibling(path: str, candidate: str, kinds: str) -> bool:
    """*candidate* is exactly ``PARENT/.NAME.venvkeeper-KIND-STAMP`` of *path*."""
    parent = os.path.dirname(path.rstrip("/"))
    head, tail = os.path.split(candidate)
    return head == parent and sibling_pattern(path, kinds).fullmatch(tail) is not None


def check_file(fd: int, what: str, actor: Actor) -> os.stat_result:
    """The open file *fd* is a regular file of the acting user with one link."""
    return _check_file_stat(os.fstat(fd), what, actor)


def _check_file_stat(st: os.stat_result, what: str, actor: Actor) -> os.stat_result:
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "it is not a regular file"
    elif st.st_uid != actor.uid:
        problem = f"it belongs to {_user(st.st_uid)}, not to {_user(actor.uid)}"
    elif st.st_nlink != 1:
        problem = f"it has {st.st_nlink} hard links"
    if problem:
        raise Unsafe(
            f"{what} is not venvkeeper's ({problem}): refused and left as it is; nothing"
            " was changed. Remove it if nobody should have put it there"
        )
    return st


def open_checked(path: str, flags: int, actor: Actor, what: str, mode: int = 0o600) -> int:
    """Open *path* without following a link and without blocking on a FIFO, then check it
    with :func:`check_file`. Returns the descriptor."""
    flags |= os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise Unsafe(f"{what} is a symbolic link: refused and left as it is")
        _check_file_stat(st, what, actor)  # before opening: nothing planted is opened
    try:
        fd = os.open(path, flags, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Unsafe(f"{what} is a symbolic link: refused and left as it is") from e
        raise
    try:
        check_file(fd, what, actor)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_checked(path: str, actor: Actor, what: str, limit: int = NOTE_LIMIT) -> Optional[bytes]:
    """The bytes of a note beside a venv (journal, backup note), checked as
    :func:`open_checked` does; None when there is none."""
    try:
        fd = open_checked(path, os.O_RDONLY, actor, what)
    except FileNotFoundError:
        return None
    try:
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Unsafe(f"{what} is larger than any venvkeeper writes: refused")
    return data


def check_tree(path: str, actor: Actor, what: str) -> os.stat_result:
    """*path* is a real directory (not a link) owned by the acting user or the venv's."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise Unsafe(f"{what} {path} is not a directory: refused and left as it is")
    if st.st_uid not in actor.tree_owners:
        raise Unsafe(
            f"{what} {path} belongs to {_user(st.st_uid)}: not made by this venvkeeper;"
            " refused and left as it is"
        )
    return st
