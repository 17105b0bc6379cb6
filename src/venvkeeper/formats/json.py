"""The JSON documents of ``scan`` (kind ``scan``: the whole report) and ``show`` (kind
``show``: one venv, under ``venv``, the same object as each of ``scan``'s ``venvs``), in
the one envelope of :mod:`venvkeeper.formats.envelope`.

Strings go out as found, unless one holds a character that is not safe to print (a byte
that was not UTF-8, a control character, DEL, a C1 control, a bidi control): then all of
it is escaped (``\\xNN``, ``\\uNNNN``; a backslash then as ``\\\\``), by the one rule of
:mod:`venvkeeper.textutil`. The document is always valid UTF-8 and safe to print."""

from __future__ import annotations

import pwd
import stat
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from venvkeeper.formats.envelope import Kind, envelope
from venvkeeper.formats.envelope import render as render_doc
from venvkeeper.model.findings import Severity
from venvkeeper.model.report import Report, VenvReport
from venvkeeper.textutil import to_json

if TYPE_CHECKING:
    from venvkeeper.checks import CodeDoc
    from venvkeeper.model.consumers import Consumer


def _user(uid: int) -> Optional[str]:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def venv_to_dict(rep: VenvReport, consumers: Optional[Sequence[Consumer]] = None) -> dict[str, Any]:
    """One venv; with *consumers* (they were read), its ``consumers`` too."""
    doc = _venv_to_dict(rep)
    if consumers is not None:
        from venvkeeper.formats.consumers import used_by_dicts

        doc["consumers"] = used_by_dicts(consumers)
    return doc


def _venv_to_dict(rep: VenvReport) -> dict[str, Any]:
    f = rep.facts
    base = f.base
    active = base.version if base else None
    return {
        "path": f.path,
        "root": f.root,
        "path_in_root": f.path_in_root,
        "status": rep.status.value,
        "kind": f.kind.value,
        "creator": f.creator.value,
        "alias_of": rep.alias_of,
        "python": {
            "recorded": f.recorded_version,
            "now": active,
            "patch": base.patch_version if base else None,
            "executable": base.executable if base else None,
            "origin": base.origin.value if base else None,
            "copy": base.is_copy if base else None,
            "stdlib_present": base.stdlib_present if base else None,
            "prefix": base.prefix if base else None,
        },
        "packages": len(f.distributions),
        "findings": [
            {"code": x.code, "severity": x.severity.value, "message": x.message}
            for x in rep.findings
        ],
        "pyvenv_cfg": None
        if f.cfg is None
        else {
            "values": {k: v for k, v in f.cfg.values.items()},
            "problems": [{"line": p.line, "message": p.message} for p in f.cfg.problems],
        },
        "pyvenv_cfg_error": f.cfg_error,
        "interpreter_links": [
            {
                "name": c.name,
                "hops": list(c.hops),
                "resolved": c.resolved,
                "broken_at": c.broken_at,
                "error": c.error,
            }
            for c in f.chains
        ],
        "site_packages": [
            {
                "path": s.path,
                "python_version": s.python_version,
                "active": s.python_version == active,
                "pth_imports": list(s.pth_imports),
                "pth_paths": [
                    {"pth": name, "path": where, "exists": ok} for name, where, ok in s.pth_paths
                ],
                "distributions": [
                    {
                        "name": d.name,
                        "version": d.version,
                        "installer": d.installer,
                        "requested": d.requested,
                        "requires_python": d.requires_python,
                        "direct_url": None
                        if d.direct_url_kind is None
                        else {
                            "kind": d.direct_url_kind.value,
                            "url": d.direct_url,
                            "vcs": d.vcs,
                            "commit_id": d.commit_id,
                            "path": d.editable_path,
                            "path_exists": d.editable_path_exists,
                        },
                        "extensions": [
                            {"path": x.path, "abi_tag": x.abi_tag} for x in d.extensions
                        ],
                        "problems": list(d.problems),
                        "placeholder": d.placeholder,
                        "egg_info": d.egg_info,
                    }
                    for d in s.distributions
                ],
            }
            for s in f.site_dirs
        ],
        "scripts": [
            {
                "name": sc.name,
                "interpreter": sc.interpreter,
                "interpreter_exists": sc.interpreter_exists,
                "relative": sc.relative,
            }
            for sc in f.scripts
        ],
        "activate_virtual_env": f.activate_virtual_env,
        "recorded_path": f.recorded_path,
        "owner": {"uid": f.owner_uid, "user": _user(f.owner_uid)},
        "mode": f"{stat.S_IMODE(f.mode):04o}",
        "writable_by_others": list(f.writable_by_others),
        "size_bytes": f.size_bytes,
        "read_errors": list(f.errors),
        "deep": None
        if rep.deep is None
        else {
            "ran": rep.deep.ran,
            "version": rep.deep.version,
            "failed_imports": list(rep.deep.failed_imports),
            "error": rep.deep.error,
            "uid": rep.deep.uid,
        },
    }


def report_to_dict(report: Report, with_venvs: bool = True) -> dict[str, Any]:
    doc = {
        "host": report.hostname,
        "started_at": datetime.fromtimestamp(report.started_at, timezone.utc).isoformat(),
        "duration_seconds": round(report.stats.duration_seconds, 3),
        "roots": list(report.roots),
        "summary": {
            "venvs": len(report.venvs),
            **{s.value: report.count(s) for s in Severity if s is not Severity.INFO},
            "worst": report.worst.value,
            "aliases": len(report.aliases),
            "conda_envs": len(report.conda_envs),
        },
        "stats": {
            "directories": report.stats.directories,
            "entries": report.stats.entries,
            "skipped": dict(sorted(report.stats.skipped.items())),
            "skipped_examples": [
                {"path": p, "reason": r} for p, r in report.stats.skipped_examples
            ],
        },
        "aliases": [{"path": a.path, "target": a.target} for a in report.aliases],
        "conda_envs": [{"path": c.path, "python": c.python} for c in report.conda_envs],
    }
    if with_venvs:
        doc["venvs"] = [venv_to_dict(v) for v in report.venvs]
    return envelope(Kind.SCAN, doc)


def render_chunks(
    report: Report, used_by: Optional[Mapping[str, Sequence[Consumer]]] = None
) -> Iterator[str]:
    """The JSON document in pieces, a venv at a time: the same text as :func:`render`
    without holding all of it (or all of its dictionaries) in memory at once. With
    *used_by* (venv path -> its consumers), each venv has its ``consumers``."""
    head = report_to_dict(report, with_venvs=False)
    text = to_json(head)
    yield text[:-1] + ', "venvs": ['
    for i, v in enumerate(report.venvs):
        consumers = None if used_by is None else used_by.get(v.path, ())
        yield ("," if i else "") + to_json(venv_to_dict(v, consumers))
    yield "]}\n"


def render(report: Report) -> str:
    """One line of JSON (the C encoder is used only without indentation, and a scan of a
    whole host is large). Pipe through ``jq`` to read it."""
    return "".join(render_chunks(report))


def render_venv(rep: VenvReport, consumers: Optional[Sequence[Consumer]] = None) -> str:
    return render_doc(Kind.SHOW, {"venv": venv_to_dict(rep, consumers)})


def render_codes(codes: Mapping[str, CodeDoc]) -> str:
    """``codes --json``: every finding code, its usual severity and its summary."""
    rows = [
        {"code": code, "severity": doc.severity.value, "summary": doc.summary}
        for code, doc in sorted(codes.items())
    ]
    return render_doc(Kind.CODES, {"codes": rows})
