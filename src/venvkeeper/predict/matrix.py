"""One scan of a shared tree, judged as each of many hosts sees it: the venv x host matrix.

Every host is described by its profile (``venvkeeper host-profile``). Profiles that
describe the same interpreters in the same places (hosts of one release) form one group and
are judged once, with :func:`venvkeeper.predict.changes.predict` (the overlay of that
host's files over the scan: nothing is re-read from the venvs, nothing is run). A fleet of
100 hosts of 3 releases costs 3 judgements.

A venv that some host cannot run gets a layout: one venv per python3 minor beside it
(:func:`venvkeeper.model.matrix.sibling_path`: ``PATH-pyX.Y``), each built on a host of
that minor with ``venvkeeper repair --sibling PATH``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Optional

from venvkeeper.model.findings import Severity
from venvkeeper.model.host import HostProfile
from venvkeeper.model.matrix import (
    Cell,
    CellState,
    HostGroup,
    Layout,
    Matrix,
    Sibling,
    VenvRow,
    sibling_minor,
    sibling_path,
)
from venvkeeper.model.plan import Effect, VenvPrediction
from venvkeeper.model.policy import Policy
from venvkeeper.model.report import Report
from venvkeeper.model.venv import VenvKind
from venvkeeper.predict.changes import Change, breaking_effect, predict
from venvkeeper.predict.plan import made_with, packages_minor

#: The names whose minor is "the host's python3", the first found wins.
_PYTHON3 = ("/usr/bin/python3", "/bin/python3", "/usr/local/bin/python3")


def fingerprint(p: HostProfile) -> HostProfile:
    """What decides a judgement: the profile without its host's name, time and release
    text. Equal fingerprints give equal verdicts."""
    return dataclasses.replace(p, hostname="", created_at=0.0, os_release="")


def python3_of(p: HostProfile) -> Optional[str]:
    """The minor the host's ``python3`` runs (``/usr/bin/python3`` first)."""
    by_name = {n.path: i for i in p.interpreters for n in i.names}
    for name in _PYTHON3:
        if name in by_name:
            return by_name[name].version
    for i in p.interpreters:
        if any(n.path.endswith("/bin/python3") for n in i.names):
            return i.version
    return None


def group_hosts(profiles: Sequence[tuple[str, HostProfile]]) -> list[tuple[HostGroup, HostProfile]]:
    """(source, profile) pairs -> one group per distinct fingerprint, in the order each
    first appears, with the profile that represents it."""
    order: list[HostProfile] = []
    members: dict[HostProfile, list[tuple[str, HostProfile]]] = {}
    for source, p in profiles:
        key = fingerprint(p)
        if key not in members:
            members[key] = []
            order.append(key)
        members[key].append((source, p))
    out = []
    for n, key in enumerate(order, 1):
        ms = members[key]
        first = ms[0][1]
        group = HostGroup(
            id=f"h{n}",
            hosts=tuple(p.hostname for _, p in ms),
            sources=tuple(s for s, _ in ms),
            os_releases=tuple(dict.fromkeys(p.os_release for _, p in ms if p.os_release)),
            python3=python3_of(first),
        )
        out.append((group, first))
    return out


def cell_of(v: VenvPrediction, python3: Optional[str]) -> Cell:
    """One venv as one host sees it, from that host's judgement alone (what this host, the
    one that scans, thinks of the venv does not matter)."""
    then = v.then
    plan_minor = v.plan.target.version if v.plan is not None and v.plan.target else None
    if then is None:
        why = "the venv itself does not exist on that host"
        return Cell(CellState.BREAKS, Effect.REMOVED, "critical", None, why, plan_minor or python3)
    main = then.main_finding
    code, why = (main.code, main.message) if main is not None else (None, "")
    broken = breaking_effect(then)
    if broken is not None:
        return Cell(CellState.BREAKS, broken, "critical", code, why, plan_minor or python3)
    if then.status is Severity.UNKNOWN:
        return Cell(CellState.UNKNOWN, Effect.UNKNOWN, "unknown", code, why, None)
    base = then.facts.base
    minor = base.version if base is not None else python3
    effect = Effect.SURVIVES if then.status is Severity.OK else Effect.DEGRADES
    return Cell(CellState.WORKS, effect, then.status.value, code, why, minor)


