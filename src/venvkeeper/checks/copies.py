"""Copied interpreters: no security fixes reach them, and they fall behind their base."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import VenvFacts

COPIED = "copied-interpreter"
BEHIND = "copy-behind-base"


def _release(text: str) -> tuple[int, ...]:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text.split(".final")[0]).release
    except InvalidVersion:
        return ()


def run(facts: VenvFacts) -> Iterator[Finding]:
    base = facts.base
    if base is None or not base.is_copy:
        return
    yield Finding(
        COPIED,
        Severity.WARNING,
        f"bin/python is a private copy of the interpreter ({base.executable}): the OS's"
        " security fixes never reach it; recreate the venv with symlinks (the default)",
    )
    recorded = facts.recorded_version
    if recorded and base.patch_version:
        have, now = _release(recorded), _release(base.patch_version)
        if have and now and have[:2] == now[:2] and have < now:
            yield Finding(
                BEHIND,
                Severity.WARNING,
                f"the copy is Python {recorded} while its base is now {base.patch_version}:"
                " it misses the fixes in between; rebuild or relink",
            )
            return
    if base.copy_identical is False:
        yield Finding(
            BEHIND,
            Severity.WARNING,
            f"the copy differs from its base {base.copy_source}: it was copied from an older"
            " build and misses what changed since; rebuild or relink",
        )


CHECK = Check(
    "copies",
    {
        COPIED: CodeDoc(Severity.WARNING, "a copied interpreter that receives no security fixes"),
        BEHIND: CodeDoc(Severity.WARNING, "the copy is older than the base it came from"),
    },
    run,
)
