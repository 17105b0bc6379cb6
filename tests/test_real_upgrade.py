"""A real Debian release upgrade, end to end: venvs made in bookworm, ``apt-get full-upgrade``
to trixie, then python3.11 purged.

venvkeeper runs *inside* the root (its source copied to /opt/venvkeeper-src, run by the
root's own python3 with Debian's python3-packaging): the venvs link to the root's
/usr/bin/python3, which only exists as such there. In each state after the upgrade, what
``scan`` says equals what ``predict`` said before it, and both equal running each venv.

Before the upgrade, apt installs a package with no Python file in it, with venvkeeper's apt
hooks installed: the hooks print nothing, record no scan, and the log shows what each hook
run cost (issue 22: an unrelated apt run costs no walk).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import inroot
from debroot import bookworm_root, chroot_run, purge, remove_root, upgrade_to_trixie
from inroot import VK_ENV
from venvkeeper.apt.hook import render_conf

from factory import build_wheel, make_project

pytestmark = pytest.mark.slow

VENVS = "/srv/venvs"
#: name -> how it was made (argv in the root); each gets the wheel of PROJECT installed.
MAKERS = {
    "plain": ["python3", "-m", "venv"],
    "copies": ["python3", "-m", "venv", "--copies"],
    "pinned": ["python3.11", "-m", "venv"],
    "system": ["python3", "-m", "venv", "--system-site-packages"],
    "virtualenv": ["virtualenv", "-q", "--no-periodic-update", "-p", "python3"],
    "editable": ["python3", "-m", "venv"],
}
PROJECT = "vkpure"  # a pure wheel with a console script, in every venv
SCRIPT = "vkpure-cli"
EDITABLE = "vkedit"  # an editable install from /srv/src, in the "editable" venv
PY311 = (
    "python3.11",
    "python3.11-minimal",
    "python3.11-venv",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
)
#: What no prediction can know in advance: which archive will stop offering the base.
UNFORESEEABLE = frozenset({"base-obsolete"})


def vk(root: Path, *args: str) -> tuple[int, Any]:
    """``venvkeeper ARGS --json`` inside the root, by the root's python3."""
    return inroot.vk(root, *args, timeout=600)


def runs(root: Path) -> dict[str, bool]:
    """Ground truth: does each venv start, import its packages and run its script?"""
    out = {}
    for name in MAKERS:
        mods = PROJECT + (f", {EDITABLE}" if name == "editable" else "")
        res = chroot_run(root, [f"{VENVS}/{name}/bin/python", "-c", f"import {mods}"], check=False)
        script = chroot_run(root, [f"{VENVS}/{name}/bin/{SCRIPT}"], check=False)
        out[name] = res.returncode == 0 and script.stdout.strip() == f"{PROJECT} OK"
    return out


def freezes(root: Path) -> dict[str, list[str]]:
    """What each venv's own pip says it has (its own site only, editables by name), the
    seeds (pip, setuptools, wheel) left out."""
    out = {}
    seeds = ("pip==", "setuptools==", "wheel==")
    for name in MAKERS:
        argv = [f"{VENVS}/{name}/bin/python", "-m", "pip", "list", "--local", "--format=freeze"]
        lines = chroot_run(root, argv).stdout.split()
        out[name] = sorted(x for x in lines if not x.lower().startswith(seeds))
    return out


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {Path(v["path"]).name: v for v in items}


def codes(findings: list[dict[str, Any]], *, foreseeable: bool = False) -> set[str]:
    found = {f["code"] for f in findings if f["severity"] in ("warning", "unknown", "critical")}
    return found - UNFORESEEABLE if foreseeable else found


def check_state(
    root: Path, label: str, predicted: dict[str, dict[str, Any]], report: list[str]
) -> dict[str, dict[str, Any]]:
    """In the root as it is now: scan == the prediction made before == running the venvs."""
    truth = runs(root)
    _, scan = vk(root, "scan", "--no-record", VENVS)
    seen = by_name(scan["venvs"])
    assert set(seen) == set(MAKERS), f"{label}: scan found {sorted(seen)}"
    for name, works in truth.items():
        now, pred = seen[name], predicted[name]
        report.append(
            f"{label} {name}: runs={works} scan={now['status']} {sorted(codes(now['findings']))}"
            f" predicted={pred['status_then']} {sorted(codes(pred['findings_then']))}"
        )
        assert (now["status"] == "critical") == (not works), f"{label} {name}: scan vs running"
        assert pred["breaks"] == (not works), f"{label} {name}: predict vs running"
        assert pred["status_then"] == now["status"] or (
            codes(now["findings"]) - codes(pred["findings_then"]) <= UNFORESEEABLE
        ), f"{label} {name}: predicted {pred['status_then']}, scan says {now['status']}"
        assert codes(now["findings"], foreseeable=True) == codes(
            pred["findings_then"], foreseeable=True
        ), f"{label} {name}: the findings differ from the prediction"
    return seen


