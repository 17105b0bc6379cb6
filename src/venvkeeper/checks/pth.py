"""``.pth`` files no installed package owns: lines that execute code at every start, and
directories they put on ``sys.path`` that are gone."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import VenvFacts
from venvkeeper.textutil import plural

IMPORT = "pth-import"
PATH_MISSING = "pth-path-missing"


def run(facts: VenvFacts) -> Iterator[Finding]:
    lines = [line for s in facts.site_dirs for line in s.pth_imports]
    if lines:
        yield Finding(
            IMPORT,
            Severity.INFO,
            f".pth code that runs at every start, owned by no installed package:"
            f" {short_list(lines, 2)}",
        )
    gone = [f"{d} ({name})" for s in facts.site_dirs for name, d, ok in s.pth_paths if not ok]
    if gone:
        yield Finding(
            PATH_MISSING,
            Severity.WARNING,
            f"{plural(len(gone), 'directory', 'directories')} that a .pth file puts on"
            f" sys.path {'is' if len(gone) == 1 else 'are'} gone: {short_list(gone, 2)};"
            " what was imported from there fails: restore it or edit the .pth file",
        )


CHECK = Check(
    "pth",
    {
        IMPORT: CodeDoc(Severity.INFO, "a .pth file owned by no package runs `import` lines"),
        PATH_MISSING: CodeDoc(
            Severity.WARNING, "a .pth file owned by no package names a directory that is gone"
        ),
    },
    run,
)
