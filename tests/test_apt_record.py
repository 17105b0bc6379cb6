"""The apt hooks judge only what an apt run can change: the pre-install hook leaves a record
of the run (its packages and the Python files they own in this host's real dpkg database),
the post-invoke hook of the same run judges only the venvs that depend on those files,
from the facts the inventory keeps, and an apt run of no Python package costs no walk and
prints nothing. Every reason not to trust the record or the inventory is one line, and
then every venv is judged as before.

The hooks run as apt runs them: ``sh -c`` children of one process that stands for apt
(:func:`apt_run`), or a real ``apt-get`` with dpkg replaced by ``/bin/true``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from venvkeeper.apt import record as apt_record
from venvkeeper.apt.hook import render_conf

from conftest import User, require_python, run_cli
from consumer_world import World
from factory import make_venv

pytestmark = pytest.mark.slow

VENVKEEPER = Path(sys.executable).parent / "venvkeeper"
DEBIAN_PY = Path("/usr/bin/python3.11")
#: One process runs both hooks with ``sh -c``, as apt does; it prints what they wrote.
APT = """
import ctypes, json, subprocess, sys, time
# named as apt is (not as pytest's own interpreter): the hooks climb to apt's process
ctypes.CDLL(None).prctl(15, b"apt-get", 0, 0, 0)  # PR_SET_NAME
pre, post, text = sys.argv[1], sys.argv[2], sys.stdin.read()
out = {}
for stage, cmd, given in (("pre", pre, text), ("post", post, None)):
    if not cmd:
        continue
    t = time.perf_counter()
    r = subprocess.run(["sh", "-c", cmd], input=given, capture_output=True, text=True)
    out[stage] = [r.returncode, r.stdout, r.stderr, time.perf_counter() - t]
print(json.dumps(out))
"""


def hook_input(*packages: str) -> str:
    """Protocol 3: each package upgraded within its version (a patch upgrade)."""
    lines = [
        f"{p} 1.0-1 amd64 same < 1.0-2 amd64 same /var/cache/apt/archives/{p}.deb" for p in packages
    ]
    return "VERSION 3\nAPT::Architecture=amd64\n\n" + "\n".join(lines) + "\n"


def apt_run(root: Path, *packages: str, pre: bool = True, post: bool = True) -> dict[str, Any]:
    """Both hooks of one apt run over *root*: {stage: [exit, stdout, stderr, seconds]}."""
    if not VENVKEEPER.exists():
        pytest.skip("the venvkeeper console script is not installed beside this Python")
    pre_cmd = f"{VENVKEEPER} apt-hook pre-install --no-processes {root}" if pre else ""
    post_cmd = f"{VENVKEEPER} apt-hook post-invoke --proc-root /proc {root}" if post else ""
    res = subprocess.run(
        [sys.executable, "-c", APT, pre_cmd, post_cmd],
        input=hook_input(*packages),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    for stage in doc.values():
        assert stage[0] == 0 and "Traceback" not in stage[2], stage
    return doc


def db() -> Path:
    return Path(os.environ["VENVKEEPER_DB"])


def scans() -> int:
    with sqlite3.connect(db()) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0])


def scan_and_keep(root: Path) -> None:
    res = subprocess.run(
        [str(VENVKEEPER), "scan", "-q", str(root)], capture_output=True, text=True, timeout=600
    )
    assert res.returncode in (0, 1, 2) and res.stderr == "", res.stderr


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A venv on Debian's python3.11 (dpkg's python3.11-minimal), a venv on the
    unversioned python3 (python3-minimal), and one on pyenv's 3.12 (no package)."""
    if not DEBIAN_PY.exists() or not shutil.which("dpkg-query"):
        pytest.skip("needs Debian's /usr/bin/python3.11 and dpkg")
    top = tmp_path_factory.mktemp("apt-venvs")
    return {
        "deb": make_venv(DEBIAN_PY, top / "deb"),
        "deb3": make_venv(Path("/usr/bin/python3"), top / "deb3"),
        "pyenv": make_venv(require_python("3.12"), top / "pyenv"),
    }


