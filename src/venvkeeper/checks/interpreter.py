"""The interpreter links: dangling, missing, a script instead of a binary, stale extras."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.plan import Remedy
from venvkeeper.model.venv import VenvFacts, VenvKind

MISSING = "interpreter-missing"
DANGLING = "interpreter-dangling"
STALE_LINK = "stale-link"
NOT_BINARY = "interpreter-not-binary"
VERSION_UNKNOWN = "version-unknown"
NOT_EXECUTABLE = "interpreter-not-executable"


def run(facts: VenvFacts) -> Iterator[Finding]:
    if facts.kind is VenvKind.CONDA:
        return
    if not facts.chains:
        if facts.errors:
            return  # bin/ could not be read: read-errors says so, we cannot tell more
        yield Finding(
            MISSING,
            Severity.CRITICAL,
            "bin/ has no python: the venv cannot start; recreate it",
        )
        return
    names = {c.name for c in facts.chains}
    if "python" not in names:
        others = short_list(sorted(names))
        yield Finding(
            MISSING,
            Severity.CRITICAL,
            f"bin/python is missing (bin/{others} exist): console scripts and services that"
            " run bin/python cannot start; relink bin/python",
        )
    primary = next((c for c in facts.chains if c.name in ("python", "python3")), facts.chains[0])
    if primary.resolved is None and not primary.unreadable:  # unreadable: read-errors
        why = primary.error or "does not exist"
        hops = " -> ".join(primary.hops)
        yield Finding(
            DANGLING,
            Severity.CRITICAL,
            f"bin/{primary.name} is broken ({hops}: {primary.broken_at or ''} {why}):"
            " the venv cannot start; repair it (relink to the same minor, or rebuild)",
        )
    if primary.unrunnable:
        yield Finding(
            NOT_EXECUTABLE,
            Severity.CRITICAL,
            f"bin/{primary.name} ({primary.resolved}) is {primary.unrunnable}, not an"
            " interpreter: the venv cannot start; rebuild it",
        )
    stale = [
        c.name for c in facts.chains if c is not primary and c.resolved is None and not c.unreadable
    ]
    if stale and primary.resolved is not None:
        yield Finding(
            STALE_LINK,
            Severity.WARNING,
            f"bin/{short_list(stale)} dangle while bin/{primary.name} works"
            " (left behind by an upgrade?): scripts that name them fail; remove or relink them",
        )
    base = facts.base
    if base is None:
        return
    if base.is_script:
        yield Finding(
            NOT_BINARY,
            Severity.WARNING,
            f"bin/{primary.name} resolves to {base.executable}, a script (a pyenv shim?),"
            " not an interpreter: the Python it runs depends on the caller's settings;"
            " relink it to a real interpreter",
        )
    elif base.version is None:
        yield Finding(
            VERSION_UNKNOWN,
            Severity.UNKNOWN,
            f"cannot tell the version of {base.executable} from its name or its stdlib",
        )


CHECK = Check(
    "interpreter",
    {
        MISSING: CodeDoc(
            Severity.CRITICAL,
            "bin/ holds no python at all, or no bin/python",
            repair=Remedy.INTERPRETER,
        ),
        DANGLING: CodeDoc(
            Severity.CRITICAL,
            "bin/python's link chain ends in nothing: fails loudly",
            repair=Remedy.INTERPRETER,
        ),
        STALE_LINK: CodeDoc(Severity.WARNING, "another bin/pythonX.Y link dangles"),
        NOT_BINARY: CodeDoc(
            Severity.WARNING,
            "bin/python resolves to a script such as a pyenv shim",
            repair=Remedy.REBUILD,
        ),
        VERSION_UNKNOWN: CodeDoc(Severity.UNKNOWN, "the base's version cannot be found statically"),
        NOT_EXECUTABLE: CodeDoc(
            Severity.CRITICAL,
            "bin/python is an empty or non-executable file, no interpreter",
            repair=Remedy.INTERPRETER,
        ),
    },
    run,
)
