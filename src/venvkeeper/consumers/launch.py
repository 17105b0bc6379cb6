"""The references of what a launcher runs: an argv (a unit's ``Exec*=``, supervisor's
``command=``) or a shell string (cron, ``sh -c``), with the environment, working
directory and search path the launcher gives it. Shared by every reader."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
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
