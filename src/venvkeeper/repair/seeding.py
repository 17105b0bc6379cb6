"""The seed packages of a rebuilt venv (pip, setuptools, wheel).

pip as the old venv had it (its old version on the same minor, the new Python's own on
another: an old pip may not run there); the seeds the venv's code needs
(:mod:`venvkeeper.predict.seeds`) at the old version when it installs and imports on the
new Python, else at the nearest version that does. A seed never stops a repair: when no
version works it is left out, said in the notes, and verification decides.
"""

from __future__ import annotations

import os
from typing import Optional

from venvkeeper.model.repair import PackageChange
from venvkeeper.predict.plan import packages_minor
from venvkeeper.predict.seeds import is_seed
from venvkeeper.repair.audit import installed
from venvkeeper.repair.backends import Backend, nearest_first
from venvkeeper.repair.work import Log, Work
from venvkeeper.textutil import canonical_name


class Seeder:
    """Installs the seeds of the venv being built at *python*'s venv with *backend*, as
    *work* runs programs, reporting to *log*."""

    def __init__(self, work: Work, log: Log, python: str, backend: Backend) -> None:
        self.work = work
        self.log = log
        self.python = python
        self.backend = backend
        self.venv = os.path.dirname(os.path.dirname(python))

    def seed_all(self) -> None:
        """pip, then the other seeds."""
        self.seed_pip()
        self.seed_needed()

    def _cross_minor(self) -> bool:
        target = self.work.plan.target
        return target is not None and packages_minor(self.work.rep.facts) != target.version

    def _install(self, spec: str, *, upgrade: bool) -> bool:
        work = self.work
        done = self.backend.install(
            self.python, [spec], work.options.sources, work.run, upgrade=upgrade
        )
        return done.returncode == 0

    def _ensurepip(self) -> bool:
        done = self.work.run([self.python, "-m", "ensurepip", "--default-pip"], 600)
        return done.returncode == 0

    def seed_pip(self) -> None:
        """The old venv had pip: so does the new one. For the same minor, at its old
        version; for another minor, the new Python's own (ensurepip's): an old pip may not
        run on a newer Python at all (pip 23.0 on 3.12: no ``pkgutil.ImpImporter``)."""
        plan = self.work.plan
        old = next((s for s in plan.skipped if canonical_name(s.split("==")[0]) == "pip"), None)
        if old is None:
            return
        have = installed(self.venv).get("pip")
        if self._cross_minor():
            if have is None:
                if not self._ensurepip():
                    self.log.note("pip could not be installed in the new venv")
                    return
                have = installed(self.venv).get("pip")
            if have is not None and f"pip=={have[1]}" != old:
                self.log.note(f"pip: {old.split('==')[1]} -> {have[1]} (the new Python's own)")
            return
        if have is not None and f"pip=={have[1]}" == old:
            return
        if self._install(old, upgrade=False):
            return
        if have is None and not self._ensurepip():
            self.log.note("pip could not be installed in the new venv")
            return
        self.log.note(f"{old} did not install: the new venv has its Python's own pip")

    def seed_needed(self) -> None:
        """The seeds something in the venv needs (the others are left to the new venv's
        creator, said in the notes): the old version when it installs and imports on the
        new Python, else the nearest that does and provides what was used
        (``pkg_resources`` only when something used it)."""
        plan, seeds = self.work.plan, self.work.seeds
        for spec in plan.skipped:
            name, _, version = spec.partition("==")
            if is_seed(name):
                self.log.note(
                    f"{name} {version}: seeded by the old venv's creator and needed by nothing"
                    " in it: left to the new venv's own seed"
                )
        for r in plan.packages:
            if not is_seed(r.name):
                continue
            name = canonical_name(r.name)
            code = f"import {name.replace('-', '_')}"
            if name == "setuptools" and seeds.pkg_resources:
                code += ", pkg_resources"
            why = seeds.why(name)
            installs = self._install(r.spec, upgrade=False)
            problem = None if installs else "not available from the sources"
            if problem is None:
                problem = self.probe(code)
                if problem is None:
                    continue
            got = self.nearest_working(r.name, r.version, code)
            if got is None:
                self.log.note(
                    f"{r.name} {r.version} ({problem}) left out: no version from the sources"
                    f" installs and works on Python {self.work.target.version}"
                    f" (needed: {why})"
                )
                continue
            self.log.changed(PackageChange(r.name, r.version, got))
            self.log.note(f"{r.name}: {r.version} -> {got} ({problem}; needed: {why})")

    def probe(self, code: str) -> Optional[str]:
        """None when *code* runs in the new venv, else the last line of its error."""
        done = self.work.run([self.python, "-I", "-B", "-c", code], 120)
        if done.returncode == 0:
            return None
        return (done.stderr.strip().splitlines() or ["?"])[-1][:200]

    def works(self, spec: str, code: str) -> bool:
        """*spec* installs (over what is there) and then *code* runs."""
        return self._install(spec, upgrade=True) and self.probe(code) is None

    def nearest_working(self, name: str, old: str, code: str, tries: int = 8) -> Optional[str]:
        """Install the version nearest to *old* that makes *code* run: the candidates the
        sources offer above it, nearest first, then those below it, nearest first."""
        work = self.work
        versions = self.backend.versions(self.python, name, work.options.sources, work.run)
        if versions is None:  # the backend cannot list them: each try raises the floor
            return self._lowest_working(name, old, code, tries)
        for v in nearest_first(versions, old)[:tries]:
            if self.works(f"{name}=={v}", code):
                return v
        return None

    def _lowest_working(self, name: str, old: str, code: str, tries: int) -> Optional[str]:
        floor = old
        for _ in range(tries):
            if not self._install(f"{name}>{floor}", upgrade=True):
                break
            got = installed(self.venv).get(canonical_name(name))
            if got is None or got[1] == floor:
                break
            if self.probe(code) is None:
                return got[1]
            floor = got[1]
        if self.works(f"{name}<{old}", code):
            got = installed(self.venv).get(canonical_name(name))
            return got[1] if got else None
        return None
