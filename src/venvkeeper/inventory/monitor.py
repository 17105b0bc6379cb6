"""``venvkeeper check``: a scan judged as a monitoring plugin (Nagios, Icinga, ...). Pure.

The thresholds are a frozen value (:class:`Thresholds`) so that the command line and a
configuration file can both build one. Semantics:

- CRITICAL when at least ``critical`` venvs are critical (default 1: any);
- else WARNING when at least ``warning`` venvs are not ok: warning, unknown, or critical
  below the critical threshold (default 1: any);
- else OK. UNKNOWN is kept for the plugin's own failures (bad usage, an unusable
  inventory, an internal error), as the plugin guidelines want.

``ignore`` globs leave venvs out by path (``fnmatch``: ``*`` also matches ``/``);
``ignore_codes`` drop findings by code, and a venv's status is judged again from what is
left.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
from dataclasses import dataclass

from venvkeeper.errors import UsageError
from venvkeeper.model.findings import Severity, worst_of
from venvkeeper.model.inventory import ScanSnapshot, VenvSnapshot


class PluginState(enum.Enum):
    """The monitoring plugin states, with their exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def exit_code(self) -> int:
        return int(self.value)


@dataclass(frozen=True)
class Thresholds:
    """When ``check`` says WARNING or CRITICAL (see the module docstring)."""

    warning: int = 1  # WARNING when at least this many venvs are not ok
    critical: int = 1  # CRITICAL when at least this many venvs are critical
    ignore: tuple[str, ...] = ()  # venv path globs to leave out
    ignore_codes: tuple[str, ...] = ()  # finding codes to leave out

    def validate(self) -> None:
        """Raise :class:`UsageError` naming every problem (numbers below 1, unknown codes)."""
        from venvkeeper.checks.registry import all_codes

        problems: list[str] = []
        for name, value in (("warning", self.warning), ("critical", self.critical)):
            if value < 1:
                problems.append(f"--{name} must be 1 or more, not {value}")
        known = all_codes()
        unknown = [c for c in self.ignore_codes if c not in known]
        if unknown:
            problems.append(
                "unknown finding code " + ", ".join(unknown) + " (venvkeeper codes lists them)"
            )
        if problems:
            raise UsageError("; ".join(problems))


@dataclass(frozen=True)
class CheckResult:
    """The monitoring verdict of a scan under thresholds."""

    state: PluginState
    thresholds: Thresholds
    venvs: tuple[VenvSnapshot, ...]  # those judged (not ignored), re-judged, worst first
    ignored: int
    scan_seconds: float

    def count(self, status: Severity) -> int:
        return sum(1 for v in self.venvs if v.status is status)

    @property
    def not_ok(self) -> tuple[VenvSnapshot, ...]:
        return tuple(v for v in self.venvs if v.status is not Severity.OK)


def _without_codes(v: VenvSnapshot, codes: frozenset[str]) -> VenvSnapshot:
    if not codes or not any(f.code in codes for f in v.findings):
        return v
    findings = tuple(f for f in v.findings if f.code not in codes)
    status = worst_of(f.severity.status for f in findings)
    return dataclasses.replace(v, status=status, findings=findings)


def evaluate(snap: ScanSnapshot, thresholds: Thresholds) -> CheckResult:
    """The plugin state of a scan under *thresholds*."""
    codes = frozenset(thresholds.ignore_codes)
    kept: list[VenvSnapshot] = []
    ignored = 0
    for v in snap.venvs:
        if any(fnmatch.fnmatchcase(v.path, g) for g in thresholds.ignore):
            ignored += 1
            continue
        kept.append(_without_codes(v, codes))
    kept.sort(key=lambda v: (-v.status.rank, v.path))
    critical = sum(1 for v in kept if v.status is Severity.CRITICAL)
    not_ok = sum(1 for v in kept if v.status is not Severity.OK)
    if critical >= thresholds.critical:
        state = PluginState.CRITICAL
    elif not_ok >= thresholds.warning:
        state = PluginState.WARNING
    else:
        state = PluginState.OK
    return CheckResult(state, thresholds, tuple(kept), ignored, snap.duration_seconds)
