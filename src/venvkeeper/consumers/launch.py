"""The references of what a launcher runs: an argv (a unit's ``Exec*=``, supervisor's
``command=``) or a shell string (cron, ``sh -c``), with the environment, working
directory and search path the launcher gives it. Shared by every reader."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from venvkeeper.checks.consumers import SYNTAX
from venvkeeper.consumers import shell
from venvkeeper.consumers.refs import Classifier, Where
from venvkeeper.consumers.rootfs import syntax
from venvkeeper.model.consumers import Confidence, Reference
from venvkeeper.model.findings import Finding, Severity

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"


def string_refs(
    cls: Classifier,
    command: str,
    *,
    env: Mapping[str, str],
    home: Optional[str],
    user: Optional[str],
    where: Where,
    cwd: Optional[str] = None,
) -> tuple[list[Reference], list[Finding], shell.Parsed]:
    """The references of a shell command string (run as ``$SHELL -c``), and the problems
    with it: a string that cannot be split, ``source`` where ``/bin/sh`` is dash."""
    sh = env.get("SHELL", "/bin/sh")
    parsed = shell.parse(command, env=env, cwd=cwd or home, home=home, user=user, shell=sh)
    refs: list[Reference] = []
    problems: list[Finding] = []
    if parsed.error:
        problems.append(
            syntax(where.source, where.line, f"cannot split the command: {parsed.error}")
        )
    for inv in parsed.invocations:
        conf = Confidence.UNRESOLVED if inv.unresolved else Confidence.SHELL_HEURISTIC
        refs += cls.command(
            list(inv.argv),
            where=where,
            confidence=conf,
            search=tuple(inv.env.get("PATH", DEFAULT_PATH).split(":")),
            cwd=inv.cwd,
        )
        refs += cls.environment(
            {k: v for k, v in inv.env.items() if env.get(k) != v}, where=where, confidence=conf
        )
    for s in parsed.sourced:
        if s.path.endswith("/bin/activate"):
            refs.append(
                cls.activate(
                    s.path, text=s.text, confidence=Confidence.SHELL_HEURISTIC, where=where
                )
            )
            if s.bashism and posixpath.basename(s.shell) in ("sh", "dash"):
                problems.append(
                    Finding(
                        SYNTAX,
                        Severity.WARNING,
                        f"{where.source}:{where.line}: `source` under {s.shell}: dash has no"
                        " `source` (use `.`), so this fails where /bin/sh is dash (Debian)",
                    )
                )
    return refs, problems, parsed


#: A script's sourced file to read as part of it (``. /etc/default/NAME``): its host path,
#: its text (None: unreadable) and the problems met reading it; None: not followed.
Include = Callable[[str], Optional[tuple[str, Optional[str], list[Finding]]]]


@dataclass
class ScriptRead:
    """What a shell script runs, read line by line (its control flow is not followed,
    its commands are): the references, the problems, the shell's state at its end, the
    users its referencing commands switch to (``sudo -u``, ``--chuid``) and the files it
    sourced that were read with it."""

    refs: list[Reference] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Optional[str] = None
    users: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def script_refs(
    cls: Classifier,
    lines: Iterable[tuple[int, str]],
    *,
    source: str,
    env: Mapping[str, str],
    home: Optional[str],
    user: Optional[str],
    cwd: Optional[str],
    include: Optional[Include] = None,
) -> ScriptRead:
    """The references of a script's numbered *lines*, each line read as a command string
    with the state (variables, ``cd``) the lines before it left. A line that cannot be
    split is skipped silently (a multi-line quote: the script is not wrong, the line is
    only part of it). Files that *include* accepts are read in place, once each."""
    out = ScriptRead(env=dict(env), cwd=cwd)
    seen: set[str] = set()
    _walk_lines(cls, lines, source, home, user, include, out, seen)
    return out


def _walk_lines(
    cls: Classifier,
    lines: Iterable[tuple[int, str]],
    source: str,
    home: Optional[str],
    user: Optional[str],
    include: Optional[Include],
    out: ScriptRead,
    seen: set[str],
) -> None:
    for n, line in _logical(lines):
        where = Where(source, n, "script")
        refs, problems, parsed = string_refs(
            cls, line, env=out.env, home=home, user=user, where=where, cwd=out.cwd or "/"
        )
        out.refs += refs
        if refs:
            out.users += [i.user for i in parsed.invocations if i.user and i.user != user]
        out.env, out.cwd = dict(parsed.env), parsed.cwd
        if parsed.error is None:
            out.problems += problems
        if include is None:
            continue
        for s in parsed.sourced:
            if s.path in seen:
                continue
            seen.add(s.path)
            got = include(s.path)
            if got is None:
                continue
            host, text, probs = got
            out.problems += probs
            out.files.append(host)
            if text is not None:
                numbered = enumerate(text.split("\n"), 1)
                _walk_lines(cls, numbered, host, home, user, None, out, seen)


def _logical(lines: Iterable[tuple[int, str]]) -> Iterable[tuple[int, str]]:
    """Numbered logical lines, as ``sh`` joins them: a backslash at the end of a line joins
    it to the next (numbered by its first); blank and comment lines left out."""
    cont = ""
    start = 0
    for n, raw in lines:
        if not cont:
            start = n
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
        body = raw.rstrip()
        if (len(body) - len(body.rstrip("\\"))) % 2:
            cont += body[:-1]
            continue
        line = (cont + raw).strip()
        cont = ""
        if line:
            yield start, line
    if cont.strip():
        yield start, cont.strip()


def argv_refs(
    cls: Classifier,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Optional[str],
    where: Where,
    confidence: Confidence,
    bare_search: Sequence[str],
    home: Optional[str] = None,
) -> list[Reference]:
    """The references of running *argv* directly (no shell): argv0 (a bare name through
    *bare_search*, the launcher's own search path), and what a launcher it names runs
    (``env CMD``, ``sh -c 'CMD'``: children resolve through the environment's PATH)."""
    if not argv:
        return []
    path_dirs = tuple(env.get("PATH", DEFAULT_PATH).split(":"))
    found = cls.command(
        list(argv[:1]) + list(argv[1:]),
        where=where,
        confidence=confidence,
        search=path_dirs,
        cwd=cwd,
        bare_search=bare_search,
    )
    if found:
        return found
    name = posixpath.basename(argv[0])
    if name in shell.SH_NAMES:
        script = shell.dash_c(list(argv[1:]))
        if script is not None:
            refs, _, _ = string_refs(
                cls,
                script,
                env={**env, "SHELL": argv[0]},
                home=home or env.get("HOME"),
                user=None,
                where=where,
                cwd=cwd,
            )
            return refs
    return []
