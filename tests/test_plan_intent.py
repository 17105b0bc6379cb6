"""Plans follow the venv's intent, and never target an obsolete base while a supported one
exists (issue 16, item 3).

Real venvs on a distro-like prefix (:class:`factory.FakeDistro`) upgraded from 3.11 to 3.12
with 3.11 left installed, as ``apt-get full-upgrade`` leaves bookworm's python3.11. A fake
prefix belongs to no dpkg package, so obsolescence is marked on the interpreters (and the
base) here; tests/test_aptdb.py and tests/test_real_upgrade.py tell it from real databases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest

from venvkeeper.checks.registry import run_checks
from venvkeeper.host.interpreters import Places, find_interpreters
from venvkeeper.model.host import Interpreter
from venvkeeper.model.plan import RepairPlan, Strategy
from venvkeeper.model.venv import OsPackage, VenvFacts
from venvkeeper.predict.plan import follows_default, made_with, make_plan
from venvkeeper.scan.pipeline import inspect_path

from factory import FakeDistro, install, make_project, make_venv


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    for minor in ("3.11", "3.12"):
        if not FakeDistro.available(minor):
            pytest.skip(f"pyenv CPython {minor} is needed")
    distro = FakeDistro(tmp_path / "usr")
    distro.install("3.11")
    py3 = distro.set_default("3.11")
    alpha = make_project(tmp_path, "alpha")
    envs = tmp_path / "envs"
    made = {
        "default": make_venv(py3, envs / "default"),
        "named": make_venv(tmp_path / "usr" / "bin" / "python3.11", envs / "named"),
        "copies": make_venv(py3, envs / "copies", copies=True),
    }
    for v in made.values():
        install(v, alpha)
    distro.install("3.12")
    distro.set_default("3.12")  # the upgrade: python3 is 3.12, python3.11 still there
    made["bin"] = tmp_path / "usr" / "bin"
    return made


def _interps(*dirs: Path, obsolete: Sequence[str] = ()) -> list[Interpreter]:
    found = find_interpreters(Places(tuple(str(d) for d in dirs), ()), packages_root=None)
    return [dataclasses.replace(i, obsolete=i.version in obsolete) for i in found]


def _plan(v: Path, interps: Sequence[Interpreter], obsolete: bool = False) -> RepairPlan:
    facts: VenvFacts = inspect_path(str(v)).facts
    if obsolete:
        assert facts.base is not None
        pkg = OsPackage("python3.11-minimal", "3.11.2-6+deb12u6")
        facts = dataclasses.replace(
            facts, base=dataclasses.replace(facts.base, obsolete_package=pkg)
        )
    return make_plan(facts, run_checks(facts), interps)


def test_the_intent_is_read_from_links_and_command(world: dict[str, Path]) -> None:
    bin_dir = world["bin"]
    for name in ("default", "copies"):
        facts = inspect_path(str(world[name])).facts
        assert follows_default(facts) == str(bin_dir / "python3"), name
    facts = inspect_path(str(world["named"])).facts
    assert made_with(facts) == str(bin_dir / "python3.11")
    assert follows_default(facts) is None


def test_a_venv_made_with_python3_follows_python3(world: dict[str, Path]) -> None:
    """Its packages are for 3.11 and python3.11 is still there: before, the plan relinked it
    onto that leftover; the venv asked for the distro's Python, which is 3.12 now."""
    plan = _plan(world["default"], _interps(world["bin"]))
    assert plan.strategy is Strategy.REBUILD, plan
    assert plan.target is not None
    assert plan.target.path == str(world["bin"] / "python3")
    assert plan.target.version == "3.12"


def test_a_venv_that_named_its_version_stays_on_it_while_supported(
    world: dict[str, Path],
) -> None:
    plan = _plan(world["named"], _interps(world["bin"]))
    assert plan.strategy is Strategy.NONE, plan


