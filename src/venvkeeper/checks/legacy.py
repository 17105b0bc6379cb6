"""Legacy virtualenvs (before 20) and I/O problems met while reading a venv."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import VenvFacts, VenvKind

LEGACY = "legacy-virtualenv"
READ_ERRORS = "read-errors"


def run(facts: VenvFacts) -> Iterator[Finding]:
    if facts.kind is VenvKind.LEGACY_VIRTUALENV:
        yield Finding(
            LEGACY,
            Severity.WARNING,
            f"made by virtualenv before 20 (base {facts.orig_prefix or 'unknown'}): a copied"
            " interpreter that current tools do not manage; recreate it with a current venv",
        )
    if facts.errors:
        yield Finding(
            READ_ERRORS,
            Severity.UNKNOWN,
            f"parts of the venv could not be read ({short_list(list(facts.errors), 2)}):"
            " the verdict may be incomplete; scan as root or as the owner",
        )


CHECK = Check(
    "legacy",
    {
        LEGACY: CodeDoc(Severity.WARNING, "a virtualenv < 20 layout (orig-prefix.txt)"),
        READ_ERRORS: CodeDoc(Severity.UNKNOWN, "parts of the venv could not be read"),
    },
    run,
)
