"""``venvkeeper wheelhouse``: the wheels the rebuilds will need, fetched for the target
Python, then an offline repair from that directory alone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from venvkeeper.model.repair import FetchOutcome, WheelFetch, WheelhouseReport

from conftest import require_python, run_cli, validate_json
from factory import MODULES, build_wheel, build_world, imports_ok, make_project


@pytest.mark.slow
def test_prefetch_then_an_offline_repair_from_it_alone(tmp_path: Path) -> None:
    w = build_world(tmp_path, "3.10", "3.12", creators=("venv", "uv"))
    # an "index" with what exists today: delta 2.5, and epsilon 1.0 only for Pythons
    # before 3.11 (its 1.1 for any): the prefetch takes the nearest and says so
    index = tmp_path / "index"
    build_wheel(w.projects["delta"], index)
    e1 = make_project(tmp_path / "e1", "epsilon", "1.0", requires_python="<3.11")
    build_wheel(e1, index, python=require_python("3.10"))
    build_wheel(make_project(tmp_path / "e2", "epsilon", "1.1"), index)
    for f in w.wheelhouse.glob("setuptools-*.whl"):
        (index / f.name).write_bytes(f.read_bytes())
    uv = w.venvs["uv"]
    # epsilon installed before the upgrade would have been 1.0: write it as the old venv
    # had it (a real install into its old site-packages by the old minor's rules)
    site = uv / "lib" / "python3.10" / "site-packages"
    info = site / "epsilon-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: epsilon\nVersion: 1.0\nRequires-Python: <3.11\n"
    )
    (info / "INSTALLER").write_text("uv\n")
    (info / "RECORD").write_text("epsilon/__init__.py,,\n")
    (site / "epsilon").mkdir()
    (site / "epsilon" / "__init__.py").write_text("")

    dest = tmp_path / "dest"
    dest.mkdir()
    res = run_cli(
        "wheelhouse",
        "--json",
        "--dest",
        str(dest),
        "--offline",
        "--find-links",
        str(index),
        str(w.root / "envs"),
    )
    assert res.code in (1, 2), res.out + res.err
    doc = validate_json("wheelhouse", res.out)
    assert doc["kind"] == "wheelhouse"
    got = {(Path(f["venv"]).name, f["spec"]): f["outcome"] for f in doc["fetches"]}
    assert got[("venv", "delta==2.5")] == got[("uv", "delta==2.5")] == "fetched"
    assert got[("uv", "epsilon==1.0")] == "nearest"
    assert next(f for f in doc["fetches"] if f["spec"] == "epsilon==1.0")["detail"].startswith(
        "no wheel of 1.0 for Python 3.12; 1.1 has one"
    )
    local = [f for f in doc["fetches"] if f["outcome"] == "from-source"]
    assert {Path(f["venv"]).name for f in local} == {"venv", "uv"}  # alpha, beta, gamma
    names = sorted(p.name for p in dest.iterdir())
    assert "delta-2.5-py3-none-any.whl" in names and "epsilon-1.1-py3-none-any.whl" in names
    # the prefetch asked for wheels of 3.12: setuptools only where something needs it
    assert not [n for n in names if n.startswith("setuptools")]

    # right after the upgrade: an offline repair from the prefetched directory alone
    res = run_cli(
        "repair",
        "--json",
        "--all",
        "--offline",
        "--allow-upgrades",
        "--find-links",
        str(dest),
        str(w.root / "envs"),
    )
    assert res.code == 0, res.out + res.err
    results = {Path(r["path"]).name: r for r in validate_json("repair", res.out)["results"]}
    assert {r["outcome"] for r in results.values()} == {"repaired"}
    assert results["uv"]["changes"] == [{"name": "epsilon", "old": "1.0", "new": "1.1"}]
    for v in w.venvs.values():
        assert imports_ok(v, *MODULES, hide=w.distro.hidden)


def test_the_worst_outcome_gives_the_exit_code() -> None:
    def report(*outcomes: FetchOutcome) -> WheelhouseReport:
        return WheelhouseReport("/d", tuple(WheelFetch("/v", "x==1", o) for o in outcomes), ())

    assert report(FetchOutcome.FETCHED).worst == 0
    assert report(FetchOutcome.FETCHED, FetchOutcome.FROM_SOURCE).worst == 1
    assert report(FetchOutcome.NEAREST).worst == 1
    assert report(FetchOutcome.NEAREST, FetchOutcome.MISSING).worst == 2
    assert report().worst == 0


def test_a_destination_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    res = run_cli("wheelhouse", "--dest", str(tmp_path / "none"), str(tmp_path))
    assert res.code == 3 and "does not exist" in res.err


def test_the_platform_tags_come_from_any_packaging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian 11's packaging (20.9) has no ``tags.platform_tags()``: the prefetch there
    (venvkeeper on the distro's own packages) reads the same tags from ``sys_tags()``."""
    import types

    import packaging
    from packaging import tags

    from venvkeeper.repair import wheelhouse

    expected = list(dict.fromkeys(tags.platform_tags()))
    assert wheelhouse._platforms() == expected and "any" not in expected
    old = types.SimpleNamespace(sys_tags=tags.sys_tags)  # packaging 20.9's public tags API
    monkeypatch.setattr(packaging, "tags", old)
    monkeypatch.setitem(sys.modules, "packaging.tags", old)
    assert wheelhouse._platforms() == expected


