"""Human output: the scan table, the summary line and ``show``. Pure functions to ``str``.

Every string from a scanned tree goes through :func:`escape` before it is printed.
"""

from __future__ import annotations

import io
import stat
from typing import Optional

from venvkeeper.model.findings import Severity
from venvkeeper.model.report import Report, VenvReport
from venvkeeper.textutil import escape

HEADERS = ("STATUS", "PATH", "PYTHON", "CREATOR", "PKGS", "FINDING")
_STYLE = {
    Severity.OK: "green",
    Severity.INFO: "green",
    Severity.WARNING: "yellow",
    Severity.UNKNOWN: "magenta",
    Severity.CRITICAL: "bold red",
}


def python_column(rep: VenvReport) -> str:
    """``recorded -> now`` (or just one when they agree or one is unknown). Raw text:
    the recorded version comes from ``pyvenv.cfg``, escape it to print it."""
    f = rep.facts
    rec = f.recorded_version
    rec_minor = ".".join(rec.split(".")[:2]) if rec else None
    now: Optional[str] = None
    if f.base is not None:
        now = f.base.patch_version or f.base.version
    elif f.chains:
        now = "missing"
    if rec_minor and now and (now == "missing" or not now.startswith(rec_minor)):
        return f"{rec_minor} -> {now}"
    return now or rec or "?"


def rows(report: Report, only_problems: bool = False) -> list[tuple[str, ...]]:
    """The table's cells, each escaped here, once (the renderers print them as they are)."""
    out: list[tuple[str, ...]] = []
    for rep in report.venvs:
        if only_problems and rep.status is Severity.OK:
            continue
        main = rep.main_finding
        cells = (
            rep.status.value,
            rep.path + (f" (via {rep.alias_of})" if rep.alias_of else ""),
            python_column(rep),
            rep.facts.creator.value,
            str(len(rep.facts.distributions)),
            f"{main.code}: {main.message}" if main is not None else "",
        )
        out.append(tuple(escape(c) for c in cells))
    return out


def summary(report: Report) -> str:
    counts = ", ".join(
        f"{report.count(s)} {s.value}"
        for s in (Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN, Severity.OK)
    )
    extra = ""
    if report.aliases:
        extra += f", {len(report.aliases)} .venv aliases"
    if report.conda_envs:
        extra += f", {len(report.conda_envs)} conda environments (not judged)"
    st = report.stats
    skipped = sum(st.skipped.values())
    skip_txt = ""
    if skipped:
        top = sorted(st.skipped.items(), key=lambda kv: -kv[1])[:4]
        skip_txt = "; skipped " + ", ".join(f"{n} {reason}" for reason, n in top)
    return (
        f"{len(report.venvs)} venv{'' if len(report.venvs) == 1 else 's'}: {counts}{extra}"
        f" ({st.directories:,} directories in {st.duration_seconds:.2f}s{skip_txt})"
    )


def render_plain(report: Report, only_problems: bool = False, width: int = 0) -> str:
    table = [HEADERS, *rows(report, only_problems)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS) - 1)]
    lines = []
    for r in table:
        cells = [r[i].ljust(widths[i]) for i in range(len(widths))]
        line = "  ".join([*cells, r[-1]]).rstrip()
        if width and len(line) > width:
            line = line[: width - 1] + "…"
        lines.append(line)
    lines.append("")
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def render_rich(report: Report, only_problems: bool = False, width: int = 120) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for h in HEADERS:
        table.add_column(h, overflow="fold", no_wrap=h in ("STATUS", "PKGS", "CREATOR"))
    for r in rows(report, only_problems):
        status = Severity(r[0])
        table.add_row(Text(r[0], style=_STYLE[status]), *(Text(c) for c in r[1:]))
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system="standard")
    console.print(table)
    console.print(Text(summary(report)))
    return buf.getvalue()


def render(
    report: Report, *, color: bool = False, only_problems: bool = False, width: int = 0
) -> str:
    if color:
        return render_rich(report, only_problems, width or 120)
    return render_plain(report, only_problems, width)


