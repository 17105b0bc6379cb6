"""Which systemd unit a process runs in, from its ``/proc/PID/cgroup`` (v1 or v2).

The parser ``restarts`` uses for each process, and :func:`running_units`, which the
consumers stage uses to tell which units run now: both read ``/proc`` only (its root is a
parameter), bounded, and never follow a process's own links.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional

from venvkeeper.host import fsutil

_UNIT = re.compile(r".+\.(service|socket|mount|swap|timer|path|target)")
_USER_MANAGER = re.compile(r"user@(\d+)\.service")


def parse_cgroup(text: str) -> tuple[Optional[str], bool, Optional[str]]:
    """(unit, is a user unit, session scope) from ``/proc/PID/cgroup``, v1 or v2."""
    path = cgroup_path(text)
    if not path:
        return None, False, None
    comps = [c for c in path.split("/") if c]
    user = any(_USER_MANAGER.fullmatch(c) for c in comps)
    for c in reversed(comps):
        if c.endswith(".scope"):
            return None, user, c
        if _UNIT.fullmatch(c) and not _USER_MANAGER.fullmatch(c):
            return c, user, None
        if _USER_MANAGER.fullmatch(c):
            return None, True, None
    return None, False, None


def cgroup_path(text: str) -> Optional[str]:
    """The systemd hierarchy's path of ``/proc/PID/cgroup`` (v1 ``name=systemd`` or the
    unified ``0::``), or None."""
    path = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if "name=systemd" in parts[1].split(","):
            return parts[2]
        if parts[0] == "0" and parts[1] == "":
            path = parts[2]
    return path


@dataclass(frozen=True)
class RunningUnits:
    """The units that have a process now: the system manager's, and each user
    manager's by uid."""

    system: frozenset[str] = frozenset()
    user: frozenset[tuple[int, str]] = frozenset()
    known: bool = False  # False: /proc could not be read: nothing is known to run

    def runs(self, unit: str, uid: Optional[int] = None) -> Optional[bool]:
        if not self.known:
            return None
        if uid is None:
            return unit in self.system
        return (uid, unit) in self.user


def running_units(proc: str = "/proc") -> RunningUnits:
    """Every unit with a process in *proc* (an empty, unknown answer when *proc* cannot
    be listed)."""
    try:
        with os.scandir(proc) as it:
            pids = [e.name for e in it if e.name.isdigit()]
    except OSError:
        return RunningUnits()
    system: set[str] = set()
    user: set[tuple[int, str]] = set()
    for pid in pids:
        try:
            text = fsutil.read_open(f"{proc}/{pid}/cgroup", 64 << 10)[0].decode(
                "utf-8", "surrogateescape"
            )
        except OSError:
            continue
        path = cgroup_path(text)
        if not path:
            continue
        uid: Optional[int] = None
        unit: Optional[str] = None
        for c in path.split("/"):
            m = _USER_MANAGER.fullmatch(c)
            if m:
                uid = int(m.group(1))
            elif _UNIT.fullmatch(c) and not c.endswith(".slice"):
                unit = c
        if unit is None:
            continue
        if uid is None:
            system.add(unit)
        else:
            user.add((uid, unit))
            system.add(f"user@{uid}.service")
    return RunningUnits(frozenset(system), frozenset(user), True)
