"""The version audit of a rebuilt venv: what it has against the old venv's package set.

:func:`audit` is the rule, on values: the same versions of the same distributions (a seed
may differ: its step said why), and each distribution an upgrade pulled in listed as a
change. :func:`check_versions` reads the new venv and applies it.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

from venvkeeper.host import fsutil
from venvkeeper.model.plan import RepairPlan
from venvkeeper.model.repair import PackageChange
from venvkeeper.predict.seeds import is_seed
from venvkeeper.repair.backends import Run
from venvkeeper.repair.transaction import RepairError
from venvkeeper.repair.work import Log, Work
from venvkeeper.scan.inspect import inspect_venv
from venvkeeper.textutil import canonical_name

#: Distributions by canonical name: (the name as written, the version).
Installed = dict[str, tuple[str, str]]


def installed(tree: str) -> Installed:
    """The distributions in the venv at *tree*, read statically."""
    facts = inspect_venv(tree)
    return {canonical_name(d.name): (d.name, d.version) for d in facts.distributions}


_VISIBLE = (
    "import json, sys\nfrom importlib import metadata\n"
    "print(json.dumps([[d.metadata['Name'], d.version] for d in"
    " metadata.distributions() if d.metadata['Name']]))"
)


def visible(python: str, run: Run) -> Installed:
    """The distributions the interpreter *python* sees (its venv's and, with
    ``include-system-site-packages``, the system's), asked of it as the job's user; empty
    when it cannot tell."""
    done = run([python, "-I", "-B", "-c", _VISIBLE], 120)
    if done.returncode != 0:
        return {}
    try:
        pairs = fsutil.load_json(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    out: Installed = {}
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair):
            out.setdefault(canonical_name(pair[0]), (pair[0], pair[1]))
    return out


def audit(
    plan: RepairPlan,
    now: Mapping[str, tuple[str, str]],
    seen_by_venv: Mapping[str, tuple[str, str]],
    changes: tuple[PackageChange, ...],
    seeded: Collection[str],
    allow_upgrades: bool,
) -> tuple[PackageChange, ...]:
    """Every change of the rebuilt venv against *plan*'s package set: *changes* (what the
    seed step recorded), then each pinned distribution whose version differs in
    *seen_by_venv* (what the venv sees: *now*, its own, and the system's where it sees
    them), then each distribution of *now* that nothing asked for (pulled in by an
    upgrade; not a seed, not pip, not what the venv's creator installed: *seeded*).

    :class:`RepairError` when a pin differs and upgrades were not allowed, or when a
    distribution of the set is not installed at all."""
    old = {canonical_name(r.name) for r in plan.packages}
    old |= {canonical_name(s.split("==")[0]) for s in plan.skipped}
    seen = {canonical_name(c.name) for c in changes}
    out = list(changes)
    for r in plan.packages:
        key = canonical_name(r.name)
        got = seen_by_venv.get(key)
        if key in seen or (is_seed(r.name) and got is not None):
            continue
        if got is None or got[1] != r.version:
            out.append(PackageChange(r.name, r.version, got[1] if got else None))
    strict = [c for c in out if c not in changes and not is_seed(c.name)]
    for key, (name, version) in sorted(now.items()):
        pulled = key not in old and key not in seen and key not in seeded
        if pulled and not is_seed(name) and key != "pip":
            out.append(PackageChange(name, None, version))  # pulled in by an upgrade
    if strict and not allow_upgrades:
        shown = ", ".join(f"{c.name} {c.old} -> {c.new or 'missing'}" for c in strict[:5])
        raise RepairError(f"installed versions differ from the old venv's: {shown}")
    missing = [c.name for c in strict if c.new is None]
    if missing:
        raise RepairError(f"not installed: {', '.join(missing[:8])}")
    return tuple(out)


def check_versions(work: Work, log: Log, new: str, seeded: Collection[str]) -> None:
    """:func:`audit` of the venv built at *new* (*seeded*: what its creator installed),
    its changes recorded in *log*. With ``include-system-site-packages`` what the
    system's site provides counts as present, as the venv sees it."""
    now = installed(new)
    seen_by_venv = dict(now)
    if work.plan.system_site_packages:
        python = os.path.join(new, "bin", "python")
        for k, v in visible(python, work.run).items():
            seen_by_venv.setdefault(k, v)
    log.changes = audit(
        work.plan, now, seen_by_venv, log.changes, seeded, work.options.allow_upgrades
    )