def test_an_obsolete_base_is_left_for_a_supported_one(world: dict[str, Path]) -> None:
    interps = _interps(world["bin"], obsolete=("3.11",))
    plan = _plan(world["named"], interps, obsolete=True)
    assert plan.strategy is Strategy.REBUILD, plan
    assert plan.reason.startswith("base-obsolete:")
    assert plan.target is not None and plan.target.version == "3.12"
    assert plan.target.path == str(world["bin"] / "python3")


def test_an_obsolete_base_with_nothing_better_is_left_alone(world: dict[str, Path]) -> None:
    only = [i for i in _interps(world["bin"], obsolete=("3.11",)) if i.version == "3.11"]
    plan = _plan(world["named"], only, obsolete=True)
    assert plan.strategy is Strategy.NONE, plan
    assert "no supported Python" in plan.reason


def test_relink_onto_a_leftover_only_when_named_and_supported(
    world: dict[str, Path], tmp_path: Path
) -> None:
    """python3.11 goes from the prefix, another 3.11 exists elsewhere: the venv that named
    3.11 is relinked onto it, unless that one is obsolete too; the venv made with python3
    follows python3 to 3.12 either way. (A copy made with python3 would find this host's
    own 3.11 stdlib above the fake prefix, as getpath does: tests/test_real_upgrade.py
    judges copies on a real upgrade.)"""
    FakeDistro(tmp_path / "usr").remove("3.11")
    other = FakeDistro(tmp_path / "other")
    other.install("3.11")
    dirs = (world["bin"], tmp_path / "other" / "bin")
    plan = _plan(world["named"], _interps(*dirs))
    assert plan.strategy is Strategy.RELINK, plan
    assert plan.target is not None
    assert plan.target.path == str(tmp_path / "other" / "bin" / "python3.11")
    plan = _plan(world["named"], _interps(*dirs, obsolete=("3.11",)))
    assert plan.strategy is Strategy.REBUILD and plan.target is not None, plan
    assert plan.target.version == "3.12"
    plan = _plan(world["default"], _interps(*dirs))
    assert plan.strategy is Strategy.REBUILD, plan
    assert plan.target is not None and plan.target.version == "3.12", plan
    assert plan.target.path == str(world["bin"] / "python3"), plan


def test_a_working_venv_is_never_moved_to_an_older_minor(
    world: dict[str, Path], tmp_path: Path
) -> None:
    """Its base 3.12 is obsolete (a leftover package), the only supported Python is 3.11:
    a working venv is left where it is rather than rebuilt backwards."""
    v = make_venv(world["bin"] / "python3.12", tmp_path / "envs" / "newer")
    interps = _interps(world["bin"], obsolete=("3.12",))
    plan = _plan(v, interps, obsolete=True)
    assert plan.strategy is Strategy.NONE, plan
    assert "of that minor or newer" in plan.reason


def test_python3_of_a_replaced_prefix_is_relinked_to_the_same_minor(tmp_path: Path) -> None:
    """A venv made with versions/3.11.1/bin/python3 (a name that never changes minor):
    when a patch release replaces that prefix, the name is gone and the venv is relinked
    onto the same minor, as before (it is not rebuilt on some other python3)."""
    if not FakeDistro.available("3.11"):
        pytest.skip("pyenv CPython 3.11 is needed")
    import shutil

    old = FakeDistro(tmp_path / "versions" / "3.11.1")
    old.install("3.11")
    v = make_venv(old.set_default("3.11"), tmp_path / "envs" / "app")
    install(v, make_project(tmp_path, "alpha"))
    new = FakeDistro(tmp_path / "versions" / "3.11.2")
    new.install("3.11")
    new.set_default("3.11")
    shutil.rmtree(tmp_path / "versions" / "3.11.1")
    plan = _plan(v, _interps(tmp_path / "versions" / "3.11.2" / "bin"))
    assert plan.strategy is Strategy.RELINK, plan
    assert plan.target is not None
    assert plan.target.path.startswith(str(tmp_path / "versions" / "3.11.2" / "bin"))