@pytest.mark.parametrize("parser", ["toml", "by hand"])
def test_the_build_requirements_of_a_source_are_read_not_run(
    tmp_path: Path, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editable or local source is rebuilt at repair time: the prefetch takes its build
    requirements too (read from pyproject.toml, pip's default when it names none; by hand
    where Python 3.9 has no TOML parser)."""
    from venvkeeper.repair import wheelhouse

    if parser == "by hand":
        monkeypatch.setattr(wheelhouse, "_toml_loads", lambda text: None)
    default = ["setuptools>=40.8.0"]
    cases = {
        "hatch": (
            '[project]\nname = "x"\n\n[build-system]\n# the backend\nrequires = [\n'
            "  \"hatchling>=1.20\",  # comment\n  'hatch-vcs',\n]\n"
            'build-backend = "hatchling.build"\n\n[tool.x]\nrequires = ["no"]\n',
            ["hatchling>=1.20", "hatch-vcs"],
        ),
        "empty": ('[build-system]\nrequires = []\nbuild-backend = "b"\n', []),
        "no-table": ('[project]\nname = "x"\n', default),
    }
    for name, (text, expected) in cases.items():
        d = tmp_path / parser / name
        d.mkdir(parents=True)
        (d / "pyproject.toml").write_text(text)
        assert wheelhouse.build_requires(str(d)) == expected, name
    setup_py = tmp_path / parser / "setup-py"
    setup_py.mkdir()
    (setup_py / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    assert wheelhouse.build_requires(str(setup_py)) == default
    nothing = tmp_path / parser / "nothing"
    nothing.mkdir()
    assert wheelhouse.build_requires(str(nothing)) is None
    assert wheelhouse.build_requires(str(tmp_path / "gone")) is None
    fifo = tmp_path / parser / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "pyproject.toml")
    assert wheelhouse.build_requires(str(fifo)) is None  # never opened, never a hang


def test_a_broken_pyproject_gives_no_build_requirements(tmp_path: Path) -> None:
    from venvkeeper.repair import wheelhouse

    (tmp_path / "pyproject.toml").write_text("[build-system\nrequires = [")
    assert wheelhouse.build_requires(str(tmp_path)) is None


def test_the_prefetch_takes_build_requirements_and_a_second_chance_for_a_needed_seed(
    tmp_path: Path,
) -> None:
    """What the prefetch asks pip for (pip itself stands in: each download is recorded):
    an editable setup.py source's build backend, with its dependencies; for a needed
    seed, beside the pin, the newest that keeps pkg_resources, which is left out when
    the sources have none (it is only a second chance)."""
    import types

    from venvkeeper.host.command import Completed
    from venvkeeper.model.plan import (
        Effect,
        RepairPlan,
        Requirement,
        RequirementKind,
        Strategy,
        Target,
    )
    from venvkeeper.repair import wheelhouse
    from venvkeeper.repair.backends import Sources

    src = tmp_path / "src-legacy"
    src.mkdir()
    (src / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    plan = RepairPlan(
        "/srv/v",
        Strategy.REBUILD,
        "version-mismatch",
        Target("/usr/bin/python3", "/usr/bin/python3.13", "3.13"),
        (
            Requirement("setuptools", "44.1.1", RequirementKind.INDEX, "setuptools==44.1.1"),
            Requirement("legacy", "1.0", RequirementKind.EDITABLE, f"-e {src}", str(src)),
        ),
    )
    vp = types.SimpleNamespace(path="/srv/v", effect=Effect.BREAKS_SILENTLY, status=None, plan=plan)
    pred = types.SimpleNamespace(venvs=(vp,))
    for has_old in (True, False):
        asked: list[list[str]] = []

        def run(
            argv: list[str], timeout: float, asked: list[list[str]] = asked, has: bool = has_old
        ) -> Completed:
            asked.append(list(argv))
            ok = has or "setuptools<82" not in argv
            return Completed(tuple(argv), 0 if ok else 1, "", "" if ok else "no such wheel")

        report = wheelhouse.prefetch(pred, str(tmp_path), Sources(offline=True), run=run)
        downloads = {a[-1]: "--no-deps" not in a for a in asked if "download" in a}
        assert downloads == {
            "setuptools==44.1.1": False,
            "setuptools<82": False,
            "setuptools>=40.8.0": True,  # the build backend, with its dependencies
        }, downloads
        got = {f.spec: f.outcome for f in report.fetches}
        assert got.pop("setuptools>=40.8.0") is FetchOutcome.FETCHED
        assert got.pop(f"-e {src}") is FetchOutcome.FROM_SOURCE
        assert got.pop("setuptools==44.1.1") is FetchOutcome.FETCHED
        assert got == ({"setuptools<82": FetchOutcome.FETCHED} if has_old else {})
        assert all(a[-1] != "setuptools<82" or "--python-version" in a for a in asked)
