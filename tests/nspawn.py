"""Boot a real Debian root with ``systemd-nspawn``: real systemd, cron, user managers.

Built on :mod:`debroot`'s cached roots (a tarball per package set, debootstrapped once): a
test asks for a root with the packages it needs (:func:`systemd_root`, :data:`SYSTEMD`
plus any more), puts its fixture files in, and :func:`boot` boots it once with a *report*
script. The script runs as a oneshot unit after ``multi-user.target`` (so enabled units,
timers, cron and user managers with linger are up), writes what it found to standard
output, and the unit powers the container off when it ends, whatever the script's status.
:func:`boot` returns that output, the boot's console and the exit status.

    root = nspawn.systemd_root(tmp_path / "root")
    (root / "etc/systemd/system/app.service").write_text(...)
    result = nspawn.boot(root, "#!/bin/sh\\nbusctl --json=short get-property ...\\n")
    result.output  # what the script printed

The boot is ``systemd-nspawn -q --register=no --keep-unit -D ROOT --console=pipe -b``:
``--register=no --keep-unit`` let it boot on a host whose PID 1 is not systemd and that has
no system bus. nspawn leaves ``/run/systemd/nspawn`` behind (empty): :func:`boot` removes
what is empty of it. The host needs ``systemd-container`` (``apt-get install
systemd-container``) and root; without them the test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import debroot

#: What a booted root needs: systemd as PID 1, the bus (busctl, systemctl show), cron, and
#: user managers (linger) with their own bus.
SYSTEMD = (
    *debroot.PACKAGES,
    "systemd",
    "systemd-sysv",
    "dbus",
    "cron",
    "libpam-systemd",
    "dbus-user-session",
)
#: The servers and tools the consumers end-to-end test runs apps under: Apache with
#: mod_wsgi, uWSGI (Debian's init script and apps-enabled) with its python3 plugin,
#: supervisor, pipx.
SERVERS = (
    "apache2",
    "libapache2-mod-wsgi-py3",
    "uwsgi",
    "uwsgi-plugin-python3",
    "supervisor",
    "pipx",
)
REPORT_UNIT = "venvkeeper-report.service"
REPORT_SCRIPT = "/usr/local/sbin/venvkeeper-report"
REPORT_OUT = "/root/venvkeeper-report.out"
NSPAWN_RUN = Path("/run/systemd/nspawn")

_UNIT = f"""\
[Unit]
Description=venvkeeper test report (runs the probes, then powers off)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c '{REPORT_SCRIPT} > {REPORT_OUT} 2>&1'
ExecStopPost=/bin/systemctl --no-block poweroff
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
"""


def require_nspawn() -> None:
    """Skip unless this process may build and boot a root."""
    debroot.require_root_tools()
    if shutil.which("systemd-nspawn") is None:
        pytest.skip("systemd-nspawn is not installed (apt-get install systemd-container)")


def systemd_root(dest: Path, extra: Sequence[str] = ()) -> Path:
    """A bookworm root at *dest* with :data:`SYSTEMD` and *extra* packages installed
    (a tarball of its own per package set, cached by :mod:`debroot`)."""
    require_nspawn()
    return debroot.bookworm_root(dest, (*SYSTEMD, *extra))


@dataclass(frozen=True)
class Boot:
    """One boot: the report script's output, the console, nspawn's status and time."""

    output: str
    console: str
    returncode: int
    seconds: float


def boot(root: Path, script: str, *, timeout: float = 300, private_network: bool = False) -> Boot:
    """Boot *root* once; the report *script* (its text, with its ``#!`` line) runs after
    ``multi-user.target`` and what it prints is :attr:`Boot.output`. The report unit and
    script are removed again afterwards, so a root can be booted many times. With
    *private_network* the container has its own loopback only (servers it runs listen
    there, never on the host's ports)."""
    require_nspawn()
    script_path = root / REPORT_SCRIPT.lstrip("/")
    unit = root / "etc/systemd/system" / REPORT_UNIT
    wants = root / "etc/systemd/system/multi-user.target.wants" / REPORT_UNIT
    out = root / REPORT_OUT.lstrip("/")
    script_path.parent.mkdir(parents=True, exist_ok=True)
    script_path.write_text(script)
    script_path.chmod(0o755)
    unit.write_text(_UNIT)
    wants.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        wants.unlink()
    wants.symlink_to(f"/etc/systemd/system/{REPORT_UNIT}")
    with contextlib.suppress(FileNotFoundError):
        out.unlink()
    t0 = time.monotonic()
    argv = ["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", str(root)]
    argv += ["--console=pipe", *(["--private-network"] if private_network else []), "-b"]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    try:
        try:
            console, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            console = _stop(proc)
            raise RuntimeError(f"booting {root} took over {timeout}s:\n{console[-4000:]}") from None
        except BaseException:  # an interrupt: the container must not outlive the test
            _stop(proc)
            raise
        code = proc.returncode
    finally:
        seconds = time.monotonic() - t0
        _clean_run(root)
        for p in (wants, unit, script_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    output = out.read_text(errors="replace") if out.exists() else ""
    with contextlib.suppress(FileNotFoundError):
        out.unlink()
    if not output and code != 0:
        raise RuntimeError(f"booting {root} failed ({code}):\n{console[-4000:]}")
    return Boot(output, console, code, seconds)


def _children(pid: int) -> list[int]:
    """The processes whose parent is *pid* (the container's init, for nspawn)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (d / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
    return out


def _stop(proc: subprocess.Popen[str]) -> str:
    """A boot that overran: nspawn asked to shut the container down (SIGTERM), then the
    container's init and nspawn killed, so that nothing of it outlives the test."""
    inits = _children(proc.pid)
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        for pid in [*inits, proc.pid]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out or ""


def _clean_run(root: Path) -> None:
    """nspawn leaves ``/run/systemd/nspawn/{propagate/NAME,locks}`` behind: remove the
    empty directories it left (another boot running now keeps its own)."""
    for d in (NSPAWN_RUN / "propagate" / root.name, NSPAWN_RUN / "propagate", NSPAWN_RUN / "locks"):
        with contextlib.suppress(OSError):
            d.rmdir()
    with contextlib.suppress(OSError):
        NSPAWN_RUN.rmdir()


def run_in(root: Path, argv: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """*argv* in *root* as a chroot (not booted): :func:`debroot.chroot_run`."""
    return debroot.chroot_run(root, argv, **kw)  # type: ignore[arg-type]


def uid_of(root: Path, user: str) -> int:
    """The uid of *user* in *root*'s ``/etc/passwd``."""
    for line in (root / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return int(parts[2])
    raise KeyError(user)


def add_user(root: Path, user: str, *, linger: bool = False) -> int:
    """A user with a home in *root* (``useradd -m``), lingering when asked; its uid."""
    run_in(root, ["useradd", "-m", "-s", "/bin/sh", user])
    if linger:
        d = root / "var/lib/systemd/linger"
        d.mkdir(parents=True, exist_ok=True)
        (d / user).touch()
    return uid_of(root, user)


__all__ = ["SYSTEMD", "Boot", "add_user", "boot", "require_nspawn", "systemd_root"]
