"""Walk the roots and yield candidate venv directories, fast.

The walk never follows symlinks, never descends into a venv (inspection reads what it
needs), prunes pseudo and (by default) network filesystems, and counts every directory it
could not read instead of raising. Work is a shared LIFO stack of directories, so memory
stays proportional to depth times fan-out, not to the size of the tree; results stream out
as they are found.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import os
import pickle
import queue
import re
import signal
import stat
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from venvkeeper.errors import VenvkeeperError, worker_failed
from venvkeeper.host import fsutil
from venvkeeper.host.mounts import Mount
from venvkeeper.model.report import Alias, CondaEnv
from venvkeeper.model.venv import VenvKind
from venvkeeper.scan.creators import conda_python
from venvkeeper.scan.incremental import (
    BIN,
    CFG,
    CONDA,
    LIB,
    Fingerprint,
    Listing,
    fingerprint,
    listing_matches,
    racy_threshold,
)

MAX_DEPTH = 200

#: Directories that never hold a venv and are often huge: version-control internals and
#: bytecode caches. Not descended into unless WalkOptions.all_dirs (``--all-dirs``).
NEVER_VENV = frozenset({".git", ".hg", ".svn", ".bzr", "__pycache__"})

#: Image and container-runtime storage (layers: many copies of one image's files, changed
#: by rebuilding the image, not in place), and kernel filesystems in case the mount table
#: could not be read. Not walked unless WalkOptions.all_dirs.
NEVER_PATHS = frozenset(
    {
        "/proc", "/sys", "/dev",
        "/var/lib/docker", "/var/lib/containers", "/var/lib/containerd",
        "/var/lib/kubelet/pods", "/snap",
    }
)  # fmt: skip
#: Stores of whole OS roots (systemd-nspawn machines, LXC and LXD containers): walked
#: when their venvs are judged as each root sees them (WalkOptions.other_roots, the
#: default), skipped like NEVER_PATHS otherwise (judged by this host's paths they would
#: all look broken).
ROOT_STORES = frozenset({"/var/lib/machines", "/var/lib/lxc", "/var/lib/lxd"})
_EXAMPLES = 20


@dataclass(frozen=True)
class Candidate:
    """A directory the walk takes for a venv (or a conda environment)."""

    path: str
    kind: VenvKind
    #: taken by the walk as it finds the venv (WalkOptions.fingerprints), so that in a walk
    #: beside the inspection it costs the inspecting process nothing
    fingerprint: Optional[Fingerprint] = None


Found = Union[Candidate, Alias, CondaEnv]


@dataclass(frozen=True)
class WalkOptions:
    """How the walk goes: excludes, which filesystems, the mount table, the workers."""

    exclude: tuple[str, ...] = ()
    one_file_system: bool = False
    include_network: bool = False
    mounts: tuple[Mount, ...] = ()
    workers: int = 1
    all_dirs: bool = False  # also descend into NEVER_VENV directories
    other_roots: bool = True  # OS roots are judged as roots of their own: walk ROOT_STORES
    #: the listings of the last scan, reused while a directory's stat is unchanged
    known: Mapping[str, Listing] = field(default_factory=dict)
    #: gather every listing made or reused into WalkStats.listings (for the next scan)
    collect: bool = False
    #: fingerprint each venv found (Candidate.fingerprint); *checks* give, by venv, what
    #: to look at again (the checks of its last fingerprint, NUL-separated)
    fingerprints: bool = False
    checks: Mapping[str, str] = field(default_factory=dict)
    #: of the venvs found, the share the walk fingerprints (the others are fingerprinted
    #: by the caller: in a walk beside an incremental scan, the walk's side is the longer)
    fingerprint_share: float = 1.0
    #: how many of *known* lie under the roots: a walk that reuses exactly these and lists
    #: nothing anew changed nothing (WalkStats.unchanged); -1 when not known
    expect_reused: int = -1


@dataclass
class WalkStats:
    """Filled in while walking; read once the walk is done."""

    directories: int = 0
    entries: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[tuple[str, str]] = field(default_factory=list)
    reused: int = 0  # directories whose listing of the last scan was reused
    #: with WalkOptions.collect: the listings made anew, and the paths of those reused
    listings: dict[str, Listing] = field(default_factory=dict)
    reused_paths: list[str] = field(default_factory=list)
    #: the walk reused every known listing under its roots and made none anew
    unchanged: bool = False

    def skip(self, path: str, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append((path, reason))

    def merge(self, other: WalkStats) -> None:
        self.directories += other.directories
        self.entries += other.entries
        self.reused += other.reused
        self.listings.update(other.listings)
        self.reused_paths += other.reused_paths
        self.unchanged = self.unchanged or other.unchanged
        self.skipped.update(other.skipped)
        room = _EXAMPLES - len(self.examples)
        if room > 0:
            self.examples.extend(other.examples[:room])


def compile_excludes(globs: Iterable[str]) -> Callable[[str, str], bool]:
    """A predicate ``(path, name) -> excluded``. A glob with a ``/`` matches the whole path,
    one without matches the directory's name (as in rsync and fd)."""
    by_name = [fnmatch.translate(g) for g in globs if "/" not in g]
    by_path = [fnmatch.translate(g.rstrip("/")) for g in globs if "/" in g]
    name_re = re.compile("|".join(by_name)) if by_name else None
    path_re = re.compile("|".join(by_path)) if by_path else None

    def excluded(path: str, name: str) -> bool:
        return bool(
            (name_re is not None and name_re.match(name))
            or (path_re is not None and path_re.match(path))
        )

    return excluded


