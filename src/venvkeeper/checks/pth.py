"""``.pth`` files that execute code at every start, not owned by any installed package."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import VenvFacts

IMPORT = "pth-import"


def run(facts: VenvFacts) -> Iterator[Finding]:
    lines = [line for s in facts.site_dirs for line in s.pth_imports]
    if lines:
        yield Finding(
            IMPORT,
            Severity.INFO,
            f".pth code that runs at every start, owned by no installed package:"
            f" {short_list(lines, 2)}",
        )


CHECK = Check(
    "pth",
    {IMPORT: CodeDoc(Severity.INFO, "a .pth file owned by no package runs `import` lines")},
    run,
)
