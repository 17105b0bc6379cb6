"""Findings -> a repair plan per venv. Pure: it reads facts already gathered (and asks
*exists* about source paths), never writes. ``venvkeeper repair`` executes these plans.

Strategies, cheapest first:

- **relink**: the venv's packages are built for minor X.Y and an interpreter of the same
  minor *and the same origin* (the OS, pyenv, Homebrew, uv) exists at another path: point
  the links (and ``home``) at it. A system venv is never relinked onto a pyenv Python:
  that would trade the distro's security fixes for a working link.
- **rewrite-paths**: the interpreter is fine but the venv was moved: shebangs, activate
  scripts and ``pyvenv.cfg`` name the old place.
- **rebuild**: a new venv on the target interpreter with the very same packages, read from
  the old site-packages (exact pins, editables from their source, local paths, VCS at the
  recorded commit).
- **use-tool**: pipx, poetry, uv tool, tox, nox, hatch and pdm keep metadata of their own:
  their command is given instead (``repair --force`` may rebuild anyway).
"""

from __future__ import annotations

import functools
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Callable, Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from venvkeeper.checks import BOOTSTRAP
from venvkeeper.host.bases import classify_origin
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.host import Interpreter
from venvkeeper.model.plan import (
    Blocker,
    BlockerCode,
    Remedy,
    RepairPlan,
    Requirement,
    RequirementKind,
    Strategy,
    Target,
)
from venvkeeper.model.venv import (
    BaseInterpreter,
    BaseOrigin,
    Creator,
    DirectUrlKind,
    Distribution,
    VenvFacts,
    VenvKind,
)
from venvkeeper.predict.seeds import KEEP_ALL, SeedNeeds, is_seed
from venvkeeper.textutil import canonical_name

Exists = Callable[[str], Optional[bool]]

#: The distro's default names: a venv made through one follows what it is now.
DEFAULT_NAMES = frozenset({"python", "python3"})


@functools.cache
def remedies() -> Mapping[str, Remedy]:
    """The repair each registered finding code declares (its ``CodeDoc.repair``)."""
    from venvkeeper.checks.registry import all_codes

    return MappingProxyType({code: doc.repair for code, doc in all_codes().items()})


def remedy_of(finding: Finding) -> Remedy:
    """The repair that answers *finding*: its code's, as registered (none for a code the
    registry does not know)."""
    return remedies().get(finding.code, Remedy.NONE)


#: How each creator's own tool remakes a venv (``None``: venvkeeper repairs it itself).
#: Exhaustive: every :class:`Creator` is here (a test loops over them). Each is a shell
#: command line as printed for the user to paste; the words in braces are filled in by
#: :func:`_tool_command`, shell-quoted. What goes with it (where to run it) is
#: :data:`TOOL_NOTES`, printed outside the command.
TOOL_COMMANDS: dict[Creator, Optional[str]] = {
    Creator.VENV: None,
    Creator.VIRTUALENV: None,
    Creator.UV: None,  # uv tool venvs are told by their place: see _tool_command
    Creator.PIPX: "{pipx_home}pipx reinstall {name}{python}",
    Creator.POETRY: "poetry env remove --all && poetry install",
    Creator.PIPENV: None,  # needs its project directory (.project): see _project_command
    Creator.PDM: "pdm venv remove --yes in-project && pdm install",
    Creator.HATCH: "hatch env prune && hatch env create",
    Creator.TOX: "tox --recreate",
    Creator.NOX: "nox --no-reuse-existing-virtualenvs",
    Creator.PYENV_VIRTUALENV: None,
    Creator.LEGACY_VIRTUALENV: None,
    Creator.CONDA: None,
    Creator.UNKNOWN: None,
}

