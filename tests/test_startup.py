"""Each command imports only what it uses (issue: start-up). These tests look at which
modules a real run loads, in a fresh interpreter: never at timings (bench/startup.py
measures those)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_procs_synthetic import FakeProc, fake_venv

SRC = str(Path(__file__).resolve().parent.parent / "src")

#: The heavy machinery no short command needs.
REPAIR = ("venvkeeper.repair", "venvkeeper.predict")
SCAN = ("venvkeeper.scan.pipeline", "venvkeeper.scan.inspect", "venvkeeper.checks.registry")


def loaded(*argv: str) -> tuple[int, set[str]]:
    """Run ``venvkeeper ARGV`` as its console script does; the modules it loaded."""
    code = (
        "import json, sys\n"
        "from venvkeeper.cli import main\n"
        "out = open(__import__('os').devnull, 'w')\n"
        f"rc = main({list(argv)!r}, out=out, err=out)\n"
        "print(json.dumps([rc, sorted(sys.modules)]), file=sys.__stderr__)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = SRC
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    rc, modules = json.loads(res.stderr.strip().splitlines()[-1])
    return rc, set(modules)


def under(modules: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)}


def test_restarts_on_a_host_without_venv_processes_loads_no_scan(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path / "proc")
    proc.add(30, argv=("/usr/bin/python3", "x.py"))
    proc.add(31, comm="sleep", exe="/usr/bin/sleep", argv=("sleep", "60"))
    rc, modules = loaded("restarts", "--json", "--proc-root", str(proc.root))
    assert rc == 0
    assert not under(modules, REPAIR + SCAN + ("venvkeeper.inventory",))
    assert "venvkeeper.restarts.scan" in modules  # it did run


def test_restarts_judges_a_venv_process_with_the_scan(tmp_path: Path) -> None:
    """The scan is loaded when there is a venv to judge: it is skipped, not missing."""
    proc = FakeProc(tmp_path / "proc")
    venv = fake_venv(tmp_path)
    proc.add(30, argv=(f"{venv}/bin/python", "app.py"))
    _, modules = loaded("restarts", "--json", "--proc-root", str(proc.root))
    assert "venvkeeper.scan.pipeline" in modules
    assert not under(modules, REPAIR)


def test_show_and_check_load_no_repair_nor_prediction(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path)
    rc, modules = loaded("show", str(venv))
    assert "venvkeeper.scan.inspect" in modules and not under(modules, REPAIR)
    rc, modules = loaded("check", "--no-record", str(tmp_path))
    assert rc in (0, 1, 2) and not under(modules, REPAIR)
    assert "sqlite3" not in modules  # --no-record: the inventory is never opened


def test_building_the_parser_loads_no_library_stage() -> None:
    _, modules = loaded("--version")
    stages = ("scan", "checks", "predict", "repair", "restarts", "inventory", "apt", "host")
    assert not under(modules, tuple(f"venvkeeper.{s}" for s in stages))
    assert not {"dataclasses", "sqlite3", "subprocess", "concurrent.futures"} & modules