class _Walker:
    def __init__(self, options: WalkOptions) -> None:
        self.options = options
        self.excluded = compile_excludes(options.exclude)
        self.has_excludes = bool(options.exclude)
        self.never = frozenset() if options.all_dirs else NEVER_VENV
        self.never_paths: frozenset[str] = frozenset()
        if not options.all_dirs:
            self.never_paths = NEVER_PATHS | (frozenset() if options.other_roots else ROOT_STORES)
        skip: dict[str, str] = {}
        for m in options.mounts:
            if m.is_pseudo:
                skip[m.mountpoint] = "pseudo-filesystem"
            elif m.is_network and not options.include_network:
                skip[m.mountpoint] = "network-filesystem"
            else:
                skip.pop(m.mountpoint, None)  # a later mount over the same point wins
        self.skip_mounts = skip
        self.mountpoints = frozenset(m.mountpoint for m in options.mounts)
        self.seen_mounts: set[tuple[int, int]] = set()
        self.seen_lock = threading.Lock()
        self.known = options.known
        self.collect = options.collect
        self.racy_after = racy_threshold()
        self._owed = 0.0  # fingerprints owed to the share the walk takes
        self._fingerprinting = threading.local()

    # One directory: list it once, decide venv or not, return the subdirectories to visit.
    def visit(
        self, path: str, depth: int, dev: int, stats: WalkStats, emit: Callable[[Found], None]
    ) -> list[tuple[str, int, int]]:
        st: Optional[os.stat_result] = None
        rec: Optional[Listing] = None
        subdirs: Sequence[str]
        aliases: Sequence[str]
        if self.known or self.collect:
            # stat before listing: a change made meanwhile shows next time
            try:
                st = os.stat(path)
            except OSError as e:
                stats.skip(path, fsutil.os_error_reason(e))
                return []
            rec = self.known.get(path)
            if rec is not None and not listing_matches(rec, st):
                rec = None
        if rec is not None:
            stats.reused += 1
            if self.collect:
                stats.reused_paths.append(path)
            _, _, _, _, count, flags, subdirs, aliases = rec
            cfg, has_bin = bool(flags & CFG), bool(flags & BIN)
            has_lib, has_conda = bool(flags & LIB), bool(flags & CONDA)
        else:
            try:
                with os.scandir(path) as it:
                    entries = list(it)
            except OSError as e:
                stats.skip(path, fsutil.os_error_reason(e))
                return []
            count = len(entries)
            cfg = False  # a pyvenv.cfg of any type: inspection judges a FIFO or a directory
            has_bin = has_lib = has_conda = False
            dir_list: list[str] = []
            alias_list: list[str] = []
            failed = False
            for entry in entries:
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        dir_list.append(name)
                        if name == "bin":
                            has_bin = True
                        elif name == "lib":
                            has_lib = True
                        elif name == "conda-meta":
                            has_conda = True
                        elif name == "pyvenv.cfg":
                            cfg = True
                    elif name == "pyvenv.cfg":
                        cfg = True
                    elif name == ".venv" and entry.is_symlink():
                        alias_list.append(name)
                except OSError as err:
                    failed = True
                    stats.skip(entry.path, fsutil.os_error_reason(err))
            subdirs, aliases = dir_list, alias_list
            if (
                st is not None
                and self.collect
                and not failed
                and st.st_mtime_ns < self.racy_after
                and st.st_ctime_ns < self.racy_after
            ):
                flags = (
                    (CFG if cfg else 0)
                    | (BIN if has_bin else 0)
                    | (LIB if has_lib else 0)
                    | (CONDA if has_conda else 0)
                )
                stats.listings[path] = [
                    st.st_dev,
                    st.st_ino,
                    st.st_mtime_ns,
                    st.st_ctime_ns,
                    count,
                    flags,
                    dir_list,
                    alias_list,
                ]
        stats.directories += 1
        stats.entries += count
        base = path if path.endswith("/") else path + "/"
        for name in aliases:
            self.alias(base + name, stats, emit)
        if cfg:
            if has_bin:
                # A venv root, even when pyvenv.cfg is a FIFO or a directory: inspection
                # reports that. Never descend.
                emit(self.candidate(path, VenvKind.VENV))
                return []
            stats.skip(path, "pyvenv-cfg-without-bin")
        if has_conda:
            emit(CondaEnv(path, conda_python(path)))
            return [(base + "envs", depth + 1, dev)] if "envs" in subdirs else []
        if has_bin and has_lib and _is_legacy_virtualenv(base):
            emit(self.candidate(path, VenvKind.LEGACY_VIRTUALENV))
            return []
        if depth >= MAX_DEPTH:
            if subdirs:
                stats.skip(path, "too-deep")
            return []
        out: list[tuple[str, int, int]] = []
        for name in subdirs:
            if name in self.never:
                continue
            if name[0] == "." and ".venvkeeper-" in name and self.never:
                # a repair's backup or build (judged by `venvkeeper rollback --list`)
                stats.skip(base + name, "venvkeeper-backup")
                continue
            child = base + name
            if child in self.never_paths and child not in self.skip_mounts:
                stats.skip(child, "not-this-host")
                continue
            if self.has_excludes and self.excluded(child, name):
                stats.skip(child, "excluded")
                continue
            child_dev = dev
            if child in self.mountpoints:
                reason = self.skip_mounts.get(child)
                if reason is not None:
                    stats.skip(child, reason)
                    continue
                try:
                    st = os.lstat(child)
                except OSError as e:
                    stats.skip(child, fsutil.os_error_reason(e))
                    continue
                with self.seen_lock:
                    key = (st.st_dev, st.st_ino)
                    if key in self.seen_mounts:  # a bind mount looping back
                        stats.skip(child, "mount-loop")
                        continue
                    self.seen_mounts.add(key)
                child_dev = st.st_dev
                if self.options.one_file_system and child_dev != dev:
                    stats.skip(child, "other-filesystem")
                    continue
            elif self.options.one_file_system:
                try:
                    child_dev = os.lstat(child).st_dev
                except OSError as e:
                    stats.skip(child, fsutil.os_error_reason(e))
                    continue
                if child_dev != dev:
                    stats.skip(child, "other-filesystem")
                    continue
            out.append((child, depth + 1, child_dev))
        return out

    def candidate(self, path: str, kind: VenvKind) -> Candidate:
        if not self.options.fingerprints:
            return Candidate(path, kind)
        share = self.options.fingerprint_share
        if share < 1.0:
            self._owed += share
            if self._owed < 1.0:
                return Candidate(path, kind)  # the caller's to fingerprint
            self._owed -= 1.0
        known = self.options.checks.get(path)
        checks = known.split("\0") if known else None
        t0 = time.perf_counter()
        fp = fingerprint(path, kind, self.racy_after, checks)
        tl = self._fingerprinting
        tl.seconds = getattr(tl, "seconds", 0.0) + time.perf_counter() - t0
        return Candidate(path, kind, fp)

    def fingerprint_seconds(self) -> float:
        """The time this thread spent fingerprinting venvs (the stats of a venv's files,
        not a directory's listing: it does not tell a slow device)."""
        return float(getattr(self._fingerprinting, "seconds", 0.0))

    def alias(self, link: str, stats: WalkStats, emit: Callable[[Found], None]) -> None:
        try:
            target = os.path.realpath(link)
            st = os.stat(target)
        except (OSError, ValueError, RuntimeError):
            stats.skip(link, "dangling-venv-alias")
            return
        if stat.S_ISDIR(st.st_mode) and fsutil.lexists(os.path.join(target, "pyvenv.cfg")):
            emit(Alias(link, target))


