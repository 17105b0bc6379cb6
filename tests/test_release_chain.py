"""Every Debian release from bullseye to forky, for real: one root goes bullseye (3.9) ->
bookworm (3.11) -> trixie (3.13) -> forky (3.14, then python3.15 installed and purged) by
real ``apt-get full-upgrade``s (tests/debroot.py: ``CHAIN``, each release's root cached).

On each release the root gains a venv of every creator the release ships (``python3 -m
venv``, ``--copies``, ``--system-site-packages``, a versioned ``python3.X -m venv``,
Debian's virtualenv, pipx from bookworm on, an editable install: on bullseye an old-style
``setup.py develop`` ``.egg-link`` by its pip 20.3), each with a real package that has a
console script. Before each upgrade ``predict`` (told the change: python3 becomes the new
minor, the old minor's packages purged) must equal the ``scan`` after it, and both must
equal running every venv (an import and its console scripts) in the root. After each
upgrade one offline ``repair --all`` (from wheels ``venvkeeper wheelhouse`` prefetched
before it), plus the tool command it names for each venv a tool owns (pipx), makes every
venv work with the same packages (``pip freeze`` before == after).

venvkeeper runs *inside* the root: its source copied to /opt/venvkeeper-src and run by the
root's own python3 (3.9 to 3.14) with Debian's python3-packaging. The test's files live in
/srv and /opt (``debroot.KEEP``), which each release's cached root receives.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

import debroot
import inroot
from debroot import CHAIN, MINORS, chroot_run, installed, minor_packages, purge

from factory import build_wheel, make_project, make_setuppy_project

pytestmark = pytest.mark.slow

SRV = "/srv"  # the scan root: every venv of the test is below it
VENVS = "/srv/venvs"
WHEELS = "/opt/wheels"  # the packages the venvs were made with
PROJECT, SCRIPT = "vkpure", "vkpure-cli"  # a pure wheel with a console script, in every venv
#: The editable projects: bullseye's a setup.py project (pip 20.3 makes an .egg-link of it),
#: the later releases' a PEP 660 one (tests/data/vkbackend.py).
LEGACY, LEGACY_SCRIPT = "vklegacy", "vklegacy-cli"
EDITABLE, EDITABLE_SCRIPT = "vkedit", "vkedit-cli"
#: The registry's setuptools wheels (./dev.sh test fetches them: 44.1.1, 75.8.0 and a
#: current one), which the stand-in index holds.
DEV_WHEELS = Path(__file__).resolve().parent.parent / ".dev" / "wheels"
OLD_SEED = "setuptools-44.1.1-py2.py3-none-any.whl"
#: What no prediction can know in advance: which archive will stop offering a base.
UNFORESEEABLE = frozenset({"base-obsolete"})
#: pip never reaches an index in the root: installs come from /opt (the prefetch included).
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS}


@dataclass
class Venv:
    """One venv of the test: where, made how and on which release, what it must run."""

    path: str
    release: str
    maker: str
    modules: tuple[str, ...] = (PROJECT,)
    scripts: tuple[tuple[str, str], ...] = ((SCRIPT, f"{PROJECT} OK"),)
    frozen: Optional[list[str]] = None  # its pip freeze before the upgrade

    @property
    def label(self) -> str:
        return self.path.removeprefix(SRV + "/")


@dataclass
class Chain:
    """The test's root and what it holds, with a log of every venv-state."""

    root: Path
    venvs: list[Venv] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)
    t0: float = field(default_factory=time.monotonic)
    states: int = 0  # venv-states judged against running them
    failures: list[str] = field(default_factory=list)

    def lap(self, what: str) -> None:
        self.times[what] = round(time.monotonic() - self.t0, 1)
        print(f"[{self.times[what]:7.1f} s] {what}", flush=True)

    def vk(self, *args: str) -> tuple[int, Any]:
        return inroot.vk(self.root, *args)

    def run(self, *argv: str, env: Optional[dict[str, str]] = None) -> str:
        return chroot_run(self.root, argv, {**OFFLINE, **(env or {})}, timeout=900).stdout

    def probe(self, *, freeze: bool = False) -> dict[str, dict[str, Any]]:
        return inroot.probe(
            self.root,
            [
                {"path": v.path, "modules": v.modules, "scripts": v.scripts, "freeze": freeze}
                for v in self.venvs
            ],
        )


