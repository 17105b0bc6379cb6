"""Every check against ground truth: real venvs, real installs, a real upgrade, then the
test runs the venvs and compares what happened with venvkeeper's verdict."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import factory
from conftest import (
    User,
    base_status,
    host_tmpdir,
    remove_tree,
    require_python,
    run_cli,
    validate_json,
)
from factory import (
    FakeDistro,
    imports_ok,
    install,
    make_project,
    make_venv,
    run_in_venv,
    script_runs,
)

pytestmark = pytest.mark.slow


def scan_json(*roots: Path, extra: tuple[str, ...] = ()) -> dict[str, dict]:
    res = run_cli("scan", "--json", *extra, *map(str, roots))
    assert res.code in (0, 1, 2), res.err
    doc = validate_json("scan", res.out)
    return {v["path"]: v for v in doc["venvs"]}


def codes(v: dict) -> set[str]:
    return {f["code"] for f in v["findings"]}


@dataclass
class World:
    root: Path
    before: dict[str, dict]
    after: dict[str, dict]
    truth_before: dict[str, bool]
    truth_after: dict[str, bool]
    hidden: list[Path]


KINDS = factory.UPGRADE_KINDS


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A distro upgrade from 3.10 to 3.12 of a fake /usr, with venvs of every kind."""
    world = factory.UpgradeWorld.build(tmp_path_factory.mktemp("upgrade"))

    def by_kind(report: dict[str, dict]) -> dict[str, dict]:
        return {name: report[str(v)] for name, v in world.made.items()}

    truth_before = world.truth()
    before = by_kind(scan_json(world.envs))
    world.upgrade()
    truth_after = world.truth()
    after = by_kind(scan_json(world.envs))
    return World(world.root, before, after, truth_before, truth_after, world.distro.hidden)


def test_before_upgrade_every_venv_works_and_none_is_critical(upgrade: World) -> None:
    for kind in KINDS:
        assert upgrade.truth_before[kind], f"{kind} should work before the upgrade"
        assert upgrade.before[kind]["status"] != "critical", (
            kind,
            upgrade.before[kind]["findings"],
        )


@pytest.mark.parametrize("kind", KINDS)
def test_after_upgrade_verdict_matches_ground_truth(upgrade: World, kind: str) -> None:
    works = upgrade.truth_after[kind]
    status = upgrade.after[kind]["status"]
    assert (status == "critical") == (not works), (kind, works, upgrade.after[kind]["findings"])


EXPECTED_AFTER = {
    "py3-venv": "version-mismatch",  # the silent failure: starts 3.12, packages in 3.10
    "uv-py3": "version-mismatch",
    "pip-venv": "version-mismatch",
    "editable": "version-mismatch",
    "versioned-venv": "interpreter-dangling",  # the loud failure
    "virtualenv": "interpreter-dangling",
    "copies": "stdlib-missing",
}


@pytest.mark.parametrize("kind", KINDS)
def test_after_upgrade_the_reason_is_the_right_one(upgrade: World, kind: str) -> None:
    v = upgrade.after[kind]
    assert EXPECTED_AFTER[kind] in codes(v), v["findings"]
    assert v["findings"][0]["code"] == EXPECTED_AFTER[kind]


def test_silent_failure_really_is_silent_and_counts_invisible_packages(upgrade: World) -> None:
    venv = upgrade.root / "envs" / "py3-venv"
    res = run_in_venv(
        venv, "import sys; print('%d.%d' % sys.version_info[:2])", hide=upgrade.hidden
    )
    assert res.returncode == 0 and res.stdout.strip() == "3.12"  # it starts...
    assert not imports_ok(venv, "alpha", hide=upgrade.hidden)  # ...but its packages are gone
    v = upgrade.after["py3-venv"]
    assert v["python"]["recorded"].startswith("3.10") and v["python"]["now"] == "3.12"
    assert "2 packages" in v["findings"][0]["message"]


def test_copied_interpreter_is_flagged_before_the_upgrade(upgrade: World) -> None:
    assert "copied-interpreter" in codes(upgrade.before["copies"])
    assert upgrade.before["copies"]["python"]["copy"] is True


# --- single-venv scenarios -------------------------------------------------------------


