"""uv-managed Pythons and uv's minor-version link directories.

uv installs each Python in a directory named by its patch version
(``cpython-3.12.1-linux-x86_64-gnu``) and keeps a link named by its minor version
(``cpython-3.12-linux-x86_64-gnu`` -> that directory) that it repoints at each patch
upgrade; venvs are linked through it, so they follow (uv's managed.rs,
``PythonMinorVersionLink``). ``uv python install`` cannot reach its download host here: the
installations are laid out by hand from pyenv's builds, as uv lays them out (the binary
copied, ``python3``/``python`` linked to it, the stdlib and headers linked; the minor link
absolute), and this uv (run for real) takes them for managed ones: ``uv venv`` links
through the minor link. A patch upgrade is simulated with the same build under a newer
patch name (its ``patchlevel.h`` says so).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import pyenv_root, run_cli, validate_json
from factory import clean_env, install, make_project, run_in_venv, sh, tool

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("quiet_installers")]

PLATFORM = "linux-x86_64-gnu"


def uv_install(pythons: Path, minor: str, patch: str) -> Path:
    """pyenv's CPython *minor* laid out as uv installs ``cpython-PATCH-PLATFORM``, and the
    minor link pointed at it. Returns the installation directory."""
    r = pyenv_root()
    found = sorted((r / "versions").glob(f"{minor}.*/bin/python{minor}")) if r else []
    if not found:
        pytest.skip(f"pyenv CPython {minor} is needed")
    prefix = found[-1].parent.parent
    inst = pythons / f"cpython-{patch}-{PLATFORM}"
    (inst / "bin").mkdir(parents=True)
    shutil.copy2(found[-1], inst / "bin" / f"python{minor}")
    for name in ("python3", "python"):
        (inst / "bin" / name).symlink_to(f"python{minor}")
    (inst / "lib").mkdir()
    (inst / "lib" / f"python{minor}").symlink_to(prefix / "lib" / f"python{minor}")
    inc = inst / "include" / f"python{minor}"
    inc.mkdir(parents=True)
    level = (prefix / "include" / f"python{minor}" / "patchlevel.h").read_text()
    real = next(p.name for p in [prefix] if p.name.startswith(minor))
    (inc / "patchlevel.h").write_text(level.replace(f'"{real}', f'"{patch}'))
    link = pythons / f"cpython-{minor}-{PLATFORM}"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(inst)  # absolute, as uv's replace_symlink makes it
    for name, text in ((".gitignore", "*"), (".lock", "")):
        if not (pythons / name).exists():
            (pythons / name).write_text(text)
    return inst


def _venv(doc: dict, path: Path) -> dict:  # type: ignore[type-arg]
    (v,) = [v for v in doc["venvs"] if v["path"] == str(path)]
    return v


def test_venvs_follow_uv_minor_links_and_are_repaired_onto_them(tmp_path: Path) -> None:
    pythons = tmp_path / "uv" / "python"
    old = uv_install(pythons, "3.12", "3.12.1")
    minor_dir = pythons / f"cpython-3.12-{PLATFORM}"
    env = clean_env(UV_PYTHON_INSTALL_DIR=str(pythons))
    envs = tmp_path / "envs"
    # uv's own venv: through the minor link. A stdlib venv of the patch directory's
    # python: pinned to that patch (as uv before its minor links made them too).
    sh(tool("uv"), "venv", "-q", "-p", "3.12", "--python-preference", "only-managed",
       envs / "follows", env=env)  # fmt: skip
    sh(old / "bin" / "python3.12", "-m", "venv", "--without-pip", envs / "pinned")
    follows, pinned = envs / "follows", envs / "pinned"
    assert os.readlink(follows / "bin" / "python") == f"{minor_dir}/bin/python3.12"
    alpha = make_project(tmp_path, "alpha")
    for v in (follows, pinned):
        install(v, alpha)
    doc = validate_json("scan", run_cli("scan", "--json", str(envs)).out)
    assert {v["status"] for v in doc["venvs"]} <= {"ok", "warning", "info"}

    # uv python upgrade 3.12: a new patch, the minor link repointed, the old one removed.
    uv_install(pythons, "3.12", "3.12.9")
    shutil.rmtree(old)
    assert run_in_venv(follows, "import alpha").returncode == 0
    assert run_in_venv(pinned, "import alpha").returncode != 0
    doc = validate_json("scan", run_cli("scan", "--json", str(envs)).out)
    f, p = _venv(doc, follows), _venv(doc, pinned)
    assert f["status"] != "critical" and f["python"]["patch"] == "3.12.9"
    assert "interpreter-dangling" in {x["code"] for x in p["findings"]}

    # The pinned venv is relinked to the minor link, never to the patch directory.
    (plan,) = validate_json("plan", run_cli("plan", "--json", str(pinned)).out)["venvs"]
    target = f"{minor_dir}/bin/python3.12"
    assert (plan["plan"]["strategy"], plan["plan"]["target"]["path"]) == ("relink", target), plan[
        "plan"
    ]
    (r,) = validate_json("repair", run_cli("repair", "--json", str(pinned)).out)["results"]
    assert r["outcome"] == "repaired", r
    assert os.readlink(pinned / "bin" / "python") == target
    assert run_in_venv(pinned, "import alpha").returncode == 0
    cfg = (pinned / "pyvenv.cfg").read_text()
    assert f"home = {minor_dir}/bin" in cfg

    # A rebuild onto another minor named by its patch directory: onto its minor link.
    new = uv_install(pythons, "3.13", "3.13.0")
    res = run_cli(
        "repair", "--json", "--offline", "--python", str(new / "bin" / "python3.13"),
        str(follows),
    )  # fmt: skip
    (r,) = validate_json("repair", res.out)["results"]
    assert r["outcome"] == "repaired", r
    want = f"{pythons}/cpython-3.13-{PLATFORM}/bin/python3.13"
    assert os.path.realpath(follows / "bin" / "python") == str(new / "bin" / "python3.13")
    hop = follows / "bin" / "python"
    while str(hop).startswith(str(follows)):  # the first hop out of the venv
        hop = hop.parent / os.readlink(hop)
    assert str(hop) == want
    ran = run_in_venv(follows, "import alpha, sys; print(sys.version_info[:2])")
    assert ran.returncode == 0 and ran.stdout.strip() == "(3, 13)", ran
    assert str(new) not in (follows / "pyvenv.cfg").read_text()
