"""``venvkeeper repair``: execute repair plans, one transaction per venv.

The plan (``plan.py``) says what to do; this module does it: relink, rewrite paths or
rebuild in a sibling directory, verify, swap (``transaction.py``). A venv that cannot be
repaired is left exactly as it was, with a result that says why.
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

from venvkeeper.errors import (
    VenvkeeperError,
    describe_os_error,
    worker_failed,
)
from venvkeeper.host import pkgdb
from venvkeeper.model.host import Interpreter
from venvkeeper.model.plan import RepairPlan, Strategy
from venvkeeper.model.repair import Outcome, PinFailure, RepairResult
from venvkeeper.model.venv import VenvFacts
from venvkeeper.predict.seeds import seed_needs
from venvkeeper.repair.backends import (
    choose,
)
from venvkeeper.repair.job import PinsFailed, RepairOptions, _Job
from venvkeeper.repair.owner import OwnerRunner, owner_of
from venvkeeper.repair.planning import (
    _target_for,
    interpreters_for,
    plan_for,
    sibling_plan,
    sibling_target,
)
from venvkeeper.repair.safety import Actor, Unsafe, actor_for
from venvkeeper.repair.transaction import (
    Busy,
    Hook,
    RepairError,
    backups,
    delete_backup,
    locked,
    recover,
    transact,
)
from venvkeeper.textutil import plural

#: Places no system package installs files into (the FHS leaves them to the admin and users).
_NEVER_PACKAGED = ("/home/", "/root/", "/srv/", "/tmp/", "/var/tmp/", "/usr/local/", "/mnt/")  # noqa: S108


def _refusal(
    plan: RepairPlan, facts: VenvFacts, force: bool, package_tools: Optional[str] = None
) -> Optional[str]:
    if force:
        return None
    if plan.strategy is Strategy.USE_TOOL:
        return (
            f"managed by {facts.creator.value}: run `{plan.tool_command}` instead"
            " (repair --force rebuilds it anyway)"
        )
    if facts.path.startswith(_NEVER_PACKAGED):
        return None  # no distro package installs there (FHS): spare the dpkg/rpm query
    owners = pkgdb.owners([os.path.join(facts.path, "pyvenv.cfg")], package_tools)
    if owners:
        pkg = next(iter(owners.values()))
        return (
            f"installed by the system package {pkg}: upgrade or reinstall that package"
            " (repair --force rebuilds it anyway)"
        )
    return None


def _describe(plan: RepairPlan, backend: str) -> str:
    t = plan.target
    if plan.strategy is Strategy.REBUILD and t is not None:
        packages = plural(len(plan.packages), "package")
        return f"rebuild on {t.path} ({t.version}) with {backend}, {packages}"
    if plan.strategy is Strategy.RELINK and t is not None:
        return f"relink to {t.path} ({t.patch_version or t.version})"
    if plan.strategy is Strategy.REWRITE_PATHS:
        return f"rewrite paths from {plan.old_location} to {plan.path}"
    return plan.reason


def repair_venv(
    path: str,
    options: RepairOptions,
    *,
    interpreters: Optional[Sequence[Interpreter]] = None,
    hook: Optional[Hook] = None,
    cancel: Optional[threading.Event] = None,
) -> RepairResult:
    """Repair the venv at *path* as its plan says; never raises for a problem of the venv
    (the result says it), only for usage errors."""
    from venvkeeper.scan.pipeline import inspect_path

    started = time.monotonic()
    path = os.path.realpath(os.path.abspath(path))

    def result(strategy: Strategy, outcome: Outcome, msg: str, **kw: object) -> RepairResult:
        return RepairResult(
            path,
            strategy,
            outcome,
            msg,
            seconds=time.monotonic() - started,
            **kw,  # type: ignore[arg-type]
        )

    if not os.path.isdir(path):
        return result(Strategy.MANUAL, Outcome.FAILED, "not a directory")
    recovered: Optional[str] = None
    try:
        actor = actor_for(path)
    except Unsafe as e:
        return result(Strategy.MANUAL, Outcome.REFUSED, str(e))
    try:
        with locked(path, actor) if not options.dry_run else contextlib.nullcontext():
            if not options.dry_run:
                recovered = recover(path, actor)
            rep = inspect_path(path, top_level=True)
            interps = interpreters if interpreters is not None else interpreters_for([rep])
            seeds = seed_needs(rep.facts)
            plan = plan_for(rep, interps, options, seeds)
            kw: dict[str, object] = {"target": plan.target, "recovered": recovered}
            if plan.strategy is Strategy.NONE:
                return result(plan.strategy, Outcome.NOTHING, plan.reason, **kw)
            if plan.strategy is Strategy.MANUAL:
                return result(plan.strategy, Outcome.FAILED, plan.reason, **kw)
            refusal = _refusal(plan, rep.facts, options.force, options.package_tools)
            if refusal:
                return result(plan.strategy, Outcome.REFUSED, refusal, **kw)
            fatal = [b for b in plan.blockers if b.fatal]
            if fatal and not (
                options.allow_upgrades and all(b.code == "requires-python" for b in fatal)
            ):
                return result(
                    plan.strategy,
                    Outcome.FAILED,
                    f"{plural(len(fatal), 'package')} cannot be reinstalled as they are",
                    failed_pins=tuple(PinFailure(b.package, b.message) for b in fatal),
                    **kw,
                )
            owner = owner_of(actor)
            backend_name = "copy"
            if plan.strategy is Strategy.REBUILD:
                backend_name = choose(options.backend, owner.uid, owner.gid).name
            if options.dry_run:
                return result(
                    plan.strategy,
                    Outcome.PLANNED,
                    _describe(plan, backend_name),
                    backend=backend_name,
                    **kw,
                )
            runner = OwnerRunner(owner, cancel)
            step = hook or (lambda s: None)
            job = _Job(path, rep, plan, options, runner, step, seeds)
            build = job.build_new if plan.strategy is Strategy.REBUILD else job.build_copy
            try:
                _preload()
                backup = transact(
                    path,
                    f"repair ({plan.strategy.value})",
                    build,
                    job.verify,
                    hook=step,
                    cancel=cancel,
                    actor=actor,
                    on_journal=lambda j: runner.record_in(j, actor),
                )
            except PinsFailed as e:
                return result(
                    plan.strategy,
                    Outcome.FAILED,
                    str(e),
                    failed_pins=e.pins,
                    backend=backend_name,
                    **kw,
                )
            except (RepairError, OSError) as e:
                why = str(e) if isinstance(e, RepairError) else describe_os_error(e, path)
                return result(plan.strategy, Outcome.FAILED, why, backend=backend_name, **kw)
            finally:
                runner.close()
            for old in backups(path, actor)[options.keep_backups :]:
                with contextlib.suppress(OSError, VenvkeeperError):
                    delete_backup(old, actor)
            msg = _describe(plan, backend_name)
            if job.notes:
                msg += "; " + "; ".join(job.notes)
            return result(
                plan.strategy,
                Outcome.REPAIRED,
                msg,
                backup=backup,
                changes=job.changes,
                backend=backend_name,
                **kw,
            )
    except Unsafe as e:
        return result(Strategy.MANUAL, Outcome.REFUSED, str(e), recovered=recovered)
    except (Busy, RepairError) as e:
        return result(Strategy.MANUAL, Outcome.FAILED, str(e), recovered=recovered)
    except VenvkeeperError as e:  # also "not a virtual environment": this path fails alone
        return result(Strategy.MANUAL, Outcome.FAILED, str(e), recovered=recovered)
    except OSError as e:
        return result(Strategy.MANUAL, Outcome.FAILED, describe_os_error(e, path))


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
    like every repair: an empty placeholder is made at its path and swapped for the
    verified venv (the placeholder's backup is then deleted); a sibling that exists
    already is rebuilt, the old one kept as its backup. The result names the sibling."""
    from venvkeeper.model.matrix import sibling_path
    from venvkeeper.scan.pipeline import inspect_path

    started = time.monotonic()
    source = os.path.realpath(os.path.abspath(path))
    rep = inspect_path(source, top_level=True)  # "not a virtual environment": a usage error
    interps = interpreters if interpreters is not None else interpreters_for([rep])
    target = sibling_target(rep, interps, options.python)
    dest = sibling_path(source, target.version)

    def result(outcome: Outcome, msg: str, **kw: object) -> RepairResult:
        return RepairResult(
            dest,
            Strategy.REBUILD,
            outcome,
            msg,
            target=target,
            seconds=time.monotonic() - started,
            **kw,  # type: ignore[arg-type]
        )

    if dest == source:
        return result(Outcome.NOTHING, f"{source} is already the venv for Python {target.version}")
    if os.path.islink(dest) or (os.path.lexists(dest) and not os.path.isdir(dest)):
        return result(Outcome.REFUSED, f"{dest} exists and is not a directory: refused")
    try:
        actor = actor_for(source)  # the sibling belongs to whoever has the original
        seeds = seed_needs(rep.facts)
        plan = sibling_plan(rep, interps, options, dest, target, seeds)
        fatal = [b for b in plan.blockers if b.fatal]
        if fatal and not (
            options.allow_upgrades and all(b.code == "requires-python" for b in fatal)
        ):
            return result(
                Outcome.FAILED,
                f"{len(fatal)} package(s) cannot be reinstalled as they are",
                failed_pins=tuple(PinFailure(b.package, b.message) for b in fatal),
            )
        owner = owner_of(actor)
        backend_name = choose(options.backend, owner.uid, owner.gid).name
        what = f"sibling of {source}: " + _describe(plan, backend_name)
        if options.dry_run:
            return result(Outcome.PLANNED, what, backend=backend_name)
        with locked(source, actor), locked(dest, actor):
            recovered = recover(dest, actor)
            placeholder = _placeholder(dest, actor)
            runner = OwnerRunner(owner, cancel)
            step = hook or (lambda s: None)
            job = _Job(source, rep, plan, options, runner, step, seeds, dest=dest)
            kw: dict[str, object] = {"backend": backend_name, "recovered": recovered}
            try:
                _preload()
                backup: Optional[str] = transact(
                    dest,
                    "repair (sibling)",
                    job.build_new,
                    job.verify,
                    hook=step,
                    cancel=cancel,
                    actor=actor,
                    on_journal=lambda j: runner.record_in(j, actor),
                )
            except PinsFailed as e:
                return result(Outcome.FAILED, str(e), failed_pins=e.pins, **kw)
            except (RepairError, OSError) as e:
                why = str(e) if isinstance(e, RepairError) else describe_os_error(e, dest)
                return result(Outcome.FAILED, why, **kw)
            finally:
                runner.close()
                if placeholder:  # the build failed: the placeholder is back, empty, at dest
                    with actor.beside(), contextlib.suppress(OSError):
                        os.rmdir(dest)  # (after a swap dest is the new venv: not empty)
            kept = backups(dest, actor)
            for old in kept:
                if placeholder and old.path == backup:
                    with contextlib.suppress(OSError, VenvkeeperError):
                        delete_backup(old, actor)  # the empty placeholder: nothing to keep
                    backup = None
            for old in backups(dest, actor)[options.keep_backups :]:
                with contextlib.suppress(OSError, VenvkeeperError):
                    delete_backup(old, actor)
            if job.notes:
                what += "; " + "; ".join(job.notes)
            return result(Outcome.REPAIRED, what, backup=backup, changes=job.changes, **kw)
    except Unsafe as e:
        return result(Outcome.REFUSED, str(e))
    except (Busy, RepairError) as e:
        return result(Outcome.FAILED, str(e))
    except OSError as e:
        return result(Outcome.FAILED, describe_os_error(e, dest))