#: Where a tool's command must run when venvkeeper cannot tell the directory itself.
PROJECT_DIRECTORY = "in the project directory"
TOOL_NOTES: dict[Creator, str] = {
    Creator.POETRY: PROJECT_DIRECTORY,
    Creator.PDM: PROJECT_DIRECTORY,
    Creator.HATCH: PROJECT_DIRECTORY,
    Creator.TOX: PROJECT_DIRECTORY,
    Creator.NOX: PROJECT_DIRECTORY,
}

#: pipx has no command for its shared libraries venv: it recreates the venv (with its
#: default Python) whenever an app is installed or reinstalled and the venv is broken.
PIPX_SHARED = "{pipx_home}pipx reinstall-all"
PIPX_SHARED_NOTE = (
    "pipx rebuilds its shared libraries venv with the apps; it has no command for that venv alone"
)

#: tox and nox keep their venvs in the project: PROJECT/.tox/ENV, PROJECT/.nox/SESSION.
_IN_PROJECT_DIRS = {Creator.TOX: ".tox", Creator.NOX: ".nox"}


def _pipx_home(facts: VenvFacts) -> str:
    """``PIPX_HOME=DIR `` for a pipx venv outside the usual places (pipx would not find it
    otherwise), else nothing."""
    p = facts.path + "/"
    if "/pipx/venvs/" in p or "/pipx/shared/" in p:
        return ""
    home = os.path.dirname(facts.path)
    if not facts.tool.shared_libs:
        if os.path.basename(home) != "venvs":
            return ""
        home = os.path.dirname(home)
    return f"PIPX_HOME={shlex.quote(home)} "


def _project_command(
    facts: VenvFacts, target: Optional[Target], exists: Optional[Exists]
) -> Optional[str]:
    """The tool's command for a venv whose project directory is known (pipenv's
    ``.project``, poetry's in-project ``.venv``), run in that directory."""
    project = facts.tool.project
    if project is None:
        return None
    cd = f"cd {shlex.quote(project)} && "
    python = shlex.quote(target.path) if target else None
    if facts.creator is Creator.PIPENV:
        # sync installs Pipfile.lock's exact pins and never re-locks: the same packages.
        # Without a lock file there is nothing to sync: install resolves the Pipfile.
        lock = exists(os.path.join(project, "Pipfile.lock")) if exists else None
        verb = "install" if lock is False else "sync"
        return f"{cd}pipenv --rm && pipenv {verb}" + (f" --python {python}" if python else "")
    if facts.creator is Creator.POETRY:
        use = f"poetry env use {python} && " if python else ""
        return f"{cd}poetry env remove --all && {use}poetry install"
    return None


def _tool_command(
    facts: VenvFacts, target: Optional[Target], exists: Optional[Exists] = None
) -> Optional[tuple[str, Optional[str]]]:
    """The tool's command line for the venv (runnable as printed), and its note."""
    python = f" --python {shlex.quote(target.path)}" if target else ""
    if facts.creator is Creator.UV and "/uv/tools/" in facts.path + "/":
        name = shlex.quote(os.path.basename(facts.path))
        return f"uv tool install --reinstall{python} {name}", None
    if facts.creator is Creator.PIPX and facts.tool.shared_libs:
        return PIPX_SHARED.format(pipx_home=_pipx_home(facts)), PIPX_SHARED_NOTE
    in_project = _project_command(facts, target, exists)
    if in_project is not None:
        return in_project, None
    pattern = TOOL_COMMANDS[facts.creator]
    if pattern is None:
        return None
    name = facts.tool.package or os.path.basename(facts.path)
    command = pattern.format(name=shlex.quote(name), python=python, pipx_home=_pipx_home(facts))
    marker = _IN_PROJECT_DIRS.get(facts.creator)
    parent = os.path.dirname(facts.path)
    if marker is not None and os.path.basename(parent) == marker:
        if facts.creator is Creator.TOX:  # PROJECT/.tox/ENV: recreate that env only
            command += f" -e {shlex.quote(os.path.basename(facts.path))}"
        return f"cd {shlex.quote(os.path.dirname(parent))} && {command}", None
    return command, TOOL_NOTES.get(facts.creator)