@pytest.fixture
def world(venvs: dict[str, Path], tmp_path: Path) -> Path:
    """The venvs copied into this test's root, scanned into this test's inventory."""
    root = tmp_path / "root"
    for name, v in venvs.items():
        shutil.copytree(v, root / name, symlinks=True)
    scan_and_keep(root)
    return root


def test_a_run_of_no_python_package_does_nothing(world: Path) -> None:
    before = scans()
    got = apt_run(world, "ed", "vim-tiny")
    assert got["post"][1:3] == ["", ""], got
    assert scans() == before  # nothing judged, nothing recorded
    rec = json.loads((db().parent / apt_record.RECORD_NAME).read_text())
    assert rec["packages"] == ["ed", "vim-tiny"] and rec["interpreters"] == []
    mode = (db().parent / apt_record.RECORD_NAME).stat().st_mode & 0o777
    assert mode == 0o600


def test_a_python_patch_upgrade_judges_the_venvs_on_it(world: Path) -> None:
    got = apt_run(world, "python3.11-minimal", "libpython3.11-stdlib")
    rec = json.loads((db().parent / apt_record.RECORD_NAME).read_text())
    assert "/usr/bin/python3.11" in rec["interpreters"]
    assert "/usr/lib/python3.11" in rec["stdlibs"]
    out = got["post"][1]
    assert out.startswith("venvkeeper: 2 venvs depend on the Python packages of this apt run"), got
    assert got["post"][2] == ""
    # what was judged, recorded as a scan of those venvs: the same verdicts as a cold scan
    with sqlite3.connect(db()) as conn:
        (roots,) = conn.execute("SELECT roots FROM scans ORDER BY id DESC LIMIT 1").fetchone()
    assert sorted(json.loads(roots)) == [str(world / "deb"), str(world / "deb3")]
    assert _last_statuses() == _cold_statuses(world, ["deb", "deb3"])


def test_python3_minimal_judges_the_venvs_on_the_unversioned_link(world: Path) -> None:
    got = apt_run(world, "python3-minimal")  # /usr/bin/python3 -> python3.11
    assert got["post"][1].startswith("venvkeeper: 1 venv depends"), got
    got = apt_run(world, "libpython3.11-dev")  # the headers: patchlevel.h
    assert got["post"][1].startswith("venvkeeper: 2 venvs depend"), got


def _last_statuses() -> dict[str, str]:
    with sqlite3.connect(db()) as conn:
        rows = conn.execute(
            "SELECT v.path, s.status FROM sightings s JOIN venvs v ON v.id = s.venv_id"
            " WHERE s.scan_id = (SELECT MAX(id) FROM scans)"
        ).fetchall()
    return {Path(p).name: st for p, st in rows}


