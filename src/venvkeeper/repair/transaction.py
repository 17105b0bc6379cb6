"""The repair transaction: lock, build beside, verify, swap by rename, keep a backup.

Every change to a venv goes through :func:`transact`. The venv at ``PATH`` is, at every
instant, either the untouched original or the complete, verified new tree:

1. a per-venv lock (``.NAME.venvkeeper-lock`` beside it, ``flock``);
2. a journal (``.NAME.venvkeeper-journal``, written durably) names the original's inode,
   the sibling being built (``.NAME.venvkeeper-new-STAMP``) and the backup name;
3. the new tree is built and verified in the sibling (the original is only read);
4. the swap exchanges the two directories in one ``renameat2(RENAME_EXCHANGE)`` (two
   renames where the filesystem cannot), then the original moves to its backup name
   (``.NAME.venvkeeper-backup-STAMP``);
5. the journal is removed.

A failure, exception or signal before the end puts the original back. A repair killed
outright (SIGKILL, power loss) leaves its journal: :func:`recover` (run by the next
repair, rollback or prune of that venv) tells from the inodes where each tree is and
finishes the swap when the new tree was verified, or undoes it otherwise. Nothing here
deletes a tree the journal does not prove to be the new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import itertools
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

from venvkeeper.errors import VenvkeeperError
from venvkeeper.host import fsutil
from venvkeeper.host.fsutil import load_json, write_bytes_atomically
from venvkeeper.model.repair import Backup
from venvkeeper.repair.safety import (
    NOTE_LIMIT,
    Actor,
    Unsafe,
    check_tree,
    is_sibling,
    open_checked,
    read_checked,
    sibling_pattern,
)

JOURNAL_VERSION = 1

#: The steps a transaction announces to its hook, in order (the fault-injection tests
#: kill or fail the repair at each).
STEPS = (
    "journal",  # the journal is written, nothing built yet
    "created",  # (rebuild) the new venv exists, no package installed yet
    "installed",  # (rebuild) packages installed, extras not carried over yet
    "built",
    "verified",
    "exchanged",  # the new tree is at the path, the original at the sibling's name
    "backed-up",  # the original has its backup name
    "committed",  # the journal is gone: done
)

Hook = Callable[[str], None]
TreeId = tuple[int, int]


class RepairError(VenvkeeperError):
    """A repair of one venv stopped; the venv at its path is the original."""


class Busy(VenvkeeperError):
    """Another venvkeeper process holds the venv's lock."""


class Interrupted(VenvkeeperError):
    """A signal asked the repair to stop."""


class RecoveryError(VenvkeeperError):
    """An interrupted repair left a state that is not safe to settle automatically."""


def sibling(path: str, kind: str) -> str:
    """``/srv/app`` -> ``/srv/.app.venvkeeper-KIND``: on the same filesystem, so a rename
    can swap them; hidden, and skipped by the scan."""
    parent, name = os.path.split(path.rstrip("/"))
    return os.path.join(parent, f".{name}.venvkeeper-{kind}")


_serial = itertools.count(1)


def stamp(now: Optional[float] = None) -> str:
    """A name part that sorts by time and is unique on this host (pid and a serial)."""
    t = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + f"-{os.getpid()}-{next(_serial)}"


def tree_id(path: str) -> Optional[TreeId]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


# --- the swap ------------------------------------------------------------------------

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_libc_lock = threading.Lock()
_renameat2: Optional[Callable[..., int]] = None
_renameat2_known = False


def _get_renameat2() -> Optional[Callable[..., int]]:
    global _renameat2, _renameat2_known
    with _libc_lock:
        if not _renameat2_known:
            _renameat2_known = True
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                f = libc.renameat2
                f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
                f.argtypes += [ctypes.c_uint]
                f.restype = ctypes.c_int
                _renameat2 = f
            except (OSError, AttributeError):
                _renameat2 = None
    return _renameat2


def _renameat2_flags(a: str, b: str, flags: int) -> bool:
    f = _get_renameat2()
    if f is None:
        return False
    rc = f(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), flags)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b)


def exchange(a: str, b: str) -> bool:
    """Swap the names *a* and *b* atomically. False when the kernel or filesystem cannot
    (the caller then renames twice); raises OSError for real failures."""
    return _renameat2_flags(a, b, _RENAME_EXCHANGE)


