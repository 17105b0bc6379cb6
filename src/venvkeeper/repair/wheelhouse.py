"""``venvkeeper wheelhouse``: before an upgrade, collect the wheels the rebuilds will need.

For every venv that a planned change breaks (or that is broken now) and whose plan is a
rebuild, each pinned requirement from an index is fetched as a wheel *for the target
Python* (its minor, CPython, this machine's platform tags) into one directory, so that
right after the upgrade ``venvkeeper repair --all --offline --find-links DIR`` needs no
network. What cannot be had as a wheel is reported: a pin with no wheel for the new minor
(with the nearest version that has one, which ``repair --allow-upgrades`` would take), and
requirements rebuilt from their source (local directories, editables, VCS URLs), which
need their build backend at repair time.

The downloads are pip's (``pip download --only-binary=:all: --python-version X.Y
--implementation cp --platform ...``), run by the interpreter running venvkeeper, with the
admin's pip settings and proxies; nothing of a venv runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from typing import Callable, Optional

from venvkeeper.errors import CommandError, UsageError
from venvkeeper.host import command
from venvkeeper.host.command import Completed
from venvkeeper.model.findings import Severity
from venvkeeper.model.plan import Prediction, RequirementKind, Strategy, VenvPrediction
from venvkeeper.model.repair import FetchOutcome, WheelFetch, WheelhouseReport
from venvkeeper.predict.seeds import is_seed
from venvkeeper.repair.backends import Sources, index_versions, nearest_first

Run = Callable[[Sequence[str], float], Completed]


def _platforms() -> list[str]:
    from packaging import tags

    return list(dict.fromkeys(tags.platform_tags()))


def _pip_env() -> dict[str, str]:
    keep = {"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}
    keep |= {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "TMPDIR", "HOME"}
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    env.update(PATH="/usr/bin:/bin", LANG="C.UTF-8", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _run(argv: Sequence[str], timeout: float) -> Completed:
    try:
        return command.run(argv, timeout=timeout, env=_pip_env(), cwd="/")
    except CommandError as e:
        return Completed(tuple(argv), 1, "", str(e))


class _Pip:
    """pip of the interpreter running venvkeeper, asked for another Python's wheels."""

    def __init__(self, minor: str, sources: Sources, directory: str, run: Run) -> None:
        self.run = run
        self.target = [
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            minor.rstrip("t"),
        ]
        for p in _platforms():
            self.target += ["--platform", p]
        self.sources = sources.args("--no-index")
        self.directory = directory

    def download(self, *specs: str) -> Completed:
        argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", self.directory]
        return self.run([*argv, *self.target, *self.sources, *specs], 1800)

    def versions(self, name: str) -> list[str]:
        argv = [sys.executable, "-m", "pip", "index", "versions", name]
        return index_versions(self.run([*argv, *self.target, *self.sources], 300).stdout) or []


def _why(done: Completed) -> str:
    lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
    return (lines[-1] if lines else "pip found no wheel")[:300]


def _nearest(pip: _Pip, name: str, old: str) -> Optional[str]:
    """The version nearest to *old* (above first, then below) that has a wheel."""
    for v in nearest_first(pip.versions(name), old)[:6]:
        if pip.download(f"{name}=={v}").returncode == 0:
            return v
    return None


def _wanted(pred: Prediction, include: Callable[[str], bool]) -> Iterator[VenvPrediction]:
    """The venvs whose rebuild the prefetch is for."""
    for vp in pred.venvs:
        if include(vp.path) and (vp.effect.breaks or vp.status is Severity.CRITICAL):
            yield vp


