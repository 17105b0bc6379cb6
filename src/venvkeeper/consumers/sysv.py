"""SysV init scripts and ``/etc/rc.local``, as systemd runs them.

- ``/etc/init.d/NAME``: systemd-sysv-generator makes ``NAME.service`` (``NAME.sh`` ->
  ``NAME.service``) for an executable regular file that is not hidden or a package
  manager's backup, unless a native unit of that name exists (the generator looks in the
  load path without the generators' own directories: a link to ``/dev/null`` masks it).
  The unit runs ``/etc/init.d/NAME start``; it is enabled by an ``S??NAME`` link in
  ``/etc/rc[2-5].d``; it is restarted through its unit.
- ``/etc/rc.local``: rc-local.service runs ``/etc/rc.local start`` when the file is
  executable (systemd-rc-local-generator enables it then).

A script is read as shell, line by line, with its variables (``DAEMON=/srv/app/venv/bin/
gunicorn``), the ``/etc/default`` file it sources, and what ``start-stop-daemon --start``,
``su -c``, ``runuser`` or a plain command line would run (:mod:`.shell`). Nothing is run.
"""

from __future__ import annotations

import re
import stat
from typing import Optional

from venvkeeper.consumers.launch import script_refs
from venvkeeper.consumers.refs import Classifier
from venvkeeper.consumers.rootfs import RootFS, read_text
from venvkeeper.consumers.systemd import DEFAULT_PATH, SYSTEM_DIRS
from venvkeeper.consumers.users import Users
from venvkeeper.host.cgroups import RunningUnits
from venvkeeper.model.consumers import (
    Activation,
    Consumer,
    ConsumerKind,
    Launch,
    Manager,
    Restart,
    RestartVerb,
)
from venvkeeper.model.findings import Finding

INIT_D = "/etc/init.d"
RC_LOCAL = "/etc/rc.local"
RC_LOCAL_UNIT = "rc-local.service"
#: The runlevels whose ``S??NAME`` links enable a script (multi-user and graphical).
RC_DIRS = ("/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d")
#: The load path the generator checks for a native unit: without the generators' output.
NATIVE_DIRS = tuple(d for d in SYSTEM_DIRS if "/generator" not in d)
#: Files systemd takes for hidden or a backup (``hidden_or_backup_file``): never run.
BACKUP_SUFFIXES = (
    "~",
    ".rpmnew",
    ".rpmsave",
    ".rpmorig",
    ".dpkg-old",
    ".dpkg-new",
    ".dpkg-tmp",
    ".dpkg-dist",
    ".dpkg-bak",
    ".dpkg-backup",
    ".dpkg-remove",
    ".ucf-new",
    ".ucf-old",
    ".ucf-dist",
    ".swp",
    ".bak",
    ".old",
    ".new",
)
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\-]+\.service$")
_START_LINK = re.compile(r"^S\d\d(.+)$")
#: Files an init script sources for its settings: read with it.
SETTINGS_DIRS = ("/etc/default/", "/etc/sysconfig/")
#: Most scripts read from /etc/init.d: a directory of millions is cut short.
MAX_SCRIPTS = 5000


def unit_of(script: str) -> Optional[str]:
    """The unit systemd-sysv-generator makes of ``/etc/init.d/SCRIPT``, or None when it
    makes none (hidden, a backup, not a valid unit name)."""
    if script.startswith(".") or script.endswith(BACKUP_SUFFIXES):
        return None
    unit = (script[:-3] if script.endswith(".sh") else script) + ".service"
    return unit if _UNIT_NAME.match(unit) and len(unit) <= 255 else None


def read_sysv(fs: RootFS, cls: Classifier, users: Users, running: RunningUnits) -> list[Consumer]:
    """The init scripts systemd runs as units, and ``/etc/rc.local``."""
    out: list[Consumer] = []
    scripts = [e.name for e in fs.listdir(INIT_D)][:MAX_SCRIPTS]
    enabled = _enabled(fs) if scripts else set()
    for name in scripts:
        unit = unit_of(name)
        if unit is None or _native(fs, unit):
            continue
        path = f"{INIT_D}/{name}"
        if not _executable(fs, path):
            continue
        c = _script(fs, cls, users, path, unit, ConsumerKind.SYSV_INIT, unit in enabled, running)
        if c is not None:
            out.append(c)
    if fs.lstat(RC_LOCAL) is not None and _executable(fs, RC_LOCAL):
        c = _script(fs, cls, users, RC_LOCAL, RC_LOCAL_UNIT, ConsumerKind.RC_LOCAL, True, running)
        if c is not None:
            out.append(c)
    return out


def _executable(fs: RootFS, path: str) -> bool:
    """A file systemd would run: a regular file (links followed) with an execute bit; a
    FIFO or another non-regular file is read anyway, for its finding."""
    st = fs.stat(path)
    if st is None or stat.S_ISDIR(st.st_mode):
        return False
    return not stat.S_ISREG(st.st_mode) or bool(st.st_mode & 0o111)


def _native(fs: RootFS, unit: str) -> bool:
    return any(fs.lstat(f"{d}/{unit}") is not None for d in NATIVE_DIRS)


def _enabled(fs: RootFS) -> set[str]:
    """The units that ``S??NAME`` links in the multi-user runlevels start."""
    out: set[str] = set()
    for d in RC_DIRS:
        for e in fs.listdir(d):
            m = _START_LINK.match(e.name)
            unit = unit_of(m.group(1)) if m else None
            if unit is not None:
                out.add(unit)
    return out


def _settings(fs: RootFS, path: str) -> Optional[tuple[str, Optional[str], list[Finding]]]:
    """A settings file a script sources (``/etc/default/NAME``), read with it."""
    if not path.startswith(SETTINGS_DIRS) or fs.lstat(path) is None:
        return None
    source = fs.host(path)
    text, problems = read_text(fs, path, source)
    return source, text, problems


def _script(
    fs: RootFS,
    cls: Classifier,
    users: Users,
    path: str,
    unit: str,
    kind: ConsumerKind,
    enabled: bool,
    running: RunningUnits,
) -> Optional[Consumer]:
    source = fs.host(path)
    text, problems = read_text(fs, path, source)
    is_running = running.runs(unit)
    restart = Restart(Manager.SYSTEM, unit, RestartVerb.TRY_RESTART)
    if text is None:
        return Consumer(
            kind,
            unit,
            source,
            0,
            "root",
            (),
            Activation.SERVICE,
            enabled=enabled,
            running=is_running,
            restart=restart,
            problems=tuple(problems),
        )
    first = text.split("\n", 1)[0]
    if first.startswith("#!") and "sh" not in first:
        return None  # not a shell script (a Python or Perl init script is not read)
    env = {"PATH": DEFAULT_PATH}
    read = script_refs(
        cls,
        enumerate(text.split("\n"), 1),
        source=source,
        env=env,
        home=users.home("root") or "/root",
        user="root",
        cwd="/",
        include=lambda p: _settings(fs, p),
    )
    if not read.refs:
        return None
    return Consumer(
        kind=kind,
        name=unit,
        source=source,
        line=read.refs[0].line,
        user=read.users[0] if read.users else "root",
        refs=tuple(read.refs),
        activation=Activation.SERVICE,
        enabled=enabled,
        running=is_running,
        restart=restart,
        launch=Launch((fs.host(path), "start")),
        problems=tuple(problems + read.problems),
        files=(source, *read.files),
    )
