"""A repair in place and a sibling build go one way (issue 23, item 4): the same failure
gives the same outcome, strategy and message through ``repair`` and ``repair --sibling``,
and leaves the venv, and the place of the sibling, as they were.

Real venvs on two real Pythons: the venv is made on one minor, and both repairs are asked
to move it to another (``--python``), so the same plan is carried out once in place and
once beside it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from venvkeeper.model.plan import Strategy
from venvkeeper.model.repair import Outcome, RepairResult
from venvkeeper.repair import BackendChoice, RepairOptions, Sources, build_sibling, repair_venv

from conftest import require_python
from factory import (
    build_wheel,
    install,
    install_from,
    make_project,
    make_venv,
    tree_hash,
    uv_cache,
)

pytestmark = pytest.mark.slow

OLD, NEW = "3.11", "3.12"


@pytest.fixture(autouse=True)
def _quiet_installers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("UV_CACHE_DIR", uv_cache())


def both(venv: Path, options: RepairOptions) -> tuple[RepairResult, RepairResult]:
    """The repair of *venv* in place and its sibling's build, with the same options; the
    tree around the venv must be as it was after each."""
    before = tree_hash(venv.parent)
    here = repair_venv(str(venv), options)
    assert tree_hash(venv.parent) == before, here
    there = build_sibling(str(venv), options)
    assert tree_hash(venv.parent) == before, there  # no sibling, placeholder, lock, journal
    assert here.path == str(venv) and there.path == f"{venv}-py{NEW}"
    return here, there


def same(here: RepairResult, there: RepairResult) -> None:
    def seen(r: RepairResult) -> tuple[object, ...]:
        pins = [p.spec for p in r.failed_pins]
        target = r.target.version if r.target else None
        return (r.outcome, r.strategy, r.message, pins, target, r.backend)

    assert seen(here) == seen(there), (here, there)


def test_a_blocked_package_set_fails_alike(tmp_path: Path) -> None:
    """An editable install whose source is gone: nothing can reinstall it anywhere. Before
    this was one path, the sibling said ``1 package(s)`` and the repair ``1 package``."""
    old, new = require_python(OLD), require_python(NEW)
    v = make_venv(old, tmp_path / "envs" / "app")
    gamma = make_project(tmp_path, "gamma")
    install(v, gamma, editable=True)
    shutil.rmtree(gamma.path)
    here, there = both(v, RepairOptions(python=str(new)))
    same(here, there)
    assert here.outcome is Outcome.FAILED and here.strategy is Strategy.REBUILD
    assert here.message == "1 package cannot be reinstalled as they are"
    assert [p.spec for p in here.failed_pins] == ["gamma"]
    assert "is gone" in here.failed_pins[0].reason


def test_an_installer_refused_by_the_trust_rule_fails_alike(tmp_path: Path) -> None:
    """``--uv`` naming nothing runnable: the same result for each venv, in place or as a
    sibling. Before, a sibling build raised it (a usage error that ended the command)
    while the same repair in place was a failed result."""
    old, new = require_python(OLD), require_python(NEW)
    v = make_venv(old, tmp_path / "envs" / "app")
    options = RepairOptions(python=str(new), backend=BackendChoice.UV, uv=str(tmp_path / "no-uv"))
    here, there = both(v, options)
    same(here, there)
    assert here.outcome is Outcome.FAILED and here.strategy is Strategy.REBUILD
    assert here.message.startswith(f"--uv {tmp_path / 'no-uv'}: "), here.message


def test_a_pin_that_does_not_install_fails_alike_and_leaves_nothing(tmp_path: Path) -> None:
    """The transaction runs both ways and fails at the install: the same pins named, the
    venv untouched, and no sibling (not even its empty placeholder) left behind."""
    old, new = require_python(OLD), require_python(NEW)
    v = make_venv(old, tmp_path / "envs" / "app")
    delta = make_project(tmp_path, "delta", "2.5")
    install_from(v, build_wheel(delta, tmp_path / "wheelhouse"), "delta==2.5")
    options = RepairOptions(python=str(new), sources=Sources(None, (), True))
    here, there = both(v, options)
    same(here, there)
    assert here.outcome is Outcome.FAILED and here.backend in ("uv", "pip")
    assert here.message.startswith(f"the package set does not install on Python {NEW}")
    assert [p.spec for p in here.failed_pins] == ["delta==2.5"]
