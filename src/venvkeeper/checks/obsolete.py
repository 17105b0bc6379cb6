"""A base interpreter whose OS package no configured archive offers any more."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.plan import Remedy
from venvkeeper.model.venv import VenvFacts

OBSOLETE = "base-obsolete"


def run(facts: VenvFacts) -> Iterator[Finding]:
    base = facts.base
    if base is None or base.obsolete_package is None:
        return
    pkg = base.obsolete_package
    what = (
        f"the copy's source {base.copy_source}"
        if base.is_copy and base.copy_source
        else f"the base {base.executable}"
    )
    yield Finding(
        OBSOLETE,
        Severity.WARNING,
        f"{what} belongs to {pkg.label}, which no configured archive offers any more"
        " (only dpkg's status knows it: a leftover of a release upgrade?): it will never get"
        " a security fix; rebuild the venv on a supported Python (venvkeeper repair)",
    )


CHECK = Check(
    "obsolete",
    {
        OBSOLETE: CodeDoc(
            Severity.WARNING,
            "the base's OS package is offered by no configured archive: no more fixes (Debian)",
            repair=Remedy.NEWER_PYTHON,
        )
    },
    run,
)
