"""The JSON document: everything inspection found, with a schema version."""

from __future__ import annotations

import json
import pwd
import stat
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, Optional

from venvkeeper import __version__
from venvkeeper.model import Report, Severity, VenvReport
from venvkeeper.textutil import escape

SCHEMA_VERSION = 1


def _s(text: Optional[str]) -> Optional[str]:
    """Strings go out as they are, unless they hold bytes that were not UTF-8."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return escape(text)
    return text


def _user(uid: int) -> Optional[str]:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def venv_to_dict(rep: VenvReport) -> dict[str, Any]:
    f = rep.facts
    base = f.base
    active = base.version if base else None
    return {
        "path": _s(f.path),
        "status": rep.status.value,
        "kind": f.kind.value,
        "creator": f.creator.value,
        "alias_of": _s(rep.alias_of),
        "python": {
            "recorded": f.recorded_version,
            "now": active,
            "patch": base.patch_version if base else None,
            "executable": _s(base.executable) if base else None,
            "origin": base.origin.value if base else None,
            "copy": base.is_copy if base else None,
            "stdlib_present": base.stdlib_present if base else None,
            "prefix": _s(base.prefix) if base else None,
        },
        "packages": len(f.distributions),
        "findings": [
            {"code": x.code, "severity": x.severity.value, "message": _s(x.message)}
            for x in rep.findings
        ],
        "pyvenv_cfg": None
        if f.cfg is None
        else {
            "values": {_s(k): _s(v) for k, v in f.cfg.values.items()},
            "problems": [{"line": p.line, "message": _s(p.message)} for p in f.cfg.problems],
        },
        "pyvenv_cfg_error": f.cfg_error,
        "interpreter_links": [
            {
                "name": _s(c.name),
                "hops": [_s(h) for h in c.hops],
                "resolved": _s(c.resolved),
                "broken_at": _s(c.broken_at),
                "error": c.error,
            }
            for c in f.chains
        ],
        "site_packages": [
            {
                "path": _s(s.path),
                "python_version": s.python_version,
                "active": s.python_version == active,
                "pth_imports": [_s(x) for x in s.pth_imports],
                "distributions": [
                    {
                        "name": _s(d.name),
                        "version": _s(d.version),
                        "installer": _s(d.installer),
                        "requested": d.requested,
                        "requires_python": _s(d.requires_python),
                        "direct_url": None
                        if d.direct_url_kind is None
                        else {
                            "kind": d.direct_url_kind.value,
                            "url": _s(d.direct_url),
                            "vcs": _s(d.vcs),
                            "commit_id": _s(d.commit_id),
                            "path": _s(d.editable_path),
                            "path_exists": d.editable_path_exists,
                        },
                        "extensions": [
                            {"path": _s(x.path), "abi_tag": _s(x.abi_tag)} for x in d.extensions
                        ],
                        "problems": list(d.problems),
                    }
                    for d in s.distributions
                ],
            }
            for s in f.site_dirs
        ],
        "scripts": [
            {
                "name": _s(sc.name),
                "interpreter": _s(sc.interpreter),
                "interpreter_exists": sc.interpreter_exists,
                "relative": sc.relative,
            }
            for sc in f.scripts
        ],
        "activate_virtual_env": _s(f.activate_virtual_env),
        "recorded_path": _s(f.recorded_path),
        "owner": {"uid": f.owner_uid, "user": _user(f.owner_uid)},
        "mode": f"{stat.S_IMODE(f.mode):04o}",
        "writable_by_others": [_s(w) for w in f.writable_by_others],
        "size_bytes": f.size_bytes,
        "read_errors": [_s(e) for e in f.errors],
        "deep": None
        if rep.deep is None
        else {
            "ran": rep.deep.ran,
            "version": rep.deep.version,
            "failed_imports": [_s(x) for x in rep.deep.failed_imports],
            "error": _s(rep.deep.error),
            "uid": rep.deep.uid,
        },
    }


def report_to_dict(report: Report, with_venvs: bool = True) -> dict[str, Any]:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "venvkeeper", "version": __version__},
        "host": _s(report.hostname),
        "started_at": datetime.fromtimestamp(report.started_at, timezone.utc).isoformat(),
        "duration_seconds": round(report.stats.duration_seconds, 3),
        "roots": [_s(r) for r in report.roots],
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
                {"path": _s(p), "reason": r} for p, r in report.stats.skipped_examples
            ],
        },
        "aliases": [{"path": _s(a.path), "target": _s(a.target)} for a in report.aliases],
        "conda_envs": [{"path": _s(c.path)} for c in report.conda_envs],
    }
    if with_venvs:
        doc["venvs"] = [venv_to_dict(v) for v in report.venvs]
    return doc


def render_chunks(report: Report) -> Iterator[str]:
    """The JSON document in pieces, a venv at a time: the same text as :func:`render`
    without holding all of it (or all of its dictionaries) in memory at once."""
    head = report_to_dict(report, with_venvs=False)
    text = json.dumps(head, ensure_ascii=False)
    yield text[:-1] + ', "venvs": ['
    for i, v in enumerate(report.venvs):
        yield ("," if i else "") + json.dumps(venv_to_dict(v), ensure_ascii=False)
    yield "]}\n"


def render(report: Report) -> str:
    """One line of JSON (the C encoder is used only without indentation, and a scan of a
    whole host is large). Pipe through ``jq`` to read it."""
    return "".join(render_chunks(report))


def render_venv(rep: VenvReport) -> str:
    doc = {"schema_version": SCHEMA_VERSION, **venv_to_dict(rep)}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