def rename_new(a: str, b: str) -> None:
    """Rename *a* to *b*, which must not exist: never over something planted there (a
    plain rename would replace an empty directory)."""
    if _renameat2_flags(a, b, _RENAME_NOREPLACE):
        return
    if os.path.lexists(b):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), b)
    os.rename(a, b)


def write_durably(path: str, data: bytes, mode: int = 0o600) -> None:
    """Temp file beside *path*, fsync, rename, fsync the directory."""
    write_bytes_atomically(path, data, mode, durable=True)


# --- the lock ------------------------------------------------------------------------


@contextlib.contextmanager
def locked(path: str, actor: Optional[Actor] = None) -> Iterator[None]:
    """Hold the venv's lock; :class:`Busy` at once when another process has it. The lock
    file must be the acting user's regular file with one link (:mod:`.safety`)."""
    actor = actor or Actor.me()
    lock = sibling(path, "lock")
    with actor.beside():
        while True:
            try:
                fd = open_checked(lock, os.O_RDWR | os.O_CREAT, actor, f"the lock {lock}")
            except OSError as e:
                raise RepairError(f"cannot create the lock {lock}: {e.strerror}") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip()
                os.close(fd)
                holder = holder if holder.isdigit() else "?"
                raise Busy(f"another venvkeeper (pid {holder}) is working on {path}") from None
            # The holder before us may have unlinked the file after we opened it: then our
            # lock is on a dead inode; start again on the live one.
            try:
                same = os.fstat(fd).st_ino == os.lstat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with actor.beside():
            with contextlib.suppress(OSError):
                if os.lstat(lock).st_ino == os.fstat(fd).st_ino:
                    os.unlink(lock)
            os.close(fd)


# --- the journal ---------------------------------------------------------------------

_STEP_NAMES = frozenset({"journal", "built", "verified", "swapped"})


@dataclass
class Journal:
    """The on-disk record of a transaction in progress, enough to undo it after a crash."""

    path: str
    new: str
    backup: str
    action: str  # "repair (rebuild)", "rollback", ...
    old_id: TreeId
    new_id: Optional[TreeId] = None
    step: str = "journal"
    keep_new: bool = False  # the "new" tree existed before (a rollback's backup)
    pid: int = 0
    started: float = 0.0
    groups: list[int] = field(default_factory=list)  # process groups of our installers

    @property
    def file(self) -> str:
        return sibling(self.path, "journal")

    def save(self) -> None:
        data = {"version": JOURNAL_VERSION, **asdict(self)}
        write_durably(self.file, json.dumps(data, indent=1).encode())

    def add_group(self, pgid: int) -> None:
        """An installer started as the leader of process group *pgid*: recorded before it
        can do anything, so that a run killed outright can end it (:func:`recover`)."""
        if pgid not in self.groups:
            self.groups.append(pgid)
            self.save()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.file)
        fsutil.fsync_dir(os.path.dirname(self.file))

    @classmethod
    def load(cls, path: str, actor: Optional[Actor] = None) -> Optional[Journal]:
        """The journal of *path*, checked: the acting user's regular file with one link,
        naming this venv and only its own siblings. :class:`~.safety.Unsafe` for a
        journal that is not ours, :class:`RecoveryError` for one we cannot read."""
        actor = actor or Actor.me()
        file = sibling(path, "journal")
        try:
            raw = read_checked(file, actor, f"the journal {file}")
        except OSError as e:
            raise RecoveryError(f"cannot read the journal {file}: {e.strerror}") from e
        if raw is None:
            return None
        try:
            data = load_json(raw, limit_bytes=NOTE_LIMIT, max_depth=4)
            if not isinstance(data, dict) or data.pop("version", None) != JOURNAL_VERSION:
                raise ValueError("unknown journal version")
            j = cls(**data)
            j.old_id = _tree_id_of(j.old_id)
            j.new_id = None if j.new_id is None else _tree_id_of(j.new_id)
            j.groups = [int(g) for g in j.groups if int(g) > 1]
            if not all(isinstance(x, str) for x in (j.path, j.new, j.backup, j.action)):
                raise TypeError("a name is not a string")
            if j.step not in _STEP_NAMES or not isinstance(j.keep_new, bool):
                raise ValueError(f"unknown step {j.step!r}")
            j.pid, j.started = int(j.pid), float(j.started)
        except (ValueError, TypeError, KeyError, IndexError, RecursionError) as e:
            raise RecoveryError(
                f"the journal {file} is unreadable ({type(e).__name__}): an interrupted"
                f" repair of {path} is not settled; look at the .venvkeeper-* directories"
                " beside it, then remove the journal by hand"
            ) from e
        if j.path != path:
            raise Unsafe(
                f"the journal {file} names {j.path!r}, not {path}: not venvkeeper's;"
                " refused and left as it is; nothing was changed"
            )
        for p, kinds in ((j.new, "new|backup" if j.keep_new else "new"), (j.backup, "backup")):
            if not is_sibling(path, p, kinds):
                raise Unsafe(
                    f"the journal {file} names {p!r}, which is not a venvkeeper {kinds}"
                    f" directory beside {path}: refused and left as it is; nothing was changed"
                )
        return j


