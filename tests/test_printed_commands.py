"""Every command venvkeeper prints for the user to run is a shell command line as printed:
the tool commands of ``plan`` and of a refusal (one per creator, for venvs in places whose
names need quoting), the hints of errors, the apt hook's commands. Each is split as a shell
would (``shlex``), checked by ``bash -n``, and the harmless ones are run: venvkeeper's own
commands through its parser, or for real (``scan``), ``cd`` into the directory it names.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from venvkeeper.cli.main import build_parser
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.predict.changes import Change
from venvkeeper.predict.plan import make_plan
from venvkeeper.repair.rebuild import ensurepip_hint
from venvkeeper.repair.refusals import refusal as refusal_of
from venvkeeper.scan.inspect import inspect_venv

from conftest import find_python, run_cli

#: A directory name that a shell would split, expand or choke on if printed unquoted.
ODD = "my app's $HOME (v2) & more"


def shell_ok(command: str) -> list[str]:
    """*command* splits as a shell command line and bash accepts its syntax; its words."""
    words = shlex.split(command)
    assert words, command
    res = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
    assert res.returncode == 0, f"{command!r}: {res.stderr}"
    return words


def backticked(message: str) -> list[str]:
    """The commands a message shows in backticks."""
    assert message.count("`") % 2 == 0, message
    return re.findall(r"`([^`]*)`", message)


def run_harmless(words: list[str]) -> None:
    """``cd DIR && ...``: DIR exists; venvkeeper's commands parse (``scan`` runs)."""
    while "&&" in words:
        i = words.index("&&")
        head, words = words[:i], words[i + 1 :]
        if head[0] == "cd":
            assert len(head) == 2 and os.path.isdir(head[1]), head
    if words[0] == "venvkeeper":
        args = build_parser(words[1]).parse_args(words[1:])
        assert args.func is not None
        if words[1] == "scan":
            assert run_cli(*words[1:], "--json").code in (0, 1, 2)


def _venv(where: Path) -> Path:
    exe = find_python("3.12") or find_python("3.11")
    if exe is None:
        pytest.skip("no CPython 3.11 or 3.12")
    where.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(exe), "-m", "venv", "--without-pip", str(where)], check=True)
    link = where / "bin" / "python"
    link.unlink()
    link.symlink_to("/nonexistent/python3")  # broken: the plan names a repair
    return where


def _pipenv(root: Path) -> Path:
    project = root / ODD
    project.mkdir(parents=True)
    (project / "Pipfile").write_text("[packages]\n")
    v = _venv(root / "virtualenvs" / "app-AbCdEf12")
    (v / ".project").write_text(str(project))
    return v


def _poetry(root: Path) -> Path:
    (root / ODD).mkdir(parents=True)
    (root / ODD / "poetry.toml").write_text("")
    return _venv(root / ODD / ".venv")


def _pipx(root: Path) -> Path:
    v = _venv(root / ODD / "venvs" / "black")
    (v / "pipx_metadata.json").write_text(json.dumps({"main_package": {"package": "black"}}))
    return v


def _pipx_shared(root: Path) -> Path:
    _pipx(root)
    return _venv(root / ODD / "shared")


def _uv_tool(root: Path) -> Path:
    v = _venv(root / "uv" / "tools" / ODD)
    with open(v / "pyvenv.cfg", "a") as f:
        f.write("uv = 0.5.0\n")
    return v


#: A broken venv of each tool that has a command of its own, in a place needing quotes.
OWNED = {
    "pipx": _pipx,
    "pipx shared libraries": _pipx_shared,
    "pipenv": _pipenv,
    "poetry": _poetry,
    "tox": lambda root: _venv(root / ODD / ".tox" / "py 3"),
    "nox": lambda root: _venv(root / ODD / ".nox" / "tests"),
    "hatch": lambda root: _venv(root / "hatch" / "env" / "virtual" / ODD),
    "pdm": lambda root: _venv(root / "pdm" / "venvs" / ODD),
    "uv tool": lambda root: _uv_tool(root),
}


@pytest.mark.parametrize("tool", sorted(OWNED))
def test_tool_commands_and_refusals_are_runnable_as_printed(tmp_path: Path, tool: str) -> None:
    v = OWNED[tool](tmp_path)
    facts = inspect_venv(str(v))
    findings = (Finding("interpreter-dangling", Severity.CRITICAL, "broken"),)
    exe = find_python("3.12") or find_python("3.11")
    from venvkeeper.host.interpreters import Places, find_interpreters

    assert exe is not None
    interps = find_interpreters(Places((str(exe.parent),), ()))
    plan = make_plan(facts, findings, interps)
    assert plan.tool_command is not None, (tool, plan)
    run_harmless(shell_ok(plan.tool_command))
    refusal = refusal_of(plan, facts, force=False)
    assert refusal is not None
    quoted = backticked(refusal)
    assert quoted[0] == plan.tool_command, refusal
    for command in quoted:
        run_harmless(shell_ok(command))
    if plan.tool_note:  # what goes with the command is outside it, after the backticks
        assert f"`{plan.tool_command}` ({plan.tool_note})" in refusal


def test_the_not_a_venv_hint_scans_the_very_path(tmp_path: Path) -> None:
    odd = tmp_path / ODD
    odd.mkdir()
    res = run_cli("show", str(odd))
    assert res.code == 3
    (command,) = backticked(res.err)
    words = shell_ok(command)
    assert words == ["venvkeeper", "scan", str(odd)]
    run_harmless(words)


def test_the_ensurepip_hint_is_an_apt_command() -> None:
    (command,) = backticked(ensurepip_hint("3.13t"))
    assert shell_ok(command) == ["apt", "install", "python3.13-venv"]


def test_the_apt_hook_names_runnable_predict_commands(tmp_path: Path) -> None:
    from venvkeeper.apt.run import _predict_command

    odd = str(tmp_path / ODD)
    change = Change(python_becomes=((None, "3.12"),), remove=(odd,), remove_packages=("a b",))
    words = shell_ok(_predict_command(change))
    assert words[:2] == ["venvkeeper", "predict"] and f"--remove={odd}" in words
    run_harmless(words)


@pytest.mark.slow  # the printed `venvkeeper scan` names no root: it scans this whole host
def test_inventory_messages_name_a_runnable_scan(tmp_path: Path) -> None:
    res = run_cli("inventory", "--db", str(tmp_path / "none.sqlite"))
    for command in backticked(res.err):
        run_harmless(shell_ok(command))


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is needed for bash -n")
def test_bash_n_rejects_what_it_should() -> None:
    """The check itself can fail: a note inside the command is not a command line."""
    with pytest.raises(AssertionError):
        shell_ok("pipx reinstall-all  (pipx rebuilds its shared libraries venv)")
