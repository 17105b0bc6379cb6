"""Every fact about a path outside a venv is read through the host seam (HostFS).

A prediction is ``rejudge`` of a scan's facts against an :class:`Overlay` of the changed
host: the same inspection on another host by construction, only if inspection asks every
outside fact of the seam and ``rejudge`` asks each again. This file lists those facts, builds
a venv whose verdict depends on each one (real venvs of a pyenv Python; an egg-link layout
by hand, the real one is tests/test_legacy.py), removes the outside path in an overlay, then
for real, and checks that the prediction is the scan after the change: the facts and the
findings. An incremental scan reuses a venv's own facts and asks the outside ones again the same
way: for each fact, a scan kept in an inventory, the outside path removed, and the next
scan (which reuses the venv) equals a scan from nothing. A last test classifies every
field of the facts, so a new field is placed on one side or the other.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from venvkeeper.checks.registry import run_checks
from venvkeeper.host.bases import HostCache
from venvkeeper.host.hostfs import Overlay
from venvkeeper.inventory import reuse
from venvkeeper.model.venv import Distribution, SiteDir, VenvFacts, VenvKind
from venvkeeper.scan import incremental
from venvkeeper.scan.inspect import inspect_venv, read_own, rejudge
from venvkeeper.scan.pipeline import ScanOptions, scan

from factory import FakeDistro, can_hide, make_project, make_venv

MINOR = "3.12"  # not the host's own minor: its /usr/lib/python3.X would be found instead


def outside(f: VenvFacts) -> dict[str, Any]:
    """The facts of *f* that depend on paths outside the venv (see OUTSIDE_FIELDS)."""
    return {
        "chains": [(c.name, c.hops, c.resolved, c.broken_at) for c in f.chains],
        "base": None
        if f.base is None
        else (f.base.version, f.base.prefix, f.base.stdlib_present, f.base.patch_version),
        "scripts": [(s.name, s.interpreter_exists) for s in f.scripts],
        "locations": [(loc.source, loc.path, loc.same_as_venv) for loc in f.locations],
        "creator": f.creator,
        "tool": f.tool,
        "dists": [
            (d.name, d.version, d.editable_path, d.editable_path_exists, d.egg_info)
            for d in f.distributions
        ],
        "egg_links": [s.egg_links for s in f.site_dirs],
        "pth_paths": [s.pth_paths for s in f.site_dirs],
    }


def codes(f: VenvFacts) -> set[tuple[str, str]]:
    return {(x.code, x.severity.value) for x in run_checks(f)}


def predicted_equals_scanned(venv: Path, gone: Path) -> tuple[set[tuple[str, str]], ...]:
    """Predict the removal of *gone*, then remove it (renamed away, put back after) and
    scan: the two agree. Returns the findings now and then."""
    now = inspect_venv(str(venv), VenvKind.VENV)
    then = rejudge(now, HostCache(Overlay(removed=[str(gone)]), None))
    aside = gone.with_name(gone.name + ".aside")
    os.rename(gone, aside)
    try:
        real = inspect_venv(str(venv), VenvKind.VENV, host=HostCache(packages_root=None))
    finally:
        os.rename(aside, gone)
    assert outside(then) == outside(real)
    assert codes(then) == codes(real)
    assert outside(inspect_venv(str(venv), VenvKind.VENV)) == outside(now)  # put back
    return codes(now), codes(then)


def _python() -> Path:
    if not FakeDistro.available(MINOR):
        pytest.skip(f"pyenv CPython {MINOR} is needed")
    from conftest import find_python

    exe = find_python(MINOR)
    assert exe is not None
    return exe


def _distro(tmp_path: Path) -> FakeDistro:
    if not can_hide():
        pytest.skip("needs root (a copied interpreter and its stdlib links)")
    d = FakeDistro(tmp_path / "usr")
    d.install(MINOR)
    d.set_default(MINOR)
    return d


# --- each outside fact, removed -----------------------------------------------------------


def base_binary(tmp_path: Path) -> tuple[Path, Path]:
    d = _distro(tmp_path)
    v = make_venv(d.root / "bin" / f"python{MINOR}", tmp_path / "v")
    return v, d.root / "bin" / f"python{MINOR}"


def base_stdlib(tmp_path: Path) -> tuple[Path, Path]:
    d = _distro(tmp_path)
    v = make_venv(d.root / "bin" / "python3", tmp_path / "v")
    return v, d.root / "lib" / f"python{MINOR}"


def editable_source(tmp_path: Path) -> tuple[Path, Path]:
    v = make_venv(_python(), tmp_path / "v")
    from factory import install

    proj = make_project(tmp_path / "work", "gamma")
    install(v, proj, editable=True)
    return v, proj.path


def egg_link_target(tmp_path: Path) -> tuple[Path, Path]:
    """A legacy editable as setup.py develop leaves it, for a src/ layout."""
    v = make_venv(_python(), tmp_path / "v")
    src = tmp_path / "work" / "proj"
    (src / "src" / "proj.egg-info").mkdir(parents=True)
    (src / "src" / "proj.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: proj\nVersion: 2.0\n"
    )
    site = v / "lib" / f"python{MINOR}" / "site-packages"
    (site / "proj.egg-link").write_text(f"{src}/src\n../")
    (site / "easy-install.pth").write_text(f"{src}/src\n")
    return v, src


def pth_directory(tmp_path: Path) -> tuple[Path, Path]:
    v = make_venv(_python(), tmp_path / "v")
    extra = tmp_path / "opt" / "lib"
    extra.mkdir(parents=True)
    (v / "lib" / f"python{MINOR}" / "site-packages" / "site-extra.pth").write_text(
        f"# the site's own modules\n{extra}\n"
    )
    return v, extra


def moved_from(tmp_path: Path) -> tuple[Path, Path]:
    """A venv copied elsewhere: its console script still runs the original's python."""
    old = make_venv(_python(), tmp_path / "old")
    (old / "bin" / "tool").write_text(f"#!{old}/bin/python\nprint('x')\n")
    (old / "bin" / "tool").chmod(0o755)
    new = tmp_path / "new"
    shutil.copytree(old, new, symlinks=True)
    return new, old


