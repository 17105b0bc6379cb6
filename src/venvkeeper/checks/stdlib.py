"""The base's standard library is gone (a removed minor, a copied interpreter left alone)."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.plan import Remedy
from venvkeeper.model.venv import VenvFacts

MISSING = "stdlib-missing"


def run(facts: VenvFacts) -> Iterator[Finding]:
    base = facts.base
    if base is None or base.version is None or base.is_script or base.stdlib_present is not False:
        return
    home = facts.orig_prefix or (facts.cfg.get("home") if facts.cfg else None) or base.executable
    what = "the copied interpreter" if base.is_copy else f"Python {base.version}"
    yield Finding(
        MISSING,
        Severity.CRITICAL,
        f"the standard library of {what} (lib/python{base.version} above {home}) is gone:"
        " the venv dies at start-up ('No module named encodings'); rebuild it on an"
        " installed Python",
    )


CHECK = Check(
    "stdlib",
    {
        MISSING: CodeDoc(
            Severity.CRITICAL,
            "the base's lib/pythonX.Y (os.py landmark) is gone",
            repair=Remedy.INTERPRETER,
        )
    },
    run,
)
