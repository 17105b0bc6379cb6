"""Shared fixtures: the machine's interpreters, an unprivileged user, and a CLI runner."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import settings

from venvkeeper.cli import main

# Property tests check behaviour, not speed: no per-example deadline that a loaded CI
# machine could trip over.
settings.register_profile("venvkeeper", deadline=None, print_blob=True)
settings.load_profile("venvkeeper")

TEST_USER = "vk-test"


def pyenv_root() -> Optional[Path]:
    env = os.environ.get("PYENV_ROOT")
    for cand in (env, os.path.expanduser("~/.pyenv")):
        if cand and Path(cand, "versions").is_dir():
            return Path(cand)
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and Path(out.stdout.strip(), "versions").is_dir():
                return Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return None


def find_python(minor: str) -> Optional[Path]:
    """A real CPython X.Y binary: pyenv's first, then PATH. None when the machine lacks it."""
    root = pyenv_root()
    if root is not None:
        for d in sorted((root / "versions").glob(f"{minor}.*"), reverse=True):
            exe = d / "bin" / f"python{minor}"
            if exe.is_file() and os.access(exe, os.X_OK) and not exe.is_symlink():
                return exe
            if exe.is_file():
                return exe
    found = shutil.which(f"python{minor}")
    return Path(os.path.realpath(found)) if found else None


def require_python(minor: str) -> Path:
    exe = find_python(minor)
    if exe is None:
        pytest.skip(f"CPython {minor} is not installed on this machine (pyenv or PATH)")
    return exe


@pytest.fixture(autouse=True)
def _private_inventory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scans record into an inventory by default: each test gets its own (outside its
    tmp_path, which tests scan), never the host's."""
    db = tmp_path_factory.mktemp("inventory") / "inventory.db"
    monkeypatch.setenv("VENVKEEPER_DB", str(db))


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


@pytest.fixture(scope="session")
def unprivileged_user() -> User:
    """A real unprivileged account for permission tests (created when we run as root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create and switch to an unprivileged user")
    try:
        pw = pwd.getpwnam(TEST_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        res = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if res.returncode != 0 and "already exists" not in res.stderr:
            pytest.skip(f"cannot create user {TEST_USER}: {res.stderr.strip()}")
        pw = pwd.getpwnam(TEST_USER)
    return User(pw.pw_name, pw.pw_uid, pw.pw_gid)


@pytest.fixture(autouse=True)
def _no_host_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tests never read this machine's /etc/venvkeeper or ~/.config/venvkeeper: a test that
    wants a configuration writes its own and names it."""
    from venvkeeper import config

    nowhere = tmp_path_factory.getbasetemp() / "no-config"
    monkeypatch.setattr(config, "SYSTEM_CONFIG", str(nowhere / "etc" / "config.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(nowhere / "xdg"))
    monkeypatch.delenv(config.ENV_VAR, raising=False)


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> Result:
    """Run ``venvkeeper ARGS`` in-process, capturing its output."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())