def _tree_id_of(value: object) -> TreeId:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError("a tree id is a pair")
    return (int(value[0]), int(value[1]))


def _tree(p: str, actor: Actor, expect: Optional[TreeId]) -> Optional[TreeId]:
    """The id of the tree at *p* when it is *expect* and a real directory of ours."""
    got = tree_id(p)
    if got is None or got != expect:
        return None
    check_tree(p, actor, "the tree")
    return got


def _remove_tree(path: str, expect: Optional[TreeId], actor: Actor) -> None:
    """Delete *path* only when it is the tree *expect* names (the new build)."""
    if expect is not None and _tree(path, actor, expect) == expect:
        shutil.rmtree(path, ignore_errors=True)


def _where(j: Journal, which: Optional[TreeId], actor: Actor) -> Optional[str]:
    for p in (j.path, j.new, j.backup):
        if which is not None and _tree(p, actor, which) == which:
            return p
    return None


def _put_back(j: Journal, actor: Actor) -> None:
    """Put the original back at its path and drop the new tree (any state)."""
    old_at = _where(j, j.old_id, actor)
    if old_at is None:
        raise RecoveryError(
            f"the original of {j.path} is at none of {j.path}, {j.new}, {j.backup}:"
            " nothing was deleted; settle it by hand"
        )
    if old_at != j.path:
        if tree_id(j.path) is not None:
            if not exchange(j.path, old_at):
                tmp = sibling(j.path, "swap-" + stamp())
                rename_new(j.path, tmp)
                rename_new(old_at, j.path)
                rename_new(tmp, old_at)
        else:
            rename_new(old_at, j.path)
    new_at = _where(j, j.new_id, actor) if j.new_id is not None else None
    if j.keep_new:
        if new_at is not None and new_at != j.new and tree_id(j.new) is None:
            rename_new(new_at, j.new)
        return
    if new_at is not None and new_at != j.path:
        _remove_tree(new_at, j.new_id, actor)
    elif j.new_id is None:
        # Created and never recorded: only an empty directory can be ours for sure.
        with contextlib.suppress(OSError):
            check_tree(j.new, actor, "the build")
            os.rmdir(j.new)


def _finish(j: Journal, actor: Actor) -> None:
    """Complete a swap whose new tree was verified: new at the path, old at the backup."""
    assert j.new_id is not None
    new_at = _where(j, j.new_id, actor)
    if new_at is None:
        raise RecoveryError(f"the new tree for {j.path} is gone; the original is untouched")
    if new_at != j.path:
        if tree_id(j.path) is not None:
            if not exchange(j.path, new_at):
                raise RecoveryError(f"cannot exchange {j.path} and {new_at}")
        else:
            rename_new(new_at, j.path)
    old_at = _where(j, j.old_id, actor)
    if old_at is not None and old_at != j.backup:
        rename_new(old_at, j.backup)
    write_backup_note(j)


