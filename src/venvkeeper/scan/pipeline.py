"""The scan: discovery and inspection in one pipeline, judged by the checks."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from venvkeeper.checks.registry import run_checks
from venvkeeper.errors import UsageError, worker_failed
from venvkeeper.host.bases import HostCache
from venvkeeper.host.mounts import read_mounts
from venvkeeper.host.trust import TrustCache
from venvkeeper.model.report import Alias, CondaEnv, Report, ScanStats, VenvReport
from venvkeeper.model.venv import VenvFacts, VenvKind
from venvkeeper.scan.discovery import Candidate, WalkOptions, WalkStats, walk, walk_beside
from venvkeeper.scan.inspect import VenvVanished, empty_facts, inspect_venv

#: Inspection moves to a thread pool after this many inline venvs if more than this share
#: of their wall time was spent waiting (not on the CPU), and they took at least this long.
_POOL_AFTER = 4
_IO_SHARE = 0.5
_MIN_SPENT = 0.02

#: Called now and then with (directories walked, venvs judged).
Progress = Callable[[int, int], None]


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


def inspect_path(
    path: str, options: Optional[ScanOptions] = None, *, top_level: bool = False
) -> VenvReport:
    """Judge the single venv at *path* (``venvkeeper show``); *top_level* also reads each
    distribution's importable names (what a repair verifies)."""
    options = options or ScanOptions()
    from venvkeeper.host.fsutil import check_directory

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
        raise UsageError(
            f"{path} is not a virtual environment (no pyvenv.cfg, no legacy"
            f" orig-prefix.txt, no conda-meta/); try: venvkeeper scan {path}"
        )
    try:
        facts = inspect_venv(path, kind, size=options.size, top_level=options.deep or top_level)
    except VenvVanished as e:
        raise UsageError(f"{path} vanished while it was read") from e
    return judge(facts, options)


class Scanner:
    """Runs one scan; iterate :meth:`reports` to stream, then read :meth:`report`."""

    def __init__(self, options: ScanOptions, progress: Optional[Progress] = None) -> None:
        self.options = options
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
        )
        self.host = HostCache()
        self.trust = TrustCache()
        self.lock = threading.Lock()

    def _inspect(self, cand: Candidate, alias_of: Optional[str] = None) -> Optional[VenvReport]:
        try:
            facts = inspect_venv(
                cand.path,
                cand.kind,
                host=self.host,
                size=self.options.size,
                top_level=self.options.deep,
            )
        except VenvVanished:
            with self.lock:
                self.stats.skip(cand.path, "vanished")
            return None
        except Exception as e:  # a bug must cost one venv's verdict, never the whole scan
            facts = empty_facts(cand.path, cand.kind, f"internal error: {type(e).__name__}: {e}")
        try:
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
        workers = max(1, self.options.inspect_workers)
        limit = workers * 8
        pending: set[Future[Optional[VenvReport]]] = set()
        seen: set[str] = set()
        last = 0.0
        waited = spent = 0.0
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
                ):
                    pool = ThreadPoolExecutor(workers)
                return
            pending.add(pool.submit(self._inspect, cand, alias_of))
            while len(pending) >= limit:
                yield from drain(True)
            yield from drain(False)

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
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.duration = time.perf_counter() - t0
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
) -> Report:
    """Find and judge every venv under *roots* (every local filesystem when empty)."""
    options = options or ScanOptions()
    if roots:
        options = dataclasses.replace(options, roots=tuple(roots))
    scanner = Scanner(options, progress)
    for _ in scanner.reports():
        pass
    return scanner.report()
