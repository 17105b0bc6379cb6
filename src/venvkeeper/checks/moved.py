"""A moved or renamed venv: scripts, activate or pyvenv.cfg name another directory."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.plan import Remedy
from venvkeeper.model.venv import VenvFacts
from venvkeeper.textutil import plural

MOVED = "moved"
FOREIGN_SCRIPTS = "scripts-foreign-interpreter"


def run(facts: VenvFacts) -> Iterator[Finding]:
    if facts.cfg is not None and facts.cfg.relocatable:
        return  # uv --relocatable: computed at run time
    elsewhere = [loc for loc in facts.locations if not loc.same_as_venv]
    if not elsewhere:
        return
    scripts = {s.name: s for s in facts.scripts}
    dead = [
        loc.source[len("script ") :]
        for loc in elsewhere
        if loc.source.startswith("script ")
        and scripts[loc.source[len("script ") :]].interpreter_exists is False
    ]
    live = [
        loc.source[len("script ") :]
        for loc in elsewhere
        if loc.source.startswith("script ") and loc.source[len("script ") :] not in dead
    ]
    old = sorted({loc.path for loc in elsewhere})
    old_txt = short_list(old, 2)
    if dead:
        yield Finding(
            MOVED,
            Severity.CRITICAL,
            f"venv was moved from {old_txt}: {plural(len(dead), 'console script')}"
            f" ({short_list(sorted(dead))}) name an interpreter that no longer exists and"
            " cannot start; recreate it here, or move it back",
        )
    else:
        sources = sorted({loc.source for loc in elsewhere if not loc.source.startswith("script ")})
        if live:
            sources.append(plural(len(live), "script"))
        yield Finding(
            MOVED,
            Severity.WARNING,
            f"venv was moved or copied from {old_txt} ({', '.join(sources)} still name it):"
            " activate and scripts act on the old path; recreate it here",
        )
    if live:
        yield Finding(
            FOREIGN_SCRIPTS,
            Severity.WARNING,
            f"{plural(len(live), 'console script')} ({short_list(sorted(live))}) run the"
            f" interpreter of another venv ({old_txt}), not this one",
        )


CHECK = Check(
    "moved",
    {
        MOVED: CodeDoc(
            Severity.CRITICAL,
            "moved or renamed: critical when scripts can no longer start, else warning",
            repair=Remedy.PATHS,
        ),
        FOREIGN_SCRIPTS: CodeDoc(
            Severity.WARNING,
            "console scripts run another venv's interpreter",
            repair=Remedy.PATHS,
        ),
    },
    run,
)
