"""What a planned change will do to each venv, judged before it happens.

The change is described as a host that differs from this one (an :class:`~venvkeeper.host.hostfs.
Overlay`): ``python3`` repointed to another minor, paths or a package's files removed, or
another host's interpreters (a profile) in place of this one's. Each venv's facts from a
normal scan are asked again against that host (:func:`venvkeeper.scan.inspect.rejudge`: its own
files are not re-read), the same checks judge them, and the two verdicts are compared.
Nothing is written and nothing is run.

A venv inside another OS root (a chroot, a container's root filesystem) is judged as that
root sees it, through the root's own files (:class:`~venvkeeper.host.hostfs.RootFS`). A
change happens on this host, or (``Change.root``, ``predict --in-root DIR``) inside one OS
root: the venvs of every other root are judged as they are.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Callable, Optional

from venvkeeper.checks import abi, interpreter, stdlib, versions
from venvkeeper.checks.policy import apply_to_venv
from venvkeeper.checks.registry import run_checks
from venvkeeper.errors import UsageError
from venvkeeper.host import pkgdb
from venvkeeper.host.bases import HostCache
from venvkeeper.host.fsutil import normpath
from venvkeeper.host.hostfs import REAL, HostFS, Overlay, RootFS, interpreter_bytes
from venvkeeper.host.interpreters import (
    find_interpreters,
    places_for,
    places_in_root,
    profile_overlay,
)
from venvkeeper.model.findings import Severity
from venvkeeper.model.host import HostProfile, Interpreter
from venvkeeper.model.plan import ChangeDescription, Effect, Prediction, VenvPrediction
from venvkeeper.model.policy import Policy
from venvkeeper.model.report import Report, VenvReport
from venvkeeper.model.restarts import VenvUser
from venvkeeper.model.venv import VenvKind
from venvkeeper.predict.plan import make_plan
from venvkeeper.predict.seeds import seed_needs
from venvkeeper.scan.inspect import VenvVanished, rejudge

#: The unversioned names ``--python-becomes X.Y`` repoints when no path is given.
DEFAULT_LINKS = ("/usr/bin/python3", "/usr/bin/python")
_MINOR = re.compile(r"\d+\.\d+t?")
#: The packages of the embedding modules a Python upgrade rebuilds (Debian, then RHEL and
#: Fedora): an apt run that upgrades one changes the Python its servers embed.
EMBEDDER_PACKAGES = ("libapache2-mod-wsgi-py3", "uwsgi-plugin-python3", "python3-mod_wsgi")

PackageFiles = Callable[[str], list[str]]


@dataclass(frozen=True)
class Change:
    """A planned change. Every part is optional; they combine."""

    python_becomes: tuple[tuple[Optional[str], str], ...] = ()  # (link or None, "X.Y")
    remove: tuple[str, ...] = ()
    remove_packages: tuple[str, ...] = ()
    profile: Optional[HostProfile] = None
    #: The embedding modules' packages (libapache2-mod-wsgi-py3, uwsgi-plugin-python3)
    #: the change upgrades, each with the Python minor it will embed (None: the one
    #: ``python3`` will be). None: they follow ``python3`` when the change repoints it, as a
    #: distro release upgrade rebuilds them (:mod:`venvkeeper.predict.consumers`).
    embedders: Optional[tuple[tuple[str, Optional[str]], ...]] = None
    #: The OS root the change happens in (its paths are the root's), as this host names
    #: it; None: this host.
    root: Optional[str] = None

    def describe(self) -> ChangeDescription:
        return ChangeDescription(
            python_becomes=tuple(
                (p or f"{DEFAULT_LINKS[0]} (and {DEFAULT_LINKS[1]})", v)
                for p, v in self.python_becomes
            ),
            removed=self.remove,
            removed_packages=self.remove_packages,
            host_profile=self.profile.hostname if self.profile else None,
            root=self.root,
        )


def parse_python_becomes(text: str) -> tuple[Optional[str], str]:
    """``3.12`` or ``/usr/local/bin/python3=3.12``."""
    path, sep, version = text.rpartition("=")
    if not sep:
        path, version = "", text
    version = version.strip()
    if not _MINOR.fullmatch(version):
        raise UsageError(f"--python-becomes {text}: the version must be X.Y (e.g. 3.12)")
    if path and not path.startswith("/"):
        raise UsageError(f"--python-becomes {text}: the link must be an absolute path")
    return (normpath(path) if path else None), version


def build_world(
    change: Change, base: HostFS = REAL, package_files: Optional[PackageFiles] = None
) -> HostFS:
    """The host as it will be after *change*."""
    fs = profile_overlay(change.profile, base) if change.profile is not None else base
    if not (change.python_becomes or change.remove or change.remove_packages):
        return fs
    removed = [os.path.abspath(p) for p in change.remove]
    lister = package_files or pkgdb.package_files
    for pkg in change.remove_packages:
        removed += lister(pkg)
    links: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for path, version in change.python_becomes:
        paths = [path] if path else [p for p in DEFAULT_LINKS if fs.path_state(p) is not False]
        for p in paths or [DEFAULT_LINKS[0]]:
            d = os.path.dirname(p)
            links[p] = f"python{version}"
            target = f"{d}/python{version}"
            if fs.file_state(target) is not True:  # the upgrade will install it
                files[target] = interpreter_bytes()
                landmark = f"{os.path.dirname(d)}/lib/python{version}/os.py"
                if fs.file_state(landmark) is not True:
                    files[landmark] = b""
    return Overlay(fs, links=links, files=files, removed=removed)


#: Critical findings after the change -> the effect they mean, the first match wins.
_CRITICAL_EFFECTS = (
    (frozenset({interpreter.DANGLING, interpreter.MISSING}), Effect.BREAKS_LOUDLY),
    (frozenset({stdlib.MISSING}), Effect.LOSES_STDLIB),
    (frozenset({versions.MISMATCH}), Effect.BREAKS_SILENTLY),
    (frozenset({abi.MISMATCH}), Effect.ABI_MISMATCH),
)


def breaking_effect(then: VenvReport) -> Optional[Effect]:
    """How a venv judged *then* is broken (``breaks-loudly``, ``breaks-silently``, ...),
    from its critical findings alone; None when it is not."""
    critical = {f.code for f in then.findings if f.severity is Severity.CRITICAL}
    if not critical:
        return None
    return next((e for codes, e in _CRITICAL_EFFECTS if critical & codes), Effect.BREAKS)


def classify(now: VenvReport, then: VenvReport) -> Effect:
    """The effect of the change on one venv, from its verdicts before and after."""
    if now.status is Severity.CRITICAL:
        return Effect.ALREADY_BROKEN
    broken = breaking_effect(then)
    if broken is not None:
        return broken
    if then.status is Severity.UNKNOWN and now.status is not Severity.UNKNOWN:
        return Effect.UNKNOWN
    before = {f.code for f in now.findings}
    if then.status.rank > now.status.rank or any(
        f.code not in before and f.severity.rank >= Severity.WARNING.rank for f in then.findings
    ):
        return Effect.DEGRADES
    return Effect.SURVIVES


MAX_SIBLINGS = 64


def homes_of(venvs: Iterable[VenvReport], fs: HostFS = REAL) -> list[str]:
    """Directories the venvs' interpreters were in, and the bin/ of their sibling
    installations (``versions/3.11.7/bin`` -> ``versions/*/bin``, a Homebrew Cellar):
    where a relink target of the same minor is likely to be."""
    found = _home_dirs(venvs)
    out = list(found)
    for home in found:
        if os.path.basename(home) != "bin":
            continue
        install = os.path.dirname(home)
        parent = os.path.dirname(install)
        if parent in ("/", "/usr", "") or install in ("/usr", "/usr/local"):
            continue
        names = fs.listdir(parent)[:MAX_SIBLINGS]
        out += [f"{parent}/{n}/bin" for n in names]
    return sorted(set(out))


def _home_dirs(venvs: Iterable[VenvReport]) -> list[str]:
    out: list[str] = []
    for v in venvs:
        cfg = v.facts.cfg
        home = cfg.get("home") if cfg else None
        if home and home.startswith("/"):
            out.append(normpath(home))
        inside = v.facts.path_in_root.rstrip("/") + "/"  # hops are paths in the venv's root
        for c in v.facts.chains:
            for hop in c.hops[1:]:
                if not hop.startswith(inside):
                    out.append(os.path.dirname(hop))
                    break
    return sorted(set(out))


def root_interpreters(
    venvs: Iterable[VenvReport], fs: HostFS, root: str, profile: Optional[HostProfile] = None
) -> tuple[Interpreter, ...]:
    """The interpreters a repair could use inside the OS root *root*, as *fs* (its
    :class:`RootFS`, or a change on it) describes it: its paths, its dpkg database."""
    homes = homes_of(venvs, fs)
    if profile is not None:
        return find_interpreters(places_for(profile, homes), fs, packages_root=None)
    return find_interpreters(places_in_root(fs, homes), fs, packages_root=root)


def same_root(a: Optional[str], b: Optional[str]) -> bool:
    """Whether two OS roots (None: this host) are the same directory."""
    if a is None or b is None:
        return a is b
    return a == b or _real(a) == _real(b)


@dataclass
class _World:
    """One OS root as the prediction judges it: its files (changed or not), the facts
    its venvs share, the interpreters a repair could use there."""

    fs: HostFS
    host: HostCache
    interps: tuple[Interpreter, ...]


def predict(
    report: Report,
    change: Change,
    *,
    base: HostFS = REAL,
    package_files: Optional[PackageFiles] = None,
    plans: bool = True,
    users: Optional[Mapping[str, tuple[VenvUser, ...]]] = None,
    policy: Optional[Policy] = None,
    read_seeds: bool = True,
) -> Prediction:
    """Judge every venv of *report* (a scan of this host) on the host after *change*
    (a venv of another OS root: on that root, changed only when the change is there).
    *users* maps venv paths to their running processes (:func:`venvkeeper.restarts.scan.
    venv_users`), to tell which services each breaking venv would take down. *policy*
    (the configuration's) judges the venvs after the change as it judged *report*.
    *read_seeds* False makes plans that keep every seed without reading what the venv's
    code needs of them (its every module: the costly part, for callers that use only each
    plan's target, such as the matrix)."""
    worlds: dict[Optional[str], _World] = {}
    keys: dict[Optional[str], Optional[str]] = {}

    def key_of(root: Optional[str]) -> Optional[str]:
        """The venvs' OS root as the worlds are keyed: the change's own spelling of its
        root when it is that one (a link, a relative path: the same directory)."""
        if root not in keys:
            keys[root] = change.root if same_root(change.root, root) else root
        return keys[root]

    def world_of(root: Optional[str]) -> _World:
        if root in worlds:
            return worlds[root]
        applies = root == change.root
        fs: HostFS = base if root is None else RootFS(root)
        if applies:
            lister = package_files
            if root is not None and lister is None:
                lister = functools.partial(pkgdb.package_files, root=root)
            fs = build_world(change, fs, lister)
        profile = change.profile if applies else None
        # Another host's interpreters (a profile) are not this one's packages: do not
        # ask dpkg.
        host = HostCache(fs, None if profile is not None else (root or "/"))
        interps: tuple[Interpreter, ...] = ()
        mine = [v for v in report.venvs if key_of(v.facts.root) == root]
        if plans and root is None:
            homes = homes_of(mine, fs)
            packages_root = None if profile is not None else "/"
            interps = find_interpreters(places_for(profile, homes), fs, packages_root=packages_root)
        elif plans and root is not None:
            interps = root_interpreters(mine, fs, root, profile)
        worlds[root] = _World(fs, host, interps)
        return worlds[root]

    world_of(change.root)  # the change itself, checked (a package unknown) with no venv too
    by_real = {_real(v): u for v, u in (users or {}).items()}
    out: list[VenvPrediction] = []
    for now in report.venvs:
        used_by = by_real.get(_real(now.path), ())
        if now.facts.kind is VenvKind.CONDA:
            continue
        w = world_of(key_of(now.facts.root))
        world, host, interps = w.fs, w.host, w.interps
        try:
            then_facts = rejudge(now.facts, host)
        except VenvVanished:
            out.append(VenvPrediction(now, None, Effect.REMOVED, used_by=used_by))
            continue
        except Exception as e:  # a bug costs one venv's prediction, never the whole run
            then_facts = dataclasses.replace(
                now.facts, errors=(*now.facts.errors, f"internal error: {type(e).__name__}: {e}")
            )
        then = VenvReport(then_facts, run_checks(then_facts), now.alias_of)
        if policy is not None:
            then = apply_to_venv(then, policy)
        plan = None
        if plans:  # the seeds the venv's code needs: a rebuild leaves the others out
            seeds = seed_needs(then_facts) if then.findings and read_seeds else None
            plan = make_plan(then_facts, then.findings, interps, world.path_state, seeds)
        out.append(VenvPrediction(now, then, classify(now, then), plan, used_by))
    out.sort(key=lambda p: (-p.status.rank, not p.effect.breaks, p.path))
    return Prediction(change.describe(), report, tuple(out))


def _real(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path