def _tool_command_in_root(
    facts: VenvFacts, target: Optional[Target], exists: Optional[Exists] = None
) -> Optional[tuple[str, Optional[str]]]:
    """The tool's command and its note; for a venv inside another OS root, run there:
    ``chroot ROOT sh -c '...'`` with the venv's paths as the root names them."""
    if facts.root is None:
        return _tool_command(facts, target, exists)
    inner = replace(facts, path=facts.path_in_root, root=None)
    found = _tool_command(inner, target, exists)
    if found is None:
        return None
    command, note = found
    return f"chroot {shlex.quote(facts.root)} sh -c {shlex.quote(command)}", note


def packages_minor(facts: VenvFacts) -> Optional[str]:
    """The minor version the venv's packages were installed for: the lib/pythonX.Y holding
    the most packages that are not pip/setuptools/wheel."""
    best: Optional[tuple[int, str]] = None
    for s in facts.site_dirs:
        if s.python_version is None:
            continue
        n = sum(
            1
            for d in s.distributions
            if canonical_name(d.name) not in BOOTSTRAP and d.placeholder is None
        )
        if best is None or n > best[0]:
            best = (n, s.python_version)
    if best is not None:
        return best[1]
    return facts.base.version if facts.base else None


def _old_origin(facts: VenvFacts) -> Optional[BaseOrigin]:
    """Where the venv's interpreter came from: its first link target outside the venv."""
    root = facts.path_in_root.rstrip("/") + "/"
    for c in facts.chains:
        for hop in c.hops[1:]:
            if not hop.startswith(root):
                return classify_origin(hop, facts.path_in_root)
    if facts.cfg is not None and facts.cfg.get("home"):
        return classify_origin(str(facts.cfg.get("home")) + "/python", facts.path_in_root)
    return None


def _external_name(facts: VenvFacts) -> Optional[str]:
    """The first path outside the venv that bin/python led to (e.g. /usr/bin/python3)."""
    root = facts.path_in_root.rstrip("/") + "/"
    for c in facts.chains:
        for hop in c.hops[1:]:
            if not hop.startswith(root):
                return hop
    return None


def made_with(facts: VenvFacts) -> Optional[str]:
    """The interpreter name the venv was made with, outside the venv: the first hop of its
    links out of it (``/usr/bin/python3`` for ``python3 -m venv``), else, for a copied
    interpreter, the first word of the ``command`` that pyvenv.cfg records."""
    name = _external_name(facts)
    if name is not None:
        return name
    command = facts.cfg.get("command") if facts.cfg is not None else None
    if command:
        try:
            words = shlex.split(command)
        except ValueError:
            return None
        if words and words[0].startswith("/"):
            return os.path.normpath(words[0])
    return None


def follows_default(facts: VenvFacts) -> Optional[str]:
    """The distro default name (``.../python3``, ``.../python``) the venv was made with,
    if it was: its intent is "the distro's Python", whatever minor that is now."""
    name = made_with(facts)
    return name if name is not None and os.path.basename(name) in DEFAULT_NAMES else None


def _supported(interpreters: Sequence[Interpreter]) -> list[Interpreter]:
    """The usable interpreters, leaving out those whose OS package no archive offers any
    more, unless nothing else is there."""
    usable = [i for i in interpreters if i.usable]
    fresh = [i for i in usable if i.obsolete is not True]
    return fresh or usable


def by_default_name(name: str, interpreters: Sequence[Interpreter]) -> Optional[Target]:
    for i in interpreters:
        if any(n.path == name for n in i.names):
            return _target(i, name)
    return None


_ORIGIN_ORDER = {
    BaseOrigin.SYSTEM: 0,
    BaseOrigin.LOCAL: 1,
    BaseOrigin.HOMEBREW: 2,
    BaseOrigin.UV: 3,
    BaseOrigin.PYENV: 4,
}


