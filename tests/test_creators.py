"""The creators a tool owns, wherever they live: real venvs laid out exactly as pipx,
pipenv, poetry and conda lay them out (their marker files written as the tools write them),
then ``scan --json``, ``plan --json`` and ``repair --dry-run --json``: the creator, the
tool's own command, and the refusal without ``--force``."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any, Optional

import pytest

from venvkeeper.model.venv import Creator
from venvkeeper.predict.plan import TOOL_COMMANDS

from conftest import run_cli, validate_json
from factory import SYSTEM_PYTHON, break_venv, make_venv, system_venv

# --- what the tools write ---------------------------------------------------------------


def pipx_metadata(package: str, python: str, suffix: str = "") -> str:
    """``pipx_metadata.json`` as pipx writes it (``PipxMetadata.write``: the dataclasses
    as dicts, ``indent=4, sort_keys=True``, paths as ``{"__type__": "Path", ...}``),
    metadata version 0.12."""

    def path(p: str) -> dict[str, str]:
        return {"__Path__": p, "__type__": "Path"}

    home = os.path.expanduser("~/.local/bin")
    main = {
        "package": package,
        "package_or_url": package,
        "pip_args": [],
        "include_dependencies": False,
        "include_apps": True,
        "apps": [package],
        "app_paths": [path(f"{home}/{package}")],
        "apps_of_dependencies": [],
        "app_paths_of_dependencies": {},
        "package_version": "24.2.0",
        "expected_apps": [],
        "lock_file": None,
        "include_resources_from": [],
        "cooldown_days": None,
        "man_pages": [],
        "man_paths": [],
        "man_pages_of_dependencies": [],
        "man_paths_of_dependencies": {},
        "completions": [],
        "completion_paths": [],
        "completions_of_dependencies": [],
        "completion_paths_of_dependencies": {},
        "suffix": suffix,
        "pinned": False,
    }
    doc = {
        "environment": None,
        "main_package": main,
        "python_version": "Python 3.11.2",
        "source_interpreter": path(python),
        "venv_args": [],
        "injected_packages": {},
        "backend": "pip",
        "exposure_enabled": True,
        "pipx_metadata_version": "0.12",
    }
    return json.dumps(doc, indent=4, sort_keys=True)


def pipx_venv(home: Path, package: str, suffix: str = "") -> Path:
    """An app venv of pipx under PIPX_HOME=*home*: ``venvs/NAME`` with its metadata."""
    v = system_venv(home / "venvs" / (package + suffix))
    (v / "pipx_metadata.json").write_text(pipx_metadata(package, "/usr/bin/python3", suffix))
    return v


# --- running venvkeeper -----------------------------------------------------------------


def scanned(path: Path) -> dict[str, Any]:
    res = run_cli("scan", "--json", str(path.parent))
    assert res.code in (0, 1, 2), res.err
    by_path = {v["path"]: v for v in validate_json("scan", res.out)["venvs"]}
    return by_path[str(path)]


def planned(path: Path) -> dict[str, Any]:
    res = run_cli("plan", "--json", str(path))
    assert res.code in (0, 1, 2), res.err
    (v,) = validate_json("plan", res.out)["venvs"]
    plan: dict[str, Any] = v["plan"]
    return plan


def dry_repair(path: Path, *extra: str) -> dict[str, Any]:
    res = run_cli("repair", "--dry-run", "--json", *extra, str(path))
    (r,) = validate_json("repair", res.out)["results"]
    result: dict[str, Any] = r
    return result


def check_owned(v: Path, creator: str, command: str, note: Optional[str] = None) -> None:
    """*v* is judged *creator*'s, planned for *command* (``{target}``: the plan's target
    Python) with *note* beside it, and refused without --force; the command in the
    refusal's backticks is the plan's, a shell command line as it is."""
    assert scanned(v)["creator"] == creator
    plan = planned(v)
    command = command.replace("{target}", shlex.quote(plan["target"]["path"]))
    assert (plan["strategy"], plan["tool_command"], plan["tool_note"]) == (
        "use-tool",
        command,
        note,
    )
    refused = dry_repair(v)
    assert refused["outcome"] == "refused", refused
    where = f" ({note})" if note else ""
    assert f"managed by {creator}: run `{command}`{where} instead" in refused["message"]
    quoted = refused["message"].split("`")[1]
    assert quoted == command and shlex.split(quoted)
    forced = dry_repair(v, "--force")
    assert forced["outcome"] == "planned", forced


# --- the command table ------------------------------------------------------------------


def test_every_creator_has_an_entry_in_the_tool_table() -> None:
    assert set(TOOL_COMMANDS) == set(Creator)


# --- pipx -------------------------------------------------------------------------------


def test_pipx_venv_under_a_custom_home_is_pipx(tmp_path: Path) -> None:
    home = tmp_path / "apps"  # PIPX_HOME=/.../apps: no "pipx" in the path
    v = pipx_venv(home, "black")
    break_venv(v)
    check_owned(
        v,
        "pipx",
        f"PIPX_HOME={shlex.quote(str(home))} pipx reinstall black --python {{target}}",
    )


def test_pipx_name_comes_from_the_metadata_with_its_suffix(tmp_path: Path) -> None:
    v = pipx_venv(tmp_path / "share" / "pipx", "black", suffix="@22")
    (v.parent / "black@22").rename(v.parent / "renamed")
    v = v.parent / "renamed"
    break_venv(v)
    plan = planned(v)
    assert plan["tool_command"] == f"pipx reinstall black@22 --python {plan['target']['path']}"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"main_package": {"package": "x; rm -rf /"}}',
        b'{"main_package": "black"}',
        b"[1, 2]",
        b"\xff\xfe",
    ],
)
def test_a_bad_pipx_metadata_file_is_not_pipx_metadata(tmp_path: Path, content: bytes) -> None:
    v = system_venv(tmp_path / "somewhere" / "app")
    (v / "pipx_metadata.json").write_bytes(content)
    break_venv(v)
    assert scanned(v)["creator"] == "venv"
    plan = planned(v)
    assert (plan["strategy"], plan["tool_command"]) == ("rebuild", None)


def test_pipx_shared_libraries_venv_names_reinstall_all(tmp_path: Path) -> None:
    home = tmp_path / "apps"
    pipx_venv(home, "black")
    shared = system_venv(home / "shared")
    break_venv(shared)
    check_owned(
        shared,
        "pipx",
        f"PIPX_HOME={shlex.quote(str(home))} pipx reinstall-all",
        "pipx rebuilds its shared libraries venv with the apps; it has no command for that"
        " venv alone",
    )


def test_pipx_shared_in_the_usual_home_needs_no_pipx_home(tmp_path: Path) -> None:
    shared = system_venv(tmp_path / ".local" / "share" / "pipx" / "shared")
    break_venv(shared)
    command = planned(shared)["tool_command"]
    assert command == "pipx reinstall-all"


def test_a_dir_named_shared_beside_plain_venvs_is_not_pipx(tmp_path: Path) -> None:
    system_venv(tmp_path / "venvs" / "one")
    shared = system_venv(tmp_path / "shared")
    assert scanned(shared)["creator"] == "venv"


# --- pipenv -----------------------------------------------------------------------------


def pipenv_venv(home: Path, project: Path, lock: bool = True) -> Path:
    """A pipenv venv as pipenv lays it out: WORKON_HOME/NAME-HASH (virtualenv-made), with
    ``.project`` naming the project directory, which holds the Pipfile (and its lock)."""
    project.mkdir(parents=True)
    (project / "Pipfile").write_text(
        '[packages]\nsix = "*"\n\n[requires]\npython_version = "3.11"\n'
    )
    if lock:
        (project / "Pipfile.lock").write_text('{"_meta": {}, "default": {}, "develop": {}}\n')
    v = make_venv(SYSTEM_PYTHON, home / f"{project.name}-azAIXmGA", creator="virtualenv")
    (v / ".project").write_text(str(project))  # pipenv writes the path, no newline
    return v


@pytest.mark.parametrize(("lock", "verb"), [(True, "sync"), (False, "install")])
def test_pipenv_venv_is_pipenv_with_its_project(tmp_path: Path, lock: bool, verb: str) -> None:
    project = tmp_path / "src" / "my project"
    v = pipenv_venv(tmp_path / ".local" / "share" / "virtualenvs", project, lock)
    break_venv(v)
    check_owned(
        v,
        "pipenv",
        f"cd {shlex.quote(str(project))} && pipenv --rm && pipenv {verb} --python {{target}}",
    )


def test_a_project_file_alone_is_not_pipenv(tmp_path: Path) -> None:
    """virtualenvwrapper writes .project too: without a Pipfile or pipenv's name, no."""
    (tmp_path / "proj").mkdir()
    v = system_venv(tmp_path / "envs" / "tools")
    (v / ".project").write_text(str(tmp_path / "proj"))
    assert scanned(v)["creator"] == "venv"