def test_bookworm_to_trixie(tmp_path: Path) -> None:
    times: dict[str, float] = {}
    report: list[str] = []
    t0 = time.monotonic()
    root = tmp_path / "root"
    try:
        bookworm_root(root)
        times["bookworm root"] = time.monotonic() - t0
        _prepare(root, tmp_path)
        times["venvs made"] = time.monotonic() - t0
        assert all(runs(root).values())
        _unrelated_apt_run(root, report)
        times["unrelated apt run"] = time.monotonic() - t0
        _, before = vk(root, "scan", "--no-record", VENVS)
        assert {v["status"] for v in before["venvs"]} <= {"ok", "warning"}
        assert not any(codes(v["findings"]) & {"base-obsolete"} for v in before["venvs"])
        _, kept = vk(root, "predict", "--python-becomes", "3.13", VENVS)
        gone_args = [f"--remove-package={p}" for p in PY311]
        _, purged = vk(root, "predict", "--python-becomes", "3.13", *gone_args, VENVS)
        times["predicted"] = time.monotonic() - t0
        frozen = freezes(root)
        # The prefetch, before the upgrade, for the Python it brings: from the current
        # wheels of /opt/wheels (this machine reaches only a registry; the test stays
        # offline), into /opt/prefetch.
        chroot_run(root, ["mkdir", "-p", "/opt/prefetch"])
        code, fetched = vk(
            root, "wheelhouse", "--dest", "/opt/prefetch", "--python-becomes", "3.13",
            *gone_args, "--offline", "--find-links", "/opt/wheels", VENVS,
        )  # fmt: skip
        report.append(f"wheelhouse ({code}): {fetched['fetches']}")
        assert code == 1, fetched  # the editable is rebuilt from its source
        wanted = {f["spec"]: f["outcome"] for f in fetched["fetches"]}
        assert wanted == {f"{PROJECT}==1.0": "fetched", f"-e /srv/src/{EDITABLE}": "from-source"}
        times["prefetched"] = time.monotonic() - t0

        times.update(upgrade_to_trixie(root))
        times["upgraded"] = time.monotonic() - t0
        version = chroot_run(root, ["python3", "-c", "import sys; print(sys.version)"]).stdout
        assert version.startswith("3.13"), version

        # State A: trixie, python3.11 still installed (apt leaves it until autoremove).
        seen = check_state(root, "kept", by_name(kept["venvs"]), report)
        obsolete = {n for n, v in seen.items() if "base-obsolete" in codes(v["findings"])}
        assert {"pinned", "copies"} <= obsolete, report
        assert not obsolete & {"plain", "system"}
        _, plans = vk(root, "plan", "--all", VENVS)
        planned = {n: v["plan"] for n, v in by_name(plans["venvs"]).items()}
        for name in MAKERS:
            plan = planned[name]
            report.append(f"kept plan {name}: {plan['strategy']} {plan['target']}")
            assert plan["strategy"] == "rebuild", (name, plan)
            assert plan["target"]["path"] == "/usr/bin/python3", (name, plan)
            assert plan["target"]["version"] == "3.13", (name, plan)
        for name in ("plain", "system"):  # the plan made before the upgrade said the same
            before_plan = by_name(kept["venvs"])[name]["plan"]
            assert before_plan["strategy"] == "rebuild", before_plan
            assert before_plan["target"]["path"] == "/usr/bin/python3", before_plan
        # What repair would do now: the same, as the venvs' owner (root) may.
        _, dry = vk(root, "repair", "--all", "--dry-run", VENVS)
        for r in dry["results"]:
            report.append(f"kept repair --dry-run {r['path']}: {r['outcome']} {r['strategy']}")
            assert r["outcome"] == "planned" and r["strategy"] == "rebuild", r
            assert r["target"]["path"] == "/usr/bin/python3", r
        assert len(dry["results"]) == len(MAKERS)
        _apt_hooks(root, report)
        times["state kept"] = time.monotonic() - t0

        # State B: python3.11 purged.
        purge(root, PY311)
        times["purged"] = time.monotonic() - t0
        seen = check_state(root, "purged", by_name(purged["venvs"]), report)
        assert all(v["status"] == "critical" for v in seen.values())
        _, plans = vk(root, "plan", VENVS)
        for name, v in by_name(plans["venvs"]).items():
            plan = v["plan"]
            report.append(f"purged plan {name}: {plan['strategy']} {plan['target']}")
            assert plan["strategy"] == "rebuild" and plan["target"]["version"] == "3.13", plan
        times["state purged"] = time.monotonic() - t0

        # One offline repair from the prefetched wheels alone: every venv works on 3.13
        # with its packages (bookworm's seed wheels, setuptools 66.1.1 among them, are
        # gone: nothing in these venvs needs them).
        code, repaired = vk(
            root, "repair", "--all", "--offline", "--find-links", "/opt/prefetch", VENVS
        )
        for r in repaired["results"]:
            report.append(f"repair {r['path']}: {r['outcome']} {r['strategy']}: {r['message']}")
        assert code == 0, repaired
        assert {r["outcome"] for r in repaired["results"]} == {"repaired"}
        assert all(runs(root).values()), runs(root)
        assert freezes(root) == frozen
        _, after = vk(root, "scan", "--no-record", VENVS)
        assert {v["status"] for v in after["venvs"]} == {"ok"}, after
        times["repaired"] = time.monotonic() - t0
    finally:
        print("\n".join(report))
        print("timings (s, cumulative):", {k: round(v, 1) for k, v in times.items()})
        remove_root(root)
        remove_root(root.with_name(root.name + ".upgraded"))


