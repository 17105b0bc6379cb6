"""Base interpreters that no package manager patches: pyenv, /usr/local, uv, Homebrew Cellar."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import BaseOrigin, VenvFacts

UNMANAGED = "unmanaged-base"

_WHO = {
    BaseOrigin.PYENV: "pyenv",
    BaseOrigin.UV: "uv's managed Pythons",
    BaseOrigin.HOMEBREW: "a Homebrew Cellar path that pins one patch release",
    BaseOrigin.LOCAL: "a local install (/usr/local or /opt)",
    BaseOrigin.CONDA: "conda",
}


def run(facts: VenvFacts) -> Iterator[Finding]:
    base = facts.base
    if base is None or base.origin not in _WHO:
        return
    extra = ""
    if base.origin is BaseOrigin.HOMEBREW and "/Cellar/" in base.executable:
        extra = "; link through Homebrew's opt/ path instead"
    yield Finding(
        UNMANAGED,
        Severity.WARNING,
        f"the base {base.executable} comes from {_WHO[base.origin]}, not the OS package"
        f" manager: it gets security fixes only when someone upgrades it by hand{extra}",
    )


CHECK = Check(
    "origin",
    {
        UNMANAGED: CodeDoc(
            Severity.WARNING, "base interpreter not patched by the OS (pyenv, uv, ...)"
        )
    },
    run,
)
