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
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Callable, Optional

from venvkeeper.errors import VenvkeeperError
from venvkeeper.fsutil import write_bytes_atomically
from venvkeeper.model import Backup

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


def exchange(a: str, b: str) -> bool:
    """Swap the names *a* and *b* atomically. False when the kernel or filesystem cannot
    (the caller then renames twice); raises OSError for real failures."""
    f = _get_renameat2()
    if f is None:
        return False
    rc = f(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), a)


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_durably(path: str, data: bytes, mode: int = 0o600) -> None:
    """Temp file beside *path*, fsync, rename, fsync the directory."""
    write_bytes_atomically(path, data, mode, durable=True)


# --- the lock ------------------------------------------------------------------------


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold the venv's lock; :class:`Busy` at once when another process has it."""
    lock = sibling(path, "lock")
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as e:
            raise RepairError(f"cannot create the lock {lock}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise Busy(f"another venvkeeper (pid {holder}) is working on {path}") from None
        # The holder before us may have unlinked the file after we opened it: then our
        # lock is on a dead inode; start again on the live one.
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
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
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


# --- the journal ---------------------------------------------------------------------


@dataclass
class Journal:
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

    @property
    def file(self) -> str:
        return sibling(self.path, "journal")

    def save(self) -> None:
        data = {"version": JOURNAL_VERSION, **asdict(self)}
        write_durably(self.file, json.dumps(data, indent=1).encode())

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.file)
        _fsync_dir(os.path.dirname(self.file))

    @classmethod
    def load(cls, path: str) -> Optional[Journal]:
        file = sibling(path, "journal")
        try:
            with open(file, "rb") as f:
                raw = f.read(1 << 16)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise RecoveryError(f"cannot read the journal {file}: {e.strerror}") from e
        try:
            data = json.loads(raw)
            if data.pop("version") != JOURNAL_VERSION:
                raise ValueError("unknown journal version")
            j = cls(**data)
            j.old_id = (int(j.old_id[0]), int(j.old_id[1]))
            if j.new_id is not None:
                j.new_id = (int(j.new_id[0]), int(j.new_id[1]))
            for p in (j.new, j.backup):
                if os.path.dirname(p) != os.path.dirname(path.rstrip("/")):
                    raise ValueError(f"{p} is not beside {path}")
            return j
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise RecoveryError(
                f"the journal {file} is unreadable ({e}): an interrupted repair of {path} is"
                " not settled; look at the .venvkeeper-* directories beside it, then remove"
                " the journal by hand"
            ) from e


def _remove_tree(path: str, expect: Optional[TreeId]) -> None:
    """Delete *path* only when it is the tree *expect* names (the new build)."""
    if expect is not None and tree_id(path) == expect:
        shutil.rmtree(path, ignore_errors=True)


def _where(j: Journal, which: Optional[TreeId]) -> Optional[str]:
    for p in (j.path, j.new, j.backup):
        if which is not None and tree_id(p) == which:
            return p
    return None


def _put_back(j: Journal) -> None:
    """Put the original back at its path and drop the new tree (any state)."""
    old_at = _where(j, j.old_id)
    if old_at is None:
        raise RecoveryError(
            f"the original of {j.path} is at none of {j.path}, {j.new}, {j.backup}:"
            " nothing was deleted; settle it by hand"
        )
    if old_at != j.path:
        if tree_id(j.path) is not None:
            if not exchange(j.path, old_at):
                tmp = sibling(j.path, "swap-" + stamp())
                os.rename(j.path, tmp)
                os.rename(old_at, j.path)
                os.rename(tmp, old_at)
        else:
            os.rename(old_at, j.path)
    new_at = _where(j, j.new_id) if j.new_id is not None else None
    if j.keep_new:
        if new_at is not None and new_at != j.new and tree_id(j.new) is None:
            os.rename(new_at, j.new)
        return
    if new_at is not None and new_at != j.path:
        _remove_tree(new_at, j.new_id)
    elif j.new_id is None and tree_id(j.new) not in (None, j.old_id):
        shutil.rmtree(j.new, ignore_errors=True)  # a build that never got its id recorded