def _hook_input(lines: list[str]) -> str:
    """What apt sends a Pre-Install-Pkgs hook (protocol 3) for these package actions."""
    return "VERSION 3\nAPT::Architecture=amd64\n\n" + "\n".join(lines) + "\n"


def _apt_hooks(root: Path, report: list[str]) -> None:
    """The apt hooks tell of the obsolete base: after the upgrade, and before the purge."""
    hook = ["python3", "-m", "venvkeeper", "apt-hook"]
    post = chroot_run(root, [*hook, "post-invoke", VENVS], VK_ENV)
    report.append("post-invoke: " + post.stdout.strip().replace("\n", " | "))
    assert "base-obsolete" in post.stdout and f"{VENVS}/pinned" in post.stdout, post.stdout
    fmt = "${Package} ${Version}\n"
    listed = chroot_run(root, ["dpkg-query", "-W", "-f", fmt, *PY311]).stdout.split()
    installed = dict(zip(listed[::2], listed[1::2]))
    pre_install = [*hook, "pre-install", "--no-processes", VENVS]
    # The purge to come: the venvs still on python3.11 will break.
    purging = [f"{p} {v} amd64 same > - - none **REMOVE**" for p, v in installed.items()]
    pre = chroot_run(root, pre_install, VK_ENV, input=_hook_input(purging))
    report.append("pre-install (purge): " + pre.stdout.strip().replace("\n", " | "))
    assert "will break" in pre.stdout and f"{VENVS}/pinned" in pre.stdout, pre.stdout
    # An upgrade that leaves python3.11 alone (as full-upgrade did, with trixie's lists):
    # nothing breaks, and the venvs left on the obsolete python3.11 are named.
    (py3,) = chroot_run(root, ["dpkg-query", "-W", "-f", "${Version}", "python3"]).stdout.split()
    upgrading = [f"python3 3.11.2-1+b1 amd64 allowed < {py3} amd64 allowed **CONFIGURE**"]
    pre = chroot_run(root, pre_install, VK_ENV, input=_hook_input(upgrading))
    report.append("pre-install (upgrade): " + pre.stdout.strip().replace("\n", " | "))
    assert "base-obsolete" in pre.stdout and f"{VENVS}/pinned" in pre.stdout, pre.stdout


def _prepare(root: Path, tmp: Path) -> None:
    """venvkeeper's source, a wheel of a pure project, and the venvs, in the root."""
    inroot.install(root)
    wheels = root / "opt" / "wheels"
    build_wheel(make_project(tmp, PROJECT, "1.0", script=SCRIPT), wheels)
    src = make_project(tmp / "editable", EDITABLE, "1.0")
    shutil.copytree(src.path, root / "srv" / "src" / EDITABLE)
    for name, argv in MAKERS.items():
        chroot_run(root, [*argv, f"{VENVS}/{name}"])
        pip = [f"{VENVS}/{name}/bin/python", "-m", "pip", "install", "-q", "--no-cache-dir"]
        chroot_run(root, [*pip, "--no-index", "--find-links", "/opt/wheels", PROJECT])
        if name == "editable":
            chroot_run(root, [*pip, "--no-index", "-e", f"/srv/src/{EDITABLE}"])