def _version_key(i: Interpreter) -> tuple[int, ...]:
    try:
        return Version(i.patch_version or (i.version or "0").rstrip("t")).release
    except InvalidVersion:
        return (0,)


def _release(version: Optional[str]) -> tuple[int, ...]:
    try:
        return Version((version or "0").rstrip("t")).release
    except InvalidVersion:
        return (0,)


def _moves(base: Optional[BaseInterpreter], target: Target) -> bool:
    """Pointing the venv at *target* changes its interpreter (a copy always does)."""
    return base is None or base.is_copy or base.executable != target.executable


def _target(i: Interpreter, name: Optional[str] = None) -> Target:
    assert i.version is not None
    return Target(name or i.best_name, i.executable, i.version, i.patch_version)


def choose_relink(
    facts: VenvFacts, minor: str, interpreters: Sequence[Interpreter]
) -> Optional[Target]:
    """An interpreter of the same minor and origin as the venv's old base, if any."""
    origin = _old_origin(facts)
    same = [
        i
        for i in interpreters
        if i.usable and i.version == minor and (origin is None or i.origin is origin)
    ]
    if not same:
        return None
    best = max(same, key=lambda i: (_version_key(i), -len(i.best_name)))
    return _target(best)


def choose_rebuild(facts: VenvFacts, interpreters: Sequence[Interpreter]) -> Optional[Target]:
    """The interpreter to rebuild on: the one the venv's links reach now when it works (the
    venv keeps the name it was made with, e.g. /usr/bin/python3), else the newest in the
    directory its interpreter came from (preferring its ``python3``), else the system
    python3, else the newest Python of the venv's old origin, else the newest at all."""
    usable = [i for i in interpreters if i.usable]
    if not usable:
        return None
    base = facts.base
    external = _external_name(facts)
    if base is not None and not base.is_copy:
        for i in usable:
            if i.executable == base.executable:
                keep = external if external and any(n.path == external for n in i.names) else None
                return _target(i, keep)
    # The directory the venv's interpreter came from (its `home`): an upgraded prefix
    # keeps its unversioned python3 there.
    home = facts.cfg.get("home") if facts.cfg is not None else None
    if external and not home:
        home = os.path.dirname(external)
    if home:
        home = home.rstrip("/")
        there = [(i, n) for i in usable for n in i.names if os.path.dirname(n.path) == home]
        if there:
            i, n = max(there, key=lambda x: (x[1].path.endswith("/python3"), _version_key(x[0])))
            return _target(i, n.path if n.path.endswith("/python3") else None)
    for i in usable:
        for n in i.names:
            if n.path in ("/usr/bin/python3", "/bin/python3"):
                return _target(i, n.path)
    origin = _old_origin(facts)
    same = [i for i in usable if i.origin is origin]
    pool = same or usable
    best = max(pool, key=lambda i: (-_ORIGIN_ORDER.get(i.origin, 9), _version_key(i)))
    return _target(best)


def requirement(dist: Distribution) -> Requirement:
    """How to install *dist* again, exactly as it was."""
    kind = dist.direct_url_kind
    if kind is DirectUrlKind.EDITABLE and dist.editable_path:
        return Requirement(
            dist.name,
            dist.version,
            RequirementKind.EDITABLE,
            f"-e {dist.editable_path}",
            dist.editable_path,
        )
    if kind is DirectUrlKind.VCS and dist.direct_url:
        url = dist.direct_url
        if dist.vcs and not url.startswith(dist.vcs + "+"):
            url = f"{dist.vcs}+{url}"
        if dist.commit_id:
            url = f"{url}@{dist.commit_id}"
        return Requirement(
            dist.name, dist.version, RequirementKind.VCS, f"{dist.name} @ {url}", url
        )
    if kind in (DirectUrlKind.DIRECTORY, DirectUrlKind.ARCHIVE) and dist.direct_url:
        local = dist.direct_url.startswith("file:")
        return Requirement(
            dist.name,
            dist.version,
            RequirementKind.LOCAL if local else RequirementKind.ARCHIVE,
            f"{dist.name} @ {dist.direct_url}",
            dist.editable_path if local and dist.editable_path else dist.direct_url,
        )
    return Requirement(
        dist.name, dist.version, RequirementKind.INDEX, f"{dist.name}=={dist.version}"
    )


