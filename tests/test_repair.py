"""Real repairs: venvs made by venv, virtualenv and uv on a simulated distro prefix whose
Python is upgraded across minors (3.9 -> 3.12, 3.10 -> 3.13), repaired by
``venvkeeper repair``, then *run*: every package imports, the versions are the old ones
(``uv pip freeze`` before and after), the console script runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import SESSION_PREFIX, User, require_python, run_cli, validate_json
from factory import (
    CREATORS,
    MODULES,
    FakeDistro,
    Project,
    World,
    build_wheel,
    build_world,
    freeze,
    imports_ok,
    in_mount_namespace,
    install,
    install_from,
    make_project,
    make_venv,
    pip_freeze,
    run_in_venv,
    script_runs,
    tool,
    tree_hash,
    uv_cache,
    without_seeds,
)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _quiet_installers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The host's pip configuration (a constraints file, extra indexes) is the admin's;
    # the tests use only what they build.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("UV_CACHE_DIR", uv_cache())


def _check_repaired(w: World, name: str, new: str) -> None:
    v = w.venvs[name]
    hide = w.distro.hidden
    ran = run_in_venv(v, "import sys; print('%d.%d' % sys.version_info[:2])", hide=hide)
    assert ran.stdout.strip() == new, ran
    assert imports_ok(v, *MODULES, hide=hide)
    assert script_runs(v, "alpha-cli", hide=hide).stdout.strip() == "alpha OK"
    # the same distributions at the same versions; the seeds (pip, setuptools, wheel) that
    # nothing in these venvs needs are the new Python's: a 3.12+ venv is seeded with pip
    # only (tests/test_seeds.py has the venvs that need setuptools)
    assert without_seeds(freeze(v)) == without_seeds(w.before[name])
    if f"{name}:pip" in w.before:
        assert without_seeds(pip_freeze(v)) == without_seeds(w.before[f"{name}:pip"])
        assert run_in_venv(v, "import pip").returncode == 0
        assert run_in_venv(v, "import setuptools").returncode != 0
    cfg = (v / "pyvenv.cfg").read_text()
    assert ".venvkeeper-new" not in cfg
    for f in (v / "bin").iterdir():
        if f.is_file() and not f.is_symlink():
            assert b".venvkeeper-new" not in f.read_bytes(), f


@pytest.mark.parametrize(("old", "new"), [("3.9", "3.12"), ("3.10", "3.13")])
def test_rebuild_across_minors_keeps_every_package(tmp_path: Path, old: str, new: str) -> None:
    w = build_world(tmp_path, old, new)
    originals = {n: tree_hash(v) for n, v in w.venvs.items()}
    for name in CREATORS:
        assert not imports_ok(w.venvs[name], *MODULES, hide=w.distro.hidden)
    res = run_cli("repair", "--json", *w.sources(), *map(str, w.venvs.values()))
    doc = validate_json("repair", res.out)
    assert res.code == 0, res.out + res.err
    for r in doc["results"]:
        assert (r["outcome"], r["strategy"], r["target"]["version"]) == ("repaired", "rebuild", new)
        assert r["backend"] == "uv"
        # nothing moves: ensurepip's old setuptools (which does not import on 3.12+) is a
        # seed nothing needs, left to the new venv's creator
        assert r["changes"] == [], r["changes"]
    for name in CREATORS:
        _check_repaired(w, name, new)
        # the original is kept, byte for byte, as the backup
        backup = next(r["backup"] for r in doc["results"] if r["path"] == str(w.venvs[name]))
        assert tree_hash(Path(backup)) == originals[name]
    # and a second run has nothing left to do
    again = run_cli("repair", "--json", *w.sources(), *map(str, w.venvs.values()))
    assert again.code == 0
    assert {r["outcome"] for r in validate_json("repair", again.out)["results"]} == {
        "nothing-to-do"
    }


def test_pip_backend_rebuilds_the_same(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("venv",))
    res = run_cli("repair", "--backend", "pip", *w.sources(), str(w.venvs["venv"]))
    assert res.code == 0, res.out + res.err
    assert "with pip" in res.out
    _check_repaired(w, "venv", "3.12")


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("uv",))
    v = w.venvs["uv"]
    before = tree_hash(v)
    res = run_cli("repair", "--dry-run", str(v))
    assert res.code == 0
    assert "planned" in res.out and "rebuild on" in res.out and "3.12" in res.out
    assert tree_hash(v) == before
    assert sorted(p.name for p in v.parent.iterdir()) == ["uv"]


def test_a_pin_that_cannot_install_stops_that_venv_with_the_reason(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("uv",))
    v = w.venvs["uv"]
    before = tree_hash(v)
    # no wheelhouse: delta==2.5 exists nowhere offline
    res = run_cli("repair", "--offline", str(v))
    assert res.code == 2
    assert "delta==2.5" in res.out and "what does not install" in res.out
    assert tree_hash(v) == before
    assert sorted(p.name for p in v.parent.iterdir()) == ["uv"]


def test_allow_upgrades_takes_the_nearest_version_and_reports_it(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("uv",))
    v = w.venvs["uv"]
    # the wheelhouse now has only newer deltas: 2.5 is gone
    for f in w.wheelhouse.iterdir():
        f.unlink()
    for version in ("2.7", "3.0"):
        build_wheel(make_project(tmp_path / f"d{version}", "delta", version), w.wheelhouse)
    res = run_cli("repair", "--json", "--allow-upgrades", *w.sources(), str(v))
    assert res.code == 0, res.out + res.err
    (r,) = validate_json("repair", res.out)["results"]
    assert r["changes"] == [{"name": "delta", "old": "2.5", "new": "2.7"}]
    assert imports_ok(v, *MODULES, hide=w.distro.hidden)


def test_verification_failure_keeps_the_original(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("uv",))
    v = w.venvs["uv"]
    # alpha's source now refuses to import on 3.12: the rebuilt venv cannot pass
    init = w.projects["alpha"].path / "alpha" / "__init__.py"
    init.write_text("import sys\nassert sys.version_info < (3, 12), 'alpha: too new'\n")
    before = tree_hash(v)
    res = run_cli("repair", *w.sources(), str(v))
    assert res.code == 2
    assert "verification failed" in res.out and "import alpha" in res.out
    assert tree_hash(v) == before
    assert sorted(p.name for p in v.parent.iterdir()) == ["uv"]


def test_rollback_restores_the_original_and_can_be_undone(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("uv",))
    v = w.venvs["uv"]
    original = tree_hash(v)
    assert run_cli("repair", *w.sources(), str(v)).code == 0
    repaired = tree_hash(v)
    res = run_cli("rollback", "--json", str(v))
    assert res.code == 0, res.out
    (r,) = validate_json("rollback", res.out)["results"]
    assert r["outcome"] == "repaired" and r["message"].startswith("restored "), r
    assert tree_hash(v) == original
    listed = validate_json("rollback-list", run_cli("rollback", "--list", "--json", str(v)).out)
    (kept,) = listed["backups"]
    assert os.path.realpath(listed["venv"]) == os.path.realpath(v)
    assert kept["reason"] == "rollback"
    assert tree_hash(Path(kept["path"])) == repaired
    # roll the rollback back: the repaired venv returns
    assert run_cli("rollback", str(v)).code == 0
    assert tree_hash(v) == repaired
    assert imports_ok(v, *MODULES, hide=w.distro.hidden)


def backups_of(v: Path) -> list[dict[str, Any]]:
    res = run_cli("rollback", "--list", "--json", str(v))
    assert res.code == 0, res.err
    backups: list[dict[str, Any]] = validate_json("rollback-list", res.out)["backups"]
    return backups


def test_keep_backups_and_prune_backups(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("uv",))
    v = w.venvs["uv"]
    assert run_cli("repair", *w.sources(), str(v)).code == 0
    assert run_cli("rollback", str(v)).code == 0
    assert len(backups_of(v)) == 1
    again = run_cli("repair", "--keep-backups", "1", *w.sources(), str(v))
    assert again.code == 0, again.out
    (backup,) = backups_of(v)
    res = run_cli("prune-backups", "--json", str(v.parent))
    assert res.code == 0, res.out + res.err
    pruned = validate_json("prune-backups", res.out)
    (one,) = pruned["venvs"]
    assert (one["deleted"], one["refused"]) == ([backup["path"]], None), one
    assert os.path.realpath(one["venv"]) == os.path.realpath(v)
    assert pruned["deleted"] == 1
    assert sorted(p.name for p in v.parent.iterdir()) == ["uv"]
    assert imports_ok(v, *MODULES, hide=w.distro.hidden)


def test_repair_all_finds_the_broken_venvs_under_a_root(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("venv", "uv"))
    res = run_cli("repair", "--all", "--json", *w.sources(), str(w.root / "envs"))
    assert res.code == 0, res.out + res.err
    assert {r["path"] for r in validate_json("repair", res.out)["results"]} == {
        str(w.venvs["venv"]),
        str(w.venvs["uv"]),
    }
    scan = run_cli("scan", "--json", str(w.root / "envs"))
    assert scan.code == 0, scan.out  # the backups are not reported as broken venvs


def test_moved_venv_is_repaired_in_place(tmp_path: Path) -> None:
    py = require_python("3.11")
    alpha = make_project(tmp_path, "alpha", script="alpha-cli")
    old = make_venv(py, tmp_path / "old" / "app", pip=True)
    install(old, alpha, installer="pip")
    activate = (old / "bin" / "activate").read_text()  # quoted as this CPython's venv quotes
    assert str(old) in activate
    moved = tmp_path / "new" / "app"
    moved.parent.mkdir()
    shutil.move(str(old), str(moved))
    assert script_runs(moved, "alpha-cli").returncode != 0  # the shebang names the old place
    res = run_cli("repair", "--json", str(moved))
    assert res.code == 0, res.out + res.err
    (r,) = validate_json("repair", res.out)["results"]
    assert r["strategy"] == "rewrite-paths"
    assert script_runs(moved, "alpha-cli").stdout.strip() == "alpha OK"
    assert run_in_venv(moved, "import pip, alpha").returncode == 0
    assert (moved / "bin" / "activate").read_text() == activate.replace(str(old), str(moved))
    for f in (moved / "bin").iterdir():
        if f.is_file() and not f.is_symlink():
            assert str(tmp_path / "old") not in f.read_text(errors="replace"), f
    scan = run_cli("scan", "--json", str(moved))
    (found,) = validate_json("scan", scan.out)["venvs"]
    codes = {f["code"] for f in found["findings"]}
    assert codes.isdisjoint({"moved", "scripts-foreign-interpreter"}), codes


def test_relink_to_the_same_minor_at_another_path(tmp_path: Path) -> None:
    require_python("3.11")
    if not FakeDistro.available("3.11"):
        pytest.skip("pyenv CPython 3.11 is needed")
    # A Homebrew-like Cellar: the venv was made from a patch-versioned prefix that an
    # upgrade replaced by another of the same minor.
    cellar_old = FakeDistro(tmp_path / "cellar" / "3.11.1")
    py = cellar_old.install("3.11")
    alpha = make_project(tmp_path, "alpha", script="alpha-cli")
    v = make_venv(py, tmp_path / "envs" / "app")
    install(v, alpha)
    before = freeze(v)
    site = sorted((v / "lib").glob("python3.11/site-packages"))[0]
    site_before = tree_hash(site)
    FakeDistro(tmp_path / "cellar" / "3.11.2").install("3.11")
    shutil.rmtree(tmp_path / "cellar" / "3.11.1")
    assert run_in_venv(v, "import alpha").returncode != 0
    res = run_cli("repair", "--json", str(v))
    assert res.code == 0, res.out + res.err
    (r,) = validate_json("repair", res.out)["results"]
    assert r["strategy"] == "relink"
    assert r["target"]["path"] == str(tmp_path / "cellar" / "3.11.2" / "bin" / "python3.11")
    assert os.readlink(v / "bin" / "python") == r["target"]["path"]
    assert f"home = {tmp_path / 'cellar' / '3.11.2' / 'bin'}" in (v / "pyvenv.cfg").read_text()
    assert tree_hash(site) == site_before  # a relink leaves the packages alone
    assert run_in_venv(v, "import alpha").returncode == 0
    assert script_runs(v, "alpha-cli").stdout.strip() == "alpha OK"
    assert freeze(v) == before


def test_pipx_venv_is_refused_without_force(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("venv",))
    pipx = tmp_path / "home" / ".local" / "share" / "pipx" / "venvs" / "alpha"
    pipx.parent.mkdir(parents=True)
    shutil.move(str(w.venvs["venv"]), str(pipx))
    before = tree_hash(pipx)
    res = run_cli("repair", "--json", *w.sources(), str(pipx))
    assert res.code == 1
    (r,) = validate_json("repair", res.out)["results"]
    assert r["outcome"] == "refused" and "pipx reinstall alpha" in r["message"]
    assert tree_hash(pipx) == before
    forced = run_cli("repair", "--json", "--force", *w.sources(), str(pipx))
    assert forced.code == 0, forced.out + forced.err
    assert validate_json("repair", forced.out)["results"][0]["strategy"] == "rebuild"
    assert imports_ok(pipx, "alpha", "beta._speed", "gamma", "delta", hide=w.distro.hidden)


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_upgrades_list_new_dependencies_and_each_change_once(tmp_path: Path, backend: str) -> None:
    """An upgrade that pulls in a dependency the old venv did not have lists it (from
    nothing), and each change once."""
    py311 = require_python("3.11")
    py312 = require_python("3.12")
    wheels = sorted((Path(__file__).parent.parent / ".dev" / "wheels").glob("setuptools-*.whl"))
    old_setuptools = Path("/usr/share/python-wheels/setuptools-66.1.1-py3-none-any.whl")
    if not wheels or not old_setuptools.exists():
        pytest.skip("needs Debian's setuptools 66.1.1 wheel and current ones in .dev/wheels")
    old_wh, new_wh = tmp_path / "old-wheels", tmp_path / "new-wheels"
    build_wheel(make_project(tmp_path / "t1", "tool", "1.0", requires_python="<3.12"), old_wh)
    build_wheel(make_project(tmp_path / "t2", "tool", "2.0", requires=["helper"]), new_wh)
    build_wheel(make_project(tmp_path / "h", "helper", "1.5"), new_wh)
    for w in wheels:
        shutil.copy2(w, new_wh)
    v = make_venv(py311, tmp_path / "app", creator="uv")
    install_from(v, old_wh, "tool==1.0")
    install_from(v, old_setuptools.parent, "setuptools==66.1.1")
    res = run_cli(
        "repair", "--json", "--allow-upgrades", "--python", str(py312), "--backend", backend,
        "--offline",
        "--find-links", str(new_wh), str(v),
    )  # fmt: skip
    assert res.code == 0, res.out + res.err
    (r,) = validate_json("repair", res.out)["results"]
    changes = {c["name"]: (c["old"], c["new"]) for c in r["changes"]}
    assert len(changes) == len(r["changes"]), r["changes"]  # no duplicates
    assert changes["tool"] == ("1.0", "2.0")
    assert changes["helper"] == (None, "1.5")
    now = dict(line.split("==") for line in freeze(v) if "==" in line)
    # setuptools 66.1.1 was installed by uv (whose REQUESTED says nothing) and nothing
    # needs it: a seed left to the new venv's creator, not a change
    assert "setuptools" not in changes and "setuptools" not in now, (changes, now)


def test_a_full_disk_during_a_rebuild_is_named(tmp_path: Path) -> None:
    """ENOSPC while the installer writes the new venv: the result says the disk is full,
    not that the package set does not install; the original is left as it was."""
    py311 = require_python("3.11")
    py312 = require_python("3.12")
    wh = tmp_path / "wheels"
    big = make_project(tmp_path, "big")
    (big.path / "big" / "blob.dat").write_bytes(os.urandom(3 << 20))
    build_wheel(big, wh)
    small = tmp_path / "small"
    small.mkdir()
    v = small / "app"
    uv = tool("uv")
    setup = (
        f"mount -t tmpfs -o size=5m tmpfs {small}"
        f" && {uv} venv -q -p {py311} --no-python-downloads {v}"
        f" && {uv} pip install -q --python {v}/bin/python --offline --find-links {wh} big==1.0"
    )
    code = (
        "import sys; from venvkeeper.cli import main; sys.exit(main(['repair', '--json',"
        f" '--python', '{py312}', '--backend', 'uv', '--offline', '--find-links', '{wh}',"
        f" '{v}']))"
    )
    res = in_mount_namespace(setup, code)
    assert res.returncode == 2, res.stdout + res.stderr
    (r,) = validate_json("repair", res.stdout)["results"]
    assert r["outcome"] == "failed"
    assert "no space left on device (free some space and try again)" in r["message"], r
    assert "does not install" not in r["message"]


def test_python_option_moves_a_working_venv_to_another_minor(tmp_path: Path) -> None:
    py311 = require_python("3.11")
    py312 = require_python("3.12")
    alpha = make_project(tmp_path, "alpha", script="alpha-cli")
    v = make_venv(py311, tmp_path / "app", creator="uv")
    install(v, alpha)
    before = freeze(v)
    res = run_cli("repair", "--json", "--python", str(py312), str(v))
    assert res.code == 0, res.out + res.err
    (r,) = validate_json("repair", res.out)["results"]
    assert (r["strategy"], r["target"]["version"]) == ("rebuild", "3.12")
    assert (
        run_in_venv(v, "import sys, alpha; assert sys.version_info[:2] == (3, 12)").returncode == 0
    )
    assert freeze(v) == before


def _debian_world(tmp_path: Path, user: User) -> tuple[Path, Project]:
    """A venv owned by an unprivileged user, on a copied prefix of Debian's python3.11
    (the user can run it, unlike pyenv's under /root), with a package whose import refuses
    to run as root: the repair's verification must run as the owner to pass."""
    system = Path("/usr/bin/python3.11")
    if not system.exists():
        pytest.skip("needs Debian's /usr/bin/python3.11")
    prefix = tmp_path / "opt"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib").mkdir()
    shutil.copy2(system, prefix / "bin" / "python3.11")
    (prefix / "lib" / "python3.11").symlink_to("/usr/lib/python3.11")
    guard = make_project(tmp_path, "guard", script="guard-cli")
    init = guard.path / "guard" / "__init__.py"
    init.write_text(
        "import os\nassert os.getuid() != 0, 'guard: imported as root'\n"
        "def main():\n    print('guard OK', os.getuid())\n"
    )
    v = make_venv(prefix / "bin" / "python3.11", tmp_path / "srv" / "app")
    install(v, guard)
    uid, gid = user.uid, user.gid
    for p in [tmp_path, *tmp_path.rglob("*")]:
        os.lchown(p, uid, gid)
    os.chmod(tmp_path, 0o755)
    return prefix, guard


@pytest.mark.parametrize("parent", ["the owner's", "root's"])
def test_as_root_the_rebuild_runs_as_the_venv_owner(
    open_tmp: Path, unprivileged_user: User, parent: str
) -> None:
    """In the owner's directory the whole transaction is the owner's; in root's, root
    works beside the venv and the tree is still written as the owner."""
    tmp_path = open_tmp
    prefix, _guard = _debian_world(tmp_path, unprivileged_user)
    v = tmp_path / "srv" / "app"
    if parent == "root's":  # and above it: else the user could swap the directory
        os.chown(tmp_path, 0, 0)
        os.chown(v.parent, 0, 0)
    shutil.rmtree(prefix)  # the prefix is gone: rebuild on the system python3
    res = run_cli("repair", "--json", str(v))
    assert res.code == 0, res.out + res.err
    (r,) = validate_json("repair", res.out)["results"]
    assert r["strategy"] == "rebuild" and r["target"]["path"] == "/usr/bin/python3"
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [v, *v.rglob("*")]}
    assert owners == {(unprivileged_user.uid, unprivileged_user.gid)}
    assert (v.stat().st_mode & 0o7777) == 0o755
    ran = run_in_venv(v, "import guard, os; print(os.getuid())", user=unprivileged_user.uid)
    assert ran.returncode == 0 and ran.stdout.strip() == str(unprivileged_user.uid), ran
    assert script_runs_as(v, "guard-cli", unprivileged_user).startswith("guard OK")
    backup = Path(r["backup"])
    assert backup.lstat().st_uid == unprivileged_user.uid  # the old tree, as it was
    note_owner = Path(r["backup"] + ".json").lstat().st_uid
    assert note_owner == (unprivileged_user.uid if parent == "the owner's" else 0)