def _makers(release: str) -> dict[str, list[str]]:
    """How each venv of *release* is made (argv in the root, the destination appended)."""
    minor = MINORS[release]
    makers = {
        "plain": ["python3", "-m", "venv"],
        "copies": ["python3", "-m", "venv", "--copies"],
        "system": ["python3", "-m", "venv", "--system-site-packages"],
        "versioned": [f"python{minor}", "-m", "venv"],
        "virtualenv": ["python3", "-m", "virtualenv", "-q", "--no-periodic-update"],
        "editable": ["python3", "-m", "venv"],
    }
    if release != "bullseye":  # pipx is in Debian from bookworm on
        makers["pipx"] = ["pipx", "install"]
    return makers


def _make_venvs(c: Chain, release: str, makers: dict[str, list[str]]) -> None:
    """The venvs of *makers* on *release* (two at a time, in one chroot), each with PROJECT
    and its script; pipx's (from bookworm on: bullseye has no pipx) when *makers* names
    it."""
    jobs: dict[str, list[list[str]]] = {}
    for maker, argv in makers.items():
        path = f"{VENVS}/{release}-{maker}"
        v = Venv(path, release, maker)
        if maker == "pipx":
            home = f"{SRV}/pipx/{release}"
            env = [f"PIPX_HOME={home}", f"PIPX_BIN_DIR={home}/bin"]
            pip_args = f"--pip-args=--no-index --find-links={WHEELS}"
            jobs[path] = [["env", *env, *argv, pip_args, PROJECT]]
            c.venvs.append(Venv(f"{home}/venvs/{PROJECT}", release, maker))
            c.venvs.append(Venv(f"{home}/shared", release, "pipx-shared", ("pip",), ()))
            continue
        pip = [f"{path}/bin/python", "-m", "pip", "install", "-q", "--no-cache-dir", "--no-index"]
        jobs[path] = [[*argv, path], [*pip, "--find-links", WHEELS, PROJECT]]
        if maker == "editable":
            legacy = release == "bullseye"
            name, script = (LEGACY, LEGACY_SCRIPT) if legacy else (EDITABLE, EDITABLE_SCRIPT)
            jobs[path].append([*pip, "-e", f"{SRV}/src/{name}"])
            v.modules += (name,)
            v.scripts += ((script, f"{name} OK"),)
        c.venvs.append(v)
    inroot.run_jobs(c.root, jobs, OFFLINE)


def _codes(findings: list[dict[str, Any]], *, foreseeable: bool = False) -> set[str]:
    found = {f["code"] for f in findings if f["severity"] in ("warning", "unknown", "critical")}
    return found - UNFORESEEABLE if foreseeable else found


def _by_path(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["path"]: v for v in items}


def _check_state(c: Chain, label: str, predicted: dict[str, dict[str, Any]]) -> None:
    """The root as it is now: scan == the prediction made before == running the venvs.
    Every mismatch is collected (the test fails at its end with all of them)."""
    truth = c.probe()
    _, scan = c.vk("scan", "--no-record", SRV)
    seen = _by_path(scan["venvs"])
    missing = {v.path for v in c.venvs} - set(seen)
    if missing:
        c.failures.append(f"{label}: scan did not find {sorted(missing)}")
    for v in c.venvs:
        now, pred, t = seen.get(v.path), predicted.get(v.path), truth[v.path]
        if now is None or pred is None:
            c.failures.append(
                f"{label} {v.label}: scan {now is not None}, predict {pred is not None}"
            )
            continue
        c.states += 1
        works = t["runs"]
        c.log.append(
            f"{label} {v.label}: runs={works} scan={now['status']} "
            f"{sorted(_codes(now['findings']))} predicted={pred['effect']} "
            f"{pred['status_then']} {sorted(_codes(pred['findings_then']))}"
            + ("" if works else f" ({'; '.join(t['why'])[:300]})")
        )
        problems = []
        if (now["status"] == "critical") == works:
            problems.append(f"scan says {now['status']}, running it: works={works}")
        if pred["breaks"] == works:
            problems.append(f"predict said {pred['effect']}, running it: works={works}")
        if codes := _codes(now["findings"], foreseeable=True) ^ _codes(
            pred["findings_then"], foreseeable=True
        ):
            problems.append(f"findings differ from the prediction: {sorted(codes)}")
        if pred["status_then"] != now["status"] and not (
            _codes(now["findings"]) - _codes(pred["findings_then"]) <= UNFORESEEABLE
        ):
            problems.append(f"predicted {pred['status_then']}, scan says {now['status']}")
        c.failures += [f"{label} {v.label}: {p}" for p in problems]


