"""Human output: the scan table, the summary line and ``show``. Pure functions to ``str``.

Every string from a scanned tree goes through :func:`escape` before it is printed.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Optional

from venvkeeper.formats.layout import (
    PLAIN,
    Column,
    Row,
    Terminal,
    human_size,
    lay_out,
    more,
    to_text,
    wrap,
)
from venvkeeper.model.findings import Severity
from venvkeeper.model.report import Report, VenvReport
from venvkeeper.model.venv import BaseInterpreter, DeepResult
from venvkeeper.textutil import escape, plural

if TYPE_CHECKING:
    from venvkeeper.checks import CodeDoc
    from venvkeeper.model.consumers import Consumer

#: venv path -> its consumers (units, cron jobs ...): USED BY, when they were read.
UsedBy = Mapping[str, Sequence["Consumer"]]
USED_BY = Column("USED BY", drop=True)

COLUMNS = (
    Column("STATUS", shrink=False),
    Column("PATH", path=True),
    Column("PYTHON"),
    Column("CREATOR", drop=True),
    Column("PKGS", shrink=False),
)
SIZE = Column("SIZE", shrink=False)
#: The OS root of each venv, shown when some venv is inside another one (a chroot, a
#: container's root filesystem): ``/`` for this host's own venvs.
ROOT = Column("ROOT", path=True)
DETAIL = "FINDING"
#: The style of each status word, in colour (words of :data:`~venvkeeper.formats.layout.SGR`).
STYLE = {
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


def finding_cell(rep: VenvReport) -> str:
    """The worst finding and how many more there are (raw: escape it to print it)."""
    main = rep.main_finding
    if main is None:
        return ""
    return f"{main.code}: {main.message}" + more(len(rep.findings) - 1)


def _sized(report: Report) -> bool:
    return any(r.facts.size_bytes is not None for r in report.venvs)


def other_roots(report: Report) -> list[str]:
    """The other OS roots (not this host's /) that hold venvs of *report*, sorted."""
    return sorted({r.root for r in report.venvs if r.root is not None})


def rows(
    report: Report, only_problems: bool = False, used_by: Optional[UsedBy] = None
) -> list[Row]:
    """The table's rows, each cell escaped here, once (the layout prints them as they are)."""
    sized = _sized(report)
    rooted = bool(other_roots(report))
    if used_by is not None:
        from venvkeeper.formats.consumers import labels
    out: list[Row] = []
    for rep in report.venvs:
        if only_problems and rep.status is Severity.OK:
            continue
        cells = [rep.status.value] + ([rep.facts.root or "/"] if rooted else [])
        cells += [
            rep.path + (f" (via {rep.alias_of})" if rep.alias_of else ""),
            python_column(rep),
            rep.facts.creator.value,
            str(len(rep.facts.distributions)),
        ]
        if sized:
            size = rep.facts.size_bytes
            cells.append(human_size(size) if size is not None else "?")
        if used_by is not None:
            cells.append(labels(used_by.get(rep.path, ())) or "-")
        out.append(
            Row(tuple(escape(c) for c in cells), escape(finding_cell(rep)), STYLE[rep.status])
        )
    return out


def summary(report: Report) -> str:
    counts = ", ".join(
        f"{report.count(s)} {s.value}"
        for s in (Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN, Severity.OK)
    )
    extra = ""
    roots = other_roots(report)
    if roots:
        inside = sum(1 for r in report.venvs if r.root is not None)
        extra += (
            f"; {plural(inside, 'venv')} inside {plural(len(roots), 'other OS root')}"
            " (chroots, containers), each judged as its root sees it"
        )
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


def render(
    report: Report,
    *,
    color: bool = False,
    only_problems: bool = False,
    width: int = 0,
    used_by: Optional[UsedBy] = None,
) -> str:
    """The scan table and its summary line, for a terminal *width* columns wide (0: no
    limit), in colour when *color* (see :mod:`venvkeeper.formats.layout`); USED BY when
    the consumers were read (*used_by*)."""
    return render_for(report, Terminal(width or None, color), only_problems, used_by)


def render_for(
    report: Report,
    term: Terminal = PLAIN,
    only_problems: bool = False,
    used_by: Optional[UsedBy] = None,
) -> str:
    columns = COLUMNS[:1] + ((ROOT,) if other_roots(report) else ()) + COLUMNS[1:]
    columns += (SIZE,) if _sized(report) else ()
    columns += (USED_BY,) if used_by is not None else ()
    lines = lay_out(columns, rows(report, only_problems, used_by), term.width, DETAIL)
    text = summary(report)
    lines += [[]] + [[(t, None)] for t in (wrap(text, term.width) if term.width else [text])]
    return to_text(lines, term.color)


def render_codes(codes: Mapping[str, CodeDoc]) -> str:
    """``codes``: every finding code, its usual severity and what it means, one a line."""
    return "".join(
        f"{code:30} {doc.severity.value:9} {doc.summary}\n" for code, doc in sorted(codes.items())
    )


def _copy(b: BaseInterpreter) -> str:
    if not b.is_copy:
        return "no (a link to its base)"
    if not b.copy_source:
        return "yes (a private copy of the interpreter)"
    same = {True: "identical", False: "differs from it", None: "not compared"}[b.copy_identical]
    return f"yes, of {b.copy_source} ({same})"


def _stdlib(b: BaseInterpreter) -> str:
    if b.prefix:
        return b.prefix
    if b.stdlib_present is None:
        return "unknown (hidden from this user)"
    return "missing"


def _deep(d: Optional[DeepResult]) -> list[tuple[str, str]]:
    if d is None:
        return [("deep", "not run (--deep runs the interpreter to confirm its imports)")]
    if not d.ran:
        return [("deep", f"not run: {d.error or 'not possible'}")]
    who = f", as uid {d.uid}" if d.uid is not None else ""
    if d.error:
        return [("deep", f"ran{who}, failed: {d.error}")]
    out = [("deep", f"ran: Python {d.version or '?'}{who}")]
    if d.failed_imports:
        out += [("import failed", x) for x in d.failed_imports]
    else:
        out.append(("imports", "every module imported"))
    return out


def render_show(rep: VenvReport, consumers: Optional[Sequence[Consumer]] = None) -> str:
    """Every fact and finding of one venv, as indented text: words, never Python values;
    what uses it when the consumers were read (*consumers*)."""
    f = rep.facts
    out: list[str] = []

    def put(label: str, value: str, indent: int = 0) -> None:
        # labels too: pyvenv.cfg's keys are labels here
        out.append(f"{'  ' * indent}{escape(label)}: {escape(value)}")

    put("path", f.path)
    if f.root is not None:
        put("root", f"{f.root} (another OS root: judged as it sees the venv)")
        put("path in root", f.path_in_root)
    put("status", rep.status.value)
    put("kind", f.kind.value)
    put("creator", f.creator.value)
    put("owner", f"uid {f.owner_uid}")
    put("mode", f"{stat.S_IMODE(f.mode):04o}")
    if rep.alias_of:
        put("alias", rep.alias_of)
    if f.tool.package:
        put("pipx package", f.tool.package)
    if f.tool.project:
        put("project", f.tool.project)
    if f.tool.shared_libs:
        put("pipx shared libraries", "yes")
    out.append("findings:")
    for x in rep.findings or ():
        out.append(f"  [{x.severity.value}] {x.code}: {escape(x.message)}")
    if not rep.findings:
        out.append("  none")
    out.append("python:")
    put("recorded", f.recorded_version or "not recorded", 1)
    if f.base is not None:
        b = f.base
        put("now", b.version or "unknown", 1)
        put("patch", b.patch_version or "unknown", 1)
        put("executable", b.executable, 1)
        if b.is_script:
            put("script", "yes (a shell wrapper such as a pyenv shim, not an interpreter)", 1)
        put("origin", b.origin.value, 1)
        put("copy", _copy(b), 1)
        put("stdlib", _stdlib(b), 1)
        if b.obsolete_package is not None:
            put(
                "package",
                f"{b.obsolete_package.label}: no configured archive offers it any more",
                1,
            )
    elif f.chains:
        put("now", "missing (no interpreter link leads to one)", 1)
    else:
        put("now", "unknown (no interpreter link)", 1)
    if f.orig_prefix:
        put("orig-prefix", f.orig_prefix, 1)
    out.append("interpreter links:")
    for c in f.chains:
        chain = " -> ".join(escape(h) for h in c.hops)
        state = f"ok ({escape(c.resolved)})" if c.resolved else f"BROKEN {escape(c.error or '')}"
        out.append(f"  {escape(c.name)}: {chain}: {state}")
    if not f.chains:
        out.append("  none")
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
        where = f"Python {s.python_version}" if s.python_version else "Python unknown"
        count = plural(len(s.distributions), "distribution")
        out.append("  " + escape(f"{s.path} ({where}, {count})"))
        if s.writable_by_others:
            out.append("    writable by others: yes")
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
                extra.append(f"{plural(len(d.extensions), 'extension')} [{', '.join(tags)}]")
            tail = f" ({escape('; '.join(extra))})" if extra else ""
            out.append(f"    {escape(d.name)} {escape(d.version)}{tail}")
            out += [f"      problem: {escape(x)}" for x in d.problems]
        for line in s.pth_imports:
            out.append(f"    .pth import: {escape(line)}")
        for link, target, exists in s.egg_links:
            gone = "" if exists else " (missing)"
            out.append(f"    egg-link: {escape(link)} -> {escape(target)}{gone}")
        for pth, where, exists in s.pth_paths:
            gone = "" if exists else " (missing)"
            out.append(f"    .pth path: {escape(pth)} -> {escape(where)}{gone}")
    if not f.site_dirs:
        out.append("  none")
    out.append("scripts:")
    for sc in f.scripts:
        where = "relative" if sc.relative else escape(sc.interpreter or "no interpreter named")
        missing = " (missing)" if sc.interpreter_exists is False else ""
        out.append(f"  {escape(sc.name)}: {where}{missing}")
    if not f.scripts:
        out.append("  none")
    put("activate VIRTUAL_ENV", f.activate_virtual_env or "none")
    put("recorded path (command)", f.recorded_path or "none")
    if f.writable_by_others:
        put("writable by others", ", ".join(f.writable_by_others))
    if f.size_bytes is not None:
        put("size", f"{human_size(f.size_bytes)} ({f.size_bytes:,} bytes)")
    else:
        put("size", "not measured (--size measures it)")
    for e in f.errors:
        put("read error", e)
    for label, value in _deep(rep.deep):
        put(label, value, 0 if label == "deep" else 1)
    if consumers is not None:
        from venvkeeper.formats.consumers import show_lines

        out += show_lines(consumers)
    return "\n".join(out) + "\n"
