"""at jobs: the pending jobs in atd's spool (Debian ``/var/spool/cron/atjobs``, RHEL
``/var/spool/at``).

A job is a ``/bin/sh`` script that ``at`` wrote: ``#!/bin/sh``, ``# atrun uid=N gid=N``,
``# mail USER N``, ``umask``, ``NAME=value; export NAME`` for the submitter's environment
(a job submitted from an activated venv carries its ``PATH`` and ``VIRTUAL_ENV``), ``cd
DIR || { ... exit 1; }``, then the commands: as they were (Debian's at: ``/bin/sh`` runs
them) or in a here-document for ``${SHELL:-/bin/sh}`` (RHEL's). atd runs a job as the
file's owner, with an empty environment (so the job's exports are all it has: dash's own
``PATH`` when none), from a file named ``QJJJJJMMMMMMMM`` (queue, job number, minutes
since the epoch, hex) that ``at`` has made executable; it refuses a file whose header or
owner does not match. A job runs once: nothing restarts it, it fails at its run.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
from typing import Optional

from venvkeeper.consumers.launch import script_refs
from venvkeeper.consumers.refs import Classifier
from venvkeeper.consumers.rootfs import RootFS, read_text, syntax, unreadable
from venvkeeper.consumers.users import Users
from venvkeeper.model.consumers import Activation, Consumer, ConsumerKind, Launch
from venvkeeper.model.findings import Finding

SPOOLS = ("/var/spool/cron/atjobs", "/var/spool/at")
#: A job's file name as atd reads it (``%c%5lx%8lx``); ``=`` marks a job running now.
JOB_NAME = re.compile(r"^([A-Za-z])([0-9a-f]{5})([0-9a-f]{8})$")
HEADER = re.compile(r"\A#!/bin/sh\n# atrun uid=(\d+) gid=(\d+)\n# mail +(\S+) +(-?\d+)")
#: dash's PATH when the environment has none (atd gives the job an empty one).
DASH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: RHEL's at: the commands in a here-document for the submitter's shell.
_HEREDOC = re.compile(r"^\$\{SHELL:-/bin/sh\}\s*<<\s*'([^']+)'\s*$")
#: The variables of a job's environment kept with it: the submitter's whole environment
#: (tokens and passwords among it) is no business of a consumer's.
LAUNCH_ENV = frozenset(
    {"PATH", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "HOME", "SHELL", "USER", "LOGNAME"}
)
#: Most jobs read from one spool: a spool of millions is cut short.
MAX_JOBS = 10000


def read_atjobs(fs: RootFS, cls: Classifier, users: Users) -> tuple[list[Consumer], list[Finding]]:
    """Every pending job of every spool, and the spools that could not be listed."""
    out: list[Consumer] = []
    problems: list[Finding] = []
    for spool in SPOOLS:
        st = fs.stat(spool)
        if st is None or not stat.S_ISDIR(st.st_mode):
            continue
        try:
            with os.scandir(fs.real(spool) or fs.host(spool)) as it:
                names = sorted(e.name for e in it)
        except OSError as e:
            problems.append(unreadable(fs.host(spool), e))
            continue
        for name in [n for n in names if JOB_NAME.match(n)][:MAX_JOBS]:
            c = read_job(fs, cls, users, f"{spool}/{name}")
            if c is not None:
                out.append(c)
    return out, problems


def when(name: str) -> str:
    """The run time a job's file name holds, as ``2026-12-07 03:10 UTC (queue a)``."""
    m = JOB_NAME.match(name)
    if m is None:
        return ""
    try:
        t = datetime.datetime.fromtimestamp(int(m.group(3), 16) * 60, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"queue {m.group(1)}"
    return f"{t:%Y-%m-%d %H:%M} UTC (queue {m.group(1)})"


def read_job(fs: RootFS, cls: Classifier, users: Users, path: str) -> Optional[Consumer]:
    """One job file: a consumer when it names a venv or cannot be read, else None."""
    source = fs.host(path)
    name = path.rsplit("/", 1)[1]
    lst = fs.lstat(path)
    if lst is None:
        return None  # run or removed since the listing
    owner = users.by_uid(lst.st_uid)
    user: Optional[str] = owner.name if owner is not None else str(lst.st_uid)
    problems: list[Finding] = []
    if stat.S_ISLNK(lst.st_mode):
        return _empty(source, user, [syntax(source, 0, "a symlink: atd refuses to run it")])
    text, probs = read_text(fs, path, source)
    problems += probs
    if text is None:
        return _empty(source, user, problems)
    head = HEADER.match(text)
    if head is None:
        problems.append(syntax(source, 1, "not in at's format: atd will not run it"))
    elif int(head.group(1)) != lst.st_uid:
        problems.append(
            syntax(
                source,
                2,
                f"atrun uid={head.group(1)} but the file's owner is uid {lst.st_uid}:"
                " atd will not run it",
            )
        )
    home = owner.home if owner is not None else None
    lines = list(enumerate(text.split("\n"), 1))
    body_at = next((i for i, (_, line) in enumerate(lines) if _HEREDOC.match(line)), None)
    env = {"PATH": DASH_PATH}
    if body_at is None:
        read = script_refs(cls, lines, source=source, env=env, home=home, user=user, cwd="/")
        refs, problems = read.refs, problems + read.problems
        env, cwd = read.env, read.cwd
    else:
        m = _HEREDOC.match(lines[body_at][1])
        assert m is not None
        end = next(
            (i for i in range(body_at + 1, len(lines)) if lines[i][1] == m.group(1)), len(lines)
        )
        pro = script_refs(
            cls, lines[:body_at], source=source, env=env, home=home, user=user, cwd="/"
        )
        # the here-document is the script of ${SHELL:-/bin/sh}, which inherits the exports
        shell_env = {**pro.env, "SHELL": pro.env.get("SHELL") or "/bin/sh"}
        body = script_refs(
            cls,
            lines[body_at + 1 : end],
            source=source,
            env=shell_env,
            home=home,
            user=user,
            cwd=pro.cwd,
        )
        refs = pro.refs + body.refs
        problems += pro.problems + body.problems
        env, cwd = body.env, body.cwd
    if not refs and not problems:
        return None
    return Consumer(
        kind=ConsumerKind.AT_JOB,
        name=source,
        source=source,
        line=refs[0].line if refs else 0,
        user=user,
        refs=tuple(refs),  # duplicates are merged by the stage
        activation=Activation.SCHEDULE,
        # atd runs only what at made executable (a job still being written is not)
        enabled=bool(lst.st_mode & stat.S_IXUSR) and head is not None,
        trigger=when(name),
        launch=Launch((), tuple(sorted((k, v) for k, v in env.items() if k in LAUNCH_ENV)), cwd),
        problems=tuple(problems),
    )


def _empty(source: str, user: Optional[str], problems: list[Finding]) -> Consumer:
    return Consumer(
        ConsumerKind.AT_JOB,
        source,
        source,
        0,
        user,
        (),
        Activation.SCHEDULE,
        problems=tuple(problems),
    )
