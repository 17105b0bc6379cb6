"""The one execution path of a planned repair, in place or as a sibling.

:func:`execute` takes where the new tree goes (a :class:`Destination`) and how the plan
is made (a function it calls under the lock, after the recovery of an interrupted run),
and does everything else one way for both: the refusals, the blockers, ``--dry-run``,
the locks, the placeholder of a new sibling, the transaction (build beside, verify, swap
by rename, backup, restore on failure), the backups kept, the result's message, and one
mapping of every failure to its outcome and message (:func:`failure_of`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable, Optional

from venvkeeper.errors import VenvkeeperError, describe_os_error
from venvkeeper.model.plan import RepairPlan, Strategy, Target
from venvkeeper.model.repair import Outcome, PinFailure, RepairResult
from venvkeeper.model.report import VenvReport
from venvkeeper.predict.seeds import SeedNeeds
from venvkeeper.repair.job import Job
from venvkeeper.repair.options import RepairOptions, backend_for
from venvkeeper.repair.owner import ChrootRunner, Owner, OwnerRunner, owner_of
from venvkeeper.repair.rebuild import PinsFailed
from venvkeeper.repair.refusals import refusal, root_refusal
from venvkeeper.repair.safety import Actor, Unsafe, actor_for
from venvkeeper.repair.transaction import Hook, backups, delete_backup, locked, recover, transact
from venvkeeper.repair.work import Work, no_step
from venvkeeper.textutil import plural


@dataclass(frozen=True)
class Destination:
    """Where a repair puts the tree it builds. In place (:meth:`in_place`): *path* is the
    venv, swapped for the new tree; the plan says the strategy. A sibling
    (:meth:`sibling`): *path* is a new venv beside *source*, which is only read; the
    transaction swaps an empty placeholder made there (its backup then deleted), or the
    sibling already there (kept as its backup). *strategy* and *target* are what a
    result says before the plan is known."""

    path: str
    source: str
    strategy: Strategy = Strategy.MANUAL
    target: Optional[Target] = None

    @classmethod
    def in_place(cls, path: str) -> Destination:
        return cls(path, path)

    @classmethod
    def sibling(cls, source: str, path: str, target: Target) -> Destination:
        return cls(path, source, Strategy.REBUILD, target)

    @property
    def is_sibling(self) -> bool:
        return self.path != self.source

    def action(self, plan: RepairPlan) -> str:
        """The transaction's action (its journal, the backup's note)."""
        return "repair (sibling)" if self.is_sibling else f"repair ({plan.strategy.value})"

    def describe(self, plan: RepairPlan, backend: str) -> str:
        """What the repair does, in the words of its result."""
        what = describe(plan, backend)
        return f"sibling of {self.source}: {what}" if self.is_sibling else what


@dataclass(frozen=True)
class Planned:
    """What a destination's planner read under the lock: the venv, its plan, and what
    its code needs of its seed packages."""

    rep: VenvReport
    plan: RepairPlan
    seeds: SeedNeeds


Planner = Callable[[], Planned]


def describe(plan: RepairPlan, backend: str) -> str:
    """A plan as a result's message says it."""
    t = plan.target
    if plan.strategy is Strategy.REBUILD and t is not None:
        packages = plural(len(plan.packages), "package")
        return f"rebuild on {t.path} ({t.version}) with {backend}, {packages}"
    if plan.strategy is Strategy.RELINK and t is not None:
        return f"relink to {t.path} ({t.patch_version or t.version})"
    if plan.strategy is Strategy.REWRITE_PATHS:
        return f"rewrite paths from {plan.old_location} to {plan.path}"
    return plan.reason


def failure_of(e: Exception, where: str) -> tuple[Outcome, str, tuple[PinFailure, ...]]:
    """The one mapping of what stops a repair to its outcome, message and failed pins:
    refused when a safety rule refuses (:class:`~.safety.Unsafe`), failed otherwise; a
    set that does not install names its pins; an OSError is *where* and what went
    wrong in words."""
    if isinstance(e, Unsafe):
        return Outcome.REFUSED, str(e), ()
    if isinstance(e, PinsFailed):
        return Outcome.FAILED, str(e), e.pins
    if isinstance(e, OSError):
        return Outcome.FAILED, describe_os_error(e, where), ()
    return Outcome.FAILED, str(e), ()


class _Results:
    """The results of one repair, each with what is known when it is made: the plan's
    strategy and target, the backend, what the recovery of an earlier run did."""

    def __init__(self, dest: Destination, started: float) -> None:
        self.dest = dest
        self.started = started
        self.strategy = dest.strategy
        self.target = dest.target
        self.backend: Optional[str] = None
        self.recovered: Optional[str] = None

    def planned(self, plan: RepairPlan) -> None:
        self.strategy, self.target = plan.strategy, plan.target

    def __call__(self, outcome: Outcome, message: str, **kw: object) -> RepairResult:
        return RepairResult(
            self.dest.path,
            self.strategy,
            outcome,
            message,
            target=self.target,
            backend=self.backend,
            recovered=self.recovered,
            seconds=time.monotonic() - self.started,
            **kw,  # type: ignore[arg-type]
        )

    def failure(self, e: Exception) -> RepairResult:
        outcome, message, pins = failure_of(e, self.dest.path)
        return self(outcome, message, failed_pins=pins)