def script_runs_as(venv: Path, script: str, user: User) -> str:
    import subprocess

    res = subprocess.run(
        [str(venv / "bin" / script)],
        capture_output=True,
        text=True,
        timeout=60,
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    return res.stdout.strip()


def test_a_venv_of_a_system_package_is_refused_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv shipped in a .deb (dh-virtualenv puts them in /opt/venvs): dpkg-query names
    its package. No such package exists on a test machine, so dpkg-query is a stand-in
    that answers for this one path, as the real one answers (``pkg: /path``)."""
    import tempfile

    from venvkeeper.repair import RepairOptions, repair_venv

    w = build_world(tmp_path, "3.10", "3.12", creators=("uv",))
    opt = Path(tempfile.mkdtemp(prefix=f"{SESSION_PREFIX}dpkg-", dir="/opt"))
    try:
        v = opt / "venvs" / "mytool"
        v.parent.mkdir()
        shutil.move(str(w.venvs["uv"]), str(v))
        tools = tmp_path / "tools"
        tools.mkdir()
        fake = tools / "dpkg-query"
        fake.write_text(f'#!/bin/sh\n[ "$2" = "{v}/pyvenv.cfg" ] && echo "mytool: $2"\n')
        fake.chmod(0o755)
        before = tree_hash(v)
        r = repair_venv(str(v), RepairOptions(package_tools=str(tools)))
        assert r.outcome.value == "refused" and "system package mytool" in r.message
        assert tree_hash(v) == before
    finally:
        shutil.rmtree(opt)
