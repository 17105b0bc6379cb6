"""A small OS root for consumer tests: files, links and real venvs under one directory,
read by :func:`venvkeeper.consumers.read_consumers` as that system's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from venvkeeper.consumers import read_consumers
from venvkeeper.model.consumers import Consumer, ConsumerScan

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    "alice:x:1000:1000::/home/alice:/bin/sh\n"
)


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.write("/etc/passwd", PASSWD)
        self.write("/etc/group", "root:x:0:\nwww-data:x:33:\nalice:x:1000:\n")

    def p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def host(self, path: str) -> str:
        return str(self.p(path))

    def write(self, path: str, text: str, mode: int = 0o644) -> Path:
        f = self.p(path)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        f.chmod(mode)
        return f

    def link(self, path: str, target: str) -> Path:
        f = self.p(path)
        f.parent.mkdir(parents=True, exist_ok=True)
        if f.is_symlink() or f.exists():
            f.unlink()
        f.symlink_to(target)
        return f

    def venv(self, path: str, python: Optional[str] = None) -> Path:
        """A real venv (no pip) at *path* inside the root."""
        dest = self.p(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [python or sys.executable, "-m", "venv", "--without-pip", str(dest)],
            check=True,
            capture_output=True,
        )
        return dest

    def script(self, path: str, shebang: str, body: str = "print('hi')\n") -> Path:
        return self.write(path, f"#!{shebang}\n{body}", 0o755)

    def read(self, proc: Optional[str] = None) -> ConsumerScan:
        return read_consumers(str(self.root), proc)

    def consumers(self, proc: Optional[str] = None) -> dict[str, Consumer]:
        return {c.name: c for c in self.read(proc).consumers}

    def fake_proc(self, units: dict[int, str]) -> str:
        """A /proc with one process per pid and cgroup path, such as
        ``{10: "/system.slice/app.service"}``: this host's PID 1 is not systemd, so no real
        process of a test sits in a unit's cgroup."""
        proc = self.root.parent / f"{self.root.name}-proc"
        for pid, cg in units.items():
            d = proc / str(pid)
            d.mkdir(parents=True, exist_ok=True)
            (d / "cgroup").write_text(f"0::{cg}\n")
        os.makedirs(proc, exist_ok=True)
        return str(proc)