def _placeholder(dest: str, actor: Actor) -> bool:
    """Make *dest* an empty directory of the venv's owner for the transaction to swap,
    unless a tree is there already. True when *dest* is (now) an empty placeholder: made
    here, or left by a run that was killed before its swap."""
    with actor.beside():
        try:
            os.mkdir(dest, 0o700)
        except FileExistsError:
            if os.path.islink(dest) or not os.path.isdir(dest):
                raise Unsafe(f"{dest} exists and is not a directory: refused") from None
            return not os.listdir(dest)
        if actor.uid != actor.owner_uid:
            os.chown(dest, actor.owner_uid, actor.owner_gid)
        return True


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
    interps = interpreters_for(reps)
    if options.python:
        _target_for(options.python, interps)  # a usage error now, not once per venv
    results: dict[str, RepairResult] = {}

    def one(p: str) -> RepairResult:
        if progress:
            progress(p, None)
        if cancel.is_set():
            r = RepairResult(p, Strategy.MANUAL, Outcome.FAILED, "interrupted before it started")
        else:
            r = repair_venv(p, options, interpreters=interps, cancel=cancel)
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


def _preload() -> None:
    """Import now what the build and the verification import later: they run with the
    venv owner's filesystem identity, which may not read the directories our own code
    comes from (``/root/...``)."""