@pytest.fixture
def py311() -> Path:
    return require_python("3.11")


def test_moved_venv_scripts_cannot_start(tmp_path: Path, py311: Path) -> None:
    proj = make_project(tmp_path, "alpha", script="alpha-cli")
    v = make_venv(py311, tmp_path / "old")
    install(v, proj)
    assert script_runs(v, "alpha-cli").returncode == 0
    moved = tmp_path / "new"
    v.rename(moved)
    truth = script_runs(moved, "alpha-cli")
    assert truth.returncode != 0  # the shebang names the old path
    rep = scan_json(moved)[str(moved)]
    assert rep["status"] == "critical"
    assert rep["findings"][0]["code"] == "moved"
    assert str(tmp_path / "old") in rep["findings"][0]["message"]


def test_copied_venv_scripts_run_the_other_interpreter(tmp_path: Path, py311: Path) -> None:
    proj = make_project(tmp_path, "alpha", script="alpha-cli")
    v = make_venv(py311, tmp_path / "orig")
    install(v, proj)
    copy = tmp_path / "copy"
    shutil.copytree(v, copy, symlinks=True)
    truth = subprocess.run(
        [str(copy / "bin" / "alpha-cli")],
        capture_output=True,
        text=True,
        timeout=60,
        env=factory.clean_env(PYTHONVERBOSE="0"),
    )
    assert truth.returncode == 0  # it runs, but with orig's interpreter
    rep = scan_json(copy)[str(copy)]
    assert rep["status"] == "warning"
    assert {"moved", "scripts-foreign-interpreter"} <= codes(rep)
    assert scan_json(v)[str(v)]["status"] == base_status(py311)  # the original is sound
    assert "moved" not in codes(scan_json(v)[str(v)])


def test_relocatable_uv_venv_moves_freely(tmp_path: Path, py311: Path) -> None:
    proj = make_project(tmp_path, "alpha", script="alpha-cli")
    v = tmp_path / "rel"
    factory.sh(factory.tool("uv"), "venv", "-q", "--relocatable", "-p", py311, v)
    install(v, proj)
    moved = tmp_path / "elsewhere"
    v.rename(moved)
    assert script_runs(moved, "alpha-cli").returncode == 0
    assert "moved" not in codes(scan_json(moved)[str(moved)])


def test_abi_mismatch_after_copying_site_packages(tmp_path: Path) -> None:
    py311, py312 = require_python("3.11"), require_python("3.12")
    beta = make_project(tmp_path, "beta", ext=True)
    old = make_venv(py311, tmp_path / "old")
    install(old, beta)
    new = make_venv(py312, tmp_path / "new")
    # The classic hand-made "fix": copy the old packages into the new minor's directory.
    src = old / "lib" / "python3.11" / "site-packages"
    dst = new / "lib" / "python3.12" / "site-packages"
    shutil.copytree(src, dst, dirs_exist_ok=True)
    assert imports_ok(new, "beta") is False  # the .so is cpython-311
    rep = scan_json(new)[str(new)]
    assert rep["status"] == "critical"
    assert rep["findings"][0]["code"] == "abi-mismatch"
    assert "3.11" in rep["findings"][0]["message"]


def test_half_upgraded_venv(tmp_path: Path) -> None:
    py311, py312 = require_python("3.11"), require_python("3.12")
    alpha = make_project(tmp_path, "alpha")
    delta = make_project(tmp_path, "delta")
    v = make_venv(py311, tmp_path / "v")
    install(v, alpha)
    # What people do after an upgrade: venv --upgrade with the new Python, install again.
    link = v / "bin" / "python"
    link.unlink()
    link.symlink_to(py312)
    (v / "lib" / "python3.12" / "site-packages").mkdir(parents=True)
    install(v, delta)
    assert imports_ok(v, "delta") and not imports_ok(v, "alpha")
    rep = scan_json(v)[str(v)]
    assert rep["findings"][0]["code"] == "half-upgraded"
    assert rep["status"] == "warning"
    assert "alpha" in rep["findings"][0]["message"]


