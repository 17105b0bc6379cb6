"""The silent failure: the interpreter runs X.Y while the packages live in lib/pythonA.B."""

from __future__ import annotations

from collections.abc import Iterator

from venvkeeper.checks._base import BOOTSTRAP, Check, CodeDoc, short_list
from venvkeeper.model.findings import Finding, Severity
from venvkeeper.model.plan import Remedy
from venvkeeper.model.venv import VenvFacts
from venvkeeper.textutil import canonical_name, plural

MISMATCH = "version-mismatch"
HALF_UPGRADED = "half-upgraded"
CFG_DIFFERS = "cfg-version-differs"


def _lib_dir(venv: str, site: str) -> str:
    """``lib/python3.11`` (``lib64/python3.15`` where platlib is lib64) of a site directory."""
    rel = site[len(venv.rstrip("/")) + 1 :] if site.startswith(venv.rstrip("/") + "/") else site
    return rel.rsplit("/site-packages", 1)[0]


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def run(facts: VenvFacts) -> Iterator[Finding]:
    base = facts.base
    if base is None or base.version is None or base.is_script:
        return
    active = [s for s in facts.site_dirs if s.python_version == base.version]
    others = [s for s in facts.site_dirs if s.python_version != base.version]
    active_names = {canonical_name(d.name) for s in active for d in s.distributions}
    # A placeholder no index has (Debian's pkg_resources 0.0.0) came with the seed: like
    # pip and setuptools it is not what the venv is for. A legacy editable (egg-link) is.
    seedish = BOOTSTRAP | {
        canonical_name(d.name) for s in facts.site_dirs for d in s.distributions if d.placeholder
    }
    active_real = active_names - seedish
    stranded = [
        d
        for s in others
        for d in s.distributions
        if canonical_name(d.name) not in active_names and canonical_name(d.name) not in seedish
    ]
    recorded = facts.recorded_version
    if not stranded:
        if recorded and _minor(recorded) != base.version.rstrip("t"):
            yield Finding(
                CFG_DIFFERS,
                Severity.WARNING,
                f"pyvenv.cfg records Python {recorded} but bin/python runs {base.version}"
                " (a partial `venv --upgrade`?): tools that trust pyvenv.cfg misjudge it;"
                " recreate the venv or repair it",
            )
        return
    where = ", ".join(sorted({_lib_dir(facts.path, s.path) for s in others}))
    names = sorted({d.name for d in stranded})
    if not active_real:
        yield Finding(
            MISMATCH,
            Severity.CRITICAL,
            f"the interpreter is now Python {base.version} but {plural(len(names), 'package')}"
            f" ({short_list(names)}) {'lives' if len(names) == 1 else 'live'} in {where},"
            " invisible to it:"
            " recreate the venv with it and reinstall the same packages",
        )
    else:
        yield Finding(
            HALF_UPGRADED,
            Severity.WARNING,
            f"packages are split between lib/python{base.version} and {where}:"
            f" {plural(len(names), 'package')} ({short_list(names)}) exist only in {where},"
            f" invisible to Python {base.version}; reinstall them or rebuild the venv",
        )


CHECK = Check(
    "versions",
    {
        MISMATCH: CodeDoc(
            Severity.CRITICAL,
            "the interpreter is X.Y but the packages live in lib/pythonA.B: the silent failure",
            repair=Remedy.INTERPRETER,
        ),
        HALF_UPGRADED: CodeDoc(
            Severity.WARNING,
            "packages in two lib/pythonX.Y directories, some invisible",
            repair=Remedy.INTERPRETER,
        ),
        CFG_DIFFERS: CodeDoc(
            Severity.WARNING,
            "pyvenv.cfg records another minor than bin/python runs",
            repair=Remedy.INTERPRETER,
        ),
    },
    run,
)