def _local_path(req: Requirement) -> Optional[str]:
    src = req.source
    if not src:
        return None
    if src.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        return unquote(urlsplit(src).path)
    return src if src.startswith("/") else None


def package_set(
    facts: VenvFacts,
    minor: Optional[str],
    exists: Optional[Exists] = None,
    seeds: Optional[SeedNeeds] = None,
) -> tuple[tuple[Requirement, ...], tuple[str, ...], tuple[Blocker, ...]]:
    """(requirements, skipped, blockers) for every distribution of the venv. When a name is
    in several lib/pythonX.Y directories, the one of *minor* wins. pip is left to the new
    venv's seed, and so are setuptools, wheel and distribute when *seeds* (what
    :func:`venvkeeper.predict.seeds.seed_needs` read) says nothing needs them; without *seeds*
    they are kept."""
    seeds = seeds or KEEP_ALL
    chosen: dict[str, Distribution] = {}
    for s in sorted(facts.site_dirs, key=lambda s: s.python_version == minor):
        for d in s.distributions:
            chosen[canonical_name(d.name)] = d
    reqs: list[Requirement] = []
    skipped: list[str] = []
    blockers: list[Blocker] = []
    for key in sorted(chosen):
        d = chosen[key]
        if d.placeholder is not None:
            continue  # no index has it: never pinned (placeholder_notes says so)
        if key == "pip" or (is_seed(key) and not seeds.needed(key)):
            skipped.append(f"{d.name}=={d.version}")
            continue
        if "metadata lacks Name or Version" in d.problems:
            blockers.append(
                Blocker(
                    BlockerCode.NO_METADATA,
                    d.name,
                    f"{d.dist_info} has no usable Name/Version: it cannot be pinned;"
                    " reinstall it by hand",
                )
            )
            continue
        req = requirement(d)
        reqs.append(req)
        local = _local_path(req)
        if local and exists is not None and exists(local) is False:
            what = "editable source" if req.kind is RequirementKind.EDITABLE else "local source"
            blockers.append(
                Blocker(
                    BlockerCode.SOURCE_MISSING, d.name, f"the {what} {local} of {d.name} is gone"
                )
            )
        if req.kind is RequirementKind.VCS:
            blockers.append(
                Blocker(
                    BlockerCode.VCS_SOURCE,
                    d.name,
                    f"{d.name} comes from {req.source}: the rebuild needs that repository"
                    " (network access, credentials)",
                    fatal=False,
                )
            )
    return tuple(reqs), tuple(skipped), tuple(blockers)


def placeholder_notes(facts: VenvFacts) -> tuple[str, ...]:
    """What a rebuild leaves out because no index can provide it, and why."""
    return tuple(
        f"{d.name} {d.version} left out: {d.placeholder}"
        for d in facts.distributions
        if d.placeholder is not None
    )


