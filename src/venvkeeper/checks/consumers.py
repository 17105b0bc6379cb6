"""Consumer checks: a consumer judged with the facts of the venvs it names.

A family of its own in the registry (:data:`~venvkeeper.checks.registry.CONSUMER_CHECKS`):
each is a pure function from :class:`~venvkeeper.model.consumers.ConsumerFacts` (the
consumer as its reader made it, with each named venv's :class:`VenvFacts`, or None) to
findings. The readers' own problems (a consumer file that cannot be read or parsed) come
through :data:`FILES` so that every code is documented in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

from venvkeeper.checks._base import CodeDoc, ConsumerCheck
from venvkeeper.model.consumers import (
    Confidence,
    ConsumerFacts,
    Reference,
    RefKind,
    VenvState,
)
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import VenvFacts

EMBEDDED_MISMATCH = "embedded-python-mismatch"
HARDCODES_MINOR = "consumer-hardcodes-minor"
DANGLING = "consumer-dangling"
UNREADABLE = "consumer-unreadable"
SYNTAX = "consumer-syntax"


def venv_minor(facts: VenvFacts) -> Optional[str]:
    """The ``X.Y`` the venv runs (its base's), else its site-packages', else recorded."""
    if facts.base is not None and facts.base.version:
        return facts.base.version.rstrip("t")
    for s in facts.site_dirs:
        if s.python_version:
            return s.python_version.rstrip("t")
    rec = facts.recorded_version
    return ".".join(rec.split(".")[:2]) if rec else None


def site_minor(facts: VenvFacts) -> Optional[str]:
    """The ``X.Y`` the venv's packages are installed for (its ``lib/pythonX.Y``): what an
    embedding server imports from it, whatever its ``bin/python`` says now; else
    :func:`venv_minor`."""
    for s in facts.site_dirs:
        if s.python_version:
            return s.python_version.rstrip("t")
    return venv_minor(facts)


def _dangling(cf: ConsumerFacts) -> Iterator[Finding]:
    c = cf.consumer
    seen: set[str] = set()
    for r in c.refs:
        if r.venv is None or r.venv in seen:
            continue
        if r.venv_state not in (VenvState.GONE, VenvState.NOT_VENV):
            continue
        seen.add(r.venv)
        what = "is gone" if r.venv_state is VenvState.GONE else "is not a venv (no pyvenv.cfg)"
        sure = r.confidence is not Confidence.UNRESOLVED
        yield Finding(
            DANGLING,
            Severity.CRITICAL if sure else Severity.WARNING,
            f"{c.name}{_where(c.name, r)} names {r.path or r.venv}, but {r.venv} {what}:"
            f" it {_fails(cf)}",
        )


def _where(name: str, r: Reference) -> str:
    """`` (FILE:LINE)`` of a reference, unless the consumer's name says it already."""
    where = f"{r.source}:{r.line}" if r.line else r.source
    return "" if name in (where, r.source) else f" ({where})"


def _fails(cf: ConsumerFacts) -> str:
    return cf.consumer.fails_phrase(cf.consumer.fails_how(loud=True))


def _embedded(cf: ConsumerFacts) -> Iterator[Finding]:
    c = cf.consumer
    if not c.embedded_python:
        return
    for r in c.refs:
        if r.kind is not RefKind.EMBEDDED_HOME:
            continue
        facts = cf.facts_of(r.venv)
        minor = site_minor(facts) if facts is not None else None
        if minor is None or minor == c.embedded_python:
            continue
        yield Finding(
            EMBEDDED_MISMATCH,
            Severity.CRITICAL,
            f"{c.name} embeds Python {c.embedded_python} ({c.embedded_module or 'its module'})"
            f" but its venv {r.venv} is Python {minor}: the server stays up and every request"
            f" fails (HTTP 500); rebuild the venv with Python {c.embedded_python}",
        )


def _hardcode(cf: ConsumerFacts) -> Iterator[Finding]:
    c = cf.consumer
    for r in c.refs:
        if r.kind is not RefKind.SITEPKGS_HARDCODE or r.minor is None:
            continue
        facts = cf.facts_of(r.venv)
        minor = venv_minor(facts) if facts is not None else None
        if minor is None:
            continue
        where = _where(c.name, r)
        if minor != r.minor:
            yield Finding(
                HARDCODES_MINOR,
                Severity.WARNING,
                f"{c.name}{where} names {r.path}, but {r.venv} is Python {minor}: that"
                f" directory is not its site-packages; change python{r.minor} to"
                f" python{minor} in {r.key or 'that line'}",
            )
        else:
            yield Finding(
                HARDCODES_MINOR,
                Severity.INFO,
                f"{c.name}{where} hard-codes lib/python{r.minor}: it breaks at the next"
                " Python upgrade even after the venv is rebuilt, until that line is changed",
            )


def _files(cf: ConsumerFacts) -> Iterator[Finding]:
    yield from cf.consumer.problems


def _run(cf: ConsumerFacts) -> Iterator[Finding]:
    yield from _dangling(cf)
    yield from _embedded(cf)
    yield from _hardcode(cf)


CHECK = ConsumerCheck(
    "consumers",
    {
        EMBEDDED_MISMATCH: CodeDoc(
            Severity.CRITICAL,
            "an embedding server (mod_wsgi, uWSGI) runs a Python other than its venv's:"
            " HTTP 500 while the server looks healthy",
        ),
        HARDCODES_MINOR: CodeDoc(
            Severity.WARNING,
            "a consumer names lib/pythonX.Y of another minor than its venv's (info when the"
            " same: it breaks at the next upgrade)",
        ),
        DANGLING: CodeDoc(
            Severity.CRITICAL, "a consumer names a venv path that is gone or not a venv"
        ),
    },
    _run,
)

FILES = ConsumerCheck(
    "consumer-files",
    {
        UNREADABLE: CodeDoc(
            Severity.UNKNOWN,
            "a consumer's file (unit, crontab, server config) cannot be read: a FIFO, too"
            " large, permission denied, a link loop",
        ),
        SYNTAX: CodeDoc(
            Severity.WARNING,
            "a consumer's file has a syntax error, an include loop or bytes that are not"
            " UTF-8: what it runs may be misread",
        ),
    },
    _files,
)