def _cold_statuses(root: Path, names: list[str]) -> dict[str, str]:
    res = subprocess.run(
        [str(VENVKEEPER), "scan", "--json", "--no-record", "--full", str(root)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    doc = json.loads(res.stdout)
    found = {Path(v["path"]).name: v["status"] for v in doc["venvs"]}
    return {n: found[n] for n in names}


def test_a_broken_base_is_seen_by_the_selective_judging(world: Path, tmp_path: Path) -> None:
    """The venv on python3.11 whose link now dangles (as after a removal) is judged again
    and found critical, from the facts the inventory kept (no walk)."""
    link = world / "deb" / "bin" / "python"
    link.unlink()
    link.symlink_to("/usr/bin/python3.11-gone")
    got = apt_run(world, "python3.11-minimal")
    assert "critical" in got["post"][1] and str(world / "deb") in got["post"][1], got
    assert _last_statuses()["deb"] == "critical" == _cold_statuses(world, ["deb"])["deb"]


def _one_line(got: dict[str, Any], why: str) -> None:
    """One line on stderr says why, and every venv is judged (as before the record)."""
    err = [ln for ln in got["post"][2].splitlines() if "judging every venv" in ln]
    assert len(err) == 1 and why in err[0], got["post"][2]
    assert got["post"][1].startswith("venvkeeper: 3 venvs:"), got["post"][1]


def test_a_record_of_another_apt_run_is_not_used(world: Path) -> None:
    apt_run(world, "python3.11-minimal", post=False)
    _one_line(apt_run(world, "ed", pre=False), "of another apt run")


def test_no_record_is_one_line(world: Path) -> None:
    (db().parent / apt_record.RECORD_NAME).unlink(missing_ok=True)
    _one_line(apt_run(world, "ed", pre=False), "no record of this apt run")


def _tamper(world: Path, change: Any) -> dict[str, Any]:
    """Both hooks of one run, the record changed between them."""
    apt_run(world, "ed", post=False)  # (pid differs: only the parser and checks matter)
    path = db().parent / apt_record.RECORD_NAME
    change(path)
    return apt_run(world, "ed", pre=False)


def test_a_garbage_record_is_one_line(world: Path) -> None:
    got = _tamper(world, lambda p: p.write_bytes(b"\x00\xff{not json"))
    _one_line(got, "cannot be read")


def test_a_record_naming_paths_outside_the_interpreters_is_one_line(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from venvkeeper.apt.record import read

    path = db().parent / apt_record.RECORD_NAME
    apt_run(world, "python3.11-minimal", post=False)
    doc = json.loads(path.read_text())
    run = apt_record.RunId(**doc["run"])
    assert read(str(path.parent), run)[0] is not None
    doc["interpreters"] = ["/home/mallory/bin/python3"]
    path.write_text(json.dumps(doc))
    rec, why = read(str(path.parent), run)
    assert rec is None and "outside the known interpreters' places" in why
    doc["interpreters"], doc["venvs"] = [], ["srv/../etc"]
    path.write_text(json.dumps(doc))
    rec, why = read(str(path.parent), run)
    assert rec is None and "not a clean absolute path" in why
    # through the hook: the same line, and every venv judged
    got = _tamper(world, lambda p: p.write_text(json.dumps(dict(doc, venvs=[]))))
    _one_line(got, "of another apt run")


def test_a_record_root_does_not_own_is_one_line(world: Path, unprivileged_user: User) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    got = _tamper(world, lambda p: os.chown(p, unprivileged_user.uid, unprivileged_user.gid))
    _one_line(got, f"is owned by {unprivileged_user.name} (uid {unprivileged_user.uid})")


def test_an_inventory_root_does_not_own_is_one_line(world: Path, unprivileged_user: User) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    os.chown(db(), unprivileged_user.uid, unprivileged_user.gid)
    try:
        got = apt_run(world, "python3.11-minimal")
    finally:
        os.chown(db(), 0, 0)
    _one_line(got, "the inventory is not trusted")


def test_a_stale_inventory_is_one_line(world: Path) -> None:
    with sqlite3.connect(db()) as conn:
        old = repr(time.time() - 30 * 86400)
        conn.execute("UPDATE reuse_meta SET value = ? WHERE key = 'saved_at'", (old,))
    _one_line(apt_run(world, "python3.11-minimal"), "days old")


def test_an_inventory_of_other_roots_is_one_line(world: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    scan_and_keep(other)
    _one_line(apt_run(world, "python3.11-minimal"), "last scan covered")


def test_the_dpkg_lists_are_classified() -> None:
    listed = [
        "/usr/bin/python3.12",
        "/usr/bin/python3",
        "/bin/python3.12",
        "/usr/lib/python3.12/os.py",
        "/usr/lib/python3.12/json/__init__.py",
        "/usr/include/python3.12/patchlevel.h",
        "/usr/lib/apache2/modules/mod_wsgi_python3.so",
        "/usr/lib/apache2/modules/mod_wsgi.so-3.11",  # Debian's libapache2-mod-wsgi-py3
        "/usr/lib/uwsgi/plugins/python311_plugin.so",
        "/usr/lib/x86_64-linux-gnu/libpython3.12.so.1.0",
        "/usr/share/doc/python3.12/README",
        "/opt/venvs/app/pyvenv.cfg",
        "/opt/venvs/app/bin/python3",
        "/opt/venvs/app/lib/python3.12/site-packages/app/__init__.py",
    ]
    got = apt_record.classify(listed)
    assert got.interpreters == {"/usr/bin/python3.12", "/usr/bin/python3", "/bin/python3.12"}
    assert got.stdlibs == {"/usr/lib/python3.12"}
    assert got.includes == {"/usr/include/python3.12"}
    assert got.modules == {
        "/usr/lib/apache2/modules/mod_wsgi_python3.so",
        "/usr/lib/apache2/modules/mod_wsgi.so-3.11",  # Debian's libapache2-mod-wsgi-py3
        "/usr/lib/uwsgi/plugins/python311_plugin.so",
        "/usr/lib/x86_64-linux-gnu/libpython3.12.so.1.0",
    }
    assert got.venvs == {"/opt/venvs/app"}  # its own files are the venv's, not interpreters
    assert apt_record.canonical("/bin/python3.12") in got.paths()
    # what this host's dpkg says python3.11-minimal owns
    owned = apt_record.owned(["python3.11-minimal"])
    if DEBIAN_PY.exists():
        assert "/usr/bin/python3.11" in owned.interpreters


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (apt-get)")
def test_a_real_apt_run_of_an_unrelated_package_costs_no_walk(world: Path, tmp_path: Path) -> None:
    """apt-get itself runs both hooks (dpkg replaced by /bin/true): the post-invoke hook of
    a package with no Python file prints nothing and records nothing."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        pytest.skip("needs apt-get and dpkg-deb")
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: vk-unrelated\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: venvkeeper tests <root@localhost>\nDescription: empty\n"
    )
    deb = tmp_path / "vk-unrelated_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", str(pkg), str(deb)], check=True, capture_output=True)
    wrapper = tmp_path / "venvkeeper"  # the hooks' command, with this test's root
    wrapper.write_text(f'#!/bin/sh\nexec {VENVKEEPER} "$@" {world}\n')
    wrapper.chmod(0o755)
    conf = tmp_path / "60venvkeeper"
    conf.write_text(render_conf(str(wrapper)))
    (tmp_path / "log").mkdir()
    before = scans()
    t0 = time.perf_counter()
    res = subprocess.run(
        [
            "apt-get", "-c", str(conf), "install", "-y", str(deb),
            "-o", "Dir::Bin::dpkg=/bin/true",
            "-o", f"Dir::State::extended_states={tmp_path}/extended_states",
            "-o", f"Dir::Log={tmp_path}/log",
        ],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )  # fmt: skip
    if "Could not get lock" in res.stderr:
        pytest.skip("apt is busy on this machine")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "venvkeeper" not in res.stdout + res.stderr, res.stdout + res.stderr
    rec = json.loads((db().parent / apt_record.RECORD_NAME).read_text())
    assert rec["packages"] == ["vk-unrelated"]
    assert scans() == before
    took = time.perf_counter() - t0
    print(f"apt-get install of an unrelated package with the hooks: {took:.2f}s")


def test_judging_again_equals_a_cold_scan_in_one_process_or_two(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post-invoke hook's judging from the kept facts gives what a cold scan gives,
    whether a forked child shares the work or not."""
    from venvkeeper.inventory import reuse
    from venvkeeper.inventory.snapshot import snapshot_of_venv
    from venvkeeper.scan.pipeline import ScanOptions, scan

    store, why = reuse.open_for_reuse(str(db()))
    assert store is not None, why
    with store:
        kept = reuse.load(store, listings=False)
    paths = sorted(kept.facts)
    monkeypatch.setattr(reuse, "PARALLEL_AT", 10**9)
    one = reuse.rejudge(kept, paths, (), ScanOptions())
    monkeypatch.setattr(reuse, "PARALLEL_AT", 1)
    two = reuse.rejudge(kept, paths, (), ScanOptions())
    assert one.venvs == two.venvs and one.depends == two.depends and len(one.venvs) == 3
    cold = scan(options=ScanOptions(roots=(str(world),)))
    assert {v.path: snapshot_of_venv(v) for v in cold.venvs} == {v.path: v for v in one.venvs}


def test_a_changed_embedding_module_judges_the_consumers_that_embed_it(tmp_path: Path) -> None:
    """libapache2-mod-wsgi-py3 upgraded to a module built for Python 3.13: the post-invoke
    hook judges again the mod_wsgi daemon process that embeds it (its venv is Python 3.11:
    embedded-python-mismatch), and no other consumer; an unrelated run reads none."""
    import io

    from venvkeeper.apt import run
    from venvkeeper.config import Config
    from venvkeeper.configured import ScanRequest

    w = World(tmp_path / "sys")
    w.venv("/srv/site/venv", str(DEBIAN_PY) if DEBIAN_PY.exists() else None)
    w.venv("/srv/other/venv")
    w.write(
        "/etc/apache2/apache2.conf",
        "ServerRoot /etc/apache2\nIncludeOptional mods-enabled/*.load\n"
        "IncludeOptional sites-enabled/*.conf\n",
    )
    w.write(
        "/etc/apache2/mods-available/wsgi.load",
        "LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so\n",
    )
    w.link("/etc/apache2/mods-enabled/wsgi.load", "../mods-available/wsgi.load")
    w.write("/usr/lib/apache2/modules/mod_wsgi.so-3.13", "")  # as Debian names it
    w.link("/usr/lib/apache2/modules/mod_wsgi.so", "mod_wsgi.so-3.13")
    w.write(
        "/etc/apache2/sites-enabled/site.conf",
        "WSGIDaemonProcess site user=www-data python-home=/srv/site/venv\n",
    )
    w.write(  # a consumer of the other venv that embeds nothing
        "/etc/systemd/system/other.service",
        "[Service]\nExecStart=/srv/other/venv/bin/python -m other\n",
    )
    w.link("/etc/systemd/system/multi-user.target.wants/other.service", "../other.service")
    info = w.p("/var/lib/dpkg/info")
    info.mkdir(parents=True)
    (info / "libapache2-mod-wsgi-py3.list").write_text(
        "/usr/lib/apache2/modules/mod_wsgi.so-3.13\n/usr/share/doc/x/README\n"
    )
    (info / "ed.list").write_text("/usr/bin/ed\n")
    assert run_cli("scan", "-q", w.host("/srv")).code in (0, 1, 2)
    places = run.StatePlaces(str(db().parent), "/proc", str(w.root))
    settings = run.HookSettings(
        config=Config(),
        scan=ScanRequest(roots=(w.host("/srv"),)),
        processes=False,
        system_root=str(w.root),
    )

    def hook(*packages: str) -> str:
        assert apt_record.record_run(list(packages), places.state_dir, "/proc", str(w.root), False)
        out, err = io.StringIO(), io.StringIO()
        run.post_invoke(lambda: settings, out, err, places)
        assert err.getvalue() == "", err.getvalue()
        return out.getvalue()

    assert hook("ed") == ""
    told = hook("libapache2-mod-wsgi-py3")
    assert "venvkeeper: no venv depends on the Python packages of this apt run" in told, told
    lines = [ln for ln in told.splitlines() if "consumer" in ln or "WSGI" in ln]
    assert lines[0].startswith("venvkeeper: 1 consumer embeds or uses what this apt run"), told
    assert "1 critical" in lines[0], told
    assert "WSGIDaemonProcess site" in lines[1] and "embedded-python-mismatch" in lines[1], told
    assert "other.service" not in told
