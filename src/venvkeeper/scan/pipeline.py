"""The scan: discovery and inspection in one pipeline, judged by the checks."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from venvkeeper.checks.registry import run_checks
from venvkeeper.errors import UsageError, worker_failed
from venvkeeper.host.bases import HostCache, evolve
from venvkeeper.host.hostfs import RootFS
from venvkeeper.host.mounts import read_mounts
from venvkeeper.host.osroots import Roots, is_complete
from venvkeeper.host.trust import TrustCache
from venvkeeper.model.policy import Policy
from venvkeeper.model.report import Alias, CondaEnv, Report, ScanStats, VenvReport
from venvkeeper.model.venv import VenvFacts, VenvKind
from venvkeeper.scan.discovery import Candidate, WalkOptions, WalkStats, walk, walk_beside
from venvkeeper.scan.incremental import KeptReport, Reuse, fingerprint, racy_threshold
from venvkeeper.scan.inspect import (
    Asking,
    VenvVanished,
    complete,
    empty_facts,
    inspect_venv,
    read_own,
    replay,
    self_contained,
)

#: Inspection moves to a thread pool after this many inline venvs if more than this share
#: of their wall time was spent waiting (not on the CPU), and they took at least this long.
_POOL_AFTER = 4
_IO_SHARE = 0.5
_MIN_SPENT = 0.02

#: The share of the venvs the walk fingerprints when it runs beside an incremental scan
#: that may keep verdicts: such a scan's side costs some 40 µs a venv, the walk's some
#: 120 µs a venv plus its listings; this process fingerprints the rest.
_WALK_FINGERPRINTS = 0.5

#: Called now and then with (directories walked, venvs judged).
Progress = Callable[[int, int], None]


def _queued() -> float:
    """Seconds this thread has waited for a CPU while runnable (Linux schedstat; 0 when
    unknown)."""
    from venvkeeper.host.fsutil import read_open

    try:
        return int(read_open("/proc/thread-self/schedstat", 128)[0].split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def _hostname() -> str:
    import socket

    return socket.gethostname()


@dataclass(frozen=True)
class ScanOptions:
    """What to scan and how. Host paths are parameters so tests can build their own worlds."""

    roots: tuple[str, ...] = ()  # empty: every local filesystem from /
    exclude: tuple[str, ...] = ()
    all_dirs: bool = False
    one_file_system: bool = False
    include_network: bool = False
    size: bool = False
    deep: bool = False
    deep_timeout: float = 30.0
    walk_workers: int = 4
    walk_beside: bool = True  # walk in a forked process while this one inspects
    inspect_workers: int = 4
    mountinfo: str = "/proc/self/mountinfo"
    #: Judge a venv inside another OS root (a chroot, a container's root filesystem) as
    #: that root sees it (:mod:`venvkeeper.host.osroots`); False: as this host sees it.
    other_roots: bool = True


def judge(
    facts: VenvFacts,
    options: ScanOptions,
    alias_of: Optional[str] = None,
    trust: Optional[TrustCache] = None,
) -> VenvReport:
    """The checks' findings on *facts*, and ``--deep``'s (*trust*: the scan's cache of the
    trust rule, each directory above many venvs checked once)."""
    findings = run_checks(facts)
    deep = None
    if options.deep and facts.kind is not VenvKind.CONDA:
        from venvkeeper.checks.deep import deep_findings
        from venvkeeper.scan.deep import run_deep

        deep = run_deep(facts, timeout=options.deep_timeout, trust=trust)
        findings = findings + deep_findings(facts, deep)
        findings = tuple(sorted(findings, key=lambda f: -f.severity.rank))
    return VenvReport(facts, findings, alias_of, deep)


def judge_noting(
    facts: VenvFacts,
    options: ScanOptions,
    alias_of: Optional[str] = None,
    trust: Optional[TrustCache] = None,
) -> tuple[VenvReport, int]:
    """:func:`judge`, and what its verdict read of the venv's base view: a mask of
    :data:`venvkeeper.scan.grouping.BIT` (kept for the apt hook's judging by groups)."""
    from venvkeeper.scan.grouping import noting_reads

    noting, cell = noting_reads(facts)
    rep = judge(noting, options, alias_of, trust)
    return VenvReport(facts, rep.findings, alias_of, rep.deep), cell[0]


def inspect_path(
    path: str,
    options: Optional[ScanOptions] = None,
    *,
    top_level: bool = False,
    root: Optional[str] = None,
) -> VenvReport:
    """Judge the single venv at *path* (``venvkeeper show``); *top_level* also reads each
    distribution's importable names (what a repair verifies). The venv is judged as its
    OS root sees it (:mod:`venvkeeper.host.osroots`), unless ``options.other_roots`` is
    off; *root* names that root when the caller knows it (a chroot that runs the venv)."""
    options = options or ScanOptions()
    from venvkeeper.host.bases import forget
    from venvkeeper.host.fsutil import check_directory

    forget()
    path = os.path.abspath(path)
    check_directory(path)
    names = set(os.listdir(path))
    if "pyvenv.cfg" in names:
        kind = VenvKind.VENV
    elif "conda-meta" in names:
        kind = VenvKind.CONDA
    elif "bin" in names and any(
        os.path.exists(os.path.join(path, "lib", d, "orig-prefix.txt"))
        for d in (os.listdir(os.path.join(path, "lib")) if "lib" in names else [])
    ):
        kind = VenvKind.LEGACY_VIRTUALENV
    else:
        import shlex

        raise UsageError(
            f"{path} is not a virtual environment (no pyvenv.cfg, no legacy"
            f" orig-prefix.txt, no conda-meta/); try: `venvkeeper scan {shlex.quote(path)}`"
        )
    if root is None and options.other_roots:
        from venvkeeper.host.osroots import root_of

        root = root_of(path)
    try:
        facts = inspect_venv(
            path, kind, size=options.size, top_level=options.deep or top_level, root=root
        )
    except VenvVanished as e:
        raise UsageError(f"{path} vanished while it was read") from e
    return judge(facts, options)


def judge_venv(path: str, policy: Policy, root: Optional[str] = None) -> Optional[VenvReport]:
    """A venv found other than by a walk (the venv of a running process), judged as a scan
    as configured judges it: None when *policy* ignores it (it is not even read), else
    inspected (as the OS *root* sees it, when given: see :func:`inspect_path`), checked
    and with the policy applied. A venv that cannot be read is None."""
    from venvkeeper.checks.policy import apply_to_venv, ignored

    if ignored(path, policy):
        return None
    try:
        rep = inspect_path(path, root=root)
    except Exception:  # one odd venv must not cost the caller's whole report
        return None
    return apply_to_venv(rep, policy)


class Scanner:
    """Runs one scan; iterate :meth:`reports` to stream, then read :meth:`report`."""

    def __init__(
        self,
        options: ScanOptions,
        progress: Optional[Progress] = None,
        reuse: Optional[Reuse] = None,
    ) -> None:
        self.options = options
        # --size and --deep read more than the kept facts hold: every venv is read
        self.reuse = None if options.size or options.deep else reuse
        self.racy_after = racy_threshold()
        self.progress = progress
        self.stats = WalkStats()
        self.aliases: list[Alias] = []
        self.conda: list[CondaEnv] = []
        self.venvs: list[VenvReport] = []
        self.started = time.time()
        self.duration = 0.0
        mounts = tuple(read_mounts(options.mountinfo))
        roots = options.roots or ("/",)
        self.roots = tuple(os.path.abspath(r) for r in roots)
        self.walk_options = WalkOptions(
            exclude=options.exclude,
            all_dirs=options.all_dirs,
            one_file_system=options.one_file_system,
            include_network=options.include_network,
            mounts=mounts,
            workers=options.walk_workers,
            other_roots=options.other_roots,
            known=self.reuse.listings if self.reuse is not None else {},
            collect=self.reuse is not None and self.reuse.collect,
            fingerprints=self.reuse is not None,
            checks={p: k.checks for p, k in self.reuse.facts.items()} if self.reuse else {},
            fingerprint_share=(
                _WALK_FINGERPRINTS
                if self.reuse is not None and self.reuse.verdicts and options.walk_beside
                else 1.0
            ),
            expect_reused=(
                len(self.reuse.listings)
                if self.reuse is not None
                and sorted(self.reuse.listings_roots) == sorted(self.roots)
                else -1
            ),
        )
        from venvkeeper.host.bases import forget

        forget()  # the host as it is now, not as an earlier scan in this process saw it
        self.host = HostCache()
        self.trust = TrustCache()
        self.lock = threading.Lock()
        self.os_roots: Optional[Roots] = Roots() if options.other_roots else None
        #: The facts shared by the venvs of each other OS root (its interpreters, its
        #: dpkg database), and whether the root is whole (an image layer is not).
        self.root_hosts: dict[str, tuple[HostCache, bool]] = {}
        #: Of each kept group (:mod:`venvkeeper.scan.grouping`) met: whether its view is
        #: as it was (told by the first of its venvs judged in full in this scan).
        self.groups: dict[str, bool] = {}

    def _host_for(self, path: str) -> tuple[Optional[str], HostCache, bool]:
        """(the OS root of *path*, the facts cache judging it, whether that root is whole)."""
        root = self.os_roots.root_of(path) if self.os_roots is not None else None
        if root is None:
            return None, self.host, True
        with self.lock:
            got = self.root_hosts.get(root)
            if got is None:
                got = self.root_hosts[root] = (HostCache(RootFS(root), root), is_complete(root))
        return root, got[0], got[1]

    def _own(self, cand: Candidate, reuse: Reuse, root: Optional[str]) -> VenvFacts:
        """The venv's own facts: kept by the last scan when its fingerprint is unchanged,
        else read now (and kept for the next scan). *root*: the OS root it lies in now."""
        path = cand.path.rstrip("/") or "/"
        fp = cand.fingerprint or fingerprint(
            path, cand.kind, self.racy_after, reuse.checks_of(path)
        )
        own = reuse.own_facts(path, fp)
        if own is not None and own.kind is cand.kind:
            reuse.reused.add(path)
            # where it lies is not a fact of its files: the root's view judges it now
            return own if own.root == root else evolve(own, root=root)
        if reuse.checks_of(path) is not None:
            # changed: fingerprint it anew (what it holds now), before reading it
            fp = fingerprint(path, cand.kind, self.racy_after)
        own = read_own(path, cand.kind, root=root)
        with self.lock:
            reuse.read_venvs += 1
        if reuse.collect:
            if fp.racy:
                reuse.racy[path] = own
            else:
                reuse.kept[path] = (fp, own)
        return own

    def _kept(self, cand: Candidate, reuse: Reuse, host: HostCache) -> Optional[KeptReport]:
        """The venv's verdict as the last scan left it, when nothing it was made from can
        have changed (None: judge it): its own files (the fingerprint), its group's view
        (the first venv of the group judged in full in this scan found it the same), and
        nothing else of the host asked (kept only of a self-contained venv: see
        :func:`venvkeeper.scan.inspect.self_contained`), under the same policy. Its facts
        are made only if the output asks for them."""
        path = cand.path.rstrip("/") or "/"
        kv = reuse.verdicts.get(path)
        if kv is None or not kv[0] or not kv[2] or kv[3] is None:
            return None
        if not self.groups.get(kv[0]) or reuse.verdict_of is None:
            return None
        found = reuse.facts.get(path)
        if found is None:
            return None
        fp = cand.fingerprint or fingerprint(
            path, cand.kind, self.racy_after, reuse.checks_of(path)
        )
        if fp.racy or fp.digest != found.digest:
            return None
        try:
            snap = reuse.verdict_of(path, kv[2])
        except ValueError:
            return None
        if snap.kind is not cand.kind:
            return None
        try:
            asked = json.loads(kv[3])
        except ValueError:
            return None
        if not replay(asked, host.fs):
            return None  # something else it asks of the host answers otherwise now
        kind = cand.kind

        def facts() -> VenvFacts:
            # as the scan would have made them: the kept own facts, completed now
            try:
                own = reuse.own_facts(path, fp) or read_own(path, kind)
                return complete(own, host)
            except VenvVanished:
                return empty_facts(path, kind, "the venv vanished after it was judged")
            except Exception as e:  # as in _inspect: one venv's facts, never the output
                return empty_facts(path, kind, f"internal error: {type(e).__name__}: {e}")

        reuse.reused.add(path)
        reuse.verdicts_kept.add(path)
        reuse.reads[path] = kv[1]
        return KeptReport(facts, snap.findings, snapshot=snap)

    def _decide_group(self, reuse: Reuse, facts: VenvFacts) -> None:
        """After a venv was judged in full: whether its kept group's view is as it was
        (the group's key digests its inputs and its view: the same key now, the same
        view for every venv of the same inputs)."""
        kv = reuse.verdicts.get(facts.path)
        if kv is None or not kv[0] or kv[0] in self.groups:
            return
        from venvkeeper.scan.grouping import group_of

        self.groups[kv[0]] = group_of(facts)[0] == kv[0]

    def _inspect(self, cand: Candidate, alias_of: Optional[str] = None) -> Optional[VenvReport]:
        root, host, whole = self._host_for(cand.path)
        if not whole:
            # An image layer: what its venvs link to lives in the layers below it.
            with self.lock:
                self.stats.skip(cand.path, "in-image-layer")
            return None
        if self.reuse is not None and cand.fingerprint is None and self.reuse.facts:
            # the walk left it to this process (WalkOptions.fingerprint_share)
            path = cand.path.rstrip("/") or "/"
            fp = fingerprint(path, cand.kind, self.racy_after, self.reuse.checks_of(path))
            cand = Candidate(cand.path, cand.kind, fp)
        if self.reuse is not None and self.reuse.verdicts and alias_of is None and root is None:
            try:
                kept = self._kept(cand, self.reuse, host)
            except Exception:  # a bug in keeping costs the shortcut, never the verdict
                kept = None
            if kept is not None:
                return kept
        asking: Optional[Asking] = None
        try:
            if self.reuse is not None:
                if self.reuse.collect and alias_of is None:
                    asking = Asking(host.fs, [])
                facts = complete(self._own(cand, self.reuse, root), host, asks=asking)
            else:
                facts = inspect_venv(
                    cand.path,
                    cand.kind,
                    host=host,
                    size=self.options.size,
                    top_level=self.options.deep,
                    root=root,
                )
        except VenvVanished:
            with self.lock:
                self.stats.skip(cand.path, "vanished")
            return None
        except Exception as e:  # a bug must cost one venv's verdict, never the whole scan
            facts = empty_facts(cand.path, cand.kind, f"internal error: {type(e).__name__}: {e}")
            failed = True
        else:
            failed = False
        try:
            if self.reuse is not None and self.reuse.collect and alias_of is None:
                rep, mask = judge_noting(facts, self.options, alias_of, self.trust)
                self.reuse.reads[facts.path] = mask
                if failed or asking is None:
                    return rep
                if asking.ok and self_contained(facts):
                    self.reuse.asks[facts.path] = json.dumps(asking.asked, separators=(",", ":"))
                if self.reuse.verdicts:
                    self._decide_group(self.reuse, facts)
                return rep
            return judge(facts, self.options, alias_of, self.trust)
        except Exception as e:  # inline or in the pool: one line, then exit 3
            raise worker_failed(e, f"judging {cand.path}") from e

    def reports(self) -> Iterator[VenvReport]:
        """Judge venvs as discovery finds them, yielding each report when it is ready.

        Inspection starts inline, in the discovery thread: on a warm cache it is pure CPU
        work and threads would only fight over the GIL. When the venvs inspected so far spent
        most of their time waiting for the disk (wall time well above thread CPU time: a cold
        cache, NFS), the remaining ones go to a pool of ``inspect_workers`` threads.
        """
        # imported here: a scan of a handful of venvs never starts a pool
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        t0 = time.perf_counter()
        # Reused venvs cost CPU only (threads would fight over the GIL), and the few read
        # again do not make a pool worth it.
        reusing = self.reuse is not None and bool(self.reuse.facts)
        workers = 1 if reusing else max(1, self.options.inspect_workers)
        limit = workers * 8
        pending: set[Future[Optional[VenvReport]]] = set()
        seen: set[str] = set()
        last = 0.0
        waited = spent = 0.0
        queued_at_start = _queued()
        inline = 0
        pool: Optional[ThreadPoolExecutor] = None

        def drain(block: bool) -> Iterator[VenvReport]:
            nonlocal pending
            if not pending:
                return
            done, pending = wait(pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
            for fut in done:
                rep = fut.result()
                if rep is not None:
                    self.venvs.append(rep)
                    yield rep

        def submit(cand: Candidate, alias_of: Optional[str] = None) -> Iterator[VenvReport]:
            nonlocal pool, waited, spent, inline
            if pool is None:
                if workers == 1:  # no pool to decide on: no clocks to read
                    rep = self._inspect(cand, alias_of)
                    if rep is not None:
                        self.venvs.append(rep)
                        yield rep
                    return
                w0, c0 = time.perf_counter(), time.thread_time()
                rep = self._inspect(cand, alias_of)
                wall = time.perf_counter() - w0
                waited += wall - (time.thread_time() - c0)
                spent += wall
                inline += 1
                if rep is not None:
                    self.venvs.append(rep)
                    yield rep
                if (
                    workers > 1
                    and inline >= _POOL_AFTER
                    and waited > _IO_SHARE * spent
                    and spent > _MIN_SPENT
                    # waiting for a CPU (a loaded host) is not waiting for the disk: threads
                    # would only fight over the GIL there
                    and max(0.0, waited - (_queued() - queued_at_start)) > _IO_SHARE * spent
                ):
                    pool = ThreadPoolExecutor(workers)
                return
            pending.add(pool.submit(self._inspect, cand, alias_of))
            while len(pending) >= limit:
                yield from drain(True)
            yield from drain(False)

        # A scan allocates some hundred objects per venv, none of them in a reference
        # cycle: the cyclic collector would only traverse the growing report again and
        # again (measured: a quarter of an incremental scan's time).
        collecting = gc.isenabled()
        gc.disable()
        try:
            walker = walk_beside if self.options.walk_beside else walk
            for item in walker(self.roots, self.walk_options, self.stats):
                if isinstance(item, Candidate):
                    seen.add(item.path)
                    yield from submit(item)
                elif isinstance(item, Alias):
                    self.aliases.append(item)
                elif isinstance(item, CondaEnv):
                    self.conda.append(item)
                if self.progress is not None:
                    now = time.perf_counter()
                    if now - last > 0.1:
                        last = now
                        self.progress(self.stats.directories, len(self.venvs))
            # A .venv alias whose target lies outside the roots: judge the target too.
            outside = [a for a in self.aliases if a.target not in seen]
            if outside:
                real_seen = {os.path.realpath(p) for p in seen}
                for a in outside:
                    if a.target not in real_seen:
                        real_seen.add(a.target)
                        yield from submit(Candidate(a.target, VenvKind.VENV), a.path)
            while pending:
                yield from drain(True)
        finally:
            if collecting:
                # The report lives on, acyclic: out of the collector's sight for good
                # (recording ten thousand venvs next would otherwise traverse it often).
                gc.freeze()
                gc.enable()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.duration = time.perf_counter() - t0
        if self.reuse is not None:
            self.reuse.new_listings = self.stats.listings
            self.reuse.reused_listings = self.stats.reused_paths
            self.reuse.listings_unchanged = self.stats.unchanged
            self.reuse.reused_dirs = self.stats.reused
        if self.progress is not None:
            self.progress(self.stats.directories, len(self.venvs))

    def report(self) -> Report:
        venvs = sorted(self.venvs, key=lambda r: (-r.status.rank, r.path))
        return Report(
            roots=self.roots,
            venvs=tuple(venvs),
            aliases=tuple(sorted(self.aliases, key=lambda a: a.path)),
            conda_envs=tuple(sorted(self.conda, key=lambda c: c.path)),
            stats=ScanStats(
                directories=self.stats.directories,
                entries=self.stats.entries,
                skipped=dict(self.stats.skipped),
                skipped_examples=tuple(self.stats.examples),
                duration_seconds=self.duration,
            ),
            hostname=_hostname(),
            started_at=self.started,
        )


def scan(
    roots: Sequence[str] = (),
    options: Optional[ScanOptions] = None,
    progress: Optional[Progress] = None,
    reuse: Optional[Reuse] = None,
) -> Report:
    """Find and judge every venv under *roots* (every local filesystem when empty).

    With *reuse* (the last scan's, from the inventory: :mod:`venvkeeper.scan.incremental`),
    an unchanged venv is not read again and an unchanged directory not listed again; the
    verdicts are the same."""
    options = options or ScanOptions()
    if roots:
        options = dataclasses.replace(options, roots=tuple(roots))
    scanner = Scanner(options, progress, reuse)
    for _ in scanner.reports():
        pass
    return scanner.report()