def _predict_and_prefetch(c: Chain, label: str, change: list[str]) -> dict[str, dict[str, Any]]:
    """Before a change: its prediction, every venv's freeze, and the wheels the repairs
    after it will need, prefetched offline from WHEELS into /opt/prefetch."""
    _, predicted = c.vk("predict", *change, SRV)
    effects = {v["path"]: v["effect"] for v in predicted["venvs"]}
    c.log += [f"{label} predict {v.label}: {effects.get(v.path)}" for v in c.venvs]
    before = c.probe(freeze=True)
    for v in c.venvs:
        assert before[v.path]["runs"], (v.label, before[v.path])
        v.frozen = before[v.path]["freeze"]
        if v.maker == "pipx-shared":  # pip itself: pipx upgrades it when it rebuilds
            v.frozen = None
    shutil.rmtree(c.root / "opt" / "prefetch", ignore_errors=True)
    (c.root / "opt" / "prefetch").mkdir()
    code, fetched = c.vk(
        "wheelhouse", "--dest", "/opt/prefetch", *change, "--offline",
        "--find-links", WHEELS, SRV,
    )  # fmt: skip
    c.log.append(
        f"{label} wheelhouse ({code}): {[(f['spec'], f['outcome']) for f in fetched['fetches']]}"
    )
    missing = [
        f for f in fetched["fetches"] if f["outcome"] not in ("fetched", "from-source", "cached")
    ]
    if missing:
        c.failures.append(f"{label} wheelhouse: {missing}")
    return _by_path(predicted["venvs"])


def _repair(c: Chain, label: str) -> None:
    """One offline ``repair --all``; the command named for each venv a tool owns run as
    printed; then every venv must run with the packages it had."""
    _, plans = c.vk("plan", "--all", SRV)
    tools = {
        v["path"]: v["plan"]["tool_command"]
        for v in plans["venvs"]
        if v["plan"]["strategy"] == "use-tool"
    }
    # no backups kept: 30 venvs and their backups are 100,000 files for the teardown
    repair = [
        "repair",
        "--all",
        "--keep-backups",
        "0",
        "--offline",
        "--find-links",
        "/opt/prefetch",
    ]
    _, repaired = c.vk(*repair, SRV)
    for r in repaired["results"]:
        c.log.append(
            f"{label} repair {r['path']}: {r['outcome']} {r['strategy']}"
            f" ({r['seconds']:.1f} s): {r['message']}"
        )
        if r["outcome"] == "refused" and r["strategy"] == "use-tool":
            continue
        if r["outcome"] not in ("repaired", "nothing-to-do"):
            c.failures.append(f"{label} repair {r['path']}: {r['outcome']}: {r['message']}")
    # The index has today's pip, which pipx asks for when it rebuilds its shared libraries:
    # the stand-in index gets this release's (Debian's wheel of it).
    for wheel in (c.root / "usr/share/python-wheels").glob("pip-*.whl"):
        shutil.copy(wheel, c.root / WHEELS.lstrip("/"))
    for path, cmd in sorted(tools.items()):
        res = chroot_run(
            c.root, ["sh", "-c", cmd], {**OFFLINE, "PIP_FIND_LINKS": "/opt/prefetch"},
            check=False, timeout=900,
        )  # fmt: skip
        c.log.append(f"{label} tool command for {path}: {cmd!r}: {res.returncode}")
        if res.returncode:
            c.failures.append(
                f"{label} {path}: the printed command {cmd!r} failed: {res.stderr.strip()[-400:]}"
            )
    after = c.probe(freeze=True)
    for v in c.venvs:
        a = after[v.path]
        if not a["runs"]:
            c.failures.append(f"{label} after repair {v.label}: does not run: {a['why']}")
        elif v.frozen is not None and a["freeze"] != v.frozen:
            c.failures.append(
                f"{label} after repair {v.label}: pip freeze was {v.frozen}, is {a['freeze']}"
            )
    _, scan = c.vk("scan", "--no-record", SRV)
    for v in scan["venvs"]:
        c.log.append(
            f"{label} after repair {v['path']}: {v['status']} {sorted(_codes(v['findings']))}"
        )
        if v["status"] == "critical":
            c.failures.append(f"{label} after repair {v['path']}: scan says critical")


