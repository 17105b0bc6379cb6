"""cron and anacron: ``/etc/crontab``, ``/etc/cron.d`` (Debian's file-name and ownership
rules), users' crontabs in both spool layouts (Debian ``/var/spool/cron/crontabs/USER``,
RHEL ``/var/spool/cron/USER``), ``/etc/anacrontab`` and the run-parts scripts of
``/etc/cron.{hourly,daily,weekly,monthly}``.

A line is ``NAME = value`` (no ``$`` expansion; quotes keep outer blanks) or five time
fields (or ``@reboot``, ``@daily`` ...), a user in the system tables, and a command that
runs as ``$SHELL -c CMD``: an unescaped ``%`` ends it (the rest is stdin), ``\\%`` is
``%``. The command is read by :mod:`venvkeeper.consumers.shell`; bare names resolve
through the table's ``PATH`` (the daemon's default ``/usr/bin:/bin``).
"""

from __future__ import annotations

import re
import stat
from typing import Optional

from venvkeeper.consumers.launch import string_refs
from venvkeeper.consumers.refs import Classifier, Where
from venvkeeper.consumers.rootfs import RootFS, read_text, syntax, with_problems
from venvkeeper.consumers.users import Users
from venvkeeper.model.consumers import (
    Activation,
    Confidence,
    Consumer,
    ConsumerKind,
    Launch,
    Reference,
)
from venvkeeper.model.findings import Finding