@contextlib.contextmanager
def _locks(dest: Destination, actor: Actor, dry_run: bool) -> Iterator[None]:
    """The venv's lock (and the sibling's): none for a dry run, which changes nothing."""
    with contextlib.ExitStack() as held:
        if not dry_run:
            held.enter_context(locked(dest.source, actor))
            if dest.is_sibling:
                held.enter_context(locked(dest.path, actor))
        yield


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


def _runner(owner: Owner, cancel: Optional[threading.Event], root: Optional[str]) -> OwnerRunner:
    return ChrootRunner(root, owner, cancel) if root is not None else OwnerRunner(owner, cancel)


def _why_not(
    dest: Destination, planned: Planned, options: RepairOptions, actor: Actor
) -> Optional[str]:
    """Why the plan is not carried out (None: it is): a refusal, else blockers."""
    plan, facts = planned.plan, planned.rep.facts
    why = None
    if not dest.is_sibling:  # a sibling leaves the venv as its tool or package has it
        why = refusal(plan, facts, options.force, options.package_tools)
    if why is None and facts.root is not None:
        why = root_refusal(facts.root, options, plan, facts, actor.owner_uid)
    return why


def execute(
    dest: Destination,
    options: RepairOptions,
    planner: Planner,
    *,
    hook: Optional[Hook] = None,
    cancel: Optional[threading.Event] = None,
    started: Optional[float] = None,
) -> RepairResult:
    """Carry out the plan *planner* makes (called under the lock, after the recovery of
    an interrupted run) into *dest*, as one transaction; never raises for a problem of
    the venv (the result says it). *started*: when the caller began (for the result's
    time)."""
    result = _Results(dest, time.monotonic() if started is None else started)
    path = dest.path
    if not dest.is_sibling and not os.path.isdir(path):
        return result(Outcome.FAILED, "not a directory")
    taken = os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path))
    if dest.is_sibling and taken:
        return result(Outcome.REFUSED, f"{path} exists and is not a directory: refused")
    try:
        actor = actor_for(dest.source)  # a sibling belongs to whoever has the original
        with _locks(dest, actor, options.dry_run):
            if not options.dry_run:
                result.recovered = recover(path, actor)
            planned = planner()
            return _carry_out(dest, planned, options, actor, result, hook, cancel)
    except (VenvkeeperError, OSError) as e:  # also "not a virtual environment": it fails alone
        return result.failure(e)


def _carry_out(
    dest: Destination,
    planned: Planned,
    options: RepairOptions,
    actor: Actor,
    result: _Results,
    hook: Optional[Hook],
    cancel: Optional[threading.Event],
) -> RepairResult:
    plan, rep = planned.plan, planned.rep
    result.planned(plan)
    if plan.strategy is Strategy.NONE:
        return result(Outcome.NOTHING, plan.reason)
    if plan.strategy is Strategy.MANUAL:
        return result(Outcome.FAILED, plan.reason)
    why = _why_not(dest, planned, options, actor)
    if why:
        return result(Outcome.REFUSED, why)
    fatal = [b for b in plan.blockers if b.fatal]
    if fatal and not (options.allow_upgrades and all(b.upgradable for b in fatal)):
        return result(
            Outcome.FAILED,
            f"{plural(len(fatal), 'package')} cannot be reinstalled as they are",
            failed_pins=tuple(PinFailure(b.package, b.message) for b in fatal),
        )
    owner = owner_of(actor)
    root = rep.facts.root
    backend = "copy"
    if plan.strategy is Strategy.REBUILD:
        backend = backend_for(options, root, owner.uid, owner.gid).name
    result.backend = backend
    if options.dry_run:
        return result(Outcome.PLANNED, dest.describe(plan, backend))
    runner = _runner(owner, cancel, root)
    step = hook or no_step
    path = dest.path
    job = Job(Work(dest.source, path, rep, plan, options, runner, step, planned.seeds))
    placeholder = False
    try:
        placeholder = dest.is_sibling and _placeholder(path, actor)
        backup: Optional[str] = transact(
            path,
            dest.action(plan),
            job.build,
            job.verify,
            hook=step,
            cancel=cancel,
            actor=actor,
            on_journal=lambda j: runner.record_in(j, actor),
        )
    finally:
        runner.close()
        if placeholder:  # a failed build put the empty placeholder back: remove it
            with actor.beside(), contextlib.suppress(OSError):
                os.rmdir(path)  # (after a swap the path is the new venv: not empty)
    if placeholder:
        for old in backups(path, actor):
            if old.path == backup:
                with contextlib.suppress(OSError, VenvkeeperError):
                    delete_backup(old, actor)  # the empty placeholder: nothing to keep
                backup = None
    for old in backups(path, actor)[options.keep_backups :]:
        with contextlib.suppress(OSError, VenvkeeperError):
            delete_backup(old, actor)
    message = dest.describe(plan, backend)
    if job.notes:
        message += "; " + "; ".join(job.notes)
    return result(Outcome.REPAIRED, message, backup=backup, changes=job.changes)
