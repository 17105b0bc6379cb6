"""The shipped systemd units: they parse, hold what they must, the timer starts the service,
every ExecStart is a venvkeeper command line its parser accepts, and systemd itself
(``systemd-analyze verify``, when installed) has nothing to say about them."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from venvkeeper.cli import build_parser

UNITS = Path(__file__).parent.parent / "contrib" / "systemd"
EXE = "/usr/local/bin/venvkeeper"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's INI dialect: repeated keys accumulate, ``#``/``;`` comments, no continuation
    lines in our files (asserted)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"line {n}: continuation lines are not used"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"line {n}: {raw!r}"
        key, value = (s.strip() for s in line.split("=", 1))
        current.setdefault(key, []).append(value)
    return sections


def service() -> dict[str, dict[str, list[str]]]:
    return parse_unit((UNITS / "venvkeeper.service").read_text())


def timer() -> dict[str, dict[str, list[str]]]:
    return parse_unit((UNITS / "venvkeeper.timer").read_text())


def test_service_is_a_hardened_oneshot() -> None:
    s = service()["Service"]
    assert s["Type"] == ["oneshot"]
    assert s["SuccessExitStatus"] == ["1 2"]  # warnings and criticals are verdicts
    assert s["ProtectSystem"] == ["strict"]
    assert s["NoNewPrivileges"] == ["true"]
    # the host's /tmp stays visible (venvs there are scanned); temporary files go to the
    # unit's own runtime directory, the one place besides the state it may write
    assert "PrivateTmp" not in s
    assert s["RuntimeDirectory"] == ["venvkeeper"] and s["Environment"] == [
        "TMPDIR=/run/venvkeeper"
    ]
    assert "/var/lib/venvkeeper" in s["ReadWritePaths"][0].split()
    assert "-/var/lib/node_exporter/textfile_collector" in s["ReadWritePaths"][0].split()
    assert s["Nice"] == ["19"] and s["IOSchedulingClass"] == ["idle"]
    # idle CPU priority, and a run that hangs (or never gets its turn) is ended
    assert s["CPUSchedulingPolicy"] == ["idle"] and s["TimeoutStartSec"] == ["2h"]
    assert s["ProtectHome"] == ["read-only"]  # the scan must read home directories


def test_every_exec_start_is_a_venvkeeper_command_line() -> None:
    lines = service()["Service"]["ExecStart"]
    argvs = [shlex.split(ln) for ln in lines]
    assert [a[0] for a in argvs] == [EXE, EXE]
    assert argvs[0][1:] == ["scan", "--quiet"]
    assert argvs[1][1:] == [
        "export",
        "--prometheus",
        "/var/lib/node_exporter/textfile_collector/venvkeeper.prom",
        "--from-inventory",
    ]
    parser = build_parser()
    args = parser.parse_args(argvs[0][1:])
    assert args.command == "scan" and args.quiet
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None
    if "export" not in commands:
        pytest.skip("venvkeeper export (the inventory's) is not on this branch yet")
    args = parser.parse_args(argvs[1][1:])
    assert args.command == "export"


def test_timer_is_daily_persistent_and_names_the_service() -> None:
    t = timer()
    assert t["Timer"]["OnCalendar"] == ["daily"]
    assert t["Timer"]["Persistent"] == ["true"]
    assert t["Timer"]["RandomizedDelaySec"]
    assert t["Timer"]["Unit"] == ["venvkeeper.service"]
    assert (UNITS / t["Timer"]["Unit"][0]).is_file()
    assert t["Install"]["WantedBy"] == ["timers.target"]


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    exe = Path(sys.executable).parent / "venvkeeper"
    if not exe.exists():
        pytest.skip("no venvkeeper console script beside this Python")
    for name in ("venvkeeper.service", "venvkeeper.timer"):
        text = (UNITS / name).read_text().replace(EXE, str(exe))  # verify wants a real binary
        (tmp_path / name).write_text(text)
    res = subprocess.run(
        [
            analyze,
            "verify",
            str(tmp_path / "venvkeeper.timer"),
            str(tmp_path / "venvkeeper.service"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    ours = [ln for ln in res.stderr.splitlines() if "venvkeeper" in ln]
    assert ours == [], ours  # unknown keys only warn: none may be reported