def _interpreter(v: VenvPrediction) -> Optional[str]:
    """What a venv for that host is built with there: the rebuild's target, else the name
    the venv was made with (``/usr/bin/python3``)."""
    if v.plan is not None and v.plan.target is not None:
        return v.plan.target.path
    facts = v.then.facts if v.then is not None else v.now.facts
    base = facts.base
    if base is not None and base.is_copy:  # a copy: what it was copied from
        return made_with(facts) or base.copy_source
    return made_with(facts) or (base.executable if base is not None else None)


def build_matrix(
    report: Report,
    profiles: Sequence[tuple[str, HostProfile]],
    *,
    policy: Optional[Policy] = None,
) -> Matrix:
    """Judge every venv of *report* (one scan of the shared tree, from any host that
    mounts it) on every host of *profiles* ((file, profile) pairs), one judgement per group
    of identical profiles."""
    grouped = group_hosts(profiles)
    judged: list[dict[str, VenvPrediction]] = []
    for _group, profile in grouped:
        # Only each plan's target is used (the minor a venv for that host needs).
        pred = predict(report, Change(profile=profile), policy=policy, read_seeds=False)
        judged.append({v.path: v for v in pred.venvs})
    groups = tuple(g for g, _ in grouped)
    rows: list[VenvRow] = []
    seen: list[tuple[VenvRow, list[VenvPrediction]]] = []
    for rep in report.venvs:
        if rep.alias_of is not None or rep.facts.kind is VenvKind.CONDA:
            continue
        preds = [j[rep.path] for j in judged]
        cells = [cell_of(v, g.python3) for v, g in zip(preds, groups)]
        own = sibling_minor(rep.path)
        if own is not None:
            cells = [
                dataclasses.replace(c, state=CellState.OTHER_MINOR)
                if c.state is not CellState.WORKS and c.minor is not None and c.minor != own
                else c
                for c in cells
            ]
        row = VenvRow(rep.path, packages_minor(rep.facts), tuple(cells), own)
        seen.append((row, preds))
    by_path = {row.path: row for row, _ in seen}
    for row, preds in seen:
        if row.sibling_for is None and any(c.state is not CellState.WORKS for c in row.cells):
            row = dataclasses.replace(row, layout=_layout(row, preds, groups, by_path))
        rows.append(row)
    return Matrix(
        roots=report.roots,
        groups=groups,
        rows=tuple(rows),
        judgements=len(grouped),
        profiles=len(profiles),
    )


def _layout(
    row: VenvRow,
    preds: Sequence[VenvPrediction],
    groups: Sequence[HostGroup],
    rows: dict[str, VenvRow],
) -> Layout:
    """One venv per minor the hosts need, beside *row*'s venv."""
    minors: dict[str, list[int]] = {}
    unplaced: list[str] = []
    for k, cell in enumerate(row.cells):
        if cell.minor is None:
            unplaced.append(groups[k].id)
        else:
            minors.setdefault(cell.minor, []).append(k)
    siblings = []
    for minor, ks in sorted(minors.items(), key=lambda kv: _minor_key(kv[0])):
        path = sibling_path(row.path, minor)
        there = rows.get(path)
        works = there is not None and all(there.cells[k].state is CellState.WORKS for k in ks)
        siblings.append(
            Sibling(
                minor=minor,
                path=path,
                groups=tuple(groups[k].id for k in ks),
                build_on=groups[ks[0]].name,
                interpreter=_interpreter(preds[ks[0]]),
                exists=there is not None,
                works=works,
            )
        )
    return Layout(tuple(siblings), tuple(unplaced))


def _minor_key(minor: str) -> tuple[int, ...]:
    return tuple(int(x) for x in minor.rstrip("t").split("."))
