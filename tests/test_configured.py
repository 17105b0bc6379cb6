"""Every command that scans scans as configured (issue 23): ``[scan] roots`` when no ROOT is
given, and the ``ignore`` policy, through the one road (:mod:`venvkeeper.configured`). A
world of real venvs: one healthy under the configured root, one broken there but ignored,
one broken outside the configured root. Each command runs without a ROOT (the configured
root) and with the whole world as its ROOT: it reports the broken one outside, never the
ignored one, and acts on neither where the policy says not to."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from test_apthook import _config_block, _line

from conftest import Result, require_python, run_cli, validate_json
from factory import make_venv
from test_procs_synthetic import FakeProc

pytestmark = pytest.mark.slow  # real venvs, every scanning command


@dataclass(frozen=True)
class World:
    root: Path
    app: Path  # healthy, under the configured root
    ignored: Path  # broken, under the configured root, ignored
    other: Path  # broken, outside the configured root
    config: Path
    profile: Path


def _break(v: Path) -> None:
    (v / "bin" / "python").unlink()
    (v / "bin" / "python").symlink_to("/nonexistent/python3.11")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("configured")
    py = require_python("3.11")
    app = make_venv(py, root / "srv" / "app" / "venv")
    ignored = make_venv(py, root / "srv" / "scratch" / "venv")
    other = make_venv(py, root / "elsewhere" / "venv")
    _break(ignored)
    _break(other)
    config = root / "config.toml"
    config.write_text(f'ignore = ["{root}/srv/scratch"]\n\n[scan]\nroots = ["{root}/srv"]\n')
    profile = root / "host.json"
    res = run_cli("host-profile", "--search", str(py.parent), "--no-packages", "-o", str(profile))
    assert res.code == 0, res.err
    return World(root, app, ignored, other, config, profile)


def _paths(key: str, field: str = "path") -> Callable[[str, Result], set[str]]:
    def paths(kind: str, res: Result) -> set[str]:
        return {v[field] for v in validate_json(kind, res.out)[key]}

    return paths


def _hook_json(kind: str, res: Result) -> set[str]:
    _header, _, body = res.out.partition("\n")
    return {v["path"] for v in validate_json("predict", body)["venvs"]}


def _unused(kind: str, res: Result) -> set[str]:
    """consumers: the venvs its scan found (none of them serves anything here)."""
    return set(validate_json(kind, res.out)["unused"])


def _mentioned(kind: str, res: Result) -> str:
    return res.out + res.err


#: command line -> (the kind of its JSON, what it reported on): a set of venv paths, or the
#: text it printed (then "reported" means "named").
COMMANDS: dict[str, tuple[list[str], Callable[[str, Result], Any]]] = {
    "scan": (["scan", "--json", "--no-record", "--no-consumers"], _paths("venvs")),
    "consumers": (["consumers", "--json", "--proc-root", "{proc}"], _unused),
    "predict": (["predict", "--json", "--no-processes"], _paths("venvs")),
    "plan": (["plan", "--json", "--no-processes", "--all"], _paths("venvs")),
    "repair": (["repair", "--all", "--dry-run", "--json"], _paths("results")),
    "matrix": (["matrix", "--json", "--host-profile", "{profile}"], _paths("venvs")),
    "wheelhouse": (
        ["wheelhouse", "--json", "--offline", "--no-processes", "--dest", "{dest}"],
        _mentioned,
    ),
    "check": (["check", "--no-record"], _mentioned),
    "export": (["export", "--no-record", "--prometheus", "{prom}"], _mentioned),
    "apt-hook pre-install": (
        ["apt-hook", "pre-install", "--json", "--no-processes", "--host-prefix", "{prefix}"],
        _hook_json,
    ),
    "apt-hook post-invoke": (["apt-hook", "post-invoke", "--proc-root", "{proc}"], _mentioned),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("given_root", [False, True], ids=["configured-roots", "root-given"])
def test_every_scanning_command_scans_as_configured(
    world: World,
    command: str,
    given_root: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv, reported = COMMANDS[command]
    (tmp_path / "dest").mkdir()
    (tmp_path / "prefix").mkdir()
    places = {
        "profile": str(world.profile),
        "dest": str(tmp_path / "dest"),
        "prom": str(tmp_path / "venvkeeper.prom"),
        "prefix": str(tmp_path / "prefix"),
        "proc": str(FakeProc(tmp_path / "proc").root),
    }
    argv = [a.format(**places) for a in argv]
    if command == "apt-hook pre-install":  # an apt run that removes a Python
        text = _config_block() + _line("python3.11-minimal", "3.11.2-6", "-", "**REMOVE**")
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f"{text}\n".encode())))
        monkeypatch.delenv("APT_HOOK_INFO_FD", raising=False)
    roots = [str(world.root)] if given_root else []
    res = run_cli("--config", str(world.config), *argv, *roots)
    assert res.code in (0, 1, 2), res.err
    kind = "predict" if command.startswith("apt-hook") else command
    got = reported(kind, res)
    if command == "export":
        got += (tmp_path / "venvkeeper.prom").read_text()
    if isinstance(got, set):
        assert str(world.ignored) not in got, (command, got)
        if command != "repair":  # repair --all lists only the venvs that need work
            assert str(world.app) in got, (command, got)
        assert (str(world.other) in got) is given_root, (command, got)
    else:  # the text it printed (and the metrics it wrote): the ignored venv is not named
        assert str(world.ignored) not in got, (command, got)
        if command in ("check", "export", "apt-hook post-invoke"):  # these name broken ones
            assert (str(world.other) in got) is given_root, (command, got)
    if command == "check" and not given_root:
        assert not res.out.startswith("VENVKEEPER CRITICAL"), res.out
    if command == "repair":
        results = {r["path"]: r for r in json.loads(res.out)["results"]}
        assert (str(world.other) in results) is given_root


def test_restarts_does_not_judge_an_ignored_venv(world: World, tmp_path: Path) -> None:
    """A process of the broken venv that is not ignored would restart into a broken venv
    (reported); one of the ignored venv is not judged, so not reported for it."""
    proc = FakeProc(tmp_path / "proc")
    proc.add(30, argv=(f"{world.ignored}/bin/python", "app.py"))
    proc.add(31, argv=(f"{world.other}/bin/python", "app.py"))
    res = run_cli(
        "--config", str(world.config), "restarts", "--json", "--proc-root", str(proc.root)
    )
    doc = validate_json("restarts", res.out)
    by = {p["pid"]: p for p in doc["processes"]}
    assert 31 in by and by[31]["venv_status"] == "critical", by
    assert 30 not in by, by
    # without the configuration both are judged
    res = run_cli("restarts", "--json", "--proc-root", str(proc.root))
    assert {30, 31} <= {p["pid"] for p in validate_json("restarts", res.out)["processes"]}


def test_show_names_an_ignored_venv_on_request(world: World) -> None:
    """``ignore`` leaves venvs out of results; a venv named on the command line is shown."""
    res = run_cli("--config", str(world.config), "show", "--json", str(world.ignored))
    assert res.code == 2
    assert validate_json("show", res.out)["venv"]["path"] == str(world.ignored)
