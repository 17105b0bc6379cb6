"""``venvkeeper repair``: the repair of venvs, one transaction each.

:func:`repair_venv` repairs a venv in place, :func:`build_sibling` builds the per-minor
sibling of a shared venv beside it, and :func:`repair_all` repairs many at once. Each
says where the new tree goes and how it is planned; :func:`.execute.execute` does the
rest, one way for both (refusals, dry run, locks, transaction, backups, results). A venv
that cannot be repaired is left exactly as it was, with a result that says why.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Optional

from venvkeeper.errors import VenvkeeperError, worker_failed
from venvkeeper.model.host import Interpreter
from venvkeeper.model.plan import Strategy
from venvkeeper.model.repair import Outcome, RepairResult
from venvkeeper.model.report import VenvReport
from venvkeeper.predict.seeds import seed_needs
from venvkeeper.repair.execute import Destination, Planned, execute
from venvkeeper.repair.options import RepairOptions
from venvkeeper.repair.planning import (
    fs_of,
    interpreters_for,
    plan_for,
    sibling_plan,
    sibling_target,
    target_for,
)
from venvkeeper.repair.transaction import Hook


def repair_venv(
    path: str,
    options: RepairOptions,
    *,
    interpreters: Optional[Sequence[Interpreter]] = None,
    hook: Optional[Hook] = None,
    cancel: Optional[threading.Event] = None,
) -> RepairResult:
    """Repair the venv at *path* as its plan says; never raises for a problem of the venv
    (the result says it), only for usage errors. The venv is read and planned under its
    lock, after an interrupted repair's leftovers are settled."""
    from venvkeeper.scan.pipeline import inspect_path

    started = time.monotonic()
    path = os.path.realpath(os.path.abspath(path))

    def planner() -> Planned:
        rep = inspect_path(path, top_level=True)
        interps = interpreters
        if interps is None:
            interps = interpreters_for([rep], rep.facts.root)
        seeds = seed_needs(rep.facts)
        return Planned(rep, plan_for(rep, interps, options, seeds), seeds)

    dest = Destination.in_place(path)
    return execute(dest, options, planner, hook=hook, cancel=cancel, started=started)


def build_sibling(
    path: str,
    options: RepairOptions,
    *,
    interpreters: Optional[Sequence[Interpreter]] = None,
    hook: Optional[Hook] = None,
    cancel: Optional[threading.Event] = None,
) -> RepairResult:
    """``repair --sibling PATH``: build ``PATH-pyX.Y`` for the minor X.Y of this host's
    Python (:func:`~venvkeeper.repair.planning.sibling_target`) with the very same packages
    as the venv at *path*, which is only read. The sibling goes through the transaction
    like every repair (:class:`~.execute.Destination`): a sibling that exists already is
    rebuilt, the old one kept as its backup. The result names the sibling. Not a venv,
    or no Python to build it with: a usage error (the sibling cannot be named)."""
    from venvkeeper.model.matrix import sibling_path
    from venvkeeper.scan.pipeline import inspect_path

    started = time.monotonic()
    source = os.path.realpath(os.path.abspath(path))
    rep = inspect_path(source, top_level=True)
    interps = interpreters if interpreters is not None else interpreters_for([rep], rep.facts.root)
    target = sibling_target(rep, interps, options.python)
    dest = Destination.sibling(source, sibling_path(source, target.version), target)
    if dest.path == source:
        return RepairResult(
            dest.path,
            Strategy.REBUILD,
            Outcome.NOTHING,
            f"{source} is already the venv for Python {target.version}",
            target=target,
            seconds=time.monotonic() - started,
        )

    def planner() -> Planned:
        seeds = seed_needs(rep.facts)
        return Planned(rep, sibling_plan(rep, interps, options, dest.path, target, seeds), seeds)

    return execute(dest, options, planner, hook=hook, cancel=cancel, started=started)


Progress = Callable[[str, Optional[RepairResult]], None]


def repair_all(
    paths: Sequence[str],
    options: RepairOptions,
    *,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
) -> list[RepairResult]:
    """Repair every venv of *paths* with at most ``options.jobs`` at once. The work runs in
    worker threads: the calling (main) thread only waits, so a signal there sets *cancel*
    and every transaction in flight restores its original before this returns."""
    from venvkeeper.scan.pipeline import inspect_path

    cancel = cancel or threading.Event()
    reps = []
    for p in paths:
        with contextlib.suppress(VenvkeeperError, OSError):
            reps.append(inspect_path(p))
    # Each OS root's venvs move to that root's interpreters (None: this host's).
    by_root: dict[Optional[str], list[VenvReport]] = {}
    for r in reps:
        by_root.setdefault(r.facts.root, []).append(r)
    by_root.setdefault(None, [])
    interps = {root: interpreters_for(rs, root) for root, rs in by_root.items()}
    root_of = {r.path: r.facts.root for r in reps}
    if options.python:  # a usage error now, not once per venv
        for root, found in interps.items():
            if by_root[root] or root is None:
                target_for(options.python, found, fs_of(root))
    results: dict[str, RepairResult] = {}

    def one(p: str) -> RepairResult:
        if progress:
            progress(p, None)
        if cancel.is_set():
            r = RepairResult(p, Strategy.MANUAL, Outcome.FAILED, "interrupted before it started")
        else:
            found = interps.get(root_of.get(p))
            r = repair_venv(p, options, interpreters=found, cancel=cancel)
        if progress:
            progress(p, r)
        return r

    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = {pool.submit(one, p): p for p in paths}
        try:
            for f, p in futures.items():
                while True:
                    try:
                        results[p] = f.result(timeout=0.2)
                        break
                    except FutureTimeout:
                        continue
                    except Exception as e:  # a bug in a job: one line, exit 3
                        raise worker_failed(e, f"repairing {p}") from e
        except BaseException:
            cancel.set()
            for f in futures:
                with contextlib.suppress(BaseException):
                    f.result()
            raise
    return [results[p] for p in paths]
