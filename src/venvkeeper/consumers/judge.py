"""Consumers judged: each with the findings of the consumer checks and its venv's verdict,
and the venvs that nothing uses.

The venvs' facts come from the caller (``report_of``: a scan's reports, or ``inspect``
for a venv outside the scanned roots), so this stage needs no scan of its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Optional

from venvkeeper.checks.registry import run_consumer_checks
from venvkeeper.model.consumers import (
    Consumer,
    ConsumerFacts,
    ConsumerReport,
    ConsumerScan,
    JudgedConsumer,
    RefKind,
    VenvState,
)
from venvkeeper.model.report import VenvReport

ReportOf = Callable[[str], Optional[VenvReport]]


def real(path: str) -> str:
    """A venv directory's real path (a directory, never an interpreter: safe to resolve),
    to match a consumer's path with a scan's."""
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path


def judge(scan: ConsumerScan, report_of: ReportOf, scanned: Iterable[str] = ()) -> ConsumerReport:
    """Every consumer of *scan* judged; *scanned* are the venvs a scan found, to tell
    which nothing uses. *report_of* gives a venv's report (None: not a venv, or not
    inspected)."""
    t0 = time.monotonic()
    cache: dict[str, Optional[VenvReport]] = {}

    def rep(path: str) -> Optional[VenvReport]:
        if path not in cache:
            cache[path] = report_of(path)
        return cache[path]

    judged: list[JudgedConsumer] = []
    used: set[str] = set()
    for c in scan.consumers:
        venvs: list[tuple[str, Optional[VenvReport]]] = []
        for v in c.venvs:
            state = next((r.venv_state for r in c.refs if r.venv == v), VenvState.UNKNOWN)
            venvs.append((v, rep(v) if state is VenvState.VENV else None))
            used.add(real(v))
        facts = ConsumerFacts(c, tuple((v, r.facts if r else None) for v, r in venvs))
        primary = rep(c.venv) if c.venv and venvs and venvs[0][1] is not None else None
        judged.append(
            JudgedConsumer(c, run_consumer_checks(facts), primary.status if primary else None)
        )
    unused = tuple(sorted(p for p in scanned if real(p) not in used))
    return ConsumerReport(
        tuple(judged), unused, scan.problems, scan.seconds + time.monotonic() - t0
    )


def by_venv(consumers: Iterable[Consumer]) -> Mapping[str, tuple[Consumer, ...]]:
    """The consumers of each venv, keyed by the venv's real path (see :func:`real`)."""
    out: dict[str, list[Consumer]] = {}
    for c in consumers:
        for v in c.venvs:
            out.setdefault(real(v), []).append(c)
    return {k: tuple(v) for k, v in out.items()}


def depending(scan: ConsumerScan, modules: Iterable[str], venvs: Iterable[str]) -> ConsumerScan:
    """The consumers of *scan* that a package run can have changed, when it changed the
    embedding modules *modules* (``mod_wsgi*.so``, uWSGI's python plugins, ``libpython``)
    and the venvs *venvs* were judged again: those embedding one of the modules (every
    consumer that embeds Python when a ``libpython`` changed: each module needs one), and
    those that name one of the venvs."""
    changed = {real(m) for m in modules} | set(modules)
    libpython = any(os.path.basename(m).startswith("libpython") for m in changed)
    judged = {real(v) for v in venvs}
    keep = []
    for c in scan.consumers:
        embeds = c.embedded_module is not None or c.embedded_python is not None
        if (
            embeds
            and (
                libpython
                or c.embedded_module in changed
                or (c.embedded_module is not None and real(c.embedded_module) in changed)
            )
        ) or any(real(v) in judged for v in c.venvs):
            keep.append(c)
    return ConsumerScan(tuple(keep), (), scan.seconds, scan.files)


def embedded_minors(consumers: Iterable[Consumer]) -> Mapping[str, str]:
    """The Python ``X.Y`` each venv must be built for because a server embeds it (mod_wsgi's
    ``python-home=``, uWSGI's ``home=``: the server's own libpython imports the venv's
    ``lib/pythonX.Y``), keyed by the venv's real path. A venv that servers of different
    minors embed, or whose server's minor is unknown, is left out: no one rebuild serves it."""
    seen: dict[str, set[Optional[str]]] = {}
    for c in consumers:
        for r in c.refs:
            if r.kind is RefKind.EMBEDDED_HOME and r.venv and r.venv_state is VenvState.VENV:
                seen.setdefault(real(r.venv), set()).add(c.embedded_python)
    out: dict[str, str] = {}
    for v, minors in seen.items():
        (only,) = minors if len(minors) == 1 else (None,)
        if only is not None:
            out[v] = only
    return out