DAEMON_PATH = "/usr/bin:/bin"
RUN_PARTS_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_ASSIGN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_AT = frozenset(
    {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
PERIODS = ("hourly", "daily", "weekly", "monthly")


def _value(v: str) -> str:
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    return v


def _command(cmd: str) -> str:
    """The command before cron's first unescaped ``%`` (``\\%`` is ``%``)."""
    out: list[str] = []
    i = 0
    while i < len(cmd):
        c = cmd[i]
        if c == "\\" and cmd[i + 1 : i + 2] == "%":
            out.append("%")
            i += 2
            continue
        if c == "%":
            break
        out.append(c)
        i += 1
    return "".join(out)


def _dedupe(refs: list[Reference]) -> tuple[Reference, ...]:
    seen: dict[tuple[object, ...], Reference] = {}
    for r in refs:
        seen.setdefault((r.kind, r.path, r.venv, r.line), r)
    return tuple(seen.values())


def read_table(
    fs: RootFS,
    cls: Classifier,
    users: Users,
    path: str,
    *,
    system: bool,
    owner: Optional[str] = None,
    kind: ConsumerKind = ConsumerKind.CRON,
) -> list[Consumer]:
    """The consumers of one crontab (*system*: with a user field)."""
    source = fs.host(path)
    text, problems = read_text(fs, path, source)
    if text is None:
        return [
            Consumer(
                kind, source, source, 0, owner, (), Activation.SCHEDULE, problems=tuple(problems)
            )
        ]
    env: dict[str, str] = {"PATH": DAEMON_PATH, "SHELL": "/bin/sh"}
    out: list[Consumer] = []
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _ASSIGN.match(line)
        if (
            m
            and not line.startswith("@")
            and not line.split()[0][:1].isdigit()
            and " " not in m.group(1)
        ):
            env[m.group(1)] = _value(m.group(2))
            continue
        words = line.split(None, 6 if system else 5)
        if words[0] in _AT:
            when = words[0]
            rest = line.split(None, 2 if system else 1)
            if len(rest) < (3 if system else 2):
                problems.append(syntax(source, n, "a schedule with no command"))
                continue
            user = rest[1] if system else owner
            cmd = rest[-1]
        elif words[0].startswith("@"):
            problems.append(syntax(source, n, f"unknown schedule {words[0][:20]!r}"))
            continue
        else:
            if len(words) < (7 if system else 6):
                problems.append(syntax(source, n, "too few fields"))
                continue
            when = " ".join(words[:5])
            user = words[5] if system else owner
            cmd = words[-1]
        u = users.by_name(user or "")
        home = u.home if u is not None else None
        local = dict(env)
        local.setdefault("HOME", home or "/")
        local.setdefault("LOGNAME", user or "")
        where = Where(source, n, "command")
        command = _command(cmd)
        refs, probs, _ = string_refs(
            cls, command, env=local, home=local.get("HOME"), user=user, where=where
        )
        if not refs and not probs:
            continue
        out.append(
            Consumer(
                kind=kind,
                name=f"{source}:{n}",
                source=source,
                line=n,
                user=user,
                refs=_dedupe(refs),
                activation=Activation.SCHEDULE,
                enabled=True,
                trigger=when,
                launch=Launch(tuple(command.split()), tuple(sorted(local.items())), home),
                problems=tuple(probs),
            )
        )
    empty = Consumer(kind, source, source, 0, owner, (), Activation.SCHEDULE)
    return with_problems(out, problems, empty)


def _cron_d_ok(fs: RootFS, path: str) -> bool:
    """Debian cron's rules for /etc/cron.d: run-parts names, owned by root, not group- or
    other-writable, a regular file."""
    st = fs.stat(path)
    name = path.rsplit("/", 1)[1]
    if st is None or not stat.S_ISREG(st.st_mode):
        return st is not None and not stat.S_ISDIR(st.st_mode)  # a FIFO: read, for its finding
    return bool(RUN_PARTS_NAME.match(name)) and st.st_uid == 0 and not st.st_mode & 0o022


def read_cron(fs: RootFS, cls: Classifier, users: Users) -> list[Consumer]:
    out: list[Consumer] = []
    if fs.lstat("/etc/crontab") is not None:
        out += read_table(fs, cls, users, "/etc/crontab", system=True)
    for e in fs.listdir("/etc/cron.d"):
        p = f"/etc/cron.d/{e.name}"
        if RUN_PARTS_NAME.match(e.name) and _cron_d_ok(fs, p):
            out += read_table(fs, cls, users, p, system=True)
    spool = "/var/spool/cron/crontabs"
    for e in fs.listdir(spool):
        if not e.name.startswith("."):
            out += read_table(fs, cls, users, f"{spool}/{e.name}", system=False, owner=e.name)
    for e in fs.listdir("/var/spool/cron"):  # RHEL: the spool holds the tables itself
        if e.name.startswith(".") or e.is_dir(follow_symlinks=False):
            continue
        if users.by_name(e.name) is not None:
            out += read_table(
                fs, cls, users, f"/var/spool/cron/{e.name}", system=False, owner=e.name
            )
    if fs.lstat("/etc/anacrontab") is not None:
        out += read_anacrontab(fs, cls, users)
    for period in PERIODS:
        d = f"/etc/cron.{period}"
        for e in fs.listdir(d):
            if RUN_PARTS_NAME.match(e.name):
                out += read_script(fs, cls, users, f"{d}/{e.name}", period)
    return out


def read_anacrontab(fs: RootFS, cls: Classifier, users: Users) -> list[Consumer]:
    path = "/etc/anacrontab"
    source = fs.host(path)
    text, problems = read_text(fs, path, source)
    if text is None:
        return [
            Consumer(
                ConsumerKind.ANACRON,
                source,
                source,
                0,
                "root",
                (),
                Activation.SCHEDULE,
                problems=tuple(problems),
            )
        ]
    env: dict[str, str] = {
        "PATH": DAEMON_PATH,
        "SHELL": "/bin/sh",
        "HOME": users.home("root") or "/root",
    }
    out: list[Consumer] = []
    logical: list[tuple[int, str]] = []
    cont = ""
    start = 0
    for n, raw in enumerate(text.split("\n"), 1):
        if cont:
            cont += raw
        else:
            cont, start = raw, n
        if cont.endswith("\\"):
            cont = cont[:-1]
            continue
        logical.append((start, cont))
        cont = ""
    for n, raw in logical:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _ASSIGN.match(line)
        if m and " " not in line.split("=", 1)[0].strip():
            env[m.group(1)] = _value(m.group(2))
            continue
        words = line.split(None, 3)
        if len(words) < 4:
            problems.append(syntax(source, n, "anacrontab: too few fields"))
            continue
        where = Where(source, n, "command")
        refs, probs, _ = string_refs(
            cls, words[3], env=dict(env), home=env["HOME"], user="root", where=where
        )
        if refs or probs:
            out.append(
                Consumer(
                    ConsumerKind.ANACRON,
                    f"{source}:{n}",
                    source,
                    n,
                    "root",
                    _dedupe(refs),
                    Activation.SCHEDULE,
                    enabled=True,
                    trigger=words[0],
                    problems=tuple(probs),
                )
            )
    return out


def read_script(
    fs: RootFS, cls: Classifier, users: Users, path: str, period: str
) -> list[Consumer]:
    """A run-parts script: its shebang, or its lines as shell."""
    source = fs.host(path)
    st = fs.stat(path)
    if st is not None and stat.S_ISREG(st.st_mode) and not st.st_mode & 0o111:
        return []  # run-parts runs only executable files
    where = Where(source, 1, "script")
    ref = cls.executable(path, text=path, confidence=Confidence.EXACT, where=where)
    if ref is not None:
        return [
            Consumer(
                ConsumerKind.CRON_SCRIPT,
                source,
                source,
                1,
                "root",
                (ref,),
                Activation.SCHEDULE,
                enabled=True,
                trigger=period,
            )
        ]
    text, problems = read_text(fs, path, source)
    if text is None:
        return [
            Consumer(
                ConsumerKind.CRON_SCRIPT,
                source,
                source,
                0,
                "root",
                (),
                Activation.SCHEDULE,
                problems=tuple(problems),
            )
        ]
    if text.startswith("#!") and "sh" not in text.split("\n", 1)[0]:
        return []
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin",
        "HOME": users.home("root") or "/root",
    }
    refs: list[Reference] = []
    probs: list[Finding] = list(problems)
    # line by line: a script's control flow is not followed, its commands are
    state_env = dict(env)
    cwd: Optional[str] = "/"
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        w = Where(source, n, "script")
        r, p, parsed = string_refs(
            cls, line, env=state_env, home=env["HOME"], user="root", where=w, cwd=cwd
        )
        refs += r
        state_env, cwd = dict(parsed.env), parsed.cwd
        if parsed.error is None:
            probs += p
    if not refs:
        return []
    return [
        Consumer(
            ConsumerKind.CRON_SCRIPT,
            source,
            source,
            refs[0].line,
            "root",
            _dedupe(refs),
            Activation.SCHEDULE,
            enabled=True,
            trigger=period,
            problems=tuple(probs),
        )
    ]
