"""Unit tests for placeholder distributions and legacy egg-link editables, on hand-built
site directories (the real ones, made by Debian's ensurepip and pip 20.3.4, are in
tests/test_legacy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from venvkeeper.checks.registry import run_checks
from venvkeeper.formats.predict import plan_to_dict
from venvkeeper.host.bases import HostCache
from venvkeeper.host.hostfs import Overlay
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.host import Interpreter, InterpreterName
from venvkeeper.model.venv import BaseOrigin, DirectUrlKind, VenvKind
from venvkeeper.predict.plan import make_plan, package_set
from venvkeeper.scan.dists import placeholder_reason, read_egg_link
from venvkeeper.scan.inspect import inspect_venv, rejudge


@pytest.mark.parametrize(
    ("name", "version", "installer", "record", "placeholder"),
    [
        ("pkg_resources", "0.0.0", "pip", True, True),  # Debian's pip wheel, as pip installs it
        ("pkg-resources", "0.0.0", None, False, True),
        ("pkg_resources", "1.0", "pip", True, False),
        ("anything", "0.0.0", None, False, True),  # no installer's record, no release
        ("anything", "0.0.0", "pip", True, False),  # an installer put it there
        ("python-apt", "2.2.1+deb11u1", None, False, True),
        ("distro-info", "1.1build1", None, False, True),
        ("torch", "2.0.0+cu118", "pip", True, False),  # a local version from another index
        ("requests", "2.31.0", None, False, False),
    ],
)
def test_placeholders_are_told_by_evidence(
    name: str, version: str, installer: str | None, record: bool, placeholder: bool
) -> None:
    assert (placeholder_reason(name, version, installer, record) is not None) is placeholder


def _venv(tmp_path: Path) -> Path:
    v = tmp_path / "v"
    (v / "bin").mkdir(parents=True)
    (v / "pyvenv.cfg").write_text("home = /nonexistent\nversion = 3.9.2\n")
    (v / "lib" / "python3.9" / "site-packages").mkdir(parents=True)
    return v


def _site(v: Path) -> Path:
    return v / "lib" / "python3.9" / "site-packages"


def _dist_info(site: Path, name: str, version: str, installer: str = "pip") -> None:
    d = site / f"{name}-{version}.dist-info"
    d.mkdir()
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (d / "INSTALLER").write_text(installer + "\n")
    (d / "RECORD").write_text("")


def _egg(src: Path, name: str, version: str, top: str = "") -> None:
    info = src / f"{name}.egg-info"
    info.mkdir(parents=True)
    (info / "PKG-INFO").write_text(f"Metadata-Version: 1.0\nName: {name}\nVersion: {version}\n")
    if top:
        (info / "top_level.txt").write_text(top + "\n")


def test_an_egg_link_is_a_distribution_read_from_its_source(tmp_path: Path) -> None:
    v = _venv(tmp_path)
    site = _site(v)
    src = tmp_path / "work" / "my-proj"
    _egg(src / "src", "my_proj", "3.1", top="my_proj")
    (site / "my_proj.egg-link").write_text(f"{src}/src\n../\n")
    link, dist = read_egg_link(str(site), "my_proj.egg-link", True)
    assert link == ("my_proj.egg-link", f"{src}/src", True)
    assert (dist.name, dist.version, dist.editable_path) == ("my_proj", "3.1", str(src))
    assert dist.direct_url_kind is DirectUrlKind.EDITABLE and dist.editable_path_exists
    assert dist.egg_info == f"{src}/src/my_proj.egg-info" and dist.top_level == ("my_proj",)
    # an .egg-info spelt otherwise is found by its project name
    other = tmp_path / "other"
    _egg(other, "Other_Proj", "1.0")
    (site / "other-proj.egg-link").write_text(f"{other}\n.")
    assert read_egg_link(str(site), "other-proj.egg-link", False)[1].version == "1.0"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("relative/dir\n.", "names no absolute directory"),
        ("", "names no absolute directory"),
        ("/nonexistent/src\n.", None),  # its source is gone: editable-missing says so
    ],
)
def test_a_bad_egg_link_costs_only_its_distribution(
    tmp_path: Path, content: str, problem: str | None
) -> None:
    v = _venv(tmp_path)
    (_site(v) / "x.egg-link").write_text(content)
    facts = inspect_venv(str(v))
    (d,) = facts.distributions
    assert d.name == "x" and d.editable_path_exists is not True
    if problem:
        assert any(problem in p for p in d.problems)
    codes = {f.code for f in run_checks(facts)}
    assert "editable-missing" in codes or problem


def test_a_source_removed_in_an_overlay_is_the_scan_after_removing_it(tmp_path: Path) -> None:
    v = _venv(tmp_path)
    src = tmp_path / "src"
    _egg(src, "proj", "1.0")
    (_site(v) / "proj.egg-link").write_text(f"{src}\n.")
    now = inspect_venv(str(v))
    then = rejudge(now, HostCache(Overlay(removed=[str(src)]), None))
    (d,) = then.distributions
    assert d.editable_path_exists is False and d.egg_info is None
    findings = [f for f in run_checks(then) if f.code == "editable-missing"]
    assert len(findings) == 1 and "1 editable install" in findings[0].message  # not twice


def test_the_placeholder_is_never_pinned_and_a_note_says_why(tmp_path: Path) -> None:
    v = _venv(tmp_path)
    site = _site(v)
    for name, version in (("pip", "20.3.4"), ("setuptools", "44.1.1"), ("pkg_resources", "0.0.0")):
        _dist_info(site, name, version)
    _dist_info(site, "alpha", "1.0")
    (v / "bin" / "python").symlink_to("/nonexistent/python3.9")
    facts = inspect_venv(str(v), VenvKind.VENV)
    reqs, skipped, _ = package_set(facts, "3.9")
    assert [r.spec for r in reqs] == ["alpha==1.0", "setuptools==44.1.1"]
    assert skipped == ("pip==20.3.4",)
    exe = "/usr/bin/python3.11"
    interp = Interpreter(
        exe,
        (InterpreterName("/usr/bin/python3", ("/usr/bin/python3", exe)),),
        "3.11",
        "3.11.2",
        "/usr",
        True,
        BaseOrigin.SYSTEM,
    )
    broken = [Finding("interpreter-dangling", Severity.CRITICAL, "gone")]
    plan = make_plan(facts, broken, [interp])
    assert [n.split(":")[0] for n in plan.notes] == ["pkg_resources 0.0.0 left out"]
    assert plan_to_dict(plan)["notes"] == list(plan.notes)  # type: ignore[index]


def test_a_venv_of_seeds_and_the_placeholder_is_not_broken_by_a_minor_change(
    tmp_path: Path,
) -> None:
    """Only what the seed installed is in lib/python3.9: the interpreter now 3.11 loses
    nothing of the user's (no version-mismatch); a legacy editable there would be."""
    v = _venv(tmp_path)
    site = _site(v)
    for name, version in (("pip", "20.3.4"), ("setuptools", "44.1.1"), ("pkg_resources", "0.0.0")):
        _dist_info(site, name, version)
    py = tmp_path / "usr" / "bin" / "python3.11"
    py.parent.mkdir(parents=True)
    py.write_bytes(b"\x7fELF" + b"\0" * 60)
    py.chmod(0o755)
    (tmp_path / "usr" / "lib" / "python3.11").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "python3.11" / "os.py").write_text("")
    (v / "bin" / "python").symlink_to(py)
    assert "version-mismatch" not in {f.code for f in run_checks(inspect_venv(str(v)))}
    src = tmp_path / "src"
    _egg(src, "proj", "1.0")
    (site / "proj.egg-link").write_text(f"{src}\n.")
    assert "version-mismatch" in {f.code for f in run_checks(inspect_venv(str(v)))}
