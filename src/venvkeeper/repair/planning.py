"""The plan of each venv to repair: the interpreters it may move to, the target chosen
(``--python`` or the nearest that works), and the package set (:mod:`venvkeeper.predict.plan`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Optional

from venvkeeper.errors import UsageError
from venvkeeper.host.bases import uv_minor_link
from venvkeeper.host.hostfs import REAL, HostFS, RootFS
from venvkeeper.host.interpreters import find_interpreters, places_for
from venvkeeper.model.host import Interpreter
from venvkeeper.model.plan import RepairPlan, Target
from venvkeeper.model.report import VenvReport
from venvkeeper.predict.plan import make_plan, rebuild_on
from venvkeeper.predict.seeds import SeedNeeds, seed_needs
from venvkeeper.repair.options import RepairOptions


def interpreters_for(
    venvs: Iterable[VenvReport], root: Optional[str] = None
) -> tuple[Interpreter, ...]:
    """The host's interpreters, found statically, plus those beside the venvs' old ones
    (their homes and sibling installations: where a relink target is). *root*: those of
    that OS root instead (the venvs' own), as it names them."""
    from venvkeeper.predict.changes import homes_of, root_interpreters

    if root is not None:
        return root_interpreters(venvs, RootFS(root), root)
    return find_interpreters(places_for(None, homes_of(venvs)))


def fs_of(root: Optional[str]) -> HostFS:
    """The files a venv of the OS root *root* sees (this host's for None)."""
    return REAL if root is None else RootFS(root)


def target_for(python: str, known: Sequence[Interpreter], fs: HostFS = REAL) -> Target:
    """``--python PATH`` among *known*; *fs*: the OS root whose path it is (the venvs')."""
    path = os.path.abspath(python)
    if fs is REAL:
        # A uv-managed Python's patch directory: the venv is linked through uv's minor link.
        path = uv_minor_link(path) or path
    try:
        real = fs.realpath(path)
    except (OSError, ValueError):
        real = path
    pool = list(known)
    if not any(i.executable == real for i in pool):
        from venvkeeper.host.interpreters import Places

        found = Places((os.path.dirname(path),), ())
        root = "/" if fs is REAL else fs.host_root if isinstance(fs, RootFS) else None
        pool = list(find_interpreters(found, fs, run=True, packages_root=root))
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
    the one planner's (:func:`venvkeeper.predict.plan.make_plan`). *seeds*: what the venv's
    code needs of its seed packages (read when not given). A venv inside another OS root is
    planned with that root's files (*interps* must be its interpreters)."""
    seeds = seeds if seeds is not None else seed_needs(rep.facts)
    fs = fs_of(rep.facts.root)
    python = target_for(options.python, interps, fs) if options.python else None
    minor = dict(options.minor_for).get(os.path.realpath(rep.facts.path))
    if python is None and minor is not None:
        python = embedder_target(rep, interps, minor)
    return make_plan(
        rep.facts, rep.findings, interps, fs.path_state, seeds, python=python, force=options.force
    )


def embedder_target(
    rep: VenvReport, interps: Sequence[Interpreter], minor: str
) -> Optional[Target]:
    """The interpreter of Python *minor* to rebuild the venv of *rep* on, for the server that
    embeds it (None: the venv is of that minor already, or no usable one is installed):
    the one a rebuild would choose among those of that minor (the distro's first, by the
    name the venv was made with where it has one)."""
    from venvkeeper.checks.consumers import site_minor
    from venvkeeper.predict.plan import by_default_name, choose_rebuild, follows_default

    if site_minor(rep.facts) == minor and rep.facts.base and rep.facts.base.version == minor:
        return None
    usable = [i for i in interps if i.usable and i.version == minor]
    default = follows_default(rep.facts)
    return (by_default_name(default, usable) if default else None) or choose_rebuild(
        rep.facts, usable
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
        return target_for(python, interps, fs_of(rep.facts.root))
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
    exists = fs_of(facts.root).path_state
    plan = rebuild_on(
        make_plan(facts, rep.findings, interps, exists, seeds), facts, target, exists, seeds
    )
    return replace(
        plan,
        path=dest,
        reason=f"the sibling of {facts.path} for Python {target.version}",
        old_location=None,
        tool_command=None,
        tool_note=None,
    )
