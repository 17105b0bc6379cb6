"""Compiled extensions built for another interpreter than the one the venv now runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Optional

from venvkeeper.checks._base import Check, CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.plan import Remedy
from venvkeeper.model.venv import Distribution, VenvFacts
from venvkeeper.textutil import plural

MISMATCH = "abi-mismatch"

_CP_TAG = re.compile(r"^cp(\d)(\d+)(t?)-(.+?)-")


def _wheel_version(dist: Distribution) -> Optional[str]:
    """The CPython version an untagged extension was built for, from the WHEEL tags."""
    for tag in dist.wheel_tags:
        m = _CP_TAG.match(tag)
        if m and "abi3" not in m.group(4) and m.group(4) != "none":
            return f"{m.group(1)}.{m.group(2)}{m.group(3)}"
    return None


def run(facts: VenvFacts) -> Iterator[Finding]:
    base = facts.base
    if base is None or base.version is None:
        return
    bad: dict[str, str] = {}  # distribution -> the version its extensions need
    count = 0
    for site in facts.site_dirs:
        if site.python_version != base.version:
            continue  # invisible anyway: version-mismatch reports those
        for dist in site.distributions:
            for ext in dist.extensions:
                need = ext.python_version
                if ext.abi_tag is None:
                    need = _wheel_version(dist)
                if need is not None and need != base.version:
                    count += 1
                    bad[dist.name] = need
    if bad:
        needs = ", ".join(sorted(set(bad.values())))
        yield Finding(
            MISMATCH,
            Severity.CRITICAL,
            f"{plural(count, 'compiled extension')} ({short_list(sorted(bad))}) were built"
            f" for CPython {needs} but the interpreter is {base.version}: they cannot load;"
            " reinstall those packages or rebuild the venv",
        )


CHECK = Check(
    "abi",
    {
        MISMATCH: CodeDoc(
            Severity.CRITICAL,
            "compiled extensions tagged for another CPython",
            repair=Remedy.INTERPRETER,
        )
    },
    run,
)
