"""The registry of checks: adding a check is one module and one line here."""

from __future__ import annotations

from venvkeeper.checks import (
    abi,
    cfg,
    consumers,
    copies,
    editable,
    interpreter,
    legacy,
    moved,
    obsolete,
    origin,
    permissions,
    pth,
    stdlib,
    versions,
)
from venvkeeper.checks._base import Check, CodeDoc, ConsumerCheck
from venvkeeper.model.consumers import ConsumerFacts
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import VenvFacts, VenvKind

CHECKS: tuple[Check, ...] = (
    cfg.CHECK,
    interpreter.CHECK,
    stdlib.CHECK,
    versions.CHECK,
    abi.CHECK,
    moved.CHECK,
    editable.CHECK,
    copies.CHECK,
    origin.CHECK,
    obsolete.CHECK,
    permissions.CHECK,
    pth.CHECK,
    legacy.CHECK,
)

#: The consumer checks: a consumer with the facts of its venvs -> findings.
CONSUMER_CHECKS: tuple[ConsumerCheck, ...] = (
    consumers.FILES,
    consumers.CHECK,
)


def all_codes() -> dict[str, CodeDoc]:
    """Every finding code venvkeeper can report, with its usual severity (the README table)."""
    from venvkeeper.checks.deep import CODES as DEEP_CODES
    from venvkeeper.checks.policy import CODES as POLICY_CODES

    codes: dict[str, CodeDoc] = {}
    families = [c.codes for c in CHECKS] + [c.codes for c in CONSUMER_CHECKS]
    for mapping in [*families, DEEP_CODES, POLICY_CODES]:
        for code, doc in mapping.items():
            if code in codes:
                raise AssertionError(f"finding code {code} registered twice")
            codes[code] = doc
    return codes


def run_checks(facts: VenvFacts) -> tuple[Finding, ...]:
    """Every finding for *facts*, worst first. Conda environments are listed, not judged."""
    if facts.kind is VenvKind.CONDA:
        return ()
    found = [f for check in CHECKS for f in check.run(facts)]
    found.sort(key=lambda f: -f.severity.rank)
    return tuple(found)


def run_consumer_checks(facts: ConsumerFacts) -> tuple[Finding, ...]:
    """Every finding about one consumer (its own file problems first), worst first."""
    found = [f for check in CONSUMER_CHECKS for f in check.run(facts)]
    found.sort(key=lambda f: -f.severity.rank)
    return tuple(found)


__all__ = [
    "CHECKS",
    "CONSUMER_CHECKS",
    "Check",
    "CodeDoc",
    "ConsumerCheck",
    "Finding",
    "Severity",
    "all_codes",
    "run_checks",
    "run_consumer_checks",
]
