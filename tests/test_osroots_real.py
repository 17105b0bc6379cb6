"""Venvs inside a real Debian root, scanned, judged, predicted, repaired and restarted from the
host, against what running them *in the root* (chroot) does.

One bookworm root (tests/debroot.py's cached tarball) under a ``machines/`` directory, with
venvs made inside it by its own Python (venv, ``--copies``, a versioned ``python3.11``,
``--system-site-packages``, Debian's virtualenv, an editable install), one moved inside
the root after it was made, and one made from the host with the host's pyenv Python 3.12
(it works on the host, never in the root). This host's view (``--no-other-roots``) called
the working ones critical ``moved``: that was the bug.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debroot import bookworm_root, chroot_run, remove_root
from test_real_upgrade import MAKERS

from conftest import require_python, run_cli, validate_json
from factory import build_wheel, clean_env, make_project, sh

pytestmark = pytest.mark.slow

VENVS = "/srv/venvs"
PROJECT = "vkroot"  # a pure wheel with a console script, in every venv
SCRIPT = "vkroot-cli"
EDITABLE = "vkedit"
#: name -> argv that makes it inside the root: the release upgrade test's creators, and one
#: made as moved-src, then renamed in the root
MADE_INSIDE = {**MAKERS, "moved": ["python3", "-m", "venv"]}
#: made from the host, by the host's pyenv 3.12, into the root's /srv/venvs/foreign
FOREIGN = "foreign"
ALL = (*MADE_INSIDE, FOREIGN)
SBIN = "/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    top = tmp_path_factory.mktemp("osroots")
    root = top / "machines" / "bookworm"
    try:
        bookworm_root(root)
        _prepare(root, top)
        yield root
    finally:
        remove_root(root)


def _pip(root: Path, venv: str, *args: str) -> None:
    argv = [f"{venv}/bin/python", "-m", "pip", "install", "-q", "--no-cache-dir", "--no-index"]
    chroot_run(root, [*argv, *args])


def _prepare(root: Path, tmp: Path) -> None:
    wheels = root / "srv/wheels"
    build_wheel(make_project(tmp, PROJECT, "1.0", script=SCRIPT), wheels)
    src = make_project(tmp / "editable", EDITABLE, "1.0")
    shutil.copytree(src.path, root / "srv/src" / EDITABLE)
    for name, argv in MADE_INSIDE.items():
        made = f"{VENVS}/{name}" + ("-src" if name == "moved" else "")
        chroot_run(root, [*argv, made])
        _pip(root, made, "--find-links", "/srv/wheels", PROJECT)
        if name == "editable":
            _pip(root, made, "-e", f"/srv/src/{EDITABLE}")
    os.rename(root / "srv/venvs/moved-src", root / "srv/venvs/moved")
    py312 = require_python("3.12")
    foreign = root / "srv/venvs" / FOREIGN
    sh(py312, "-m", "venv", foreign)
    sh(foreign / "bin/python", "-m", "pip", "install", "-q", "--no-index", "--find-links",
       wheels, PROJECT, env=clean_env())  # fmt: skip


def runs_in_root(root: Path, name: str) -> bool:
    """Ground truth: the venv starts in the root, imports its packages, runs its script."""
    mods = PROJECT + (f", {EDITABLE}" if name == "editable" else "")
    venv = f"{VENVS}/{name}"
    res = chroot_run(root, [f"{venv}/bin/python", "-c", f"import {mods}"], check=False)
    script = chroot_run(root, [f"{venv}/bin/{SCRIPT}"], check=False)
    return res.returncode == 0 and script.stdout.strip() == f"{PROJECT} OK"


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(v["path"]).name: v for v in doc["venvs"]}


def test_scan_from_the_host_judges_each_venv_as_its_root_does(debian: Path) -> None:
    root = debian
    truth = {name: runs_in_root(root, name) for name in ALL}
    assert truth == {**dict.fromkeys(MADE_INSIDE, True), "moved": False, FOREIGN: False}
    doc = validate_json("scan", run_cli("scan", "--json", "--no-record", str(root.parent)).out)
    seen = by_name(doc)
    assert set(seen) == set(ALL), sorted(seen)
    lines = []
    for name, works in truth.items():
        v = seen[name]
        codes = sorted(f["code"] for f in v["findings"])
        lines.append(f"{name}: runs={works} {v['status']} {codes}")
        assert v["root"] == str(root) and v["path_in_root"] == f"{VENVS}/{name}"
        assert (v["status"] == "critical") == (not works), lines
        assert "base-obsolete" not in codes  # the root's dpkg and lists: all still offered
    assert "moved" in {f["code"] for f in seen["moved"]["findings"]}
    assert "interpreter-dangling" in {f["code"] for f in seen[FOREIGN]["findings"]}
    assert seen["plain"]["python"]["executable"] == "/usr/bin/python3.11"
    # This host's view, as before: every venv that works in the root looked broken.
    old = by_name(
        validate_json(
            "scan",
            run_cli("scan", "--json", "--no-record", "--no-other-roots", str(root.parent)).out,
        )
    )
    wrong = sorted(n for n, works in truth.items() if works and old[n]["status"] == "critical")
    assert {"plain", "pinned", "virtualenv", "editable"} <= set(wrong), wrong
    assert old[FOREIGN]["status"] != "critical"  # and the one that fails there looked fine
    text = run_cli("scan", "--no-record", str(root.parent)).out
    assert f"{len(ALL)} venvs inside 1 other OS root" in text


def test_deep_runs_the_venv_in_its_root(debian: Path) -> None:
    """--deep runs each venv's interpreter inside its root (chroot): the foreign venv, which
    would run on the host, fails there."""
    doc = validate_json(
        "scan", run_cli("scan", "--json", "--no-record", "--deep", str(debian / "srv/venvs")).out
    )
    seen = by_name(doc)
    plain = seen["plain"]["deep"]
    assert plain["ran"] and plain["version"] == "3.11.2" and not plain["failed_imports"], plain
    assert seen["editable"]["deep"]["failed_imports"] == []
    foreign = seen[FOREIGN]["deep"]
    assert foreign["ran"] and foreign["error"], foreign


def test_a_change_on_the_host_leaves_the_root_alone(debian: Path) -> None:
    """The host's python3 repointed: nothing in the root changes. The same change inside
    the root breaks its venvs that follow /usr/bin/python3."""
    args = ["predict", "--json", "--no-processes", "--python-becomes", "3.13"]
    here = by_name(validate_json("predict", run_cli(*args, str(debian / "srv/venvs")).out))
    assert {n: v["effect"] for n, v in here.items() if n in ("plain", "pinned", "moved")} == {
        "plain": "survives",
        "pinned": "survives",
        "moved": "already-broken",
    }
    there = by_name(
        validate_json(
            "predict", run_cli(*args, "--in-root", str(debian), str(debian / "srv/venvs")).out
        )
    )
    assert there["plain"]["effect"] == "breaks-silently", there["plain"]
    assert there["pinned"]["effect"] == "survives"  # python3.11 stays
    assert there["plain"]["plan"]["target"]["path"] == "/usr/bin/python3"


@pytest.fixture
def chrooted(debian: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A long-running process of a venv, chrooted into the root (no /proc there: Python
    does not need it)."""
    venv = debian / "srv/victim"
    chroot_run(debian, ["python3", "-m", "venv", "/srv/victim"])
    _pip(debian, "/srv/victim", "--find-links", "/srv/wheels", PROJECT)
    code = "import vkroot, sys, time; print('up', flush=True); time.sleep(300)"
    chroot = shutil.which("chroot", path=SBIN) or "chroot"
    proc = subprocess.Popen(
        [chroot, str(debian), "/srv/victim/bin/python", "-c", code],
        stdout=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        yield proc, venv
    finally:
        proc.kill()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(venv)


def test_restarts_judges_a_chrooted_process_against_its_root(
    chrooted: tuple[subprocess.Popen[bytes], Path],
) -> None:
    from venvkeeper.restarts.scan import scan_processes

    proc, venv = chrooted
    root = str(venv.parent.parent)
    # its packages upgraded after it started (a dist-info newer than the process)
    (dist,) = (venv / "lib/python3.11/site-packages").glob(f"{PROJECT}-*.dist-info")
    later = time.time() + 5
    os.utime(dist, (later, later))
    mine = [p for p in scan_processes().processes if p.pid == proc.pid]
    assert len(mine) == 1, "the chrooted process is judged, not only listed"
    (p,) = mine
    assert (p.root, p.venv, p.venv_evidence) == (root, str(venv), "cmdline")
    assert [r.code for r in p.reasons] == ["venv-changed"]
    assert p.venv_status is not None and p.venv_status.value == "ok"  # as the root sees it
    # Its venv broken in the root now: a restart would fail, and restarts says so.
    (venv / "bin/python").unlink()
    (venv / "bin/python").symlink_to("/usr/bin/python3.9")  # not in bookworm
    doc = validate_json("restarts", run_cli("restarts", "--json").out)
    (entry,) = [x for x in doc["processes"] if x["pid"] == proc.pid]
    assert entry["root"] == root and entry["restart_fails"], entry
    assert entry["venv_finding"]["code"] == "interpreter-dangling"


def test_repair_inside_the_root(debian: Path) -> None:
    """The moved venv gets its paths rewritten, the foreign one (the host's pyenv 3.12 in
    a root that has only 3.11) is rebuilt by the root's own Python (chroot) from a
    wheelhouse inside the root: both then run there with their packages, and nothing in
    them names this host's path of the root."""
    root = debian
    outside = root.parent / "wheels-outside"
    outside.mkdir(exist_ok=True)
    refused = validate_json(
        "repair",
        run_cli("repair", "--json", "--offline", "--find-links", str(outside),
                str(root / "srv/venvs" / FOREIGN)).out,
    )  # fmt: skip
    (r,) = refused["results"]
    assert r["outcome"] == "refused" and "outside it" in r["message"], r
    res = run_cli(
        "repair", "--json", "--offline", "--find-links", str(root / "srv/wheels"),
        str(root / "srv/venvs/moved"), str(root / "srv/venvs" / FOREIGN),
    )  # fmt: skip
    doc = validate_json("repair", res.out)
    got = {Path(r["path"]).name: r for r in doc["results"]}
    assert got["moved"]["outcome"] == "repaired", got["moved"]
    assert got["moved"]["strategy"] == "rewrite-paths"
    foreign = got[FOREIGN]
    assert (foreign["outcome"], foreign["strategy"], foreign["backend"]) == (
        "repaired",
        "rebuild",
        "pip",
    ), foreign
    assert foreign["target"]["path"] == "/usr/bin/python3"
    assert runs_in_root(root, "moved") and runs_in_root(root, FOREIGN)
    new = root / "srv/venvs" / FOREIGN
    assert os.readlink(new / "bin/python3") == "/usr/bin/python3"  # the root's, as it names it
    cfg = (new / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg and "executable = /usr/bin/python3.11" in cfg, cfg
    for f in [new / "pyvenv.cfg", *(p for p in (new / "bin").iterdir() if p.is_file())]:
        assert str(root) not in f.read_text(errors="replace"), f  # built inside, not from here
    assert (new / "bin" / SCRIPT).read_text().startswith(f"#!{VENVS}/{FOREIGN}/bin/python")
    after = by_name(
        validate_json("scan", run_cli("scan", "--json", "--no-record", str(root / "srv/venvs")).out)
    )
    assert after["moved"]["status"] != "critical" and after[FOREIGN]["status"] != "critical"