def version_blockers(
    facts: VenvFacts, reqs: Sequence[Requirement], minor: Optional[str], target: Target
) -> list[Blocker]:
    """What may stop the same pins installing on *target*'s minor."""
    if minor == target.version:
        return []
    by_name = {canonical_name(d.name): d for d in facts.distributions}
    out: list[Blocker] = []
    py = target.patch_version or f"{target.version.rstrip('t')}.0"
    for req in reqs:
        d = by_name.get(canonical_name(req.name))
        if d is None:
            continue
        if d.requires_python:
            try:
                ok = SpecifierSet(d.requires_python).contains(py, prereleases=True)
            except InvalidSpecifier:
                ok = True
            if not ok:
                out.append(
                    Blocker(
                        BlockerCode.REQUIRES_PYTHON,
                        d.name,
                        f"{d.name} {d.version} requires Python {d.requires_python}, not {py}:"
                        " the pin cannot install (repair --allow-upgrades picks the nearest"
                        " version that can)",
                    )
                )
        pinned = sorted({x.python_version for x in d.extensions if x.python_version})
        if pinned and any(p != target.version for p in pinned):
            tag = "cp" + target.version.replace(".", "")
            out.append(
                Blocker(
                    BlockerCode.NEEDS_NEW_WHEEL,
                    d.name,
                    f"{d.name} {d.version} has extensions compiled for CPython"
                    f" {', '.join(pinned)}: it needs a {tag} wheel of {d.version} (index or"
                    " wheelhouse) or a build from source (compiler, Python headers)",
                    fatal=False,
                )
            )
    return out


def make_plan(
    facts: VenvFacts,
    findings: Sequence[Finding],
    interpreters: Sequence[Interpreter],
    exists: Optional[Exists] = None,
    seeds: Optional[SeedNeeds] = None,
    *,
    python: Optional[Target] = None,
    force: bool = False,
) -> RepairPlan:
    """The repair plan for one judged venv on a host with *interpreters*: the one planner
    of ``plan``, ``predict`` and ``repair``. Each finding's repair is the one its code
    declares in the registry (:func:`remedy_of`). *seeds*: which seed packages the venv's
    code needs (:mod:`venvkeeper.predict.seeds`); a rebuild leaves the others to the new
    venv's creator. Without it every seed is kept. *python* is the interpreter the admin
    chose (``repair --python``: also moves a venv that works); *force* rebuilds a venv
    that its tool manages instead of giving the tool's command (``repair --force``)."""
    plan = _plan(facts, findings, interpreters, exists, seeds)
    if python is not None:
        plan = _with_python(plan, facts, python, force, exists, seeds)
    if plan.strategy is Strategy.USE_TOOL and force and plan.target is not None:
        minor = packages_minor(facts)
        plan = replace(
            plan,
            strategy=Strategy.RELINK if minor == plan.target.version else Strategy.REBUILD,
            blockers=plan.blockers
            + tuple(version_blockers(facts, plan.packages, minor, plan.target)),
        )
    return plan


