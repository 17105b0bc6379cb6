"""predict against what really happens: the simulated distro upgrade of the scan tests,
judged *before* it happens, must equal the scan *after* it and the ground truth of running
every venv; host profiles of two hosts sharing one tree; --remove-package on real dpkg."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import factory
from conftest import require_python, run_cli, validate_json
from factory import imports_ok, install, make_project, make_venv

pytestmark = pytest.mark.slow

KINDS = factory.UPGRADE_KINDS

#: What the upgrade does to each kind, as predict names it.
EFFECTS = {
    "py3-venv": "breaks-silently",
    "uv-py3": "breaks-silently",
    "pip-venv": "breaks-silently",
    "editable": "breaks-silently",
    "versioned-venv": "breaks-loudly",
    "virtualenv": "breaks-loudly",
    "copies": "loses-stdlib",
}


def verdicts_scan(*args: str) -> dict[str, tuple[str, str]]:
    """path -> (status, main finding code) from ``venvkeeper scan --json``."""
    res = run_cli("scan", "--json", *args)
    assert res.code in (0, 1, 2), res.err
    return {
        v["path"]: (v["status"], v["findings"][0]["code"] if v["findings"] else "")
        for v in validate_json("scan", res.out)["venvs"]
    }


def run_predict(*args: str) -> dict[str, dict]:
    res = run_cli("predict", "--json", *args)
    assert res.code in (0, 1, 2), res.err
    return {v["path"]: v for v in validate_json("predict", res.out)["venvs"]}


def verdicts_predicted(pred: dict[str, dict]) -> dict[str, tuple[str, str]]:
    return {
        p: (v["status_then"], v["findings_then"][0]["code"] if v["findings_then"] else "")
        for p, v in pred.items()
    }


@dataclass
class Upgrade:
    root: Path
    made: dict[str, Path]
    gamma: Path  # the editable project's source
    predicted_absent: dict[str, dict]  # before, 3.12 not installed yet
    predicted_present: dict[str, dict]  # before, 3.12 installed beside 3.10
    before: dict[str, tuple[str, str]]
    after: dict[str, tuple[str, str]]
    truth_before: dict[str, bool]
    truth_after: dict[str, bool]
    profile_before: Path
    profile_after: Path
    predicted_on_before_host: dict[str, dict]  # after the change, with the old profile


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory: pytest.TempPathFactory) -> Upgrade:
    world = factory.UpgradeWorld.build(tmp_path_factory.mktemp("predict"))
    usr, envs, distro = world.root / "usr", str(world.envs), world.distro
    change = (
        f"--python-becomes={usr}/bin/python3=3.12",
        f"--remove={usr}/bin/python3.10",
        f"--remove={usr}/lib/python3.10",
        f"--remove={usr}/include/python3.10",
    )
    profile_before = world.root / "before.json"
    assert (
        run_cli("host-profile", "--search", str(usr / "bin"), "-o", str(profile_before)).code == 0
    )
    truth_before = world.truth()
    before = verdicts_scan(envs)
    predicted_absent = run_predict(envs, *change)
    distro.install("3.12")  # the new minor beside the old one, before the switch
    predicted_present = run_predict(envs, *change)
    world.upgrade()
    truth_after = world.truth()
    after = verdicts_scan(envs)
    profile_after = world.root / "after.json"
    assert run_cli("host-profile", "--search", str(usr / "bin"), "-o", str(profile_after)).code == 0
    on_before = run_predict(envs, "--host-profile", str(profile_before))
    return Upgrade(
        world.root,
        world.made,
        world.editable_source,
        predicted_absent,
        predicted_present,
        before,
        after,
        truth_before,
        truth_after,
        profile_before,
        profile_after,
        on_before,
    )


@pytest.mark.parametrize("variant", ["new-minor-absent", "new-minor-installed"])
@pytest.mark.parametrize("kind", KINDS)
def test_prediction_equals_the_scan_after_the_change(
    upgrade: Upgrade, kind: str, variant: str
) -> None:
    pred = upgrade.predicted_absent if variant == "new-minor-absent" else upgrade.predicted_present
    path = str(upgrade.made[kind])
    assert verdicts_predicted(pred)[path] == upgrade.after[path], pred[path]["findings_then"]


@pytest.mark.parametrize("kind", KINDS)
def test_prediction_matches_ground_truth_and_names_the_effect(upgrade: Upgrade, kind: str) -> None:
    v = upgrade.predicted_absent[str(upgrade.made[kind])]
    assert upgrade.truth_before[kind], "every venv works before the change"
    assert v["status_now"] != "critical"
    assert (v["status_then"] == "critical") == (not upgrade.truth_after[kind])
    assert v["effect"] == EFFECTS[kind]
    assert v["breaks"] is True


@pytest.mark.parametrize("kind", KINDS)
def test_plan_under_the_change_rebuilds_on_the_new_python(upgrade: Upgrade, kind: str) -> None:
    plan = upgrade.predicted_absent[str(upgrade.made[kind])]["plan"]
    usr = upgrade.root / "usr"
    assert plan["strategy"] == "rebuild"
    assert plan["target"]["version"] == "3.12"
    assert plan["target"]["executable"] == str(usr / "bin" / "python3.12")
    specs = {p["spec"] for p in plan["packages"]}
    if kind == "editable":
        assert specs == {f"-e {upgrade.gamma}"}
    else:
        # installed from their source directories: reinstalled from there, exactly
        kinds = {p["name"]: (p["kind"], p["version"]) for p in plan["packages"]}
        assert kinds["alpha"] == ("local", "1.0") and kinds["beta"] == ("local", "1.0")
        assert any(s.startswith("alpha @ file://") for s in specs)
        assert "pip" not in kinds
        # beta has an extension compiled for 3.10: a 3.12 wheel or a build is needed.
        assert any(
            b["code"] == "needs-new-wheel" and b["package"] == "beta" for b in plan["blockers"]
        )


def test_the_old_hosts_profile_sees_the_venvs_as_they_were(upgrade: Upgrade) -> None:
    """Host A (3.10 at the path) and host B (3.12 there) share the tree: judged through A's
    profile, on this host already upgraded, the verdicts are A's real ones."""
    for kind, path in upgrade.made.items():
        v = upgrade.predicted_on_before_host[str(path)]
        status = v["status_then"]
        assert (status, v["findings_then"][0]["code"] if v["findings_then"] else "") == (
            upgrade.before[str(path)]
        ), kind
        assert (status == "critical") == (not upgrade.truth_before[kind]), kind
        # ...while this host (B) sees them broken, as running them showed.
        assert (upgrade.after[str(path)][0] == "critical") == (not upgrade.truth_after[kind])


