"""Output of ``predict`` and ``plan``: pure functions from a :class:`Prediction` to text."""

from __future__ import annotations

from typing import Any, Optional

from venvkeeper.formats.consumers import label
from venvkeeper.formats.envelope import Kind, dumps, envelope
from venvkeeper.formats.layout import Column, Row, lay_out, more, to_text, wrap
from venvkeeper.formats.table import ROOT, python_column
from venvkeeper.model.consumers import ConsumerPrediction
from venvkeeper.model.plan import Effect, Prediction, RepairPlan, Strategy, VenvPrediction
from venvkeeper.model.report import VenvReport
from venvkeeper.textutil import escape, noun, plural

COLUMNS = (
    Column("EFFECT", shrink=False),
    Column("PATH", path=True),
    Column("PYTHON"),
    Column("REPAIR", path=True),  # "rebuild on /usr/bin/python3.12": its end tells most
    Column("USED BY", drop=True),
)
DETAIL = "WHY"

#: Effects in the order the summary tells them: the order they are declared in.
_ORDER = tuple(Effect)


def _python(v: VenvPrediction) -> str:
    now = python_column(v.now)
    if v.then is None:
        return f"{now} -> removed"
    then = _version(v.then)
    return now if then == _version(v.now) else f"{now} => {then}"


def _version(rep: VenvReport) -> str:
    base = rep.facts.base
    if base is None:
        return "missing" if rep.facts.chains else "?"
    return base.patch_version or base.version or "?"


def plan_summary(plan: Optional[RepairPlan]) -> str:
    """The REPAIR cell (raw: :func:`predict_rows` escapes it)."""
    if plan is None or plan.strategy is Strategy.NONE:
        return "-"
    text: str = plan.strategy.value
    if plan.target is not None and plan.strategy in (Strategy.RELINK, Strategy.REBUILD):
        text += f" on {plan.target.path}"
    if plan.strategy is Strategy.USE_TOOL and plan.tool_command:
        text += ": " + plan.tool_command
    if plan.blocked:
        text += " (blocked)"
    return text


def used_by(v: VenvPrediction, limit: int = 2) -> str:
    """What uses the venv: its consumers (units, jobs, commands, web servers), then the
    running processes no consumer names (units, else PIDs), a few of them (raw)."""
    labels = list(dict.fromkeys([label(c.consumer) for c in v.consumers]))
    units = {c.consumer.name for c in v.consumers} | {
        c.consumer.restart.unit for c in v.consumers if c.consumer.restart.unit
    }
    labels += [u.label for u in v.used_by if u.label not in units and u.label not in labels]
    if not labels:
        return "-"
    text = ", ".join(labels[:limit])
    return text + (f" +{len(labels) - limit}" if len(labels) > limit else "")


def _why(v: VenvPrediction) -> str:
    if v.then is None:
        return "the change removes the venv itself"
    if v.effect is Effect.SURVIVES:
        broken = v.breaking_consumers
        if broken:
            c = broken[0]
            how = c.consumer.fails_phrase(c.fails_how) if c.fails_how else "breaks"
            return f"its venv survives, but {label(c.consumer)} {how}" + more(len(broken) - 1)
        return ""
    rep = v.then if v.effect is not Effect.ALREADY_BROKEN else v.now
    main = rep.main_finding
    return f"{main.code}: {main.message}" if main is not None else ""


def predict_rows(pred: Prediction, only_problems: bool = False) -> list[Row]:
    """The table's rows, each cell escaped here, once."""
    out: list[Row] = []
    rooted = _rooted(pred)
    for v in pred.venvs:
        if only_problems and v.effect is Effect.SURVIVES and not v.breaking_consumers:
            continue
        cells = [v.effect.value] + ([v.now.facts.root or "/"] if rooted else [])
        cells += [v.path, _python(v), plan_summary(v.plan), used_by(v)]
        out.append(Row(tuple(escape(c) for c in cells), escape(_why(v))))
    return out


def _rooted(pred: Prediction) -> bool:
    """Whether some venv is inside another OS root (the table then shows each one's)."""
    return any(v.now.facts.root is not None for v in pred.venvs)


def describe_change(pred: Prediction) -> str:
    c = pred.change
    parts = [f"{link} -> python{ver}" for link, ver in c.python_becomes]
    parts += [f"remove {p}" for p in c.removed]
    parts += [f"remove package {p}" for p in c.removed_packages]
    if c.host_profile:
        parts.insert(0, f"on host {c.host_profile}")
    if c.root:
        where = f"in the OS root {c.root}"
        return escape(f"{where}: " + "; ".join(parts)) if parts else f"no change ({escape(where)})"
    return escape("; ".join(parts)) if parts else "no change (this host as it is)"