# --- poetry in-project ------------------------------------------------------------------

POETRY_PYPROJECT = """\
[tool.poetry]
name = "app"
version = "0.1.0"
description = ""
authors = ["A <a@example.org>"]

[tool.poetry.dependencies]
python = "^3.11"

[build-system]
requires = ["poetry-core"]
build-backend = "poetry.core.masonry.api"
"""


@pytest.mark.parametrize(
    "marker",
    [
        ("pyproject.toml", POETRY_PYPROJECT),
        ("poetry.toml", "[virtualenvs]\nin-project = true\n"),
    ],
)
def test_poetry_in_project_venv_is_poetry(tmp_path: Path, marker: tuple[str, str]) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / marker[0]).write_text(marker[1])
    v = make_venv(SYSTEM_PYTHON, project / ".venv", creator="virtualenv")
    break_venv(v)
    check_owned(
        v,
        "poetry",
        f"cd {shlex.quote(str(project))} && poetry env remove --all"
        " && poetry env use {target} && poetry install",
    )


def test_a_dot_venv_beside_another_pyproject_is_not_poetry(tmp_path: Path) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\n# [tool.poetry] is not here\n'
    )
    v = make_venv(SYSTEM_PYTHON, project / ".venv", creator="virtualenv")
    assert scanned(v)["creator"] == "virtualenv"


