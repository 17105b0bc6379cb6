"""Why a venv is not repaired although its plan says how: another tool or a system
package owns it (:func:`refusal`; ``--force`` overrides), or it lies in another OS root
that this run cannot build in safely (:func:`root_refusal`). Each answer says what to do
instead; None means the repair may go on."""

from __future__ import annotations

import os
from typing import Optional

from venvkeeper.host import pkgdb
from venvkeeper.model.plan import RepairPlan, Strategy
from venvkeeper.model.venv import VenvFacts
from venvkeeper.repair.backends import BackendChoice
from venvkeeper.repair.options import RepairOptions

#: Places no system package installs files into (the FHS leaves them to the admin and users).
NEVER_PACKAGED = ("/home/", "/root/", "/srv/", "/tmp/", "/var/tmp/", "/usr/local/", "/mnt/")  # noqa: S108


def refusal(
    plan: RepairPlan, facts: VenvFacts, force: bool, package_tools: Optional[str] = None
) -> Optional[str]:
    """Why the venv of *facts* is left to its owner: a tool manages it (the tool's
    command, runnable as printed), or a system package installed it (its root's package
    database, read statically for another OS root). None with *force*."""
    if force:
        return None
    if plan.strategy is Strategy.USE_TOOL:
        where = f" ({plan.tool_note})" if plan.tool_note else ""
        return (
            f"managed by {facts.creator.value}: run `{plan.tool_command}`{where} instead"
            " (`venvkeeper repair --force` rebuilds it anyway)"
        )
    if facts.path_in_root.startswith(NEVER_PACKAGED):
        return None  # no distro package installs there (FHS): spare the dpkg/rpm query
    cfg = os.path.join(facts.path_in_root, "pyvenv.cfg")
    if facts.root is not None:  # the root's own package database, read statically
        from venvkeeper.host import aptdb

        owner = aptdb.state(facts.root).owner(cfg)
        owners = {cfg: owner.name} if owner is not None else {}
    else:
        owners = pkgdb.owners([cfg], package_tools)
    if owners:
        pkg = next(iter(owners.values()))
        return (
            f"installed by the system package {pkg}: upgrade or reinstall that package"
            " (`venvkeeper repair --force` rebuilds it anyway)"
        )
    return None


def root_refusal(
    root: str,
    options: RepairOptions,
    plan: Optional[RepairPlan] = None,
    facts: Optional[VenvFacts] = None,
    owner_uid: int = -1,
) -> Optional[str]:
    """Why a venv inside the OS root *root* cannot be repaired here (None: it can). It is
    built and verified by the root's own Python, through chroot: that needs root, the
    chroot program, pip (uv, a program of this host, does not build there) and package
    sources the root can reach; and, for a venv of root's (its programs then run as root),
    a target interpreter and stdlib that nobody but root can change."""
    where = f"inside the OS root {root}"
    if os.geteuid() != 0:
        return (
            f"{where}: it is repaired with that root's own Python through chroot, which"
            " needs root (run venvkeeper repair as root, or inside the root)"
        )
    from venvkeeper.host.osroots import chroot_program

    if chroot_program() is None:
        return f"{where}: no chroot program on this host (coreutils) to run its Python there"
    if options.backend is BackendChoice.UV:
        return (
            f"{where}: --backend uv would run this host's uv; the rebuild there uses the"
            " new venv's own pip (--backend pip, or auto)"
        )
    for d in options.sources.find_links:
        if d.startswith("/") and not (d == root or d.startswith(root.rstrip("/") + "/")):
            return (
                f"{where}: --find-links {d} is outside it, where its installer cannot read:"
                f" put the wheels below {root}"
            )
    # What will run: the target (a relink, a rebuild), else the venv's own base (a rewrite).
    runs: Optional[tuple[str, Optional[str]]] = None
    if plan is not None and plan.target is not None:
        runs = (plan.target.executable, plan.target.version)
    elif facts is not None and facts.base is not None:
        runs = (facts.base.executable, facts.base.version)
    if owner_uid == 0 and runs is not None:
        from venvkeeper.host.hostfs import RootFS
        from venvkeeper.host.osroots import changeable_by_others

        fs = RootFS(root)
        exe, version = runs
        paths = [fs.host_path(exe)]
        if version:
            paths.append(
                fs.host_path(f"{os.path.dirname(os.path.dirname(exe))}/lib/python{version}")
            )
        for p in paths:
            bad = changeable_by_others(p)
            if bad is not None:
                return (
                    f"{where}: its Python would run as root, but {bad} can be changed by"
                    " another user than root: repair it from inside the root, or fix the"
                    " ownership"
                )
    return None