def _consumer_line(c: ConsumerPrediction) -> str:
    """``app.service will not start (203/EXEC): its venv breaks-loudly`` (raw)."""
    how = c.consumer.fails_phrase(c.fails_how) if c.fails_how is not None else "works"
    return f"{label(c.consumer)} {how}" + (f": {c.why}" if c.why else "")


def consumer_lines(pred: Prediction) -> list[str]:
    """The consumers the change breaks, each with how it will fail, and those a planned
    repair leaves broken until a line changes (escaped)."""
    if not pred.consumers_read:
        return []
    out: list[str] = []
    broken = pred.breaking_consumers
    if broken:
        out.append("consumers that would break:")
        out += ["  " + escape(_consumer_line(c)) for c in broken]
    after: dict[str, None] = {}
    for v in pred.venvs:
        for c in v.consumers:
            if c.after_repair:
                after.setdefault(f"{label(c.consumer)}: {c.after_repair}", None)
    if after:
        out.append("broken even after the repair, until changed:")
        out += ["  " + escape(line) for line in after]
    return out


def predict_summary(pred: Prediction) -> str:
    counts = [f"{pred.count(e)} {e.value}" for e in _ORDER if pred.count(e)]
    breaking = [v for v in pred.venvs if v.effect.breaks]
    n = len(pred.venvs)
    text = f"{plural(n, 'venv')}, {len(breaking)} would break: {', '.join(counts) or 'none'}"
    if pred.consumers_read:
        text += f"; {plural(len(pred.breaking_consumers), 'consumer')} would break"
    services = list(dict.fromkeys(u.label for v in breaking for u in v.used_by))
    if services:
        text += "\nrunning services that would break: " + escape(", ".join(services))
    return text


def lines(text: str, width: int) -> list[str]:
    """*text* as lines for a terminal *width* wide (0: one line)."""
    return wrap(text, width) if width else [text]


def item_lines(text: str, width: int) -> list[str]:
    """*text* wrapped for *width*; an item (``  ...``) keeps its indent, and its further
    lines hang under it."""
    if not width or not text.startswith("  "):
        return lines(text, width)
    body = wrap(text[2:], max(20, width - 4))
    return ["  " + body[0], *("    " + b for b in body[1:])]


def render_predict(pred: Prediction, only_problems: bool = False, width: int = 0) -> str:
    out = [*lines(f"change: {describe_change(pred)}", width), ""]
    columns = COLUMNS[:1] + ((ROOT,) if _rooted(pred) else ()) + COLUMNS[1:]
    text = to_text(lay_out(columns, predict_rows(pred, only_problems), width or None, DETAIL))
    out += [text.rstrip("\n"), ""]
    for line in consumer_lines(pred):
        out += item_lines(line, width)
    for part in predict_summary(pred).split("\n"):
        out += lines(part, width)
    for v in pred.venvs:  # what the repair of a venv that breaks will leave out, and why
        if v.effect.breaks and v.plan is not None:
            for note in v.plan.notes:
                out += lines(f"note: {escape(v.path)}: {escape(note)}", width)
    return "\n".join(out) + "\n"


def render_plan(pred: Prediction, only_needed: bool = True) -> str:
    """One block per venv that needs work: strategy, why, target, packages, blockers."""
    blocks = [f"change: {describe_change(pred)}"]
    shown = 0
    for v in pred.venvs:
        plan = v.plan
        if plan is None or (only_needed and plan.strategy is Strategy.NONE):
            continue
        shown += 1
        b = [f"{escape(v.path)}: {plan.strategy.value}" + (" (blocked)" if plan.blocked else "")]
        if v.now.facts.root is not None:
            b.append(f"  root:     {escape(v.now.facts.root)} (paths below are inside it)")
        b.append(f"  why:      {escape(plan.reason)}")
        if plan.target is not None:
            t = plan.target
            exe = f", {t.executable}" if t.executable != t.path else ""
            b.append(
                f"  target:   {escape(f'{t.path} (Python {t.patch_version or t.version}{exe})')}"
            )
        if plan.tool_command:
            where = f"  ({plan.tool_note})" if plan.tool_note else ""
            b.append(f"  run:      {escape(plan.tool_command)}{escape(where)}")
        if plan.old_location and plan.strategy is Strategy.REWRITE_PATHS:
            b.append(f"  moved:    from {escape(plan.old_location)}")
        opts = []
        if plan.system_site_packages:
            opts.append("--system-site-packages")
        if plan.prompt:
            opts.append(f"--prompt {plan.prompt}")
        if plan.copies:
            opts.append("(was --copies: symlinks by policy)")
        if opts:
            b.append(f"  options:  {escape(' '.join(opts))}")
        if plan.strategy in (Strategy.REBUILD, Strategy.USE_TOOL, Strategy.MANUAL) and (
            plan.packages or plan.skipped
        ):
            specs = ", ".join(r.spec for r in plan.packages) or "none"
            b.append(f"  install:  {escape(specs)}")
            if plan.skipped:
                b.append(f"  seed:     {escape(', '.join(plan.skipped))} (left to the new venv)")
        for blk in plan.blockers:
            mark = "BLOCKER" if blk.fatal else "risk"
            b.append(f"  {mark + ':':9} {escape(blk.message)}")
        for note in plan.notes:
            b.append(f"  note:     {escape(note)}")
        blocks.append("\n".join(b))
    n = len(pred.venvs)
    blocks.append(f"{shown} of {plural(n, 'venv')} {noun(shown, 'needs', 'need')} a repair")
    return "\n\n".join(blocks) + "\n"