def _with_python(
    plan: RepairPlan,
    facts: VenvFacts,
    target: Target,
    force: bool,
    exists: Optional[Exists],
    seeds: Optional[SeedNeeds],
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
    reason = plan.reason if plan.strategy is not Strategy.NONE else f"--python {target.path}"
    plan = rebuild_on(plan, facts, target, exists, seeds)  # no version blockers on its minor
    if packages_minor(facts) == target.version:  # a relink keeps the venv's files
        return replace(plan, strategy=Strategy.RELINK, reason=reason, notes=())
    return replace(plan, reason=reason)


def rebuild_on(
    plan: RepairPlan,
    facts: VenvFacts,
    target: Target,
    exists: Optional[Exists],
    seeds: Optional[SeedNeeds],
) -> RepairPlan:
    """*plan* as a rebuild on *target* with the venv's very packages, what may stop them
    installing there, and what a new venv leaves out (placeholder notes)."""
    minor = packages_minor(facts)
    reqs, skipped, blockers = package_set(facts, minor, exists, seeds)
    blockers += tuple(version_blockers(facts, reqs, minor, target))
    return replace(
        plan,
        strategy=Strategy.REBUILD,
        target=target,
        packages=reqs,
        skipped=skipped,
        blockers=blockers,
        notes=placeholder_notes(facts),
    )


def _plan(
    facts: VenvFacts,
    findings: Sequence[Finding],
    interpreters: Sequence[Interpreter],
    exists: Optional[Exists],
    seeds: Optional[SeedNeeds],
) -> RepairPlan:
    """The plan the findings ask for, before the admin's choices."""
    cfg = facts.cfg
    blank = RepairPlan(
        facts.path,
        Strategy.NONE,
        "",
        system_site_packages=bool(cfg and cfg.include_system_site_packages),
        prompt=cfg.get("prompt") if cfg else None,
        copies=bool(facts.base and facts.base.is_copy),
    )
    if facts.kind is VenvKind.CONDA:
        return replace(blank, reason="a conda environment: not judged")
    broken = [f for f in findings if f.severity is Severity.CRITICAL]
    interp_problems = [f for f in findings if remedy_of(f).interpreter]
    moved = [f for f in findings if remedy_of(f) is Remedy.PATHS]
    minor = packages_minor(facts)
    if not interp_problems and not moved:
        if broken:
            worst = broken[0]
            return replace(blank, strategy=Strategy.MANUAL, reason=f"{worst.code}: {worst.message}")
        return replace(blank, reason="nothing to repair")
    reqs, skipped, blockers = package_set(facts, minor, exists, seeds)
    why = (interp_problems or moved)[0]
    reason = f"{why.code}: {why.message}"
    if not interp_problems:
        old = next((loc.path for loc in facts.locations if not loc.same_as_venv), None)
        return replace(blank, strategy=Strategy.REWRITE_PATHS, reason=reason, old_location=old)
    # Never onto an interpreter no archive patches any more while a supported one exists.
    pool = _supported(interpreters)
    if all(remedy_of(f) is Remedy.NEWER_PYTHON for f in interp_problems):
        # It works: move it only forward, onto a supported minor no older than its own.
        floor = _release(minor or (facts.base.version if facts.base else None))
        pool = [i for i in pool if not i.obsolete and _version_key(i)[:2] >= floor[:2]]
        if not pool:
            return replace(
                blank,
                reason=reason + "; but this host has no supported Python of that minor or"
                " newer to move it to: install one (the distro's python3), then repair again",
            )
    target: Optional[Target] = None
    strategy = Strategy.REBUILD
    base = facts.base
    default = follows_default(facts)
    if not any(remedy_of(f) is Remedy.REBUILD for f in interp_problems):
        # Made with the distro's python3: it follows what that name is now. Otherwise (or
        # when that name is gone) the same minor at another path: a versioned leftover the
        # venv named itself, a patch release that replaced its prefix.
        if default is not None:
            target = by_default_name(default, pool)
        if target is None and minor is not None:
            relink = choose_relink(facts, minor, pool)
            if relink is not None and _moves(base, relink):
                target = relink
        if target is not None and target.version == minor and _moves(base, target):
            strategy = Strategy.RELINK
    if target is None:
        target = choose_rebuild(facts, pool)
    if target is None:
        return replace(
            blank,
            strategy=Strategy.MANUAL,
            reason=reason
            + "; and no usable Python (binary, known version, stdlib present) was found"
            " on the host to repair it with: install one",
            packages=reqs,
            skipped=skipped,
            blockers=blockers,
            notes=placeholder_notes(facts),
        )
    if strategy is Strategy.REBUILD:
        blockers = blockers + tuple(version_blockers(facts, reqs, minor, target))
    elif moved:
        reason += "; it was also moved: paths are rewritten with the relink"
    tool = _tool_command_in_root(facts, target, exists)
    if tool is not None:
        strategy = Strategy.USE_TOOL
    return replace(
        blank,
        strategy=strategy,
        reason=reason,
        target=target,
        packages=reqs,
        skipped=skipped,
        blockers=blockers,
        tool_command=tool[0] if tool else None,
        tool_note=tool[1] if tool else None,
        # a relink keeps the venv's files: only a new venv leaves anything out
        notes=placeholder_notes(facts) if strategy is not Strategy.RELINK else (),
        old_location=next((loc.path for loc in facts.locations if not loc.same_as_venv), None),
    )