#: The command the hooks run in the root: venvkeeper by the root's python3, timed, each run
#: logged (stage, exit status, milliseconds, what it printed) in HOOK_LOG.
HOOK_WRAPPER = "/usr/local/sbin/venvkeeper"
HOOK_LOG = "/var/tmp/venvkeeper-hooks.log"
WRAPPER_TEXT = f"""#!/bin/sh
t0=$(date +%s%N)
PYTHONPATH={VK_ENV["PYTHONPATH"]} VENVKEEPER_DB={VK_ENV["VENVKEEPER_DB"]} \\
  /usr/bin/python3 -m venvkeeper "$@" {VENVS} >/var/tmp/vk-hook.out 2>/var/tmp/vk-hook.err
rc=$?
t1=$(date +%s%N)
{{ echo "== $2 exit $rc $(( (t1 - t0) / 1000000 )) ms"
  cat /var/tmp/vk-hook.out /var/tmp/vk-hook.err; }} >>{HOOK_LOG}
cat /var/tmp/vk-hook.out
cat /var/tmp/vk-hook.err >&2
exit $rc
"""
UNRELATED = "vk-unrelated"


def _scans(root: Path) -> int:
    with sqlite3.connect(root / VK_ENV["VENVKEEPER_DB"].lstrip("/")) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0])


def _unrelated_apt_run(root: Path, report: list[str]) -> None:
    """``apt-get install`` of a package that holds no Python file, dpkg for real, with the
    hooks installed and an inventory that keeps the venvs: both hooks run (the pre-install
    hook leaves its record of the run), print nothing, and record no scan (any walk is a
    scan recorded and a summary printed). Their time is in the log, beside apt-get's with
    the hooks and without them."""
    vk(root, "scan", VENVS)  # the inventory the post-invoke hook would judge from
    before = _scans(root)
    wrapper = root / HOOK_WRAPPER.lstrip("/")
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(WRAPPER_TEXT)
    wrapper.chmod(0o755)
    pkg = root / "tmp" / UNRELATED
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        f"Package: {UNRELATED}\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: venvkeeper tests <root@localhost>\nDescription: no Python file\n"
    )
    (pkg / "usr/share/doc" / UNRELATED).mkdir(parents=True)
    (pkg / "usr/share/doc" / UNRELATED / "README").write_text("nothing to see\n")
    deb = f"/tmp/{UNRELATED}_1.0-1_all.deb"
    chroot_run(root, ["dpkg-deb", "--build", f"/tmp/{UNRELATED}", deb])
    install = ["apt-get", "install", "-y", "--reinstall", deb]
    chroot_run(root, install)  # installed once first: the runs timed below are alike
    conf = root / "etc/apt/apt.conf.d/60venvkeeper"
    conf.write_text(render_conf(HOOK_WRAPPER))
    try:
        t0 = time.monotonic()
        res = chroot_run(root, install)
        with_hooks = time.monotonic() - t0
    finally:
        conf.unlink()
    t0 = time.monotonic()
    chroot_run(root, install)  # the same again, without the hooks
    without = time.monotonic() - t0
    log = (root / HOOK_LOG.lstrip("/")).read_text()
    report.append(
        f"apt-get install {UNRELATED}: {with_hooks:.2f}s with the hooks, {without:.2f}s"
        " without; the hooks' log: " + log.strip().replace("\n", " | ")
    )
    chroot_run(root, ["dpkg", "--purge", UNRELATED])
    assert "venvkeeper" not in res.stdout + res.stderr, res.stdout + res.stderr
    runs_logged = [ln.split() for ln in log.splitlines() if ln.startswith("== ")]
    assert [(r[1], r[3]) for r in runs_logged] == [("pre-install", "0"), ("post-invoke", "0")]
    assert all(ln.startswith("== ") for ln in log.splitlines()), log  # they printed nothing
    assert _scans(root) == before  # no walk: nothing judged, nothing recorded
    record = json.loads((root / "var/tmp/apt-run.json").read_text())
    assert record["packages"] == [UNRELATED] and record["interpreters"] == [], record
