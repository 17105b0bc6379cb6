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
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional

from venvkeeper.errors import CommandError, UsageError
from venvkeeper.host import command, fsutil
from venvkeeper.host.command import Completed
from venvkeeper.model.findings import Severity
from venvkeeper.model.plan import Prediction, RequirementKind, Strategy, VenvPrediction
from venvkeeper.model.repair import FetchOutcome, WheelFetch, WheelhouseReport
from venvkeeper.predict.seeds import is_seed
from venvkeeper.repair.backends import Sources, index_versions, nearest_first
from venvkeeper.textutil import canonical_name

Run = Callable[[Sequence[str], float], Completed]


def _platforms() -> list[str]:
    """This machine's platform tags, most specific first. From ``sys_tags()``, which every
    packaging has: ``platform_tags()`` is missing from the packaging of Debian 11 and
    Ubuntu 20.04 (20.9 and older), where venvkeeper runs on the distro's own packages."""
    from packaging import tags

    return [p for p in dict.fromkeys(t.platform for t in tags.sys_tags()) if p != "any"]


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

    def download(self, *specs: str, deps: bool = False) -> Completed:
        argv = [sys.executable, "-m", "pip", "download", "-q", "-d", self.directory]
        if not deps:
            argv.append("--no-deps")
        return self.run([*argv, *self.target, *self.sources, *specs], 1800)

    def versions(self, name: str) -> list[str]:
        argv = [sys.executable, "-m", "pip", "index", "versions", name]
        return index_versions(self.run([*argv, *self.target, *self.sources], 300).stdout) or []


#: What pip builds a project with when its pyproject.toml names no build backend (PEP 518's
#: default; with a current setuptools, an editable install of a setup.py project too).
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0",)
#: For a seed whose pinned version may not run on the new Python (setuptools 44 on 3.12:
#: no distutils, no pkgutil.ImpImporter), the newest that still provides what old code
#: uses: setuptools dropped pkg_resources in 82.0.0. The repair tries the pin first, then
#: the nearest working version the wheelhouse holds.
SEED_FALLBACKS = {"setuptools": "setuptools<82", "wheel": "wheel", "distribute": None}
_BUILD_SYSTEM = re.compile(r"^\[build-system\][ \t]*$(.*?)(?=^\[|\Z)", re.M | re.S)
_REQUIRES = re.compile(r"^requires[ \t]*=[ \t]*\[(.*?)\]", re.M | re.S)
_STRING = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'([^']*)'")


def build_requires(source: str) -> Optional[list[str]]:
    """What building the project in directory *source* needs, read (never run) from its
    ``pyproject.toml``: ``[build-system] requires``, or pip's default when it names none.
    None when *source* is not a project directory that can be read."""
    if not os.path.isdir(source):
        return None
    path = os.path.join(source, "pyproject.toml")
    try:
        data, _ = fsutil.read_bytes(path, 1 << 20)
    except FileNotFoundError:
        has_setup = any(os.path.isfile(os.path.join(source, f)) for f in ("setup.py", "setup.cfg"))
        return list(DEFAULT_BUILD_REQUIRES) if has_setup else None
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    try:
        doc = _toml_loads(text)
    except ValueError:
        return None
    if doc is not None:
        system = doc.get("build-system")
        requires = system.get("requires") if isinstance(system, dict) else None
        if requires is None:
            return list(DEFAULT_BUILD_REQUIRES)
        if isinstance(requires, list) and all(isinstance(r, str) for r in requires):
            return [r.strip() for r in requires if r.strip()]
        return None
    # No TOML parser (Python 3.9 and 3.10 without tomli): the one array we need, by hand.
    table = _BUILD_SYSTEM.search(text)
    found = _REQUIRES.search(table.group(1)) if table else None
    if table is None or found is None:
        return list(DEFAULT_BUILD_REQUIRES)
    items = _STRING.findall(re.sub(r"#[^\n]*", "", found.group(1)))
    return [(a or b).strip() for a, b in items if (a or b).strip()]


def _toml_loads(text: str) -> Optional[dict[str, Any]]:
    """*text* parsed by tomllib (tomli before 3.11), None when neither is there; a
    ValueError when it is not TOML."""
    if sys.version_info >= (3, 11):
        import tomllib as toml
    else:  # pragma: no cover - Python 3.9 and 3.10
        try:
            import tomli as toml
        except ImportError:
            return None
    try:
        doc: dict[str, Any] = toml.loads(text)
    except (toml.TOMLDecodeError, RecursionError) as e:
        raise ValueError(str(e)) from e
    return doc


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
                detail = f"rebuilt from {r.source or r.spec} at repair time"
                needs = build_requires(r.source) if r.source else None
                if needs is not None:
                    detail += f" (its build requirements: {', '.join(needs) or 'none'})"
                fetches.append(WheelFetch(vp.path, r.spec, FetchOutcome.FROM_SOURCE, detail))
                for spec in needs or ():
                    fetches.append(
                        _once(done, pip, minor, spec, vp.path, f"to build {r.spec}", deps=True)
                    )
                continue
            key = (minor, r.spec)
            if key not in done:
                done[key] = _fetch_pin(pip, minor, r.spec, r.name, r.version)
            fetches.append(WheelFetch(vp.path, r.spec, done[key].outcome, done[key].detail))
            fallback = SEED_FALLBACKS.get(canonical_name(r.name)) if is_seed(r.name) else None
            if fallback:  # only a second chance: its absence is not a missing pin
                why = f"in case {r.name} {r.version} does not work there"
                second = _once(done, pip, minor, fallback, vp.path, why)
                if second.outcome is FetchOutcome.FETCHED:
                    fetches.append(second)
    return WheelhouseReport(directory, tuple(fetches), tuple(skipped))


def _fetch_pin(pip: _Pip, minor: str, spec: str, name: str, version: str) -> WheelFetch:
    """The wheel of one exact pin for *minor*, else (a seed) the nearest, else what has
    one. Its ``venv`` is filled in by the caller."""
    got = pip.download(spec)
    if got.returncode == 0:
        return WheelFetch("", spec, FetchOutcome.FETCHED, f"for Python {minor}")
    near = _nearest(pip, name, version)
    if near is None:
        return WheelFetch(
            "", spec, FetchOutcome.MISSING, f"no wheel for Python {minor}: {_why(got)}"
        )
    if is_seed(name):
        return WheelFetch("", spec, FetchOutcome.FETCHED, f"{name} {near} (a seed: the nearest)")
    return WheelFetch(
        "",
        spec,
        FetchOutcome.NEAREST,
        f"no wheel of {version} for Python {minor}; {near} has one"
        " (repair --allow-upgrades takes it)",
    )


def _once(
    done: dict[tuple[str, str], WheelFetch],
    pip: _Pip,
    minor: str,
    spec: str,
    venv: str,
    why: str,
    *,
    deps: bool = False,
) -> WheelFetch:
    """*spec* (a range: the newest it allows) downloaded for *minor*, once per minor."""
    key = (minor, spec)
    if key not in done:
        got = pip.download(spec, deps=deps)
        if got.returncode == 0:
            done[key] = WheelFetch(venv, spec, FetchOutcome.FETCHED, f"for Python {minor}, {why}")
        else:
            what = f"no wheel for Python {minor} ({why}): {_why(got)}"
            done[key] = WheelFetch(venv, spec, FetchOutcome.MISSING, what)
    f = done[key]
    return WheelFetch(venv, spec, f.outcome, f.detail)