def render_show(rep: VenvReport) -> str:
    """Every fact and finding of one venv, as indented text."""
    f = rep.facts
    out: list[str] = []

    def put(label: str, value: object, indent: int = 0) -> None:
        # labels too: pyvenv.cfg's keys are labels here
        out.append(f"{'  ' * indent}{escape(label)}: {escape(str(value))}")

    put("path", f.path)
    put("status", rep.status.value)
    put("kind", f.kind.value)
    put("creator", f.creator.value)
    put("owner uid", f.owner_uid)
    put("mode", f"{stat.S_IMODE(f.mode):04o}")
    if rep.alias_of:
        put("alias", rep.alias_of)
    out.append("findings:")
    for x in rep.findings or ():
        out.append(f"  [{x.severity.value}] {x.code}: {escape(x.message)}")
    if not rep.findings:
        out.append("  none")
    out.append("python:")
    put("recorded", f.recorded_version or "?", 1)
    if f.base is not None:
        b = f.base
        put("now", b.version or "?", 1)
        put("patch", b.patch_version or "?", 1)
        put("executable", b.executable, 1)
        put("origin", b.origin.value, 1)
        put("copy", b.is_copy, 1)
        put("stdlib", b.prefix or "MISSING", 1)
        if b.copy_source:
            put("copied from", f"{b.copy_source} (identical: {b.copy_identical})", 1)
    if f.orig_prefix:
        put("orig-prefix", f.orig_prefix, 1)
    out.append("interpreter links:")
    for c in f.chains:
        chain = " -> ".join(escape(h) for h in c.hops)
        state = f"ok ({escape(c.resolved)})" if c.resolved else f"BROKEN {escape(c.error or '')}"
        out.append(f"  {escape(c.name)}: {chain}: {state}")
    out.append("pyvenv.cfg:")
    if f.cfg_error:
        out.append(f"  error: {escape(f.cfg_error)}")
    if f.cfg is not None:
        for k, v in f.cfg.values.items():
            put(k, v, 1)
        for p in f.cfg.problems:
            out.append(f"  problem (line {p.line}): {escape(p.message)}")
    out.append("site-packages:")
    for s in f.site_dirs:
        out.append(
            "  "
            + escape(f"{s.path} (python {s.python_version}, {len(s.distributions)} distributions)")
        )
        for d in s.distributions:
            extra = []
            if d.installer:
                extra.append(d.installer)
            if d.direct_url_kind is not None:
                src = d.editable_path or d.direct_url or ""
                extra.append(f"{d.direct_url_kind.value} {src}")
                if d.commit_id:
                    extra.append(f"@{d.commit_id}")
            if d.extensions:
                tags = sorted({x.abi_tag or "untagged" for x in d.extensions})
                extra.append(f"{len(d.extensions)} extensions [{', '.join(tags)}]")
            tail = f" ({escape('; '.join(extra))})" if extra else ""
            out.append(f"    {escape(d.name)} {escape(d.version)}{tail}")
        for line in s.pth_imports:
            out.append(f"    .pth import: {escape(line)}")
    out.append("scripts:")
    for sc in f.scripts:
        where = "relative" if sc.relative else escape(sc.interpreter or "?")
        ok = "" if sc.interpreter_exists is not False else " (MISSING)"
        out.append(f"  {escape(sc.name)}: {where}{ok}")
    put("activate VIRTUAL_ENV", f.activate_virtual_env or "-")
    put("recorded path (command)", f.recorded_path or "-")
    if f.writable_by_others:
        put("writable by others", ", ".join(f.writable_by_others))
    if f.size_bytes is not None:
        put("size", f"{f.size_bytes:,} bytes")
    for e in f.errors:
        put("read error", e)
    if rep.deep is not None:
        d2 = rep.deep
        put("deep", f"ran={d2.ran} version={d2.version} error={d2.error}")
        for x2 in d2.failed_imports:
            put("import failed", x2, 1)
    return "\n".join(out) + "\n"