def _is_legacy_virtualenv(base: str) -> bool:
    """virtualenv < 20: ``lib/pythonX.Y/orig-prefix.txt`` beside a ``bin/python``."""
    if not fsutil.lexists(base + "bin/python"):
        return False
    for e in fsutil.listdir(base + "lib"):
        if e.name.startswith("python") and fsutil.lexists(e.path + "/orig-prefix.txt"):
            return True
    return False


def walk(
    roots: Sequence[str], options: WalkOptions, stats: Optional[WalkStats] = None
) -> Iterator[Found]:
    """Yield every venv, legacy virtualenv, conda environment and ``.venv`` alias under
    *roots*, as found. *stats* (if given) is filled in; read it after the iterator ends."""
    stats = stats if stats is not None else WalkStats()
    walker = _Walker(options)
    start: list[tuple[str, int, int]] = []
    for root in _normalize_roots(roots):
        try:
            st = os.stat(root)
        except OSError as e:
            stats.skip(root, fsutil.os_error_reason(e))
            continue
        if not stat.S_ISDIR(st.st_mode):
            stats.skip(root, "not-a-directory")
            continue
        start.append((root, 0, st.st_dev))
        # A bind mount of a root below itself is then recognised as a loop.
        walker.seen_mounts.add((st.st_dev, st.st_ino))
    if options.workers <= 1:
        yield from _walk_serial(walker, start, stats)
    else:
        yield from _walk_parallel(walker, start, stats, options.workers)
    if not stats.listings and stats.reused == options.expect_reused:
        stats.unchanged = True