def _all_at_once(
    pred: Prediction,
    include: Callable[[str], bool],
    sources: Sources,
    directory: str,
    run: Run,
    pips: dict[str, _Pip],
    done: dict[tuple[str, str], WheelFetch],
) -> None:
    """One pip run per target minor for every index pin: the common case, where all of
    them have wheels (one pin that has none fails the run: then they go one by one)."""
    by_minor: dict[str, set[str]] = {}
    for vp in _wanted(pred, include):
        plan = vp.plan
        if plan is None or plan.strategy is not Strategy.REBUILD or plan.target is None:
            continue
        specs = by_minor.setdefault(plan.target.version, set())
        specs.update(r.spec for r in plan.packages if r.kind is RequirementKind.INDEX)
    for minor, specs in by_minor.items():
        pip = pips.setdefault(minor, _Pip(minor, sources, directory, run))
        if specs and pip.download(*sorted(specs)).returncode == 0:
            for spec in specs:
                done[(minor, spec)] = WheelFetch(
                    "", spec, FetchOutcome.FETCHED, f"for Python {minor}"
                )


def prefetch(
    pred: Prediction,
    directory: str,
    sources: Sources,
    *,
    run: Run = _run,
    include: Callable[[str], bool] = lambda path: True,
) -> WheelhouseReport:
    """Fetch into *directory* the wheels the rebuilds of *pred*'s breaking (or broken)
    venvs need on their target Pythons."""
    if not os.path.isdir(directory):
        raise UsageError(f"{directory}: not a directory (create it first)")
    if os.geteuid() == 0:  # pip runs as root: only from an installation root alone controls
        from venvkeeper.scan.deep import installation_distrust

        bad = installation_distrust(sys.executable, 0)
        if bad is not None:
            raise UsageError(
                f"the prefetch runs pip of {sys.executable} as root, and {bad}: another user"
                " could change it; run venvkeeper from an installation only root can change"
            )
    probe = run([sys.executable, "-m", "pip", "--version"], 60)
    if probe.returncode != 0:
        raise UsageError(
            f"the prefetch uses pip, which {sys.executable} does not have: install pip for it"
            " (Debian: python3-pip)"
        )
    fetches: list[WheelFetch] = []
    skipped: list[tuple[str, str]] = []
    pips: dict[str, _Pip] = {}
    done: dict[tuple[str, str], WheelFetch] = {}
    _all_at_once(pred, include, sources, directory, run, pips, done)
    for vp in _wanted(pred, include):
        plan = vp.plan
        if plan is None or plan.strategy is not Strategy.REBUILD or plan.target is None:
            why = plan.strategy.value if plan is not None else "no plan"
            skipped.append((vp.path, f"not a rebuild ({why}): nothing to fetch"))
            continue
        minor = plan.target.version
        pip = pips.setdefault(minor, _Pip(minor, sources, directory, run))
        for r in plan.packages:
            if r.kind is not RequirementKind.INDEX:
                detail = (
                    f"rebuilt from {r.source or r.spec} at repair time (needs its build backend)"
                )
                fetches.append(WheelFetch(vp.path, r.spec, FetchOutcome.FROM_SOURCE, detail))
                continue
            key = (minor, r.spec)
            if key in done:
                fetches.append(WheelFetch(vp.path, r.spec, done[key].outcome, done[key].detail))
                continue
            got = pip.download(r.spec)
            if got.returncode == 0:
                f = WheelFetch(vp.path, r.spec, FetchOutcome.FETCHED, f"for Python {minor}")
            else:
                near = _nearest(pip, r.name, r.version)
                if near is None:
                    f = WheelFetch(
                        vp.path,
                        r.spec,
                        FetchOutcome.MISSING,
                        f"no wheel for Python {minor}: {_why(got)}",
                    )
                elif is_seed(r.name):
                    f = WheelFetch(
                        vp.path,
                        r.spec,
                        FetchOutcome.FETCHED,
                        f"{r.name} {near} (a seed: the nearest)",
                    )
                else:
                    f = WheelFetch(
                        vp.path,
                        r.spec,
                        FetchOutcome.NEAREST,
                        f"no wheel of {r.version} for Python {minor}; {near} has one"
                        " (repair --allow-upgrades takes it)",
                    )
            done[key] = f
            fetches.append(f)
    return WheelhouseReport(directory, tuple(fetches), tuple(skipped))
