"""The one planner (issue 23): every registered finding code declares the repair that
answers it (``CodeDoc.repair``), :func:`venvkeeper.predict.plan.make_plan` reads that from
the registry, and ``plan``, ``predict`` and ``repair`` (with ``--python`` and ``--force``)
all plan through it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from venvkeeper.checks.registry import all_codes
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.host import Interpreter, InterpreterName
from venvkeeper.model.plan import Remedy, Strategy, Target
from venvkeeper.model.venv import VenvFacts
from venvkeeper.predict.plan import make_plan
from venvkeeper.scan.pipeline import inspect_path

from conftest import require_python
from factory import make_venv

SRC = Path(__file__).resolve().parent.parent / "src" / "venvkeeper"


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> VenvFacts:
    """A real, healthy venv: each test lays one finding on it."""
    v = make_venv(require_python("3.11"), tmp_path_factory.mktemp("planner") / "v")
    rep = inspect_path(str(v))
    assert rep.status is not Severity.CRITICAL and rep.facts.base is not None, rep.findings
    return rep.facts


def _interp(facts: VenvFacts, version: str, where: str, obsolete: bool = False) -> Interpreter:
    assert facts.base is not None
    exe = f"/opt/vk-planner-{where}/bin/python{version}"
    return Interpreter(
        executable=exe,
        names=((InterpreterName(exe, (exe,)),)),
        version=version,
        patch_version=f"{version}.99",
        prefix=f"/opt/vk-planner-{where}",
        stdlib_present=True,
        origin=facts.base.origin,
        obsolete=obsolete,
    )


def _minor(facts: VenvFacts, delta: int) -> str:
    assert facts.base is not None and facts.base.version is not None
    major, minor = facts.base.version.split(".")[:2]
    return f"{major}.{int(minor) + delta}"


@pytest.mark.slow  # a real venv
def test_every_code_declares_a_repair_and_the_planner_answers_it(facts: VenvFacts) -> None:
    """Walk the registry: a code's declared repair is what the plan does about it, on a
    host with the venv's minor elsewhere (a relink target) and a newer minor; and on a
    host with only an older minor (what tells "move it forward only" apart)."""
    same = _interp(facts, _minor(facts, 0), "same")
    newer = _interp(facts, _minor(facts, 1), "newer")
    older = _interp(facts, _minor(facts, -1), "older")
    codes = all_codes()
    assert codes
    for code, doc in sorted(codes.items()):
        assert isinstance(doc.repair, Remedy), code
        finding = Finding(code, doc.severity, f"{code} (planted by the test)")
        plan = make_plan(facts, [finding], [same, newer])
        past = make_plan(facts, [finding], [older])
        remedy = doc.repair
        if remedy is Remedy.NONE:
            expected = Strategy.MANUAL if doc.severity is Severity.CRITICAL else Strategy.NONE
            assert plan.strategy is expected, (code, plan)
            if expected is Strategy.MANUAL:
                assert plan.reason.startswith(f"{code}: "), (code, plan.reason)
        elif remedy is Remedy.PATHS:
            assert plan.strategy is Strategy.REWRITE_PATHS, (code, plan)
        elif remedy is Remedy.INTERPRETER:
            assert (plan.strategy, plan.target) == (Strategy.RELINK, _target(same)), code
            assert past.strategy is Strategy.REBUILD and past.target == _target(older), code
        elif remedy is Remedy.REBUILD:  # never a relink, even onto the same minor
            assert plan.strategy is Strategy.REBUILD, (code, plan)
        elif remedy is Remedy.NEWER_PYTHON:
            assert (plan.strategy, plan.target) == (Strategy.RELINK, _target(same)), code
            assert past.strategy is Strategy.NONE and "no supported Python" in past.reason, code
        else:  # pragma: no cover - a new Remedy needs its case here
            raise AssertionError(f"{code}: the test does not know {remedy}")
        if remedy is not Remedy.NONE:
            assert plan.reason.startswith(f"{code}: "), (code, plan.reason)


def _target(i: Interpreter) -> Target:
    assert i.version is not None
    return Target(i.best_name, i.executable, i.version, i.patch_version)


def test_the_registry_declares_the_repairs_the_planner_once_spelled_out() -> None:
    """The codes the planner used to list by hand (INTERPRETER_CODES, MOVED_CODES) now
    declare their repair themselves, and nothing else changed its answer."""
    by = {code: doc.repair for code, doc in all_codes().items()}
    assert {c for c, r in by.items() if r.interpreter} == {
        "interpreter-dangling",
        "interpreter-missing",
        "stdlib-missing",
        "version-mismatch",
        "half-upgraded",
        "abi-mismatch",
        "cfg-version-differs",
        "interpreter-not-binary",
        "interpreter-not-executable",
        "deep-start-failed",
        "deep-import-failed",
        "base-obsolete",
    }
    assert by["interpreter-not-binary"] is Remedy.REBUILD
    assert by["base-obsolete"] is Remedy.NEWER_PYTHON
    assert {c for c, r in by.items() if r is Remedy.PATHS} == {
        "moved",
        "scripts-foreign-interpreter",
    }


def test_planning_and_repair_spell_no_finding_code() -> None:
    """predict/ and repair/ name finding codes only through the checks' constants and the
    registry: renaming a code cannot silently stop its repair or its effect."""
    codes = set(all_codes())
    quoted = re.compile(r"""["']([a-z][a-z0-9-]+)["']""")
    spelled = [
        (str(p.relative_to(SRC)), word)
        for stage in ("predict", "repair")
        for p in sorted((SRC / stage).glob("*.py"))
        for word in quoted.findall(p.read_text())
        if word in codes
    ]
    assert not spelled, spelled


@pytest.mark.slow  # a real venv
def test_the_admins_python_and_force_are_the_one_planners_choices(facts: VenvFacts) -> None:
    """``--python`` moves even a venv that works (a relink onto its minor, a rebuild onto
    another); the venv's own interpreter is no move at all."""
    same = _interp(facts, _minor(facts, 0), "same")
    newer = _interp(facts, _minor(facts, 1), "newer")
    assert make_plan(facts, [], [same, newer]).strategy is Strategy.NONE
    moved = make_plan(facts, [], [same, newer], python=_target(same))
    assert (moved.strategy, moved.reason) == (Strategy.RELINK, f"--python {same.best_name}")
    assert moved.packages == make_plan(facts, [], [same], python=_target(newer)).packages
    rebuilt = make_plan(facts, [], [same, newer], python=_target(newer))
    assert rebuilt.strategy is Strategy.REBUILD and rebuilt.target == _target(newer)
    assert facts.base is not None
    own = Target(facts.base.executable, facts.base.executable, _minor(facts, 0))
    assert make_plan(facts, [], [same], python=own).strategy is Strategy.NONE
    # force changes nothing for a venv no tool manages
    assert make_plan(facts, [], [same, newer], python=_target(newer), force=True) == rebuilt
    assert dataclasses.replace(rebuilt, reason="") != rebuilt