def _finish(j: Journal) -> None:
    """Complete a swap whose new tree was verified: new at the path, old at the backup."""
    assert j.new_id is not None
    new_at = _where(j, j.new_id)
    if new_at is None:
        raise RecoveryError(f"the new tree for {j.path} is gone; the original is untouched")
    if new_at != j.path:
        if tree_id(j.path) is not None:
            if not exchange(j.path, new_at):
                raise RecoveryError(f"cannot exchange {j.path} and {new_at}")
        else:
            os.rename(new_at, j.path)
    old_at = _where(j, j.old_id)
    if old_at is not None and old_at != j.backup:
        os.rename(old_at, j.backup)
    write_backup_note(j)


def recover(path: str) -> Optional[str]:
    """Settle what an interrupted transaction on *path* left (the caller holds the lock).
    Returns what was done, or None when there was nothing to settle."""
    j = Journal.load(path)
    if j is None:
        return None
    at_path = tree_id(path)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.started))
    if at_path == j.old_id and j.step in ("journal", "built"):
        _put_back(j)
        j.remove()
        return f"undid an interrupted {j.action} (started {when}): the original was untouched"
    if j.new_id is not None and j.step not in ("journal", "built"):
        _finish(j)
        j.remove()
        return (
            f"finished an interrupted {j.action} (started {when}): the verified new venv is"
            f" in place, the original kept at {j.backup}"
        )
    _put_back(j)
    j.remove()
    return f"undid an interrupted {j.action} (started {when}): the original is back"


# --- backups -------------------------------------------------------------------------


def write_backup_note(j: Journal) -> None:
    note = {"venv": j.path, "created": time.time(), "reason": j.action}
    with contextlib.suppress(OSError):
        write_durably(j.backup + ".json", json.dumps(note).encode(), 0o644)


def backups(path: str) -> list[Backup]:
    """The backups kept beside *path*, newest first."""
    parent, name = os.path.split(path.rstrip("/"))
    prefix = f".{name}.venvkeeper-backup-"
    out: list[Backup] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    for e in entries:
        if not e.name.startswith(prefix) or e.name.endswith(".json"):
            continue
        if not e.is_dir(follow_symlinks=False):
            continue
        created, reason = 0.0, "?"
        try:
            with open(e.path + ".json", "rb") as f:
                note = json.loads(f.read(1 << 14))
            created = float(note.get("created", 0))
            reason = str(note.get("reason", "?"))
        except (OSError, ValueError, TypeError, AttributeError):
            with contextlib.suppress(OSError):
                created = e.stat(follow_symlinks=False).st_mtime
        out.append(Backup(e.path, path, created, reason))
    out.sort(key=lambda b: (b.created, b.path), reverse=True)
    return out


def delete_backup(b: Backup) -> None:
    shutil.rmtree(b.path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(b.path + ".json")


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
) -> str:
    """Replace the tree at *path* by what *build* makes in a sibling, once *verify* passes.
    Returns the backup path. The caller holds the lock. With *new* given (a rollback), that
    existing tree is swapped in and *build* only checks it.

    On any exception (or *cancel* set at a step boundary) the original is put back and
    the exception re-raised."""
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
        step("journal")
        build(j.new)
        j.new_id = tree_id(j.new)
        if j.new_id is None or j.new_id == j.old_id:
            raise RepairError(f"the build left nothing at {j.new}")
        j.step = "built"
        j.save()
        step("built")
        verify(j.new)
        j.step = "verified"
        j.save()
        step("verified")
        if exchange(path, j.new):
            step("exchanged")
            os.rename(j.new, j.backup)
        else:
            os.rename(path, j.backup)
            step("exchanged")
            os.rename(j.new, path)
        _fsync_dir(os.path.dirname(path))
        j.step = "swapped"
        step("backed-up")
        write_backup_note(j)
    except BaseException:
        try:
            _put_back(j)
            j.remove()
        except (OSError, VenvkeeperError):
            pass  # the journal stays: the next run settles it
        raise
    j.remove()
    with contextlib.suppress(Exception):  # done: a failing observer cannot undo it
        hook("committed")
    return j.backup