# --- conda ------------------------------------------------------------------------------


def conda_prefix(prefix: Path, record: str) -> Path:
    """A conda prefix as conda extracts python: bin/python3.11 and hard links to it
    (python, python3.1: conda's python package ships both names), conda-meta records."""
    real = Path("/usr/bin/python3.11")
    if not real.exists():
        pytest.skip("needs /usr/bin/python3.11")
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib" / "python3.11").mkdir(parents=True)
    (prefix / "lib" / "python3.11" / "os.py").write_text("")
    shutil.copy2(real, prefix / "bin" / "python3.11")
    for name in ("python", "python3.1"):
        os.link(prefix / "bin" / "python3.11", prefix / "bin" / name)
    (prefix / "bin" / "python3").symlink_to("python3.11")
    meta = prefix / "conda-meta"
    meta.mkdir()
    (meta / "history").write_text("==> 2024-01-01 00:00:00 <==\n")
    (meta / "python-dateutil-2.8.2-pyhd3eb1b0_0.json").write_text("{}")
    (meta / record).write_text(json.dumps({"name": "python", "version": record.split("-")[1]}))
    return prefix


@pytest.mark.parametrize(
    ("record", "version", "patch"),
    [
        ("python-3.11.7-h955ad1f_0.json", "3.11", "3.11.7"),
        ("python-3.13.1-h9ebbce0_100_cp313t.json", "3.13t", "3.13.1"),
    ],
)
def test_conda_python_version_comes_from_conda_meta(
    tmp_path: Path, record: str, version: str, patch: str
) -> None:
    prefix = conda_prefix(tmp_path / "miniconda3" / "envs" / "py", record)
    res = run_cli("show", "--json", str(prefix))
    doc = validate_json("show", res.out)["venv"]
    assert (doc["creator"], doc["python"]["now"], doc["python"]["patch"]) == (
        "conda",
        version,
        patch,
    )


# --- a bin/python that is no interpreter ------------------------------------------------


@pytest.mark.parametrize(("mode", "what"), [(0o644, "an empty file"), (0o755, "an empty file")])
def test_an_empty_bin_python_is_not_an_interpreter(tmp_path: Path, mode: int, what: str) -> None:
    v = system_venv(tmp_path / "v")
    (v / "bin" / "python").unlink()
    (v / "bin" / "python").write_bytes(b"")
    (v / "bin" / "python").chmod(mode)
    rep = scanned(v)
    codes = {f["code"]: f["message"] for f in rep["findings"]}
    assert "copied-interpreter" not in codes
    assert what in codes["interpreter-not-executable"]
    assert rep["status"] == "critical"
    assert planned(v)["strategy"] in ("relink", "rebuild")


def test_a_non_executable_bin_python_is_not_an_interpreter(tmp_path: Path) -> None:
    v = system_venv(tmp_path / "v")
    (v / "bin" / "python").unlink()
    shutil.copy2("/usr/bin/python3.11", v / "bin" / "python")
    (v / "bin" / "python").chmod(0o644)
    codes = {f["code"]: f["message"] for f in scanned(v)["findings"]}
    assert "without execute permission" in codes["interpreter-not-executable"]
    assert "copied-interpreter" not in codes
