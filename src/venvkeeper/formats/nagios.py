"""``check`` output in the monitoring plugin format. Pure.

The first line is the only one every monitoring system reads: ``VENVKEEPER STATE -
text | perfdata``. Performance data follows the plugin guidelines,
``label=value[UOM];[warn];[crit];[min];[max]``, with thresholds written as Nagios ranges
("N" alerts above N: our "at least T" is the range T-1). Further lines are the long
output, one venv that is not ok per line. Paths come from scanned trees: escaped, and
``|`` (which would start performance data) written as ``\\x7c``.
"""

from __future__ import annotations

from venvkeeper.inventory.monitor import CheckResult, PluginState
from venvkeeper.model.findings import Severity
from venvkeeper.model.inventory import VenvSnapshot
from venvkeeper.textutil import escape, escape_value, plural

#: Venvs named on the status line; the rest are counted.
LISTED = 3
#: Lines of long output at most (monitoring systems cap a plugin's output at a few KiB).
LONG_LINES = 50


def _bars(text: str) -> str:
    return text.replace("|", "\\x7c")


def _safe(text: str) -> str:
    return _bars(escape(text))


def _label(v: VenvSnapshot) -> str:
    main = max(v.findings, key=lambda f: f.severity.rank, default=None)
    return _safe(v.path) + (f" ({_safe(main.code)})" if main is not None else "")


def _listing(venvs: tuple[VenvSnapshot, ...]) -> str:
    shown = ", ".join(_label(v) for v in venvs[:LISTED])
    more = len(venvs) - LISTED
    return shown + (f", and {more} more" if more > 0 else "")


def perfdata(result: CheckResult) -> str:
    t = result.thresholds
    n = len(result.venvs)
    fields = [
        f"venvs={n};;;0",
        f"ok={result.count(Severity.OK)};;;0",
        f"warning={result.count(Severity.WARNING)};;;0",
        f"unknown={result.count(Severity.UNKNOWN)};;;0",
        f"critical={result.count(Severity.CRITICAL)};;{t.critical - 1};0",
        f"not_ok={len(result.not_ok)};{t.warning - 1};;0",
        f"ignored={result.ignored};;;0",
        f"scan_seconds={result.scan_seconds:.3f}s;;;0",
    ]
    return " ".join(fields)


def summary(result: CheckResult) -> str:
    """The text of the status line (between the state and the performance data)."""
    n = len(result.venvs)
    bad = result.not_ok
    critical = tuple(v for v in bad if v.status is Severity.CRITICAL)
    if result.state is PluginState.CRITICAL:
        text = f"{len(critical)} of {plural(n, 'venv')} broken: {_listing(critical)}"
        if len(bad) > len(critical):
            text += f"; {len(bad) - len(critical)} more not ok"
    elif result.state is PluginState.WARNING:
        text = f"{len(bad)} of {plural(n, 'venv')} not ok: {_listing(bad)}"
    elif not n:
        text = "no venvs found"
    elif bad:
        text = f"{plural(n, 'venv')}, {len(bad)} not ok (below the thresholds): {_listing(bad)}"
    else:
        text = f"{plural(n, 'venv')} ok"
    if result.ignored:
        text += f" ({result.ignored} ignored)"
    return text


def render(result: CheckResult) -> str:
    lines = [f"VENVKEEPER {result.state.name} - {summary(result)} | {perfdata(result)}"]
    bad = result.not_ok
    for v in bad[:LONG_LINES]:
        main = max(v.findings, key=lambda f: f.severity.rank, default=None)
        why = f"{main.code}: {main.message}" if main is not None else ""
        lines.append(f"{v.status.value} {_safe(v.path)}: {_safe(why)}")
    if len(bad) > LONG_LINES:
        lines.append(f"... and {len(bad) - LONG_LINES} more not ok")
    return "\n".join(lines) + "\n"


def render_unknown(message: str) -> str:
    """The one line of a check that could not judge anything."""
    # an error message names its paths escaped already: escaped only if it still needs it
    return f"VENVKEEPER UNKNOWN - {_bars(escape_value(message))}\n"
