"""pyvenv.cfg missing, unreadable or malformed."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc
from venvkeeper.model import Finding, Severity, VenvFacts, VenvKind

UNREADABLE = "cfg-unreadable"
MALFORMED = "cfg-malformed"
NO_HOME = "cfg-no-home"
BOM_HOME = "cfg-bom-hides-home"


def run(facts: VenvFacts) -> Iterator[Finding]:
    if facts.kind is not VenvKind.VENV:
        return
    if facts.cfg_error:
        yield Finding(
            UNREADABLE,
            Severity.UNKNOWN,
            f"{facts.cfg_error}: the venv cannot be judged; check the file (as its owner)",
        )
        return
    cfg = facts.cfg
    if cfg is None:
        return
    if "home" not in cfg.values:
        yield Finding(
            NO_HOME,
            Severity.WARNING,
            "pyvenv.cfg has no 'home' key: Python cannot tell which base it belongs to;"
            " recreate it or add 'home = DIR-OF-BASE-PYTHON'",
        )
    first = next(iter(cfg.values), None)
    if first == "home" and any("byte-order mark" in p.message for p in cfg.problems):
        yield Finding(
            BOM_HOME,
            Severity.CRITICAL,
            "pyvenv.cfg starts with a byte-order mark, so Python does not see its 'home' line:"
            " the venv runs without its base; save the file without the BOM",
        )
    shown = [p for p in cfg.problems if "byte-order mark" not in p.message or first != "home"]
    if shown:
        p = shown[0]
        where = f"line {p.line}: " if p.line else ""
        more = f" (and {len(shown) - 1} more)" if len(shown) > 1 else ""
        yield Finding(MALFORMED, Severity.WARNING, f"pyvenv.cfg {where}{p.message}{more}")


CHECK = Check(
    "pyvenv.cfg",
    {
        UNREADABLE: CodeDoc(Severity.UNKNOWN, "pyvenv.cfg missing, unreadable, or not a regular file"),
        NO_HOME: CodeDoc(Severity.WARNING, "pyvenv.cfg has no `home` key"),
        BOM_HOME: CodeDoc(Severity.CRITICAL, "a byte-order mark hides the `home` key from Python"),
        MALFORMED: CodeDoc(Severity.WARNING, "junk lines, duplicate keys, NUL bytes, or a huge file"),
    },
    run,
)