def _end_groups(j: Journal, actor: Actor, proc: str = "/proc") -> None:
    """End what is left of the installers a killed run started: the processes of the
    recorded process groups that started after the run did and run as the acting user or
    the venv's owner (a reused group id of anybody else's is left alone)."""
    if not j.groups:
        return
    try:
        text = fsutil.read_open(os.path.join(proc, "stat"), 1 << 20)[0]
        btime = next(
            int(line.split()[1]) for line in text.splitlines() if line.startswith(b"btime ")
        )
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError):
        return
    wanted = set(j.groups)
    victims: list[int] = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            st = os.stat(os.path.join(proc, name))
            data = fsutil.read_open(os.path.join(proc, name, "stat"), 4096)[0]
            fields = data.rsplit(b")", 1)[1].split()
            pgrp, start = int(fields[2]), int(fields[19]) / tick + btime
        except (OSError, IndexError, ValueError):
            continue
        if pgrp in wanted and st.st_uid in actor.tree_owners and start >= j.started - 1:
            victims.append(int(name))
    for pid in victims:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while victims and time.monotonic() < deadline:
        victims = [p for p in victims if os.path.exists(os.path.join(proc, str(p)))]
        if victims:
            time.sleep(0.05)


def recover(path: str, actor: Optional[Actor] = None) -> Optional[str]:
    """Settle what an interrupted transaction on *path* left (the caller holds the lock).
    Returns what was done, or None when there was nothing to settle."""
    actor = actor or Actor.me()
    with actor.beside():
        j = Journal.load(path, actor)
        if j is None:
            return None
        _end_groups(j, actor)
        at_path = tree_id(path)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.started))
        if at_path == j.old_id and j.step in ("journal", "built"):
            _put_back(j, actor)
            j.remove()
            return f"undid an interrupted {j.action} (started {when}): the original was untouched"
        if j.new_id is not None and j.step not in ("journal", "built"):
            _finish(j, actor)
            j.remove()
            return (
                f"finished an interrupted {j.action} (started {when}): the verified new venv"
                f" is in place, the original kept at {j.backup}"
            )
        _put_back(j, actor)
        j.remove()
        return f"undid an interrupted {j.action} (started {when}): the original is back"


# --- backups -------------------------------------------------------------------------


def write_backup_note(j: Journal) -> None:
    note = {"venv": j.path, "created": time.time(), "reason": j.action}
    with contextlib.suppress(OSError, VenvkeeperError):
        write_durably(j.backup + ".json", json.dumps(note).encode(), 0o644)


def _note(path: str, actor: Actor) -> tuple[float, str]:
    try:
        raw = read_checked(path, actor, f"the backup note {path}")
        note = load_json(raw, limit_bytes=NOTE_LIMIT, max_depth=2) if raw is not None else None
        if isinstance(note, dict):
            return float(note.get("created", 0)), str(note.get("reason", "?"))
    except (OSError, ValueError, TypeError, RecursionError, VenvkeeperError):
        pass
    return 0.0, "?"


def backups(path: str, actor: Optional[Actor] = None) -> list[Backup]:
    """The backups kept beside *path*, newest first: real directories of the acting user
    or the venv's owner, named exactly as venvkeeper names them. Anything else that
    looks like one is not listed (so never restored nor deleted)."""
    actor = actor or Actor.me()
    parent = os.path.dirname(path.rstrip("/"))
    pattern = sibling_pattern(path, "backup")
    out: list[Backup] = []
    with actor.beside():
        try:
            entries = list(os.scandir(parent))
        except OSError:
            return []
        for e in entries:
            if not pattern.fullmatch(e.name):
                continue
            try:
                st = check_tree(e.path, actor, "the backup")
            except (OSError, Unsafe):
                continue
            created, reason = _note(e.path + ".json", actor)
            out.append(Backup(e.path, path, created or st.st_mtime, reason))
    out.sort(key=lambda b: (b.created, b.path), reverse=True)
    return out


def foreign_backups(path: str, actor: Optional[Actor] = None) -> list[str]:
    """Entries named like backups of *path* that :func:`backups` does not accept."""
    actor = actor or Actor.me()
    parent = os.path.dirname(path.rstrip("/"))
    prefix = f".{os.path.basename(path.rstrip('/'))}.venvkeeper-backup-"
    ours = {b.path for b in backups(path, actor)}
    with actor.beside():
        try:
            names = os.listdir(parent)
        except OSError:
            return []
    return sorted(
        os.path.join(parent, n)
        for n in names
        if n.startswith(prefix) and not n.endswith(".json") and os.path.join(parent, n) not in ours
    )