def test_venv_upgrade_advice_migrates_nothing_and_stays_critical(tmp_path: Path) -> None:
    """The usual advice after a distro upgrade, `python3 -m venv --upgrade DIR`, creates
    lib/python3.12 with at most pip in it: the venv stays broken and we say so."""
    for minor in ("3.11", "3.12"):
        if not FakeDistro.available(minor):
            pytest.skip(f"pyenv CPython {minor} is needed")
    distro = FakeDistro(tmp_path / "usr")
    distro.install("3.11")
    py3 = distro.set_default("3.11")
    alpha = make_project(tmp_path, "alpha")
    v = make_venv(py3, tmp_path / "v")
    install(v, alpha)
    distro.install("3.12")
    distro.set_default("3.12")
    factory.sh(py3, "-m", "venv", "--upgrade", v)
    factory.sh(v / "bin" / "python", "-m", "ensurepip")
    assert run_in_venv(v, "import pip").returncode == 0
    assert not imports_ok(v, "alpha")
    rep = scan_json(v)[str(v)]
    assert rep["status"] == "critical"
    assert rep["findings"][0]["code"] == "version-mismatch"
    assert "alpha" in rep["findings"][0]["message"]


def test_half_applied_upgrade_cfg_disagrees_with_interpreter(tmp_path: Path) -> None:
    """`python3.12 -m venv --upgrade` on a venv whose links name python3.11 rewrites
    pyvenv.cfg for 3.12 but leaves bin/python on 3.11: it still works, but every tool
    that trusts pyvenv.cfg now misjudges it."""
    py311, py312 = require_python("3.11"), require_python("3.12")
    alpha = make_project(tmp_path, "alpha")
    v = make_venv(py311, tmp_path / "v")
    install(v, alpha)
    factory.sh(py312, "-m", "venv", "--without-pip", "--upgrade", v)
    res = run_in_venv(v, "import sys, alpha; print('%d.%d' % sys.version_info[:2])")
    assert res.returncode == 0 and res.stdout.strip() == "3.11"
    rep = scan_json(v)[str(v)]
    assert rep["status"] == "warning"
    assert "cfg-version-differs" in codes(rep)
    assert rep["python"]["now"] == "3.11"


def test_editable_source_removed(tmp_path: Path, py311: Path) -> None:
    gamma = make_project(tmp_path / "work", "gamma")
    v = make_venv(py311, tmp_path / "v")
    install(v, gamma, editable=True)
    assert imports_ok(v, "gamma")
    rep = scan_json(v)[str(v)]
    assert rep["status"] != "critical"
    dist = rep["site_packages"][0]["distributions"][0]
    assert dist["direct_url"]["kind"] == "editable"
    assert dist["direct_url"]["path"] == str(gamma.path)
    shutil.rmtree(gamma.path)
    assert not imports_ok(v, "gamma")
    rep = scan_json(v)[str(v)]
    assert rep["status"] == "critical" and rep["findings"][0]["code"] == "editable-missing"


def test_removed_base_interpreter(tmp_path: Path) -> None:
    if not FakeDistro.available("3.10"):
        pytest.skip("pyenv CPython 3.10 is needed")
    distro = FakeDistro(tmp_path / "opt")
    exe = distro.install("3.10")
    v = make_venv(exe, tmp_path / "v", creator="virtualenv")
    shutil.rmtree(tmp_path / "opt")
    assert run_in_venv(v, "pass").returncode != 0
    rep = scan_json(v)[str(v)]
    assert rep["status"] == "critical" and rep["findings"][0]["code"] == "interpreter-dangling"


def test_world_writable_site_packages_is_real_and_reported(
    tmp_path: Path, py311: Path, unprivileged_user: User
) -> None:
    top = host_tmpdir("perm")
    try:
        v = make_venv(py311, top / "v")
        site = v / "lib" / "python3.11" / "site-packages"
        assert scan_json(v)[str(v)]["status"] == base_status(py311)  # sound so far
        assert "writable-by-others" not in codes(scan_json(v)[str(v)])
        os.chmod(site, 0o777)
        # Ground truth: another user can plant code the owner will import.
        res = subprocess.run(
            ["sh", "-c", f"echo 'print(1)' > {site}/planted.py"],
            user=unprivileged_user.uid,
            group=unprivileged_user.gid,
            extra_groups=[],
            capture_output=True,
            timeout=30,
        )
        assert res.returncode == 0
        rep = scan_json(v)[str(v)]
        assert "writable-by-others" in codes(rep)
    finally:
        remove_tree(top)


