"""Prometheus metrics of a scan, for node_exporter's textfile collector. Pure.

Built with prometheus_client (a private registry and a custom collector, rendered by
``generate_latest``), never by hand. Metrics:

- ``venvkeeper_venv_status{path, creator, python, status}``: one-hot, one series per
  status (ok, warning, unknown, critical), 1 for the venv's status and 0 for the others,
  so that ``venvkeeper_venv_status{status="critical"} == 1`` alerts and resolves cleanly;
- ``venvkeeper_venv_finding{path, code, severity}``: how many findings of that code and
  severity the venv has (1, nearly always);
- ``venvkeeper_venvs``, ``venvkeeper_venvs_by_status{status}``,
  ``venvkeeper_findings_by_severity{severity}``;
- ``venvkeeper_scan_duration_seconds``, ``venvkeeper_scan_timestamp_seconds`` (when the
  scan started, epoch seconds).

``python`` is the version a venv runs now (patch level when files tell it, "" when its
interpreter is gone or unknown). Label values hold the paths as found, unless one holds a
character that is not safe to print (a byte that was not UTF-8, a control character, DEL,
a C1 or bidi control): then all of it is escaped (``\\xNN``, ``\\uNNNN``, a backslash
as ``\\\\``), the rule of the JSON documents (:func:`venvkeeper.textutil.escape_value`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from venvkeeper.model.findings import Severity
from venvkeeper.model.inventory import ScanSnapshot
from venvkeeper.textutil import escape_value

#: The statuses a venv can have (INFO findings leave a venv ok).
STATUSES = tuple(s for s in Severity if s is not Severity.INFO)


def _add(family: GaugeMetricFamily, labels: list[str], value: float) -> None:
    """Every label value through the one escaping rule."""
    family.add_metric([escape_value(x) for x in labels], value)


class _ScanCollector:
    """Yields the metrics of one scan (prometheus_client's custom collector protocol)."""

    def __init__(self, snap: ScanSnapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterable[Metric]:
        snap = self.snap
        # A venv reached twice (through a .venv alias) is one venv: duplicate series
        # would make Prometheus reject the whole file.
        venvs = {v.path: v for v in reversed(snap.venvs)}
        ordered = sorted(venvs.values(), key=lambda v: v.path)

        status = GaugeMetricFamily(
            "venvkeeper_venv_status",
            "Status of each venv: 1 for its status, 0 for the others",
            labels=["path", "creator", "python", "status"],
        )
        finding = GaugeMetricFamily(
            "venvkeeper_venv_finding",
            "Findings of each venv, by code and severity",
            labels=["path", "code", "severity"],
        )
        for v in ordered:
            for s in STATUSES:
                _add(
                    status,
                    [v.path, v.creator.value, v.python_label, s.value],
                    1.0 if v.status is s else 0.0,
                )
            counts = Counter((f.code, f.severity.value) for f in v.findings)
            for (code, severity), n in sorted(counts.items()):
                _add(finding, [v.path, code, severity], float(n))
        yield status
        yield finding

        yield GaugeMetricFamily("venvkeeper_venvs", "Venvs found by the scan", len(ordered))
        by_status = GaugeMetricFamily(
            "venvkeeper_venvs_by_status", "Venvs by status", labels=["status"]
        )
        for s in STATUSES:
            _add(by_status, [s.value], sum(1 for v in ordered if v.status is s))
        yield by_status
        by_severity = GaugeMetricFamily(
            "venvkeeper_findings_by_severity", "Findings by severity", labels=["severity"]
        )
        for sev in Severity:
            if sev is Severity.OK:
                continue
            n = sum(1 for v in ordered for f in v.findings if f.severity is sev)
            _add(by_severity, [sev.value], float(n))
        yield by_severity
        yield GaugeMetricFamily(
            "venvkeeper_scan_duration_seconds", "How long the scan took", snap.duration_seconds
        )
        yield GaugeMetricFamily(
            "venvkeeper_scan_timestamp_seconds",
            "When the scan started (seconds since the epoch)",
            snap.started_at,
        )


def render(snap: ScanSnapshot) -> str:
    """The metrics of *snap* in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ScanCollector(snap))
    return generate_latest(registry).decode("utf-8")
