"""The plan of each venv to repair: the interpreters it may move to, the target chosen
(``--python`` or the nearest that works), and the package set (:mod:`venvkeeper.predict.plan`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Optional

from venvkeeper.errors import UsageError
from venvkeeper.host.fsutil import path_state
from venvkeeper.host.interpreters import find_interpreters, places_for
from venvkeeper.model.host import Interpreter
from venvkeeper.model.plan import RepairPlan, Target
from venvkeeper.model.report import VenvReport
from venvkeeper.predict.plan import make_plan, rebuild_on
from venvkeeper.predict.seeds import SeedNeeds, seed_needs
from venvkeeper.repair.job import RepairOptions


def interpreters_for(venvs: Iterable[VenvReport]) -> tuple[Interpreter, ...]:
    """The host's interpreters, found statically, plus those beside the venvs' old ones
    (their homes and sibling installations: where a relink target is)."""
    from venvkeeper.predict.changes import homes_of

    return find_interpreters(places_for(None, homes_of(venvs)))


def _target_for(python: str, known: Sequence[Interpreter]) -> Target:
    path = os.path.abspath(python)
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


def plan_for(
    rep: VenvReport,
    interps: Sequence[Interpreter],
    options: RepairOptions,
    seeds: Optional[SeedNeeds] = None,
) -> RepairPlan:
    """The plan of the venv of *rep* with the repair's choices (``--python``, ``--force``):
    the one planner's (:func:`venvkeeper.predict.plan.make_plan`), on this host.
    *seeds*: what the venv's code needs of its seed packages (read when not given)."""
    seeds = seeds if seeds is not None else seed_needs(rep.facts)
    python = _target_for(options.python, interps) if options.python else None
    return make_plan(
        rep.facts, rep.findings, interps, path_state, seeds, python=python, force=options.force
    )


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
    plan = rebuild_on(
        make_plan(facts, rep.findings, interps, path_state, seeds), facts, target, path_state, seeds
    )
    return replace(
        plan,
        path=dest,
        reason=f"the sibling of {facts.path} for Python {target.version}",
        old_location=None,
        tool_command=None,
    )
