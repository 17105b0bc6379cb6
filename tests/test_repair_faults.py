"""Fault injection: a real rebuild killed (SIGKILL) or failed at every step of its
transaction, a SIGTERM in the middle of an install, a failing install. After each, the
venv at its path is the untouched original (compared by a tree hash) or the complete new
one, no file of the original is lost, and the next run converges."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from venvkeeper.repair import STEPS

from conftest import run_cli, validate_json
from factory import (
    MODULES,
    World,
    build_world,
    clean_env,
    freeze,
    imports_ok,
    tree_hash,
    without_seeds,
)

pytestmark = pytest.mark.slow

DRIVER = r"""
import os, signal, sys
from venvkeeper.repair import RepairOptions, Sources, repair_venv
path, step, mode = sys.argv[1:4]
def hook(s):
    if s == step:
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(5, "injected failure at " + s)
opts = RepairOptions(sources=Sources(None, tuple(sys.argv[4:]), True))
r = repair_venv(path, opts, hook=hook)
print(r.outcome.value + ": " + r.message)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    # a uv venv: no pip to reseed, so each of the many rebuilds here is quick
    w = build_world(tmp_path_factory.mktemp("faults"), "3.10", "3.12", creators=("uv",))
    template = w.venvs["uv"]
    shutil.move(str(template), str(w.root / "template"))
    return w


def _sources(w: World) -> list[str]:
    return [str(w.wheelhouse), str(w.bundled)]


def _fresh(w: World, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    d = w.root / name
    d.mkdir()
    v = d / "venv"
    subprocess.run(["cp", "-a", str(w.root / "template"), str(v)], check=True)
    return v


def _drive(v: Path, step: str, mode: str, w: World) -> subprocess.CompletedProcess[str]:
    env = clean_env(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1", PATH=os.environ["PATH"])
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(v), step, mode, *_sources(w)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _siblings(v: Path) -> list[str]:
    return sorted(p.name for p in v.parent.iterdir() if p.name != v.name)


def _works(v: Path, w: World) -> bool:
    same = without_seeds(freeze(v)) == without_seeds(w.before["uv"])
    return imports_ok(v, *MODULES, hide=w.distro.hidden) and same


def _original_somewhere(v: Path, original: dict[str, tuple[object, ...]]) -> bool:
    return any(tree_hash(p) == original for p in v.parent.iterdir() if p.is_dir())


KILL_STEPS = [s for s in STEPS if s != "committed"]


@pytest.mark.parametrize("step", KILL_STEPS)
def test_sigkill_at_each_step_loses_nothing_and_the_next_run_converges(
    world: World, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = _fresh(world, f"kill-{step}", monkeypatch)
    original = tree_hash(v)
    done = _drive(v, step, "kill", world)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    # at once: the path holds the original or the complete new venv; nothing is lost
    assert tree_hash(v) == original or _works(v, world)
    assert _original_somewhere(v, original)
    # the next run settles the journal and finishes the work
    res = run_cli(
        "repair", "--json", "--offline", *[f"--find-links={s}" for s in _sources(world)], str(v)
    )
    assert res.code == 0, res.out + res.err
    (r,) = validate_json("repair", res.out)["results"]
    assert r["recovered"], r  # it saw and settled the interrupted run
    assert _works(v, world)
    left = _siblings(v)
    assert not [n for n in left if "venvkeeper-new" in n or n.endswith(("-journal", "-lock"))], left
    backups = [v.parent / n for n in left if n.endswith(tuple("0123456789"))]
    assert any(tree_hash(b) == original for b in backups), left


FAIL_STEPS = [s for s in STEPS if s != "committed"]


@pytest.mark.parametrize("step", FAIL_STEPS)
def test_a_failure_at_each_step_puts_the_original_back(
    world: World, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = _fresh(world, f"fail-{step}", monkeypatch)
    original = tree_hash(v)
    done = _drive(v, step, "fail", world)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("failed: "), done.stdout
    assert f"injected failure at {step}" in done.stdout
    assert tree_hash(v) == original
    assert _siblings(v) == []  # no build, no backup, no journal, no lock left behind
    res = run_cli("repair", "--offline", *[f"--find-links={s}" for s in _sources(world)], str(v))
    assert res.code == 0, res.out
    assert _works(v, world)


def test_sigterm_during_the_install_restores_the_original(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = _fresh(world, "sigterm", monkeypatch)
    original = tree_hash(v)
    env = clean_env(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1", PATH=os.environ["PATH"])
    exe = Path(sys.executable).parent / "venvkeeper"
    argv = [str(exe), "repair", "--offline", *[f"--find-links={s}" for s in _sources(world)]]
    proc = subprocess.Popen(
        [*argv, str(v)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    # the moment the new venv has an interpreter, packages are being installed
    while time.monotonic() < deadline:
        if list(v.parent.glob(".venv.venvkeeper-new-*/bin/python")):
            break
        time.sleep(0.005)
    else:
        pytest.fail("the repair never started building")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert tree_hash(v) == original
    assert _siblings(v) == []


def test_a_failing_install_leaves_the_original_and_says_which_pin(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = _fresh(world, "install", monkeypatch)
    original = tree_hash(v)
    res = run_cli("repair", "--json", "--offline", str(v))  # no wheelhouse: delta is nowhere
    assert res.code == 2
    (r,) = validate_json("repair", res.out)["results"]
    assert r["outcome"] == "failed"
    failed = {p["spec"] for p in r["failed_pins"]}
    # delta exists nowhere offline (setuptools may or may not sit in the uv cache);
    # the local sources (alpha, beta, gamma) are not blamed
    assert "delta==2.5" in failed
    assert all("==" in spec and "@" not in spec for spec in failed), failed
    assert tree_hash(v) == original
    assert _siblings(v) == []
