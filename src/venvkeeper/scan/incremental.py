"""Incremental scans: what a scan may take from the one before it, and when.

A scan with an inventory re-reads a venv only when its *fingerprint* changed, and reuses the
venv's own facts (what :func:`venvkeeper.scan.inspect.read_own` read last time) otherwise.
Everything that depends on the host (the base interpreter and its stdlib, whether scripts'
interpreters and editable sources exist, ...) is asked again in every scan
(:func:`venvkeeper.scan.inspect.complete`) and the checks run on the result: a changed
base re-judges every venv on it, and the verdicts equal a cold scan's.

**Kept verdicts.** A venv's facts are a function of its own facts, its *base view*
(:mod:`venvkeeper.scan.grouping`: its links past the venv, its base, the host's read
errors about those, its scripts' interpreters) and the other questions
:func:`~venvkeeper.scan.inspect.complete` asks the host about it (editable sources,
egg-link targets, ``.pth`` directories, recorded locations, an owner's files beside the
venv), which :class:`~venvkeeper.scan.inspect.Asking` notes with their answers; the checks
are pure functions of the facts. So a venv whose fingerprint is unchanged, whose group's
view is the same (the first venv of the group met in the scan is judged in full: its
group's key, which digests the view, is the kept one), and whose every other question gets
the same answer (:func:`~venvkeeper.scan.inspect.replay`) has the same facts and the same
verdict: the scan keeps that verdict (:class:`KeptReport`) without decoding its facts,
asking the host for its view or running the checks. Only under the policy the verdict was
made under, only of a venv of this host, and never of a venv holding a mark whose content
the fingerprint does not cover (:func:`~venvkeeper.scan.inspect.self_contained`). Its
facts are made (decoded and completed, as the scan would have) only when the output reads
them: ``-q``, the summary and the inventory's rows do not. ``tests/test_seam.py`` removes
each outside fact under a venv whose verdict would be kept, ``tests/test_incremental.py``
compares incremental and cold scans over generated worlds with several venvs per group.

The fingerprint digests the inode and the ctime (in nanoseconds) of everything ``read_own``
reads and of every directory it lists, with the device of the venv:

- the venv directory, ``pyvenv.cfg`` (and what it links to), ``bin/`` and each of its
  entries (a script rewritten in place has a new ctime);
- ``lib``, ``lib64`` and ``local/lib`` with their listings, each ``site-packages``, and in
  each its listing, the ``.pth`` and ``.egg-link`` files, and every ``*.dist-info`` and
  ``*.egg-info`` directory (a file added, removed or renamed in one changes its ctime;
  installers write a new dist-info directory for every install).

A file replaced with the same mtime (``cp -p``, ``touch -d``) still gets a new ctime and
usually a new inode, and nobody but the kernel sets a ctime: a clock set back gives the
next change a ctime that differs from the recorded one. What the fingerprint does not see
(docs/performance.md): a file *inside* a dist-info directory rewritten in place, and a
change made within the same clock tick as the recorded timestamp, which is why a venv (or
a directory of the walk) changed less than :data:`RACY_SECONDS` before its scan is never
reused by the next one.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional, Union

from venvkeeper.model.findings import Finding
from venvkeeper.model.inventory import VenvSnapshot
from venvkeeper.model.report import VenvReport
from venvkeeper.model.venv import DeepResult, VenvFacts, VenvKind

#: A timestamp this close to the scan (or after it) may still be followed by a change within
#: the same tick of a coarse filesystem clock: what carries it is not kept for reuse.
RACY_SECONDS = 2.0

_LIB_DIRS = ("lib", "lib64", "local/lib")
_SITE_SUFFIXES = (".dist-info", ".egg-info")
_SITE_FILES = (".pth", ".egg-link")


def racy_threshold(now_ns: Optional[int] = None) -> int:
    """Timestamps at or above this (nanoseconds) are too recent to be trusted next time."""
    return (time.time_ns() if now_ns is None else now_ns) - int(RACY_SECONDS * 1e9)


class Fingerprint(NamedTuple):
    """The digest of a venv's own files, whether it may be trusted by the next scan, and
    what to look at to take it again (:func:`fingerprint` with *checks*): the same
    paths, without listing a directory, since every listing the digest depends on is
    covered by its directory's ctime."""

    digest: bytes
    racy: bool
    checks: tuple[str, ...]