def test_the_new_hosts_profile_equals_the_upgrade(upgrade: Upgrade) -> None:
    pred = run_predict(str(upgrade.root / "envs"), "--host-profile", str(upgrade.profile_after))
    assert verdicts_predicted(pred) == upgrade.after


def test_profile_lists_the_interpreters_with_their_links(upgrade: Upgrade) -> None:
    doc = validate_json("host-profile", upgrade.profile_before.read_text())
    assert doc["kind"] == "host-profile" and doc["schema_version"] == 2
    (interp,) = doc["interpreters"]
    usr = upgrade.root / "usr"
    assert interp["version"] == "3.10" and interp["stdlib_present"] is True
    assert interp["patch_version"].startswith("3.10.")
    names = {n["path"]: n["hops"] for n in interp["names"]}
    assert names[str(usr / "bin" / "python3")] == [
        str(usr / "bin" / "python3"),
        str(usr / "bin" / "python3.10"),
    ]


# --- --remove-package on the real package database ---------------------------------------


def _dpkg_python() -> tuple[str, Path]:
    if not shutil.which("dpkg-query"):
        pytest.skip("this machine has no dpkg")
    from venvkeeper.host import pkgdb

    owned = pkgdb.owners(["/usr/bin/python3"])
    if "/usr/bin/python3" not in owned:
        pytest.skip("/usr/bin/python3 is not owned by a dpkg package here")
    real = Path("/usr/bin/python3").resolve()
    pkg = pkgdb.owners([str(real)]).get(str(real))
    if pkg is None:
        pytest.skip(f"{real} is not owned by a dpkg package here")
    return pkg, real


