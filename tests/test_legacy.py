"""Venvs of old releases, made for real (tests/legacy_worlds.py): a Debian bullseye venv
(its ``pkg_resources 0.0.0`` placeholder) with a legacy editable install by bullseye's pip
20.3.4, and a pip 20.3.4 (PyPI) venv of pyenv's 3.8 with another. Each verdict is checked
against running the venv; the rebuild against its console script and ``pip freeze``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from legacy_worlds import (
    bullseye_distro,
    bullseye_venv,
    legacy_project,
    pip20_venv,
    pip_install,
    pip_install_editable,
    remove_bullseye_python,
)

from conftest import run_cli, validate_json
from factory import (
    DEV_BIN,
    build_wheel,
    make_project,
    run_in_venv,
    script_runs,
    sh,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("quiet_installers")]


def _venv(doc: Any, path: Path) -> Any:
    (v,) = [v for v in doc["venvs"] if v["path"] == str(path)]
    return v


def _dists(v: Any) -> dict[str, Any]:
    return {d["name"]: d for s in v["site_packages"] for d in s["distributions"]}


def _pip_freeze(venv: Path) -> list[str]:
    res = sh(venv / "bin" / "python", "-m", "pip", "freeze", "--disable-pip-version-check")
    return [ln for ln in res.stdout.splitlines() if ln and not ln.startswith("#")]


def test_a_bullseye_venv_with_a_legacy_editable_breaks_and_rebuilds(tmp_path: Path) -> None:
    """bullseye's ``python3 -m venv`` (pip 20.3.4, setuptools 44.1.1, pkg_resources 0.0.0
    from Debian's wheels) with ``pip install -e`` of a setup.py project (an egg-link) and a
    package from a wheelhouse; then python3 becomes 3.11 and 3.9 is removed."""
    distro = bullseye_distro(tmp_path / "usr")
    v = bullseye_venv(distro, tmp_path / "envs" / "bullseye")
    site = v / "lib" / "python3.9" / "site-packages"
    placeholder = site / "pkg_resources-0.0.0.dist-info"
    assert placeholder.is_dir() and (placeholder / "INSTALLER").read_text().strip() == "pip"
    src = legacy_project(tmp_path / "work", "legacyproj")
    pip_install_editable(v, src)
    assert (site / "legacyproj.egg-link").is_file() and not list(site.glob("legacyproj*-info"))
    wheels = build_wheel(make_project(tmp_path, "alpha"), tmp_path / "wheelhouse")
    pip_install(v, wheels, "alpha==1.0")
    for w in sorted((DEV_BIN.parent.parent / "wheels").glob("setuptools-*.whl")):
        shutil.copy2(w, wheels)  # the rebuild's setuptools: Debian's 44.1.1 is on no index
    assert script_runs(v, "legacyproj-cli").stdout.strip() == "legacyproj OK"
    before = _pip_freeze(v)
    assert f"-e {src}" in before and "alpha==1.0" in before, before

    # Judged before the change: ok, the placeholder and the legacy editable both read.
    scan = validate_json("scan", run_cli("scan", "--json", str(tmp_path / "envs")).out)
    now = _venv(scan, v)
    assert now["status"] == "ok", now["findings"]
    dists = _dists(now)
    assert dists["pkg_resources"]["placeholder"] and dists["pip"]["placeholder"] is None
    legacy = dists["legacyproj"]
    assert (legacy["version"], legacy["egg_info"]) == ("1.0", str(src / "legacyproj.egg-info"))
    assert legacy["direct_url"]["kind"] == "editable" and legacy["direct_url"]["path"] == str(src)

    # Predicted: it breaks (its packages are left in lib/python3.9), and the plan pins
    # everything but the placeholder, which it names in a note.
    change = f"--python-becomes={tmp_path}/usr/bin/python3=3.11"
    pred = validate_json("predict", run_cli("predict", "--json", change, str(v)).out)
    (p,) = pred["venvs"]
    assert p["effect"] == "breaks-silently", p
    plan = p["plan"]
    specs = [r["spec"] for r in plan["packages"]]
    assert f"-e {src}" in specs and "alpha==1.0" in specs
    assert not any("pkg_resources" in s or "pkg-resources" in s for s in specs)
    assert any(n.startswith("pkg_resources 0.0.0 left out") for n in plan["notes"]), plan
    text = run_cli("plan", change, str(v)).out
    assert "note:     pkg_resources 0.0.0 left out" in text
    text = run_cli("predict", change, str(v)).out
    assert f"note: {v}: pkg_resources 0.0.0 left out" in text

    # The upgrade, for real: the verdict is the predicted one, and the venv is broken.
    distro.install("3.11")
    distro.set_default("3.11")
    remove_bullseye_python(distro)
    assert run_in_venv(v, "import legacyproj").returncode != 0
    assert script_runs(v, "legacyproj-cli").returncode != 0
    after = _venv(validate_json("scan", run_cli("scan", "--json", str(v.parent)).out), v)
    assert "version-mismatch" in {f["code"] for f in after["findings"]}

    # One offline repair: the same packages, the legacy editable an editable install of
    # the same source, the placeholder left out and said so.
    res = run_cli("repair", "--json", "--offline", "--find-links", str(wheels), str(v))
    (r,) = validate_json("repair", res.out)["results"]
    assert r["outcome"] == "repaired", r
    assert "pkg_resources 0.0.0 left out" in r["message"]
    assert run_in_venv(v, "import sys; print(sys.version_info[:2])").stdout.strip() == "(3, 11)"
    assert script_runs(v, "legacyproj-cli").stdout.strip() == "legacyproj OK"
    frozen = _pip_freeze(v)
    assert f"-e {src}" in frozen and "alpha==1.0" in frozen, frozen
    assert not any(x.lower().startswith("pkg") for x in frozen)
    again = _venv(validate_json("scan", run_cli("scan", "--json", str(v.parent)).out), v)
    assert again["status"] == "ok", again["findings"]


def test_a_pip20_legacy_editable_is_judged_through_its_source(tmp_path: Path) -> None:
    """pip 20.3.4 (PyPI) in a venv of pyenv's 3.8: ``pip install -e`` of a setup.py
    project. Removing its source is predicted to break the venv, and the scan after the
    removal agrees, as does running its console script."""
    v = pip20_venv("3.8", tmp_path / "envs" / "pip20")
    src = legacy_project(tmp_path / "work", "other")
    pip_install_editable(v, src)
    site = v / "lib" / "python3.8" / "site-packages"
    assert (site / "other.egg-link").is_file()
    assert script_runs(v, "other-cli").stdout.strip() == "other OK"
    doc = validate_json("scan", run_cli("scan", "--json", str(v.parent)).out)
    now = _venv(doc, v)
    assert not [f for f in now["findings"] if f["severity"] == "critical"], now["findings"]
    assert _dists(now)["other"]["version"] == "1.0"
    assert now["packages"] >= 3  # pip, setuptools and the legacy editable

    pred = validate_json(
        "predict", run_cli("predict", "--json", f"--remove={src}", str(v.parent)).out
    )
    (p,) = pred["venvs"]
    assert p["effect"] == "breaks", p
    assert "editable-missing" in {f["code"] for f in p["findings_then"]}
    assert p["plan"]["strategy"] == "manual"  # a lost source: a person restores it

    moved = tmp_path / "elsewhere"
    os.rename(src, moved)
    try:
        assert script_runs(v, "other-cli").returncode != 0
        after = _venv(validate_json("scan", run_cli("scan", "--json", str(v.parent)).out), v)
        assert {f["code"] for f in after["findings"] if f["severity"] == "critical"} == {
            f["code"] for f in p["findings_then"] if f["severity"] == "critical"
        }
    finally:
        os.rename(moved, src)
    assert script_runs(v, "other-cli").stdout.strip() == "other OK"