class _Digest:
    """The values of the checks: ``l:REL`` an lstat, ``f:REL`` an lstat and, for a link,
    the stat of what it leads to, ``s:REL`` a stat (links followed); ``REL`` is relative to
    the venv. Each adds its inode and ctime (or the error)."""

    __slots__ = ("checks", "ints", "newest", "venv")

    def __init__(self, venv: str) -> None:
        self.venv = venv
        self.ints: list[int] = []
        self.checks: list[str] = []
        self.newest = -(1 << 62)

    def _add(self, st: os.stat_result) -> None:
        # Whatever changes a file (its data, size, mode, owner, mtime, links) sets its ctime
        # to the clock's time, and only the kernel sets a ctime; a file replaced by another
        # has another inode (or at least another ctime); a directory's ctime changes when
        # an entry is added, removed or renamed in it.
        c = st.st_ctime_ns
        self.ints += (st.st_ino, c)
        if c > self.newest:
            self.newest = c

    def check(self, spec: str) -> Optional[os.stat_result]:
        """Take the check *spec*; the stat of a directory (links followed), if it is one."""
        how, rel = spec[0], spec[2:]
        path = f"{self.venv}/{rel}" if rel else self.venv
        try:
            st = os.stat(path) if how == "s" else os.lstat(path)
        except OSError as e:
            self.ints += (-1, e.errno or 0)
            return None
        self._add(st)
        if how == "f" and stat.S_ISLNK(st.st_mode):
            try:
                st = os.stat(path)
            except OSError as e:
                self.ints += (-2, e.errno or 0)
                return None
            self._add(st)
        return st

    def take(self, spec: str) -> Optional[os.stat_result]:
        self.checks.append(spec)
        return self.check(spec)

    def digest(self) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        try:
            h.update(array("q", self.ints).tobytes())
        except OverflowError:  # an inode or device number beyond 63 bits
            h.update(repr(self.ints).encode())
        h.update("\0".join(self.checks).encode("utf-8", "surrogateescape"))
        return h.digest()