def test_package_files_are_the_real_file_list() -> None:
    from venvkeeper.host import pkgdb

    pkg, real = _dpkg_python()
    files = pkgdb.package_files(pkg)
    assert str(real) in files
    assert "/usr/bin" not in files and "/usr" not in files  # shared directories stay


def test_remove_package_breaks_the_venvs_on_that_python(tmp_path: Path) -> None:
    pkg, real = _dpkg_python()
    versioned = make_venv(real, tmp_path / "versioned")  # links python3.X itself
    other = make_venv(require_python("3.12"), tmp_path / "pyenv")
    pred = run_predict(str(tmp_path), "--remove-package", pkg)
    assert pred[str(versioned)]["effect"] == "breaks-loudly"
    assert pred[str(other)]["effect"] == "survives"
    res = run_cli("predict", str(tmp_path), "--remove-package", pkg)
    assert res.code == 2
    assert f"remove package {pkg}" in res.out


def test_remove_package_without_a_package_manager_is_a_clear_error(tmp_path: Path) -> None:
    from venvkeeper.errors import UsageError
    from venvkeeper.host import pkgdb
    from venvkeeper.predict.changes import Change, build_world

    def lister(pkg: str) -> list[str]:
        return pkgdb.package_files(pkg, str(tmp_path))  # no dpkg-query, no rpm there

    with pytest.raises(UsageError) as e:
        build_world(Change(remove_packages=("python3.10-minimal",)), package_files=lister)
    assert "neither dpkg nor rpm" in str(e.value) and "--remove PATH" in str(e.value)


def test_remove_package_that_is_not_installed_is_a_clear_error(tmp_path: Path) -> None:
    if not shutil.which("dpkg-query"):
        pytest.skip("this machine has no dpkg")
    res = run_cli("predict", str(tmp_path), "--remove-package", "no-such-package-vk")
    assert res.code == 3
    assert "no installed package" in res.err


# --- a pyenv clean-up, judged before it happens ------------------------------------------


def test_pyenv_cleanup_prediction_matches_ground_truth(tmp_path: Path) -> None:
    """``pyenv uninstall 3.10.x`` predicted with --remove; the truth comes from running the
    venvs with that version hidden in a private mount namespace (the machine's pyenv is
    never touched)."""
    old, keep = require_python("3.10"), require_python("3.11")
    if "/versions/" not in str(old) or not factory.can_hide():
        pytest.skip("needs a pyenv CPython 3.10, root and unshare")
    version_dir = old.parent.parent
    proj = make_project(tmp_path, "alpha")
    made = {
        "venv": make_venv(old, tmp_path / "envs" / "venv"),
        "virtualenv": make_venv(old, tmp_path / "envs" / "virtualenv", creator="virtualenv"),
        "uv": make_venv(old, tmp_path / "envs" / "uv", creator="uv"),
        "other-version": make_venv(keep, tmp_path / "envs" / "other-version"),
    }
    for v in made.values():
        install(v, proj)
    pred = run_predict(str(tmp_path / "envs"), "--remove", str(version_dir))
    for name, v in made.items():
        truth = imports_ok(v, "alpha", hide=[version_dir])
        assert imports_ok(v, "alpha"), name  # it works today
        got = pred[str(v)]
        assert (got["status_then"] == "critical") == (not truth), (name, got["findings_then"])
        assert got["effect"] == ("survives" if name == "other-version" else "breaks-loudly")