def delete_backup(b: Backup, actor: Optional[Actor] = None) -> None:
    actor = actor or Actor.me()
    with actor.beside():
        check_tree(b.path, actor, "the backup")
        shutil.rmtree(b.path)
        note = b.path + ".json"
        with contextlib.suppress(OSError, Unsafe):
            os.close(open_checked(note, os.O_RDONLY, actor, f"the backup note {note}"))
            os.unlink(note)


# --- the transaction -----------------------------------------------------------------


def _noop(step: str) -> None:
    return None


def transact(
    path: str,
    action: str,
    build: Callable[[str], None],
    verify: Callable[[str], None],
    *,
    hook: Hook = _noop,
    cancel: Optional[threading.Event] = None,
    new: Optional[str] = None,
    actor: Optional[Actor] = None,
    on_journal: Optional[Callable[[Journal], None]] = None,
) -> str:
    """Replace the tree at *path* by what *build* makes in a sibling, once *verify* passes.
    Returns the backup path. The caller holds the lock. With *new* given (a rollback), that
    existing tree is swapped in and *build* only checks it.

    The sibling is created here (as the acting user, given to the venv's owner); *build*
    and *verify* run as the venv's owner (:class:`~.safety.Actor`). *on_journal* sees the
    journal before the build starts (to record the installers' process groups in it).

    On any exception (or *cancel* set at a step boundary) the original is put back and
    the exception re-raised."""
    actor = actor or Actor.me()
    with actor.beside():
        return _transact(path, action, build, verify, hook, cancel, new, actor, on_journal)


def _transact(
    path: str,
    action: str,
    build: Callable[[str], None],
    verify: Callable[[str], None],
    hook: Hook,
    cancel: Optional[threading.Event],
    new: Optional[str],
    actor: Actor,
    on_journal: Optional[Callable[[Journal], None]],
) -> str:
    s = stamp()
    while any(
        os.path.lexists(sibling(path, f"{k}-{s}")) for k in ("new", "backup")
    ):  # pragma: no cover - a clock stepped back onto an older run of the same pid
        s = stamp()
    st = os.lstat(path)
    j = Journal(
        path=path,
        new=new or sibling(path, "new-" + s),
        backup=sibling(path, "backup-" + s),
        action=action,
        old_id=(st.st_dev, st.st_ino),
        pid=os.getpid(),
        started=time.time(),
    )
    if new is not None:
        j.new_id = tree_id(new)
        j.keep_new = True

    def step(name: str) -> None:
        if cancel is not None and cancel.is_set():
            raise Interrupted(f"interrupted before {name}")
        hook(name)

    j.save()
    try:
        if new is None:
            os.mkdir(j.new, 0o700)
            if actor.uid != actor.owner_uid:
                os.chown(j.new, actor.owner_uid, actor.owner_gid)
            j.new_id = tree_id(j.new)
            j.save()
        if on_journal is not None:
            on_journal(j)
        step("journal")
        with actor.inside():
            build(j.new)
        if tree_id(j.new) != j.new_id or j.new_id is None or j.new_id == j.old_id:
            raise RepairError(f"the build left nothing at {j.new}")
        check_tree(j.new, actor, "the build")
        j.step = "built"
        j.save()
        step("built")
        with actor.inside():
            verify(j.new)
        j.step = "verified"
        j.save()
        step("verified")
        if exchange(path, j.new):
            step("exchanged")
            rename_new(j.new, j.backup)
        else:
            rename_new(path, j.backup)
            step("exchanged")
            rename_new(j.new, path)
        fsutil.fsync_dir(os.path.dirname(path))
        j.step = "swapped"
        step("backed-up")
        write_backup_note(j)
    except BaseException:
        try:
            _put_back(j, actor)
            j.remove()
        except (OSError, VenvkeeperError):
            pass  # the journal stays: the next run settles it
        raise
    j.remove()
    with contextlib.suppress(Exception):  # done: a failing observer cannot undo it
        hook("committed")
    return j.backup
