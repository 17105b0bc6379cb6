"""Findings from the opt-in ``--deep`` probe (:mod:`venvkeeper.scan.deep` runs it): a venv
whose interpreter does not start, or whose packages do not import.
"""

from __future__ import annotations

from venvkeeper.checks._base import CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.plan import Remedy
from venvkeeper.model.venv import DeepResult, VenvFacts
from venvkeeper.textutil import plural

START_FAILED = "deep-start-failed"


IMPORT_FAILED = "deep-import-failed"


SKIPPED = "deep-skipped"


CODES = {
    START_FAILED: CodeDoc(
        Severity.CRITICAL,
        "--deep: the venv's interpreter did not start",
        repair=Remedy.INTERPRETER,
    ),
    IMPORT_FAILED: CodeDoc(
        Severity.CRITICAL,
        "--deep: installed packages failed to import",
        repair=Remedy.INTERPRETER,
    ),
    SKIPPED: CodeDoc(
        Severity.INFO,
        "--deep was not possible (not the owner, no interpreter, or something it would run"
        " can be changed by another user: the message names it)",
    ),
}


def deep_findings(facts: VenvFacts, deep: DeepResult) -> tuple[Finding, ...]:
    if not deep.ran:
        return (Finding(SKIPPED, Severity.INFO, f"--deep: {deep.error}"),)
    if deep.error:
        return (
            Finding(
                START_FAILED, Severity.CRITICAL, f"--deep: the interpreter failed: {deep.error}"
            ),
        )
    if deep.failed_imports:
        return (
            Finding(
                IMPORT_FAILED,
                Severity.CRITICAL,
                f"--deep: {plural(len(deep.failed_imports), 'module')} failed to import:"
                f" {short_list(list(deep.failed_imports), 2)}",
            ),
        )
    return ()