def _normalize_roots(roots: Sequence[str]) -> list[str]:
    """Absolute, without duplicates, and without roots nested inside another root."""
    seen: list[str] = []
    for r in sorted({os.path.abspath(r) for r in roots}):
        if not any(r == s or r.startswith(s.rstrip("/") + "/") for s in seen):
            seen.append(r)
    return seen


def _walk_serial(
    walker: _Walker, start: list[tuple[str, int, int]], stats: WalkStats
) -> Iterator[Found]:
    found: list[Found] = []
    emit = found.append
    stack = list(reversed(start))
    while stack:
        path, depth, dev = stack.pop()
        try:
            children = walker.visit(path, depth, dev, stats, emit)
        except Exception as e:  # a bug: one line, not a traceback
            raise worker_failed(e, f"walking {path}") from e
        if children:
            children.reverse()
            stack.extend(children)
        if found:
            yield from found
            found.clear()


_DONE = object()
#: A directory whose listing took this long beyond its size was read from the device, not
#: the cache: more walkers then overlap that waiting. On a warm cache extra threads only
#: fight over the GIL, so they park again after a streak of fast listings.
_SLOW_SECONDS = 0.0003
_PER_ENTRY_SECONDS = 0.000002
_WAKE_AFTER_SLOW = 3
_PARK_AFTER_FAST = 4096


def _walk_parallel(
    walker: _Walker, start: list[tuple[str, int, int]], stats: WalkStats, workers: int
) -> Iterator[Found]:
    """The calling thread walks depth-first on its own stack, exactly as the serial walk
    does, and so does whoever consumes the results (inspection) between two directories:
    on a warm cache that single thread is the fastest there is, since threads would only
    fight over the GIL. Up to ``workers - 1`` helper walkers sleep until listings turn
    slow (a cold cache, NFS), then share the work, and park again after a streak of fast
    listings. A walker hands half of a new batch of subdirectories to the shared stack only
    while a helper is awake and idle."""
    helpers = workers - 1
    shared: list[tuple[str, int, int]] = []
    cv = threading.Condition()
    state = {"limit": 1, "idle": 0, "slow": 0, "fast": 0, "finished": 0}
    failed: list[BaseException] = []  # what a helper raised: ends the walk
    out: queue.SimpleQueue[Found] = queue.SimpleQueue()
    clock = time.perf_counter

    def note(elapsed: float, entries: int) -> None:
        # Counters are hints read and written without the lock; acting on them takes it.
        if elapsed - entries * _PER_ENTRY_SECONDS > _SLOW_SECONDS:
            state["fast"] = 0
            state["slow"] += 1
            if state["slow"] >= _WAKE_AFTER_SLOW and state["limit"] == 1:
                with cv:
                    state["limit"] = workers
                    state["slow"] = 0
                    cv.notify_all()
        else:
            state["fast"] += 1
            if state["fast"] >= _PARK_AFTER_FAST:
                state["slow"] = state["fast"] = 0
                state["limit"] = 1

    def step(
        item: tuple[str, int, int], local: WalkStats, emit: Callable[[Found], None]
    ) -> list[tuple[str, int, int]]:
        before = local.entries
        fp0 = walker.fingerprint_seconds()
        t0 = clock()
        children = walker.visit(item[0], item[1], item[2], local, emit)
        note(clock() - t0 - (walker.fingerprint_seconds() - fp0), local.entries - before)
        if not children:
            return children
        children.reverse()
        if state["idle"] and state["limit"] > 1 and len(children) > 1:
            with cv:
                half = len(children) // 2
                shared.extend(children[:half])
                children = children[half:]
                cv.notify_all()
        return children

    def helper(ident: int) -> None:
        local = WalkStats()
        mine: list[tuple[str, int, int]] = []
        try:
            while True:
                if ident >= state["limit"] and mine:
                    with cv:  # parked: hand the work back
                        shared.extend(mine)
                        mine.clear()
                        cv.notify_all()
                if not mine:
                    with cv:
                        state["idle"] += 1
                        cv.notify_all()
                        while not state["finished"] and (not shared or ident >= state["limit"]):
                            cv.wait()
                        state["idle"] -= 1
                        if state["finished"]:
                            return
                        mine.append(shared.pop())
                item = mine.pop()
                try:
                    mine.extend(step(item, local, out.put))
                except BaseException as e:  # handed to the walk's thread
                    with cv:
                        failed.append(worker_failed(e, f"walking {item[0]}"))
                        state["finished"] = 1
                        cv.notify_all()
                    return
        finally:
            with cv:
                stats.merge(local)

    threads = [threading.Thread(target=helper, args=(i,), daemon=True) for i in range(1, workers)]
    for t in threads:
        t.start()
    found: list[Found] = []
    mine = list(reversed(start))
    try:
        while True:
            while True:  # what the helpers found
                try:
                    found.append(out.get_nowait())
                except queue.Empty:
                    break
            if found:
                yield from found
                found.clear()
            if failed:
                raise failed[0]
            if not mine:
                with cv:
                    if shared:
                        mine.append(shared.pop())
                    elif state["idle"] == helpers:
                        break  # nothing queued and every helper idle: done
                    else:
                        cv.wait(0.05)
                        continue
            item = mine.pop()
            try:
                mine.extend(step(item, stats, found.append))
            except Exception as e:
                raise worker_failed(e, f"walking {item[0]}") from e
    finally:
        with cv:
            state["finished"] = 1
            cv.notify_all()
        for t in threads:
            t.join()
    while True:
        try:
            found.append(out.get_nowait())
        except queue.Empty:
            break
    yield from found


