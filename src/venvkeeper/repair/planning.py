"""The plan of each venv to repair: the interpreters it may move to, the target chosen
(``--python`` or the nearest that works), and the package set (:mod:`venvkeeper.predict.plan`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Optional

from venvkeeper.errors import (
    UsageError,
)
from venvkeeper.host.bases import uv_minor_link
from venvkeeper.host.fsutil import path_state
from venvkeeper.host.interpreters import find_interpreters, places_for
from venvkeeper.model.host import Interpreter
from venvkeeper.model.plan import RepairPlan, Strategy, Target
from venvkeeper.model.report import VenvReport
from venvkeeper.model.venv import VenvFacts
from venvkeeper.predict.plan import (
    make_plan,
    package_set,
    packages_minor,
    placeholder_notes,
    version_blockers,
)
from venvkeeper.predict.seeds import SeedNeeds, seed_needs
from venvkeeper.repair.job import RepairOptions


def interpreters_for(venvs: Iterable[VenvReport]) -> tuple[Interpreter, ...]:
    """The host's interpreters, found statically, plus those beside the venvs' old ones
    (their homes and sibling installations: where a relink target is)."""
    from venvkeeper.predict.changes import homes_of

    return find_interpreters(places_for(None, homes_of(venvs)))


def _target_for(python: str, known: Sequence[Interpreter]) -> Target:
    path = os.path.abspath(python)
    # A uv-managed Python's patch directory: the venv is linked through uv's minor link.
    path = uv_minor_link(path) or path
    real = os.path.realpath(path)
    pool = list(known)
    if not any(i.executable == real for i in pool):
        from venvkeeper.host.interpreters import Places

        pool = list(find_interpreters(Places((os.path.dirname(path),), ()), run=True))
    for i in pool:
        if i.executable == real or any(n.path == path for n in i.names):
            if not i.usable or i.version is None:
                raise UsageError(
                    f"--python {python}: not a usable interpreter (a script, an unknown"
                    " version, or its standard library is missing)"
                )
            return Target(path, i.executable, i.version, i.patch_version)
    raise UsageError(f"--python {python}: no Python interpreter there")


def _with_python(
    plan: RepairPlan, facts: VenvFacts, target: Target, force: bool, seeds: SeedNeeds
) -> RepairPlan:
    """The plan when the admin chose the interpreter (also for a venv that works: a
    deliberate move to another Python)."""
    base = facts.base
    if (
        plan.strategy is Strategy.NONE
        and base is not None
        and not base.is_copy
        and base.executable == target.executable
    ):
        return plan
    if plan.strategy is Strategy.USE_TOOL and not force:
        return replace(plan, target=target)
    minor = packages_minor(facts)
    strategy = Strategy.RELINK if minor == target.version else Strategy.REBUILD
    reqs, skipped, blockers = package_set(facts, minor, path_state, seeds)
    if strategy is Strategy.REBUILD:
        blockers += tuple(version_blockers(facts, reqs, minor, target))
    reason = plan.reason if plan.strategy is not Strategy.NONE else f"--python {target.path}"
    return replace(
        plan,
        strategy=strategy,
        target=target,
        packages=reqs,
        skipped=skipped,
        blockers=blockers,
        reason=reason,
        notes=placeholder_notes(facts) if strategy is Strategy.REBUILD else (),
    )


def plan_for(
    rep: VenvReport,
    interps: Sequence[Interpreter],
    options: RepairOptions,
    seeds: Optional[SeedNeeds] = None,
) -> RepairPlan:
    """*seeds*: what the venv's code needs of its seed packages (read when not given)."""
    seeds = seeds if seeds is not None else seed_needs(rep.facts)
    plan = make_plan(rep.facts, rep.findings, interps, path_state, seeds)
    if options.python:
        target = _target_for(options.python, interps)
        plan = _with_python(plan, rep.facts, target, options.force, seeds)
    if plan.strategy is Strategy.USE_TOOL and options.force and plan.target is not None:
        minor = packages_minor(rep.facts)
        plan = replace(
            plan,
            strategy=Strategy.RELINK if minor == plan.target.version else Strategy.REBUILD,
            blockers=plan.blockers
            + tuple(version_blockers(rep.facts, plan.packages, minor, plan.target)),
        )
    return plan


def sibling_target(
    rep: VenvReport, interps: Sequence[Interpreter], python: Optional[str]
) -> Target:
    """The interpreter a per-minor sibling of *rep*'s venv is built with on this host:
    ``--python``, else what the venv's intent leads to here (the distro name it was made
    with, e.g. ``/usr/bin/python3``, as this host has it), else the interpreter a rebuild
    would use (:func:`venvkeeper.predict.plan.choose_rebuild`)."""
    from venvkeeper.predict.plan import by_default_name, choose_rebuild, follows_default

    if python:
        return _target_for(python, interps)
    default = follows_default(rep.facts)
    usable = [i for i in interps if i.usable]
    target = by_default_name(default, usable) if default else None
    target = target or choose_rebuild(rep.facts, usable)
    if target is None:
        raise UsageError(
            "no usable Python (binary, known version, stdlib present) on this host to build"
            " the sibling with: install one, or give --python"
        )
    return target


def sibling_plan(
    rep: VenvReport,
    interps: Sequence[Interpreter],
    options: RepairOptions,
    dest: str,
    target: Target,
    seeds: Optional[SeedNeeds] = None,
) -> RepairPlan:
    """The plan of ``repair --sibling``: a new venv at *dest* on *target* with the very
    same packages as *rep*'s venv (always a rebuild; the venv itself is only read)."""
    seeds = seeds if seeds is not None else seed_needs(rep.facts)
    facts = rep.facts
    base = make_plan(facts, rep.findings, interps, path_state, seeds)
    minor = packages_minor(facts)
    reqs, skipped, blockers = package_set(facts, minor, path_state, seeds)
    blockers += tuple(version_blockers(facts, reqs, minor, target))
    return replace(
        base,
        path=dest,
        strategy=Strategy.REBUILD,
        reason=f"the sibling of {facts.path} for Python {target.version}",
        target=target,
        packages=reqs,
        skipped=skipped,
        blockers=blockers,
        old_location=None,
        tool_command=None,
        tool_note=None,
        notes=placeholder_notes(facts),
    )
