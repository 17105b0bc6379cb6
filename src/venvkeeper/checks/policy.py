"""Site policy applied to judged venvs: pure functions, no I/O.

A :class:`Policy` (from the configuration file) changes a scan's verdicts after the checks
ran, in this order: venvs whose path matches ``ignore`` are left out; a venv whose base
interpreter matches none of ``allowed_bases`` gets a ``base-not-allowed`` finding; then
``severity`` overrides replace the severity of findings by code, and each venv's status
follows from its overridden findings. The checks stay pure functions of a venv's facts;
the policy is the one place where a site's wishes enter.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from typing import Optional

from venvkeeper.checks._base import CodeDoc
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.policy import Policy
from venvkeeper.model.report import Report, VenvReport
from venvkeeper.model.venv import VenvFacts, VenvKind

BASE_NOT_ALLOWED = "base-not-allowed"

CODES = {
    BASE_NOT_ALLOWED: CodeDoc(
        Severity.WARNING, "policy: the base interpreter is not in [policy] allowed_bases"
    ),
}


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether *path* equals one of *patterns*, lies below one, or matches one as a glob."""
    for pat in patterns:
        if pat.endswith("/") and len(pat) > 1:
            pat = pat.rstrip("/")
        if path == pat or path.startswith(pat + "/") or fnmatch.fnmatchcase(path, pat):
            return True
    return False


def ignored(path: str, policy: Policy) -> bool:
    if not policy.ignore:
        return False
    if matches(path, policy.ignore):
        return True
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return False
    return real != path and matches(real, policy.ignore)


def base_candidates(facts: VenvFacts) -> list[str]:
    """Every path the venv names its base by: the link hops outside the venv, the real
    binary, the source of a copied interpreter, and ``home``'s interpreters."""
    inside = facts.path_in_root.rstrip("/") + "/"  # the hops are paths inside its root
    out: list[str] = []
    for chain in facts.chains:
        out += [h for h in chain.hops[1:] if not h.startswith(inside)]
        if chain.resolved and not chain.resolved.startswith(inside):
            out.append(chain.resolved)
    base = facts.base
    if base is not None:
        if not base.executable.startswith(inside):
            out.append(base.executable)
        if base.copy_source:
            out.append(base.copy_source)
    return list(dict.fromkeys(out))


def base_finding(facts: VenvFacts, allowed: tuple[str, ...]) -> Optional[Finding]:
    """``base-not-allowed`` when the venv's base matches none of *allowed* (None when
    *allowed* is empty, or the venv names no base at all: other findings say so)."""
    if not allowed or facts.kind is VenvKind.CONDA:
        return None
    cands = base_candidates(facts)
    if not cands or any(matches(c, allowed) for c in cands):
        return None
    shown = cands[-1] if facts.base is None else facts.base.copy_source or facts.base.executable
    return Finding(
        BASE_NOT_ALLOWED,
        CODES[BASE_NOT_ALLOWED].severity,
        f"the base {shown} is not one of the allowed bases ({', '.join(allowed)}):"
        " rebuild the venv on an allowed interpreter, or add it to [policy] allowed_bases",
    )


def apply_to_venv(rep: VenvReport, policy: Policy) -> VenvReport:
    """*rep* with the policy's finding added and its severity overrides applied."""
    findings = list(rep.findings)
    # (a report an incremental scan kept makes its facts only when they are read)
    extra = base_finding(rep.facts, policy.allowed_bases) if policy.allowed_bases else None
    if extra is not None and all(f.code != BASE_NOT_ALLOWED for f in findings):
        findings.append(extra)
    if policy.severity:
        findings = [
            dataclasses.replace(f, severity=policy.severity[f.code])
            if f.code in policy.severity
            else f
            for f in findings
        ]
    if findings == list(rep.findings):
        return rep
    findings.sort(key=lambda f: -f.severity.rank)
    return dataclasses.replace(rep, findings=tuple(findings))


def apply(report: Report, policy: Policy) -> Report:
    """*report* as the site's policy sees it (the module docstring tells the order)."""
    if policy.empty:
        return report
    venvs = [apply_to_venv(v, policy) for v in report.venvs if not ignored(v.path, policy)]
    venvs.sort(key=lambda r: (-r.status.rank, r.path))
    aliases = tuple(a for a in report.aliases if not ignored(a.path, policy))
    conda = tuple(c for c in report.conda_envs if not ignored(c.path, policy))
    return dataclasses.replace(report, venvs=tuple(venvs), aliases=aliases, conda_envs=conda)