def walk_beside(
    roots: Sequence[str], options: WalkOptions, stats: Optional[WalkStats] = None
) -> Iterator[Found]:
    """:func:`walk` in a forked child process, streaming what it finds through a pipe, so
    that the caller can inspect venvs on another core while the walk goes on: on a
    machine with two cores and a warm cache that overlaps the two halves of a scan.

    Falls back to :func:`walk` in this process when forking is not safe (other threads
    are running: a child would inherit their locks) or not possible.
    """
    stats = stats if stats is not None else WalkStats()
    if not hasattr(os, "fork") or threading.active_count() > 1 or (os.cpu_count() or 1) < 2:
        yield from walk(roots, options, stats)
        return
    try:
        rfd, wfd = os.pipe()
        pid = os.fork()
    except OSError:
        yield from walk(roots, options, stats)
        return
    if pid == 0:  # the child: walk, send, and leave without running any exit handler
        code = 0
        gc.disable()  # it makes no cycles and lives for one walk
        try:
            os.close(rfd)
            out = os.fdopen(wfd, "wb")
            try:
                child_stats = WalkStats()
                for item in walk(roots, options, child_stats):
                    pickle.dump(item, out, protocol=pickle.HIGHEST_PROTOCOL)
                    out.flush()
                if child_stats.unchanged:
                    child_stats.reused_paths = []  # the parent knows them all
                pickle.dump(child_stats, out, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as e:  # including KeyboardInterrupt: the parent reports it
                code = 1
                if not isinstance(e, KeyboardInterrupt):  # the parent says what happened
                    with contextlib.suppress(BaseException):
                        told = worker_failed(e, "the directory walk")
                        pickle.dump(_Failure(str(told)), out, protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                with contextlib.suppress(BaseException):
                    out.close()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    finished = False
    failure: Optional[str] = None
    try:
        with os.fdopen(rfd, "rb") as pipe:
            while True:
                try:
                    item = pickle.load(pipe)  # noqa: S301 - our own child, through a pipe
                except EOFError:
                    break
                if isinstance(item, WalkStats):
                    stats.merge(item)
                    finished = True
                elif isinstance(item, _Failure):
                    failure = item.message
                else:
                    yield item
    finally:
        if not finished:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if failure is not None:
        raise WalkFailed(failure)
    if not finished or os.waitstatus_to_exitcode(status) != 0:
        raise WalkFailed("the directory walk stopped before its end (interrupted?)")


@dataclass(frozen=True)
class _Failure:
    """What made the forked walker fail, sent to the parent in place of its stats."""

    message: str


class WalkFailed(VenvkeeperError):
    """The walker process died: the scan would be incomplete."""
