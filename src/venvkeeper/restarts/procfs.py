"""``/proc`` parsing: ``stat``, ``cgroup`` and ``maps``, read bounded, never following a
process's own links.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Optional

from venvkeeper.errors import VenvkeeperError
from venvkeeper.host import fsutil
from venvkeeper.host.cgroups import parse_cgroup

__all__ = [
    "DELETED",
    "MAPS_LIMIT",
    "PF_KTHREAD",
    "MappedFile",
    "Stat",
    "parse_cgroup",
    "parse_maps",
    "parse_stat",
]

PF_KTHREAD = 0x00200000


DELETED = " (deleted)"


SMALL = 64 << 10


MAPS_LIMIT = 8 << 20


def read_proc(path: str, limit: int = SMALL) -> bytes:
    """At most *limit* bytes of a /proc file (its size reads as 0); raises OSError."""
    return fsutil.read_open(path, limit)[0]


def read_link(path: str) -> Optional[str]:
    try:
        return os.readlink(path)
    except (OSError, ValueError):
        return None


def dir_id(path: str) -> Optional[tuple[int, int]]:
    """(device, inode) of a directory (``/proc/PID/root`` is followed), None if unknown."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


@dataclass(frozen=True)
class Stat:
    """The fields of ``/proc/PID/stat`` that tell a process's state and start."""

    comm: str
    state: str
    ppid: int
    flags: int
    starttime: int  # clock ticks since boot


def parse_stat(data: bytes) -> Stat:
    """``/proc/PID/stat``: the command name sits in parentheses and may hold anything,
    including spaces and parentheses, so the fields are counted after the *last* ``)``."""
    text = data.decode("utf-8", "surrogateescape")
    left, right = text.find("("), text.rfind(")")
    if left < 0 or right < left:
        raise ValueError("no (comm) in stat")
    rest = text[right + 1 :].split()
    if len(rest) < 20:
        raise ValueError("short stat")
    return Stat(text[left + 1 : right], rest[0], int(rest[1]), int(rest[6]), int(rest[19]))


@dataclass(frozen=True)
class MappedFile:
    """A file mapped into a process (from ``/proc/PID/maps``)."""

    path: str
    deleted: bool
    inode: int


def parse_maps(data: bytes) -> list[MappedFile]:
    """The mappings of ``/proc/PID/maps`` that matter here, one per path: replaced or
    deleted files, and files under a site-packages."""
    out: dict[str, MappedFile] = {}
    if b"(deleted)" not in data and b"/site-packages/" not in data:
        return []  # the common case, decided at C speed
    for raw in data.split(b"\n"):
        # Only replaced files and site-packages matter: skip the rest before splitting.
        if b"(deleted)" not in raw and b"/site-packages/" not in raw:
            continue
        fields = raw.split(None, 5)
        if len(fields) < 6 or not fields[5].startswith(b"/"):
            continue
        path = fields[5].decode("utf-8", "surrogateescape")
        deleted = path.endswith(DELETED)
        if deleted:
            path = path[: -len(DELETED)]
        try:
            inode = int(fields[4])
        except ValueError:
            continue
        if path not in out or deleted:
            out[path] = MappedFile(path, deleted, inode)
    return list(out.values())


def boot_time(proc: str) -> float:
    """When the system booted, to turn start ticks into times. ``/proc/uptime`` has 10 ms
    precision; ``btime`` in ``/proc/stat`` only whole seconds (the fallback)."""
    try:
        uptime = float(read_proc(f"{proc}/uptime", 256).split()[0])
        return time.time() - uptime
    except (OSError, ValueError, IndexError):
        pass
    try:
        for line in read_proc(f"{proc}/stat", 1 << 20).decode("ascii", "replace").splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    raise VenvkeeperError(f"cannot read the boot time from {proc}/stat: is {proc} a procfs?")


def pids(proc: str) -> Iterator[str]:
    try:
        with os.scandir(proc) as it:
            names = [e.name for e in it if e.name.isdigit()]
    except OSError as e:
        raise VenvkeeperError(f"cannot list {proc}: {e.strerror}") from e
    yield from sorted(names, key=int)
