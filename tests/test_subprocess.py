"""The one subprocess wrapper: timeouts kill the whole group, floods are cut, no shell."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from venvkeeper.errors import CommandError
from venvkeeper.host.command import run


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_output_and_exit_status() -> None:
    done = run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    with pytest.raises(CommandError, match="exited 3"):
        run(["sh", "-c", "echo boom >&2; exit 3"], timeout=30, check=True)


def test_input_is_fed() -> None:
    assert run(["cat"], timeout=30, input="hello").stdout == "hello"


def test_missing_program_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="cannot run /nonexistent"):
        run(["/nonexistent/prog"], timeout=30)


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    with pytest.raises(CommandError, match="did not finish within 1s"):
        run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], timeout=1)
    assert time.monotonic() - t0 < 10
    grandchild = int(pidfile.read_text())
    for _ in range(50):
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_a_flood_of_output_is_cut() -> None:
    with pytest.raises(CommandError, match="printed more than"):
        run(["sh", "-c", "yes venvkeeper"], timeout=30, output_limit=100_000)


def test_privileges_are_dropped_when_asked() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    done = run(["id", "-u"], timeout=30, user=65534, group=65534)
    assert done.stdout.strip() == "65534"