def _listing(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []  # the directory's own check tells


def fingerprint(
    path: str,
    kind: VenvKind,
    racy_after: Optional[int] = None,
    checks: Optional[Sequence[str]] = None,
) -> Fingerprint:
    """The fingerprint of what :func:`~venvkeeper.scan.inspect.read_own` reads of the venv
    at *path*: the inode and ctime of each file it reads and of each directory it lists
    (nothing is opened but directories). Given the *checks* of the last fingerprint, only
    those are taken again (no listing): an unchanged venv gives the same digest.
    *racy_after*: the :func:`racy_threshold` of the scan."""
    d = _Digest(path)
    d.ints.append(len(kind.value))
    d.checks.append(kind.value)
    venv = d.venv
    try:  # the venv itself: its device too (another filesystem mounted there)
        st = os.lstat(venv)
        d.ints += (st.st_dev, st.st_mtime_ns)
    except OSError as gone:
        d.ints += (-1, gone.errno or 0)
    if checks is not None:
        d.checks += checks[1:]
        d.newest = max(d.newest, _recheck(venv, checks, d.ints))
    else:
        _discover(d, kind)
    limit = racy_threshold() if racy_after is None else racy_after
    return Fingerprint(d.digest(), d.newest >= limit, tuple(d.checks))


def _recheck(venv: str, checks: Sequence[str], ints: list[int]) -> int:
    """:meth:`_Digest.check` of each of *checks* but the first (the kind), in one loop:
    the incremental scan takes some 45 of them per venv. Returns the newest ctime."""
    lstat, stat_, islink = os.lstat, os.stat, stat.S_ISLNK
    add = ints.extend
    newest = -(1 << 62)
    # each name looked up from the venv's directory, not from / again (a venv lies some ten
    # directories deep: most of a stat's time was walking down to it)
    try:
        fd: Optional[int] = os.open(venv, _DIR_FLAGS)
    except OSError:
        fd = None  # each path in full: each fails as the venv's own check does
    base = venv + "/"
    try:
        for spec in checks[1:]:
            how = spec[0]
            rel = spec[2:]
            path, at = (rel, fd) if fd is not None and rel else (base + rel if rel else venv, None)
            try:
                st = stat_(path, dir_fd=at) if how == "s" else lstat(path, dir_fd=at)
            except OSError as e:
                add((-1, e.errno or 0))
                continue
            c = st.st_ctime_ns
            add((st.st_ino, c))
            if c > newest:
                newest = c
            if how == "f" and islink(st.st_mode):
                try:
                    st = stat_(path, dir_fd=at)
                except OSError as e:
                    add((-2, e.errno or 0))
                    continue
                c = st.st_ctime_ns
                add((st.st_ino, c))
                if c > newest:
                    newest = c
    finally:
        if fd is not None:
            os.close(fd)
    return newest


#: A directory opened only to look names up from it (no read: O_PATH where there is one).
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | getattr(os, "O_PATH", 0)


def _discover(d: _Digest, kind: VenvKind) -> None:
    venv = d.venv
    d.take("l:")
    d.take("f:pyvenv.cfg")
    d.take("l:bin")
    for b in _listing(f"{venv}/bin"):
        # Links (python, python3, ...) are not read: replacing one changes bin/'s ctime,
        # where it leads is the host's. The files are read (scripts, activate).
        try:
            if not b.is_symlink():
                d.take(f"l:bin/{b.name}")
            elif b.name == "activate":
                d.take("f:bin/activate")
        except OSError:
            d.take(f"l:bin/{b.name}")
    seen: set[tuple[int, int]] = set()
    for lib in _LIB_DIRS:
        if d.take(f"f:{lib}") is None:
            continue
        for e in _listing(f"{venv}/{lib}"):
            if not e.name.startswith("python"):
                continue
            rel = f"{lib}/{e.name}"
            if kind is VenvKind.LEGACY_VIRTUALENV:
                d.take(f"f:{rel}/orig-prefix.txt")
            site = d.take(f"f:{rel}/site-packages")
            if site is None or not stat.S_ISDIR(site.st_mode):
                continue
            key = (site.st_dev, site.st_ino)
            if key in seen:  # lib64 -> lib: one directory, read once
                continue
            seen.add(key)
            for s in _listing(f"{venv}/{rel}/site-packages"):
                name = s.name
                if name.endswith(_SITE_SUFFIXES):
                    d.take(f"s:{rel}/site-packages/{name}")
                elif name.endswith(_SITE_FILES):
                    d.take(f"f:{rel}/site-packages/{name}")


# --- the walk's listings ---------------------------------------------------------------------


#: What the walk keeps of one directory's listing, and the stat it was read under:
#: ``[dev, ino, mtime_ns, ctime_ns, entries, flags, subdirs, aliases]`` (entries: how many;
#: flags: CFG | BIN | LIB | CONDA; subdirs in listing order; aliases: ``.venv`` links). A
#: plain list, as JSON gives it back: a walk reads tens of thousands of them. It is reused
#: while the directory's device, inode, mtime and ctime are the same (as mlocate does):
#: adding, removing or renaming an entry changes a directory's mtime and ctime, and a
#: change of its mode or owner its ctime.
Listing = list[Any]


def listing_matches(rec: Listing, st: os.stat_result) -> bool:
    return bool(
        rec[3] == st.st_ctime_ns
        and rec[2] == st.st_mtime_ns
        and rec[1] == st.st_ino
        and rec[0] == st.st_dev
    )


CFG, BIN, LIB, CONDA = 1, 2, 4, 8


def identity() -> str:
    """Who lists: a listing kept by another user (or with other groups) may not be what
    this one may read."""
    try:
        groups = sorted(os.getgroups())
    except OSError:
        groups = []
    return f"{os.geteuid()}:{os.getegid()}:{','.join(map(str, groups))}"


# --- what a scan takes from the last one ------------------------------------------------------


class Kept(NamedTuple):
    """What the inventory keeps of one venv for the next scan."""

    digest: bytes  # of its fingerprint
    own: str  # its own facts, encoded (scan.codec)
    checks: str  # the fingerprint's checks, NUL-separated


@dataclass
class Reuse:
    """What a scan may take from the previous one (loaded from the inventory), and what it
    leaves for the next one (saved with the scan when it is recorded).

    *facts* maps a venv's path to what was kept of it: its fingerprint and its own facts,
    still encoded (*decode* turns them into :class:`VenvFacts`: only those of unchanged
    venvs are ever decoded). *listings* are the walk's directory listings. With *collect*, the scan
    gathers the fingerprint and own facts of every venv it reads, and every listing it
    makes, into :attr:`kept` and :attr:`new_listings`.
    """

    facts: Mapping[str, Kept] = field(default_factory=dict)
    decode: Optional[Callable[[str], VenvFacts]] = None
    listings: Mapping[str, Listing] = field(default_factory=dict)
    collect: bool = False
    #: venv path -> (fingerprint, own facts) of the venvs read this time (and not changed
    #: too recently to be trusted): what the next scan may reuse
    kept: dict[str, tuple[Fingerprint, VenvFacts]] = field(default_factory=dict)
    #: the venvs whose kept facts were reused as they were
    reused: set[str] = field(default_factory=set)
    #: venvs read this time that changed too recently for their fingerprint to be trusted:
    #: their own facts (the apt hook may use them: it never fingerprints)
    racy: dict[str, VenvFacts] = field(default_factory=dict)
    #: with collect: what each judged venv's verdict read of its base view
    #: (:func:`venvkeeper.scan.pipeline.judge_noting`)
    reads: dict[str, int] = field(default_factory=dict)
    #: of the walk, with collect: the listings made anew, the paths of those reused, and
    #: whether every listing kept under the scan's roots was reused and none made anew
    new_listings: dict[str, Listing] = field(default_factory=dict)
    reused_listings: list[str] = field(default_factory=list)
    listings_unchanged: bool = False
    #: the roots of the scan that kept *listings* (all of them lie under these)
    listings_roots: tuple[str, ...] = ()
    #: venv path -> (its group, its read mask, its verdict, what else it asked of the host)
    #: as kept, when they were made under the scan's policy (else empty): a venv whose
    #: fingerprint and group's view are unchanged, and whose other questions get the same
    #: answers, keeps its verdict (:class:`KeptReport`)
    verdicts: Mapping[str, tuple[Optional[str], int, Optional[str], Optional[str]]] = field(
        default_factory=dict
    )
    #: with collect: what each venv judged in full asked of the host besides its base
    #: view (:class:`venvkeeper.scan.inspect.Asking`, JSON), when its verdict may be kept
    #: on their answers (:func:`venvkeeper.scan.inspect.self_contained`)
    asks: dict[str, str] = field(default_factory=dict)
    #: a kept verdict's text loaded (ValueError for anything else)
    verdict_of: Optional[Callable[[str, str], VenvSnapshot]] = None
    #: the venvs whose verdict was kept as it was (a :class:`KeptReport` each)
    verdicts_kept: set[str] = field(default_factory=set)
    read_venvs: int = 0
    reused_dirs: int = 0
    listed_dirs: int = 0

    def checks_of(self, path: str) -> Optional[list[str]]:
        """What to look at to fingerprint the venv at *path* again (None: unknown)."""
        found = self.facts.get(path)
        return found.checks.split("\0") if found is not None and found.checks else None

    def own_facts(self, path: str, fp: Fingerprint) -> Optional[VenvFacts]:
        """The own facts kept for *path* if its fingerprint is unchanged (None: read it)."""
        found = self.facts.get(path)
        if found is None or fp.racy or found.digest != fp.digest or self.decode is None:
            return None
        from venvkeeper.scan.codec import CodecError

        try:
            return self.decode(found.own)
        except CodecError:
            return None


class KeptReport(VenvReport):
    """A venv's report whose verdict an incremental scan kept as it was (the venv's own
    files, its group's view and every other answer of the host unchanged): its findings
    and its :attr:`snapshot` (what the inventory records) from the kept verdict, its facts
    made only when asked (the kept own facts decoded and completed by the host, as the
    scan would have made them). A scan whose output needs no facts (``-q``, the summary,
    the inventory's rows) never makes them. It equals the :class:`VenvReport` of the same
    facts and findings."""

    snapshot: Optional[VenvSnapshot]

    def __init__(
        self,
        facts: Union[VenvFacts, Callable[[], VenvFacts]],
        findings: tuple[Finding, ...],
        alias_of: Optional[str] = None,
        deep: Optional[DeepResult] = None,
        *,
        snapshot: Optional[VenvSnapshot] = None,
    ) -> None:
        # (also what dataclasses.replace calls, with the facts made: a plain report then)
        d = self.__dict__
        d["findings"], d["alias_of"], d["deep"], d["snapshot"] = findings, alias_of, deep, snapshot
        if callable(facts):
            d["_make"] = facts
        else:
            d["_facts"] = facts

    @property
    def facts(self) -> VenvFacts:
        d = self.__dict__
        made = d.get("_facts")
        if made is None:  # (two threads asking at once both make the same facts)
            made = d["_facts"] = d["_make"]()
        return made  # type: ignore[no-any-return]

    @property
    def path(self) -> str:
        snap = self.snapshot
        return snap.path if snap is not None else self.facts.path

    @property
    def root(self) -> Optional[str]:
        # a verdict is kept only of a venv of this host
        return None if self.snapshot is not None else self.facts.root

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VenvReport):
            return NotImplemented
        return (self.facts, self.findings, self.alias_of, self.deep) == (
            other.facts,
            other.findings,
            other.alias_of,
            other.deep,
        )

    def __hash__(self) -> int:
        return hash((self.facts, self.findings, self.alias_of, self.deep))


