"""Seed packages: venv infrastructure, or something the venv's own code needs?

A venv's creator seeds pip (and setuptools up to 3.11, and wheel for virtualenv); a
release upgrade deletes the very wheels they came from (Debian's
``/usr/share/python-wheels``), and an old setuptools may not even import on the new
Python. So a rebuild should give the new venv what the new Python's creator seeds today,
*unless* something in the venv needs a seed. That is decided here, statically (nothing of
the venv runs): a seed is needed when

- another distribution's ``Requires-Dist`` names it (extras aside);
- installed code imports it (the ``.py`` files the other distributions' ``RECORD`` lists);
- a console script loads its entry point through ``pkg_resources`` (old setuptools
  scripts);
- it was asked for after the venv was made: ``REQUESTED`` written by an installer that
  writes it only for what was asked (pip), on a dist-info newer than the venv itself.

``pkg_resources`` is tracked apart: setuptools dropped it in 82.0.0, so a needed setuptools
must keep it only where something uses it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from venvkeeper.checks import BOOTSTRAP
from venvkeeper.host import fsutil
from venvkeeper.model.venv import Distribution, VenvFacts

#: What creators seed (pip is always left to the new venv's own seed).
SEEDS = tuple(sorted(BOOTSTRAP - {"pip"}))
#: Modules that mean a seed is used, and which seed provides them.
_PROVIDER = {"pkg_resources": "setuptools", "setuptools": "setuptools", "wheel": "wheel"}
_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+(pkg_resources|setuptools|wheel)\b|import[ \t]+([\w., \t]+))",
    re.M,
)
_DUNDER = re.compile(rb"""__import__\(\s*['"](pkg_resources|setuptools|wheel)['"]""")
#: A REQUESTED this much newer than pyvenv.cfg was written by a later install.
_LATER = 120.0
#: Most bytes read of one file, and most files read for one venv.
_FILE_LIMIT = 1 << 20
_MAX_FILES = 20000


@dataclass(frozen=True)
class SeedNeeds:
    """Why each seed of a venv is needed (no entry: nothing needs it), and whether
    something uses ``pkg_resources``."""

    reasons: dict[str, tuple[str, ...]]
    pkg_resources: tuple[str, ...] = ()

    def needed(self, name: str) -> bool:
        return bool(self.reasons.get(_canonical(name)))

    def why(self, name: str) -> str:
        got = self.reasons.get(_canonical(name), ())
        more = f" and {len(got) - 3} more" if len(got) > 3 else ""
        return "; ".join(got[:3]) + more


#: The answer when nothing was looked at: every seed needed (the old behaviour: keep).
KEEP_ALL = SeedNeeds({s: ("not checked",) for s in SEEDS}, ("not checked",))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_seed(name: str) -> bool:
    return _canonical(name) in SEEDS


def _requires(d: Distribution) -> Iterator[str]:
    """Canonical names of *d*'s unconditional requirements (extras left out)."""
    path = os.path.join(d.site_dir, d.dist_info, "METADATA")
    try:
        data, _ = fsutil.read_bytes(path, 1 << 20)
    except OSError:
        return
    head = data.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    for line in head.splitlines():
        if not line.lower().startswith("requires-dist:"):
            continue
        spec = line.split(":", 1)[1].strip()
        if ";" in spec and "extra" in spec.split(";", 1)[1]:
            continue
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
        if m:
            yield _canonical(m.group(0))


def _record_py(d: Distribution) -> Iterator[str]:
    """Absolute paths of the ``.py`` files *d*'s RECORD lists (inside its site dir)."""
    path = os.path.join(d.site_dir, d.dist_info, "RECORD")
    try:
        data, _ = fsutil.read_bytes(path, 8 << 20)
    except OSError:
        return
    base = os.path.realpath(d.site_dir)
    for line in data.decode("utf-8", "replace").splitlines():
        rel = line.rsplit(",", 2)[0] if line.count(",") >= 2 else line
        rel = rel.strip('"')
        if not rel.endswith(".py") or rel.startswith("/"):
            continue
        full = os.path.normpath(os.path.join(base, rel))
        if full.startswith(base + os.sep):  # ../../bin/x.py and the like: bin/ is read apart
            yield full


def _imports(data: bytes) -> set[str]:
    if b"pkg_resources" not in data and b"setuptools" not in data and b"wheel" not in data:
        return set()
    found: set[str] = set()
    for m in _IMPORT.finditer(data):
        if m.group(1):
            found.add(m.group(1).decode())
            continue
        for part in m.group(2).split(b","):
            name = part.strip().split(b" ")[0].split(b".")[0].decode("ascii", "replace")
            if name in _PROVIDER:
                found.add(name)
    found.update(m.group(1).decode() for m in _DUNDER.finditer(data))
    return found


def _scripts(venv: str) -> Iterator[tuple[str, bytes]]:
    bindir = os.path.join(venv, "bin")
    for e in fsutil.listdir(bindir):
        try:
            data, _ = fsutil.read_listed(e, 4096)
        except OSError:
            continue
        if data.startswith(b"#!"):
            yield e.name, data


def _requested_later(d: Distribution, cfg_mtime: float) -> bool:
    """Asked for after the venv was made (pip writes REQUESTED only for what was asked;
    uv writes it for everything, so uv's says nothing)."""
    if not d.requested or (d.installer or "").strip().lower() == "uv":
        return False
    try:
        st = os.stat(os.path.join(d.site_dir, d.dist_info))
    except OSError:
        return False
    return st.st_mtime > cfg_mtime + _LATER


def seed_needs(facts: VenvFacts, dists: Iterable[Distribution] | None = None) -> SeedNeeds:
    """Why each seed of the venv is needed, read statically from its files."""
    dists = list(facts.distributions if dists is None else dists)
    reasons: dict[str, list[str]] = {s: [] for s in SEEDS}
    pkg_resources: list[str] = []
    present = {_canonical(d.name) for d in dists}
    try:
        cfg_mtime = os.stat(os.path.join(facts.path, "pyvenv.cfg")).st_mtime
    except OSError:
        cfg_mtime = float("inf")
    budget = _MAX_FILES
    for d in dists:
        name = _canonical(d.name)
        if d.placeholder is not None:
            continue  # came with the seed (Debian's pkg_resources): never kept, never read
        if name in SEEDS:
            if _requested_later(d, cfg_mtime):
                reasons[name].append(f"installed on request after the venv was made ({d.version})")
            continue
        if name == "pip":
            continue
        for req in _requires(d):
            if req in reasons:
                reasons[req].append(f"{d.name} requires it")
        for path in _record_py(d):
            budget -= 1
            if budget < 0:
                break
            try:
                data, _ = fsutil.read_bytes(path, _FILE_LIMIT)
            except OSError:
                continue
            for mod in _imports(data):
                rel = os.path.relpath(path, d.site_dir)
                reasons[_PROVIDER[mod]].append(f"{rel} imports {mod}")
                if mod == "pkg_resources":
                    pkg_resources.append(f"{rel} imports pkg_resources")
    for script, data in _scripts(facts.path):
        if b"pkg_resources" in data and (
            b"load_entry_point" in data or b"__requires__" in data or b"import" in data
        ):
            reasons["setuptools"].append(
                f"bin/{script} loads its entry point through pkg_resources"
            )
            pkg_resources.append(f"bin/{script} uses pkg_resources")
    out = {k: tuple(dict.fromkeys(v)) for k, v in reasons.items() if v and k in present}
    return SeedNeeds(out, tuple(dict.fromkeys(pkg_resources)) if "setuptools" in out else ())
