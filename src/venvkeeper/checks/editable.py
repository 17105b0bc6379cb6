"""Editable installs (and egg-links) whose source directory is gone."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import Check, CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.venv import DirectUrlKind, VenvFacts
from venvkeeper.textutil import plural

MISSING = "editable-missing"


def run(facts: VenvFacts) -> Iterator[Finding]:
    gone: list[str] = []
    for site in facts.site_dirs:
        for d in site.distributions:
            if d.direct_url_kind is DirectUrlKind.EDITABLE and d.editable_path_exists is False:
                # a legacy (egg-link) one is a package too, its source as gone
                gone.append(f"{d.name} ({d.editable_path})")
        legacy = {d.dist_info for d in site.distributions if d.egg_info or d.editable_path}
        for name, target, exists in site.egg_links:
            if name in legacy:
                continue  # a legacy editable: told above, by its distribution
            if not exists:
                gone.append(f"{name} ({target or 'empty'})")
    if gone:
        yield Finding(
            MISSING,
            Severity.CRITICAL,
            f"{plural(len(gone), 'editable install')} point at a source directory that is"
            f" gone: {short_list(gone, 2)}; restore the source or reinstall from elsewhere",
        )


CHECK = Check(
    "editable",
    {MISSING: CodeDoc(Severity.CRITICAL, "an editable install's source directory is gone")},
    run,
)