# --- what a verdict depends on outside the venv -------------------------------------------


@functools.lru_cache(maxsize=1024)
def _ancestors_lib(start: str, version: str) -> tuple[str, ...]:
    """Where the stdlib search from *start* looks: ``lib/pythonX.Y`` of it and of every
    directory above it (:meth:`venvkeeper.host.bases.HostCache.stdlib_prefix`)."""
    out = []
    d = start.rstrip("/") or "/"
    for _ in range(64):
        for lib in ("lib", "lib64"):
            out.append(f"{d.rstrip('/')}/{lib}/python{version}")
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return tuple(out)


def depends_of(facts: VenvFacts) -> list[str]:
    """The paths outside the venv whose change (an OS package upgraded or removed) can
    change its verdict: every hop of its interpreter links, the base and what it was
    copied from, the stdlib directories the base's search looks at, the base's headers,
    and the interpreters its scripts name. Sorted, without duplicates; host paths (a venv
    inside another OS root depends on that root's files: its root in front)."""
    venv = facts.path_in_root.rstrip("/") + "/"
    found: set[str] = set()
    for c in facts.chains:
        found.update(h for h in c.hops if not h.startswith(venv))
        if c.resolved and not c.resolved.startswith(venv):
            found.add(c.resolved)
    base = facts.base
    version = base.version if base is not None else None
    if version is None:
        # no runnable base (its link dangles): the version its names or pyvenv.cfg tell
        for c in facts.chains:
            for h in c.hops:
                name = os.path.basename(h)
                if name.startswith("python") and name[6:7].isdigit() and "." in name:
                    version = name[6:]
                    break
            if version:
                break
    if base is not None:
        found.add(base.executable)
        if base.copy_source:
            found.add(base.copy_source)
        if base.prefix and version:
            found.add(f"{base.prefix.rstrip('/')}/include/python{version}")
    if version:
        starts = {os.path.dirname(h) for c in facts.chains for h in c.hops[1:]}
        home = facts.cfg.get("home") if facts.cfg is not None else None
        if home:
            starts.add(home)
        if facts.orig_prefix:
            starts.add(facts.orig_prefix)
        for s in starts:
            if not s.startswith(venv):
                found.update(_ancestors_lib(s, version))
    for sc in facts.scripts:
        if sc.interpreter and not sc.interpreter.startswith(venv):
            found.add(sc.interpreter)
    if facts.root:
        top = facts.root.rstrip("/")
        return sorted(top + p for p in found)
    return sorted(found)
