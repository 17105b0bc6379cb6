"""A site's policy, as the configuration file states it (applied by
:mod:`venvkeeper.checks.policy`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from venvkeeper.model.findings import Severity


@dataclass(frozen=True)
class Policy:
    """A site's wishes: venvs to ignore, the bases allowed, severity overrides by code."""

    ignore: tuple[str, ...] = ()  # venv paths or globs (``*`` crosses ``/``)
    allowed_bases: tuple[str, ...] = ()  # interpreter paths or globs; empty: any base
    severity: Mapping[str, Severity] = field(default_factory=dict, hash=False)  # code -> sev

    @property
    def empty(self) -> bool:
        return not (self.ignore or self.allowed_bases or self.severity)