def test_pth_import_runs_code_and_is_reported(tmp_path: Path, py311: Path) -> None:
    v = make_venv(py311, tmp_path / "v")
    site = v / "lib" / "python3.11" / "site-packages"
    (site / "zz_hook.pth").write_text("import sys; sys.stdout.write('HOOKED')\n")
    assert "HOOKED" in run_in_venv(v, "pass").stdout
    rep = scan_json(v)[str(v)]
    assert "pth-import" in codes(rep)
    assert rep["status"] != "critical"


def test_system_site_packages_and_prompt_are_read(tmp_path: Path, py311: Path) -> None:
    v = tmp_path / "v"
    factory.sh(
        py311, "-m", "venv", "--without-pip", "--system-site-packages", "--prompt", "hello", v
    )
    rep = scan_json(v)[str(v)]
    cfg = rep["pyvenv_cfg"]["values"]
    assert cfg["include-system-site-packages"] == "true"
    assert cfg["prompt"] in ("hello", "'hello'")
    assert rep["creator"] == "venv"


MINORS = ("3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13")


@pytest.mark.parametrize("minor", MINORS)
def test_healthy_venv_of_every_minor(tmp_path: Path, minor: str) -> None:
    py = require_python(minor)
    v = make_venv(py, tmp_path / "v", pip=True)
    assert run_in_venv(v, "import pip").returncode == 0
    rep = scan_json(v)[str(v)]
    assert rep["python"]["now"] == minor
    assert rep["status"] != "critical", rep["findings"]
    assert rep["packages"] >= 1  # pip at least
    names = {d["name"].lower() for s in rep["site_packages"] for d in s["distributions"]}
    assert "pip" in names


@pytest.mark.parametrize("creator", ["virtualenv", "uv"])
@pytest.mark.parametrize("minor", ["3.9", "3.13"])
def test_creators_are_recognised(tmp_path: Path, creator: str, minor: str) -> None:
    py = require_python(minor)
    v = make_venv(py, tmp_path / "v", creator=creator)
    rep = scan_json(v)[str(v)]
    assert rep["creator"] == creator
    assert rep["python"]["now"] == minor


LEGACY_VIRTUALENV = Path(__file__).parent.parent / ".dev" / "legacy-virtualenv"


def test_legacy_virtualenv_of_python27(tmp_path: Path) -> None:
    """virtualenv < 20 on CPython 2.7: no pyvenv.cfg, a copied binary, orig-prefix.txt.
    It lives while its base's stdlib lives and dies when the base goes."""
    if not FakeDistro.available("2.7"):
        pytest.skip("pyenv CPython 2.7 is not installed")
    if not (LEGACY_VIRTUALENV / "virtualenv.py").exists():
        pytest.skip("virtualenv<20 for 2.7 is not set up (./dev.sh setup installs it)")
    if not factory.can_hide():
        pytest.skip("needs root and unshare to hide the removed stdlib")
    distro = FakeDistro(tmp_path / "usr")
    py27 = distro.install("2.7")
    v = tmp_path / "legacy"
    factory.sh(
        py27,
        "-m",
        "virtualenv",
        "--no-download",
        "--no-pip",
        "--no-wheel",
        "--no-setuptools",
        v,
        env=factory.clean_env(PYTHONPATH=str(LEGACY_VIRTUALENV)),
    )
    assert not (v / "pyvenv.cfg").exists()
    assert run_in_venv(v, "import json").returncode == 0
    rep = scan_json(tmp_path)[str(v)]
    assert rep["kind"] == "legacy-virtualenv" and rep["creator"] == "legacy-virtualenv"
    assert rep["python"]["now"] == "2.7" and rep["python"]["copy"] is True
    assert rep["status"] == "warning"
    assert {"legacy-virtualenv", "copied-interpreter"} <= codes(rep)
    distro.remove("2.7")
    # (its own lib/python2.7 keeps the .pyc of what ran before: import something else)
    assert run_in_venv(v, "import json", hide=distro.hidden).returncode != 0
    rep = scan_json(tmp_path)[str(v)]
    assert rep["status"] == "critical" and rep["findings"][0]["code"] == "stdlib-missing"
