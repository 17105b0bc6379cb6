"""Venv directories and files that users other than the owner can change."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import VenvFacts

WRITABLE = "writable-by-others"


def run(facts: VenvFacts) -> Iterator[Finding]:
    if facts.writable_by_others:
        yield Finding(
            WRITABLE,
            Severity.WARNING,
            f"{short_list(list(facts.writable_by_others))} writable by other users: they can"
            " change what the owner runs; chmod go-w",
        )


CHECK = Check(
    "permissions",
    {
        WRITABLE: CodeDoc(
            Severity.WARNING,
            "the venv, bin/, pyvenv.cfg or site-packages world-writable (or group-writable"
            " while owned by root)",
        )
    },
    run,
)
