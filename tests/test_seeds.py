"""Seed packages follow the new Python unless something in the venv needs them.

Unit tests of each reason a seed is needed (and is not) on real venvs with dist-info
directories laid out as installers write them; then real rebuilds across minors with a
wheelhouse of current wheels only (the old seed versions are nowhere), on both backends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from venvkeeper.predict.seeds import seed_needs
from venvkeeper.scan.inspect import inspect_venv

from conftest import require_python, run_cli, validate_json
from factory import (
    DEV_BIN,
    MODULES,
    build_wheel,
    build_world,
    imports_ok,
    make_project,
    make_venv,
    run_in_venv,
    tool,
)


def _site(v: Path) -> Path:
    (site,) = (v / "lib").glob("python3.*/site-packages")
    return site


def _dist(
    v: Path,
    name: str,
    version: str = "1.0",
    *,
    files: dict[str, str] | None = None,
    requires: tuple[str, ...] = (),
    installer: str = "pip",
    requested: bool = False,
    later: bool = False,
) -> None:
    """A distribution as pip or uv installs it: METADATA, RECORD, INSTALLER, REQUESTED."""
    site = _site(v)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(meta) + "\n\nA description.\n")
    (info / "INSTALLER").write_text(installer + "\n")
    record = []
    for rel, text in (files or {}).items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
        record.append(f"{rel},sha256=x,{len(text)}")
    record += [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    if requested:
        (info / "REQUESTED").write_text("")
    (info / "RECORD").write_text("\n".join(record) + "\n")
    if later:  # installed well after the venv was made
        t = (v / "pyvenv.cfg").stat().st_mtime + 3600
        os.utime(info, (t, t))


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    v = make_venv(require_python("3.11"), tmp_path / "v")
    _dist(v, "setuptools", "66.1.1", files={"pkg_resources/__init__.py": "import setuptools\n"})
    _dist(v, "wheel", "0.38.4", files={"wheel/bdist_wheel.py": "from setuptools import Command\n"})
    return v


def _needs(v: Path) -> dict[str, tuple[str, ...]]:
    got = seed_needs(inspect_venv(str(v)))
    return {**got.reasons, "pkg_resources": got.pkg_resources}


def test_seeds_nothing_needs(venv: Path) -> None:
    _dist(venv, "six", "1.16.0", files={"six.py": "import sys\nimport wheelwright\n"})
    # the seeds' own files (pkg_resources importing setuptools, wheel importing it) do
    # not count; neither does a name that merely starts like one
    assert _needs(venv) == {"pkg_resources": ()}


@pytest.mark.parametrize(
    ("files", "requires", "needed", "pkg_resources"),
    [
        ({"app/__init__.py": "import pkg_resources\n"}, (), {"setuptools"}, True),
        (
            {"app/__init__.py": "from pkg_resources import iter_entry_points\n"},
            (),
            {"setuptools"},
            True,
        ),
        ({"app/__init__.py": "import os, pkg_resources as pr\n"}, (), {"setuptools"}, True),
        ({"app/x.py": "    from setuptools import setup\n"}, (), {"setuptools"}, False),
        ({"app/x.py": "m = __import__('pkg_resources')\n"}, (), {"setuptools"}, True),
        ({"app/x.py": "from wheel.wheelfile import WheelFile\n"}, (), {"wheel"}, False),
        ({"app/__init__.py": ""}, ("setuptools>=40",), {"setuptools"}, False),
        ({"app/__init__.py": ""}, ("wheel; python_version >= '3'",), {"wheel"}, False),
        ({"app/__init__.py": ""}, ('wheel; extra == "dev"',), set(), False),
    ],
    ids=[
        "import-pkg_resources",
        "from-pkg_resources",
        "import-list",
        "from-setuptools",
        "dunder-import",
        "from-wheel",
        "requires-dist",
        "requires-dist-marker",
        "extra-only",
    ],
)
def test_each_reason_a_seed_is_needed(
    venv: Path,
    files: dict[str, str],
    requires: tuple[str, ...],
    needed: set[str],
    pkg_resources: bool,
) -> None:
    _dist(venv, "app", files=files, requires=requires)
    got = _needs(venv)
    assert {k for k in got if k != "pkg_resources"} == needed, got
    assert bool(got["pkg_resources"]) == pkg_resources
    for k in needed:
        assert any("app" in why for why in got[k]), got


def test_an_old_console_script_through_pkg_resources(venv: Path) -> None:
    script = venv / "bin" / "tool"
    script.write_text(
        f"#!{venv}/bin/python\n# EASY-INSTALL-ENTRY-SCRIPT: 'tool==1.0','console_scripts','tool'\n"
        "__requires__ = 'tool==1.0'\nimport sys\nfrom pkg_resources import load_entry_point\n"
    )
    got = _needs(venv)
    assert set(got) == {"setuptools", "pkg_resources"}
    assert "bin/tool loads its entry point through pkg_resources" in got["setuptools"]


@pytest.mark.parametrize(
    ("installer", "later", "needed"),
    [("pip", True, True), ("pip", False, False), ("uv", True, False)],
    ids=["pip-later", "pip-at-creation", "uv-writes-it-for-all"],
)
def test_requested_after_the_venv_was_made(
    tmp_path: Path, installer: str, later: bool, needed: bool
) -> None:
    v = make_venv(require_python("3.11"), tmp_path / "v")
    _dist(v, "setuptools", "80.9.0", installer=installer, requested=True, later=later)
    assert ("setuptools" in _needs(v)) is needed


def test_a_seed_that_is_absent_is_never_needed(tmp_path: Path) -> None:
    v = make_venv(require_python("3.11"), tmp_path / "v")
    _dist(v, "app", files={"app/__init__.py": "import pkg_resources\n"})
    assert _needs(v) == {"pkg_resources": ()}  # nothing to keep: the venv had none


# --- real rebuilds across minors, a wheelhouse of current wheels only ---------------------


def _current_only(wheelhouse: Path) -> list[str]:
    """Sources with today's wheels only: the test's own and current setuptools (no
    ensurepip wheels of the old Python: an upgrade deletes those)."""
    current = sorted((DEV_BIN.parent.parent / "wheels").glob("setuptools-*.whl"))
    if len(current) < 2:
        pytest.skip("needs setuptools 75.8.0 and a current one in .dev/wheels (./dev.sh test)")
    return ["--offline", "--find-links", str(wheelhouse)]


def _pkg_resources_user(root: Path, v: Path, old: str, wheelhouse: Path) -> None:
    """Install a package whose code imports pkg_resources into the broken venv's old
    site-packages, as pip writes it (RECORD, INSTALLER)."""
    proj = make_project(root, "prdemo")
    (proj.path / "prdemo" / "__init__.py").write_text(
        "import pkg_resources\n\ndef main():\n    print('prdemo OK')\n"
    )
    wheels = build_wheel(proj, wheelhouse)
    site = v / "lib" / f"python{old}" / "site-packages"
    subprocess.run(
        [
            tool("uv"),
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            site,
            "--offline",
            "--find-links",
            wheels,
            "prdemo",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_seeds_follow_the_new_python_unless_needed(tmp_path: Path, backend: str) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("venv",))
    v = w.venvs["venv"]
    needy = tmp_path / "envs" / "needy"
    shutil.copytree(v, needy, symlinks=True)  # the same broken venv, plus a pkg_resources user
    _pkg_resources_user(tmp_path, needy, "3.10", w.wheelhouse)
    sources = _current_only(w.wheelhouse)
    res = run_cli("repair", "--json", "--backend", backend, *sources, str(v), str(needy))
    assert res.code == 0, res.out + res.err
    plain, needing = validate_json("repair", res.out)["results"]
    hide = w.distro.hidden
    # nothing needed setuptools 65.5.0 (ensurepip's seed, which dies on 3.12): the new
    # venv is seeded as 3.12's venv seeds: pip only
    assert "setuptools 65.5.0: seeded by the old venv's creator" in plain["message"], plain
    assert plain["changes"] == []
    assert run_in_venv(v, "import setuptools", hide=hide).returncode != 0
    assert imports_ok(v, "pip", *MODULES, hide=hide)
    # prdemo imports pkg_resources: the nearest setuptools that has it and imports on
    # 3.12, on either backend (75.8.0; the newest, 84.2.1, dropped pkg_resources)
    assert needing["changes"] == [{"name": "setuptools", "old": "65.5.0", "new": "75.8.0"}], needing
    assert "prdemo/__init__.py imports pkg_resources" in needing["message"]
    ran = run_in_venv(
        needy, "import prdemo, pkg_resources, setuptools; print(setuptools.__version__)", hide=hide
    )
    assert ran.returncode == 0 and ran.stdout.strip() == "75.8.0", ran
    assert imports_ok(needy, *MODULES, hide=hide)


def test_nearest_first_orders_by_version_not_text() -> None:
    from venvkeeper.repair.backends import index_versions, nearest_first

    got = nearest_first(["9.0", "10.0", "9.10", "11.0", "9.5", "x!y", "9.4.1"], "9.5")
    assert got == ["9.10", "10.0", "11.0", "9.4.1", "9.0"]
    assert nearest_first(["1.0"], "not a version") == []
    out = "setuptools (84.2.1)\nAvailable versions: 84.2.1, 75.8.0\n  INSTALLED: 66.1.1\n"
    assert index_versions(out) == ["84.2.1", "75.8.0"]
    assert index_versions("ERROR: No matching distribution found\n") is None
