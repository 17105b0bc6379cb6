"""The one trust rule: **only uid U, or root, can change this path and every directory
above it.**

Root (or any user U) runs, reads as configuration or installs as a hook only what passes
it for the user the work runs as. What "change" means, exactly as the kernel decides it:

- every object on the way (each directory from ``/`` down, each symbolic link, the object
  itself) is owned by U or by root: an owner can always chmod, rename or replace;
- the object, and each directory above it, is writable by nobody else: not by every user
  (mode ``o+w``), not by a group with a member other than U and root (mode ``g+w``, or the
  group entries of a POSIX ACL), not by another user named in its ACL
  (``system.posix_acl_access``, read when the mode's group bits, the ACL's mask, allow a
  write at all);
- a **sticky** directory above (``/tmp``) is the kernel's exception: others may add names
  there, but not rename or remove an entry that is neither theirs nor the directory's, so
  it is safe *above* an object of U's or root's. The object itself is judged as a whole:
  a sticky directory others can write is a directory others can add files to (a planted
  ``.pth``), unless the caller says new names there are checked anyway (``new_names_ok``:
  the repair transaction, which checks every object it finds beside a venv);
- a **symbolic link** is the link (owned by U or root) and then its target, resolved the
  way the kernel does (``..`` after a link goes up from where the link led), every hop
  checked the same way, at most 40 hops.

Anything that cannot be looked at (permission denied, a loop) is distrusted: it cannot
be shown to be safe. A path that does not exist is as trusted as the directory it would
be made in: whoever can add names there can create it.

:func:`distrust` checks one path; :func:`tree_distrust` checks a path and everything below
it (a venv, a stdlib). A :class:`TrustCache` lets a scan check each directory once, however
many venvs lie below it; it is valid for one command, not across changes to the host.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Optional

#: Most symbolic links followed for one path (the kernel's own limit).
MAX_HOPS = 40
#: Most entries :func:`tree_distrust` looks at under one directory.
TREE_LIMIT = 500_000
#: Directories a tree walk does not enter: version-control metadata, from which Python
#: imports nothing (their names are not module names).
NOT_IMPORTED = frozenset({".git", ".hg", ".svn", ".bzr"})
#: Regular files whose content nothing reads: uv's ``.lock`` (a venv's, a cache's) is
#: made writable by every user on purpose, so that any user may take the lock.
INERT = frozenset({".lock"})

_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = (
    0x01,
    0x02,
    0x04,
    0x08,
    0x10,
    0x20,
)
_ACL_WRITE = 0x02


@dataclass(frozen=True)
class Distrust:
    """*path* can be changed by someone other than *uid* and root; *why* says who and
    how, as a phrase that follows the path (``is owned by alice (uid 1000)``,
    ``is writable by every user``)."""

    path: str
    uid: int  # the user the path was checked for: trusted are this uid and root
    why: str
    #: The path asked about, with the links followed from it (``a -> b -> c``), when
    #: *path* is another object on the way to it; empty when *path* is what was asked.
    via: str = ""

    def __str__(self) -> str:
        tail = f", on the way to {self.via}" if self.via else ""
        return f"{self.path} {self.why}{tail}"


def user_name(uid: int) -> str:
    """``alice (uid 1000)``, or ``uid 1000`` for a uid without an account."""
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def group_name(gid: int) -> str:
    try:
        return f"{grp.getgrgid(gid).gr_name} (gid {gid})"
    except KeyError:
        return f"gid {gid}"


_MISSING = object()


@dataclass
class TrustCache:
    """What one command has learnt: each directory's verdict as a directory above
    something, each group's members, each tree walked. Not thread-safe in the strict
    sense, and it need not be: two threads asking about the same directory both compute
    the same answer."""

    above: dict[tuple[str, int], Optional[Distrust]] = field(default_factory=dict)
    trees: dict[tuple[str, int], Optional[Distrust]] = field(default_factory=dict)
    groups: dict[tuple[int, int], bool] = field(default_factory=dict)
    primary: Optional[dict[int, set[int]]] = None  # gid -> the uids whose primary group it is

    def group_is_only(self, gid: int, uid: int) -> bool:
        """Whether every member of group *gid* is *uid* or root (its members listed in
        the group database, and the accounts whose primary group it is)."""
        key = (gid, uid)
        known = self.groups.get(key)
        if known is not None:
            return known
        if self.primary is None:
            primary: dict[int, set[int]] = {}
            for pw in pwd.getpwall():
                primary.setdefault(pw.pw_gid, set()).add(pw.pw_uid)
            self.primary = primary
        members = set(self.primary.get(gid, ()))
        try:
            for name in grp.getgrgid(gid).gr_mem:
                try:
                    members.add(pwd.getpwnam(name).pw_uid)
                except KeyError:
                    members.add(-1)  # a member without an account: not ours to trust
        except KeyError:
            pass
        answer = members <= {0, uid}
        self.groups[key] = answer
        return answer


def _os_words(e: OSError) -> str:
    from venvkeeper.errors import os_reason

    return os_reason(e)


def _acl_writers(path: str, st: os.stat_result) -> Optional[tuple[list[int], list[int]]]:
    """(users, groups) a POSIX access ACL of *path* lets write (the owning group among
    the groups when its entry allows it); None when *path* has no ACL. Raises
    :class:`ValueError` for an ACL that cannot be read or understood."""
    try:
        data = os.getxattr(path, _ACL_XATTR, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return None
        raise ValueError(f"its ACL cannot be read ({_os_words(e)})") from e
    if len(data) < 4 or (len(data) - 4) % 8:
        raise ValueError("its ACL cannot be understood")
    (version,) = struct.unpack_from("<I", data, 0)
    if version != _ACL_VERSION:
        raise ValueError(f"its ACL has an unknown version ({version})")
    entries = [struct.unpack_from("<HHI", data, off) for off in range(4, len(data), 8)]
    mask = next((perm for tag, perm, _ in entries if tag == _ACL_MASK), 0x07)
    users: list[int] = []
    groups: list[int] = []
    for tag, perm, ident in entries:
        if not perm & mask & _ACL_WRITE:
            continue
        if tag == _ACL_USER:
            users.append(ident)
        elif tag == _ACL_GROUP:
            groups.append(ident)
        elif tag == _ACL_GROUP_OBJ:
            groups.append(st.st_gid)
    return users, groups


def _judge(
    path: str, st: os.stat_result, uid: int, cache: TrustCache, *, entries_ok: bool
) -> Optional[str]:
    """Why someone other than *uid* and root can change the object *path* (its lstat
    *st*), or None. *entries_ok*: a sticky directory others can write is fine (others
    may add names to it, not replace what is there)."""
    mode = st.st_mode
    if st.st_uid not in (0, uid):
        what = "a symbolic link " if stat.S_ISLNK(mode) else ""
        return f"is {what}owned by {user_name(st.st_uid)}"
    if stat.S_ISLNK(mode) or not mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None  # a link's own mode means nothing
    if entries_ok and stat.S_ISDIR(mode) and mode & stat.S_ISVTX:
        return None
    if mode & stat.S_IWOTH:
        return "is writable by every user"
    # g+w: the owning group may write, or (with an ACL) the mask lets named entries write
    try:
        acl = _acl_writers(path, st)
    except ValueError as e:
        return f"is group-writable and {e}"
    users, groups = ([], [st.st_gid]) if acl is None else acl
    how = "" if acl is None else " through its ACL"
    for u in users:
        if u not in (0, uid):
            return f"is writable by {user_name(u)}{how}"
    for g in groups:
        if not cache.group_is_only(g, uid):
            return f"is writable by the group {group_name(g)}{how}"
    return None


def distrust(
    path: str,
    uid: int,
    *,
    new_names_ok: bool = False,
    cache: Optional[TrustCache] = None,
) -> Optional[Distrust]:
    """None when only *uid* and root can change *path* and every directory above it
    (symbolic links on the way followed and each hop checked); else the first object on
    the way that someone else controls, and how. *path* is made absolute against the
    working directory. *new_names_ok*: *path* is a directory in which others adding new
    names is harmless (sticky: they cannot touch what is there)."""
    c = cache if cache is not None else TrustCache()
    # absolute, but not normalised: ".." after a link goes up from where the link led
    asked = path if path.startswith("/") else f"{os.getcwd()}/{path}"
    links: list[str] = []
    verdict = _distrust(asked, uid, new_names_ok, c, links)
    if verdict is not None and (links or verdict.path != os.path.normpath(asked)):
        return replace(verdict, via=" -> ".join([asked, *links]))
    return verdict


def _distrust(
    asked: str, uid: int, new_names_ok: bool, c: TrustCache, links: list[str]
) -> Optional[Distrust]:
    pending = [p for p in reversed(asked.split("/")) if p]
    current = "/"
    verdict = _above("/", uid, c, last=not _more(pending), new_names_ok=new_names_ok)
    if verdict is not None:
        return verdict
    hops = 0
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        if name == "..":
            current = os.path.dirname(current)  # current is a real directory: its parent
            continue
        nxt = current + name if current == "/" else f"{current}/{name}"
        last = not _more(pending)
        if not last:
            known = c.above.get((nxt, uid), _MISSING)
            if known is not _MISSING:
                if known is not None:
                    return known  # type: ignore[return-value]
                current = nxt
                continue
        try:
            st = os.lstat(nxt)
        except FileNotFoundError:
            return _missing(nxt, current, uid, c)
        except OSError as e:
            return Distrust(nxt, uid, f"cannot be checked ({_os_words(e)})")
        except ValueError:
            return Distrust(nxt, uid, "is not a valid path")
        if stat.S_ISLNK(st.st_mode):
            why = _judge(nxt, st, uid, c, entries_ok=False)
            if why is not None:
                return Distrust(nxt, uid, why)
            hops += 1
            if hops > MAX_HOPS:
                return Distrust(nxt, uid, f"leads through more than {MAX_HOPS} symbolic links")
            try:
                target = os.readlink(nxt)
            except OSError as e:
                return Distrust(nxt, uid, f"cannot be read ({_os_words(e)})")
            links.append(target)
            if target.startswith("/"):
                current = "/"
            pending.extend(p for p in reversed(target.split("/")) if p)
            continue
        if not last and not stat.S_ISDIR(st.st_mode):
            return Distrust(nxt, uid, "is not a directory")
        why = _judge(nxt, st, uid, c, entries_ok=not last or new_names_ok)
        verdict = Distrust(nxt, uid, why) if why is not None else None
        if not last:
            c.above[(nxt, uid)] = verdict
        if verdict is not None:
            return verdict
        current = nxt
    return None


def _missing(path: str, parent: str, uid: int, cache: TrustCache) -> Optional[Distrust]:
    """*path* does not exist: whoever can add a name to *parent* (trusted as a directory
    above) can make it, so it is as trusted as *parent* is as a whole (a sticky directory
    others can write is not: anyone may create the name there)."""
    try:
        st = os.lstat(parent)
    except OSError as e:
        return Distrust(path, uid, f"cannot be checked ({_os_words(e)})")
    why = _judge(parent, st, uid, cache, entries_ok=False)
    if why is None:
        return None
    return Distrust(path, uid, f"does not exist, and {parent} {why}: anyone may create it")


def _more(pending: list[str]) -> bool:
    """Whether a name that is neither ``.`` nor empty is still to come."""
    return any(p != "." for p in pending)


def _above(
    directory: str, uid: int, cache: TrustCache, *, last: bool, new_names_ok: bool
) -> Optional[Distrust]:
    """The verdict on ``/`` (as a directory above, or as the object itself)."""
    key = (directory, uid)
    if not last and key in cache.above:
        return cache.above[key]
    try:
        st = os.lstat(directory)
    except OSError as e:
        return Distrust(directory, uid, f"cannot be checked ({_os_words(e)})")
    why = _judge(directory, st, uid, cache, entries_ok=not last or new_names_ok)
    verdict = Distrust(directory, uid, why) if why is not None else None
    if not last:
        cache.above[key] = verdict
    return verdict


def tree_distrust(
    top: str,
    uid: int,
    *,
    cache: Optional[TrustCache] = None,
    limit: int = TREE_LIMIT,
    skip: Iterable[str] = NOT_IMPORTED,
    inert: Iterable[str] = INERT,
) -> Optional[Distrust]:
    """:func:`distrust` of *top*, then of everything below it: every directory and file
    (no sticky exception inside: a directory others can write is one they can plant a
    file in), every symbolic link and where it leads. Directories named in *skip* are
    not entered; regular files named in *inert* are not judged (nothing reads them).
    More than *limit* entries is a refusal too: the tree cannot be shown to be safe in
    reasonable time. The answer is remembered in *cache*."""
    c = cache if cache is not None else TrustCache()
    verdict = distrust(top, uid, cache=c)
    if verdict is not None:
        return verdict
    real = os.path.realpath(top)
    key = (real, uid)
    if key in c.trees:
        return c.trees[key]
    verdict = _walk(real, uid, c, limit, frozenset(skip), frozenset(inert))
    c.trees[key] = verdict
    return verdict


def _walk(
    top: str,
    uid: int,
    cache: TrustCache,
    limit: int,
    skip: frozenset[str],
    inert: frozenset[str],
) -> Optional[Distrust]:
    try:
        if not stat.S_ISDIR(os.lstat(top).st_mode):
            return None  # a file: distrust() judged it
    except OSError as e:
        return Distrust(top, uid, f"cannot be checked ({_os_words(e)})")
    stack = [top]
    seen = 0
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as e:
            return Distrust(d, uid, f"cannot be listed ({_os_words(e)})")
        seen += len(entries)
        if seen > limit:
            return Distrust(top, uid, f"holds more than {limit} entries: too many to check")
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as e:
                return Distrust(entry.path, uid, f"cannot be checked ({_os_words(e)})")
            if stat.S_ISLNK(st.st_mode):
                verdict = distrust(entry.path, uid, cache=cache)  # the link, then its chain
                if verdict is not None:
                    return verdict
                continue
            if entry.name in inert and stat.S_ISREG(st.st_mode):
                continue
            why = _judge(entry.path, st, uid, cache, entries_ok=False)
            if why is not None:
                return Distrust(entry.path, uid, why)
            if stat.S_ISDIR(st.st_mode) and entry.name not in skip:
                stack.append(entry.path)
    return None
