"""pyvenv.cfg missing, unreadable or malformed."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import VenvFacts, VenvKind

UNREADABLE = "cfg-unreadable"
MALFORMED = "cfg-malformed"
NO_HOME = "cfg-no-home"


def run(facts: VenvFacts) -> Iterator[Finding]:
    if facts.kind is not VenvKind.VENV:
        return
    if facts.cfg_error:
        yield Finding(
            UNREADABLE,
            Severity.UNKNOWN,
            f"{facts.cfg_error}: the venv cannot be judged; check the file (as its owner)",
        )
        return
    cfg = facts.cfg
    if cfg is None:
        return
    if "home" not in cfg.values:
        yield Finding(
            NO_HOME,
            Severity.WARNING,
            "pyvenv.cfg has no 'home' key: Python finds its base only through the bin/python"
            " link (a copy falls back to its compiled-in prefix) and tools cannot tell it;"
            " add 'home = DIRECTORY-OF-THE-BASE-PYTHON'",
        )
    shown = cfg.problems
    if shown:
        p = shown[0]
        where = f"line {p.line}: " if p.line else ""
        more = f" (and {len(shown) - 1} more)" if len(shown) > 1 else ""
        yield Finding(MALFORMED, Severity.WARNING, f"pyvenv.cfg {where}{p.message}{more}")


CHECK = Check(
    "pyvenv.cfg",
    {
        UNREADABLE: CodeDoc(
            Severity.UNKNOWN, "pyvenv.cfg missing, unreadable, or not a regular file"
        ),
        NO_HOME: CodeDoc(Severity.WARNING, "pyvenv.cfg has no `home` key"),
        MALFORMED: CodeDoc(
            Severity.WARNING, "junk lines, duplicate keys, NUL bytes, or a huge file"
        ),
    },
    run,
)