# --- JSON -------------------------------------------------------------------------------


def plan_to_dict(plan: Optional[RepairPlan]) -> Optional[dict[str, Any]]:
    if plan is None:
        return None
    t = plan.target
    return {
        "strategy": plan.strategy.value,
        "reason": plan.reason,
        "blocked": plan.blocked,
        "target": None
        if t is None
        else {
            "path": t.path,
            "executable": t.executable,
            "version": t.version,
            "patch": t.patch_version,
        },
        "options": {
            "system_site_packages": plan.system_site_packages,
            "prompt": plan.prompt,
            "copies": plan.copies,
        },
        "packages": [
            {
                "name": r.name,
                "version": r.version,
                "kind": r.kind.value,
                "spec": r.spec,
                "source": r.source,
            }
            for r in plan.packages
        ],
        "seed_skipped": list(plan.skipped),
        "blockers": [
            {"code": b.code.value, "package": b.package, "fatal": b.fatal, "message": b.message}
            for b in plan.blockers
        ],
        "old_location": plan.old_location,
        "tool_command": plan.tool_command,
        "tool_note": plan.tool_note,
        "notes": list(plan.notes),
    }


def _findings(rep: Optional[VenvReport]) -> list[dict[str, str]]:
    if rep is None:
        return []
    return [
        {"code": f.code, "severity": f.severity.value, "message": f.message} for f in rep.findings
    ]


def _prediction_payload(pred: Prediction) -> dict[str, Any]:
    c = pred.change
    consumers = pred.consumers_read
    return {
        "change": {
            "python_becomes": [{"link": link, "version": v} for link, v in c.python_becomes],
            "removed": list(c.removed),
            "removed_packages": list(c.removed_packages),
            "host_profile": c.host_profile,
            "root": c.root,
        },
        "summary": {
            "venvs": len(pred.venvs),
            "worst": pred.worst.value,
            **{e.value: pred.count(e) for e in _ORDER},
            **({"consumers_breaking": len(pred.breaking_consumers)} if consumers else {}),
        },
        "venvs": [
            {
                "path": v.path,
                "root": v.now.facts.root,
                "effect": v.effect.value,
                "breaks": v.effect.breaks,
                "status_now": v.now.status.value,
                "status_then": v.status.value,
                "python_now": _version(v.now),
                "python_then": _version(v.then) if v.then else None,
                "findings_now": _findings(v.now),
                "findings_then": _findings(v.then),
                "plan": plan_to_dict(v.plan),
                "used_by": [
                    {
                        "pid": u.pid,
                        "user": u.user,
                        "comm": u.comm,
                        "unit": u.unit,
                        "user_unit": u.user_unit,
                        "session": u.session,
                    }
                    for u in v.used_by
                ],
                **({"consumers": [_consumer(c) for c in v.consumers]} if consumers else {}),
            }
            for v in pred.venvs
        ],
    }


def _consumer(c: ConsumerPrediction) -> dict[str, Any]:
    k = c.consumer
    p = k.primary
    return {
        "kind": k.kind.value,
        "name": k.name,
        "source": k.source,
        "line": k.line,
        "user": k.user,
        "ref": p.kind.value if p else None,
        "enabled": k.enabled,
        "running": k.running,
        "trigger": k.trigger,
        "breaks": c.breaks,
        "fails_how": c.fails_how.value if c.fails_how is not None else None,
        "why": c.why,
        "broken_now": c.broken_now,
        "embedded_python": k.embedded_python,
        "embedded_python_then": c.embedded_then,
        "after_repair": c.after_repair,
        "restart": k.restart.command,
    }


#: The kinds of a prediction's document: ``predict`` and ``plan`` print the same payload.
PREDICTION_KINDS = (Kind.PREDICT, Kind.PLAN)


def prediction_to_dict(pred: Prediction, kind: Kind = Kind.PREDICT) -> dict[str, Any]:
    """The document of ``predict --json`` (or, *kind* ``plan``, of ``plan --json``)."""
    if kind not in PREDICTION_KINDS:
        raise ValueError(f"a prediction is not a {kind.value} document")
    return envelope(kind, _prediction_payload(pred))


def render_json(pred: Prediction, kind: Kind = Kind.PREDICT) -> str:
    return dumps(prediction_to_dict(pred, kind))
