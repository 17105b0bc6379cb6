"""The check interface: a check is a pure function from facts to findings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Callable

from venvkeeper.model.consumers import ConsumerFacts
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.plan import Remedy
from venvkeeper.model.venv import VenvFacts

BOOTSTRAP = frozenset({"pip", "setuptools", "wheel", "distribute"})


@dataclass(frozen=True)
class CodeDoc:
    """A finding code's usual severity, what it means (for ``venvkeeper codes``) and the
    repair that answers it (the planner reads it from the registry: a code's repair
    follows the code, whatever it is named)."""

    severity: Severity
    summary: str  # one line for the README table
    repair: Remedy = Remedy.NONE


@dataclass(frozen=True)
class Check:
    """One concern. ``codes`` documents every finding code the check may yield."""

    name: str
    codes: Mapping[str, CodeDoc]
    run: Callable[[VenvFacts], Iterator[Finding]]


@dataclass(frozen=True)
class ConsumerCheck:
    """One concern about a consumer (a unit, a cron job, a server config) and its venvs."""

    name: str
    codes: Mapping[str, CodeDoc]
    run: Callable[[ConsumerFacts], Iterator[Finding]]


def short_list(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