def pipenv_project(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "app"
    project.mkdir()
    (project / "Pipfile").write_text("[packages]\n")
    v = make_venv(_python(), tmp_path / "virtualenvs" / "app")
    (v / ".project").write_text(str(project))
    return v, project / "Pipfile"


def poetry_project(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "app"
    project.mkdir()
    (project / "poetry.toml").write_text("[virtualenvs]\nin-project = true\n")
    v = make_venv(_python(), project / ".venv")
    return v, project / "poetry.toml"


def pipx_siblings(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "apps"
    app = home / "venvs" / "black"
    app.mkdir(parents=True)
    (app / "pipx_metadata.json").write_text(json.dumps({"main_package": {"package": "black"}}))
    v = make_venv(_python(), home / "shared")
    return v, home / "venvs"


#: Every fact about a path outside the venv: how to build a venv that depends on it, and
#: the outside path whose removal changes it.
FACTS: dict[str, Callable[[Path], tuple[Path, Path]]] = {
    "interpreter links (bin/python -> the base)": base_binary,
    "the base's stdlib (and patch version)": base_stdlib,
    "editable and local sources (direct_url.json)": editable_source,
    "legacy editables (.egg-link target, its .egg-info)": egg_link_target,
    "directories .pth files add": pth_directory,
    "recorded locations, script interpreters": moved_from,
    "pipenv's project (Pipfile)": pipenv_project,
    "poetry's project (poetry.toml)": poetry_project,
    "pipx's other venvs (its shared venv)": pipx_siblings,
}


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_a_prediction_is_the_scan_after_the_change(tmp_path: Path, fact: str) -> None:
    venv, gone = FACTS[fact](tmp_path)
    before, after = predicted_equals_scanned(venv, gone)
    # The change matters: each fact is one the verdict or the plan depends on.
    changed = before != after
    if not changed:  # the creator (hence the plan's tool command) is what moves
        now = inspect_venv(str(venv), VenvKind.VENV)
        then = rejudge(now, HostCache(Overlay(removed=[str(gone)]), None))
        changed = (now.creator, now.tool) != (then.creator, then.tool)
    assert changed, f"{fact}: removing {gone} changed nothing"


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_an_incremental_scan_asks_each_outside_fact_again(
    tmp_path: Path, fact: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The venv's own facts are reused from the inventory (its files did not change); its
    outside facts are asked again: the scan after the removal equals a cold one."""
    monkeypatch.setattr(incremental, "RACY_SECONDS", 0.05)  # the venv was just made
    venv, gone = FACTS[fact](tmp_path)
    db = str(tmp_path / "inventory.db")
    options = ScanOptions(roots=(str(venv),))
    time.sleep(0.1)
    inc, why = reuse.prepare(db, full=False, collect=True)
    assert inc is not None, why
    reuse.record_and_keep(db, scan(options=options, reuse=inc.reuse), (), inc)
    own = read_own(str(venv))
    aside = gone.with_name(gone.name + ".aside")
    os.rename(gone, aside)
    try:
        # what is kept reads nothing outside the venv: the same without the outside path
        assert read_own(str(venv)) == own
        inc, why = reuse.prepare(db, full=False, collect=True)
        assert inc is not None, why
        warm = scan(options=options, reuse=inc.reuse)
        cold = scan(options=options)
    finally:
        os.rename(aside, gone)
    assert inc.reuse.reused == {str(venv)}, f"{fact}: the venv was read again"
    (w,), (c,) = warm.venvs, cold.venvs
    assert outside(w.facts) == outside(c.facts)
    assert (w.facts, w.findings) == (c.facts, c.findings)


def _twin(venv: Path, dest: Path) -> Path:
    """A copy of *venv* in the same group (:mod:`venvkeeper.scan.grouping`): its scripts
    run its own python, as the original's run the original's."""
    shutil.copytree(venv, dest, symlinks=True)
    for p in (dest / "bin").iterdir():
        if p.is_file() and not p.is_symlink():
            head = p.read_bytes()
            if head.startswith(b"#!"):
                p.write_bytes(head.replace(str(venv).encode(), str(dest).encode()))
    return dest


#: The facts whose venv is never kept: pipenv's ``.project`` is read again in every scan.
NEVER_KEPT = {"pipenv's project (Pipfile)"}


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_a_verdict_is_kept_only_while_every_outside_answer_is_the_same(
    tmp_path: Path, fact: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incremental scan keeps the verdict of an unchanged venv without judging it
    (:class:`venvkeeper.scan.incremental.KeptReport`) while its group's view (told by a
    twin in the same group, walked first and judged) and every other answer of the host
    it asked are the same; with the outside path removed, it is judged again, and the
    scan (what the inventory records too) equals a scan from nothing."""
    from venvkeeper.inventory.snapshot import snapshot_of_venv

    monkeypatch.setattr(incremental, "RACY_SECONDS", 0.05)  # the venvs were just made
    venv, gone = FACTS[fact](tmp_path)
    twin = _twin(venv, tmp_path / "0twin")  # walked first: roots go in sorted order
    db = str(tmp_path / "inventory.db")
    options = ScanOptions(roots=(str(twin), str(venv)), walk_workers=1, walk_beside=False)

    def incremental_scan() -> tuple[Any, incremental.Reuse]:
        inc, why = reuse.prepare(db, full=False, collect=True)
        assert inc is not None, why
        report = scan(options=options, reuse=inc.reuse)
        reuse.record_and_keep(db, report, (), inc)
        return report, inc.reuse

    time.sleep(0.1)
    incremental_scan()  # everything read
    _, used = incremental_scan()  # nothing changed
    assert str(twin) not in used.verdicts_kept  # judged: it tells its group's view
    assert (str(venv) in used.verdicts_kept) is (fact not in NEVER_KEPT), fact
    aside = gone.with_name(gone.name + ".aside")
    os.rename(gone, aside)
    try:
        warm, used = incremental_scan()
        cold = scan(options=options)
    finally:
        os.rename(aside, gone)
    assert str(venv) not in used.verdicts_kept, f"{fact}: its verdict was kept"
    assert [v.path for v in warm.venvs] == [v.path for v in cold.venvs]
    for w, c in zip(warm.venvs, cold.venvs):
        assert (w.facts, w.findings) == (c.facts, c.findings), fact
        assert snapshot_of_venv(w) == snapshot_of_venv(c), fact


# --- every field is on one side ------------------------------------------------------------

#: Fields whose value depends on paths outside the venv: asked of the seam, re-asked by
#: rejudge (and compared by outside() above).
OUTSIDE_FIELDS = {
    VenvFacts: {"chains", "base", "scripts", "locations", "creator", "tool", "errors"},
    SiteDir: {"egg_links", "pth_paths", "distributions"},
    Distribution: {"editable_path_exists", "egg_info", "name", "version", "top_level"},
}
#: Fields read from the venv's own files (or derived from them): kept by rejudge.
INSIDE_FIELDS = {
    VenvFacts: {
        "path",
        "kind",
        "cfg",
        "cfg_error",
        "site_dirs",
        "activate_virtual_env",
        "recorded_path",
        "owner_uid",
        "mode",
        "writable_by_others",
        "orig_prefix",
        "size_bytes",
        "recorded_python",
        "root",  # where the venv lies (the OS root whose view judges it): not re-asked
    },
    SiteDir: {"path", "python_version", "pth_imports", "writable_by_others"},
    Distribution: {
        "site_dir",
        "dist_info",
        "installer",
        "requested",
        "requires_python",
        "direct_url_kind",
        "direct_url",
        "vcs",
        "commit_id",
        "editable_path",
        "extensions",
        "wheel_tags",
        "problems",
        "placeholder",
    },
}


@pytest.mark.parametrize("cls", [VenvFacts, SiteDir, Distribution], ids=lambda c: c.__name__)
def test_every_fact_is_classified_inside_or_outside(cls: type) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    assert not OUTSIDE_FIELDS[cls] & INSIDE_FIELDS[cls]
    assert names == OUTSIDE_FIELDS[cls] | INSIDE_FIELDS[cls], (
        "a new field: is it read from outside the venv (then through the HostFS seam,"
        " re-asked by scan/inspect.py rejudge, listed in OUTSIDE_FIELDS and outside())"
        " or from the venv's own files (INSIDE_FIELDS)?"
    )