def _prepare(c: Chain, tmp: Path) -> None:
    """venvkeeper's source, the probe, the wheel and the editable sources, in the root."""
    root = c.root
    inroot.install(root)
    wheels = root / WHEELS.lstrip("/")
    build_wheel(make_project(tmp, PROJECT, "1.0", script=SCRIPT), wheels)
    # WHEELS stands for the index: the registry's setuptools 44.1.1 (bullseye's venvs'
    # seed: with pkg_resources, unlike Debian's wheel of it, which the upgrade deletes) and
    # current ones (75.8.0 with pkg_resources, 84.2.1 without).
    for seed in DEV_WHEELS.glob("setuptools-*.whl"):
        shutil.copy(seed, wheels)
    for project in (
        make_setuppy_project(tmp, LEGACY, "1.0", script=LEGACY_SCRIPT),
        make_project(tmp / "editable", EDITABLE, "1.0", script=EDITABLE_SCRIPT),
    ):
        shutil.copytree(project.path, root / "srv/src" / project.name)


def _change(c: Chain, old: str, new: str) -> list[str]:
    """The predict options of the hop old -> new: python3 becomes the new minor, the old
    minor's packages (those installed) are purged."""
    gone = installed(c.root, minor_packages(MINORS[old]))
    return ["--python-becomes", MINORS[new], *(f"--remove-package={p}" for p in gone)]


def test_bullseye_to_forky(tmp_path: Path) -> None:
    if not (DEV_WHEELS / OLD_SEED).exists():
        pytest.skip(f"no {OLD_SEED} in .dev/wheels (./dev.sh test downloads it)")
    debroot.require_root_tools()
    # the roots on a tmpfs: gone at once after, whatever the test left in them
    with debroot.in_memory(tmp_path / "roots") as roots:
        _chain(Chain(roots / "root"), tmp_path)


def _chain(c: Chain, tmp_path: Path) -> None:
    root = c.root
    releases = CHAIN.releases()
    try:
        debroot.unpack_root(releases[0], root)
        c.lap("bullseye root")
        _prepare(c, tmp_path)
        for n, chain in enumerate(releases):
            release = chain.release
            if n:
                old = releases[n - 1].release
                change = _change(c, old, release)
                predicted = _predict_and_prefetch(c, f"{old}>{release}", change)
                c.lap(f"{old}: predicted, prefetched")
                c.times.update({k: round(v, 1) for k, v in debroot.become(root, chain).items()})
                version = c.run(
                    "python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"
                )
                assert version.strip() == MINORS[release], version
                c.lap(f"{release}: upgraded")
                _check_state(c, release, predicted)
                c.lap(f"{release}: judged")
                _repair(c, release)
                c.lap(f"{release}: repaired")
            _make_venvs(c, release, _makers(release))
            c.lap(f"{release}: venvs made")
        # forky's python3.15: a venv made by it, then 3.15 purged under it
        _make_venvs(c, "forky", {"py315": ["python3.15", "-m", "venv"]})
        gone = installed(root, minor_packages("3.15"))
        predicted = _predict_and_prefetch(
            c, "forky>no-3.15", [f"--remove-package={p}" for p in gone]
        )
        purge(root, gone)
        _check_state(c, "forky-3.15-purged", predicted)
        _repair(c, "forky-3.15-purged")
        c.lap("forky: 3.15 purged, repaired")
        assert not c.failures, "\n".join(c.failures)
    finally:
        print("\n".join(c.log))
        print(f"venv-states judged: {c.states}; failures: {len(c.failures)}")
        print("\n".join(c.failures))
        print("timings (s, cumulative):", c.times)
