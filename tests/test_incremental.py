"""Incremental scans equal cold ones: over generated worlds (hypothesis: venvs created,
changed, broken, repaired, moved, bases swapped and stdlibs removed between scans) and over
real changes made by the real tools (uv, pip, venvkeeper repair). Each step is scanned twice:
once reusing what the inventory kept of the previous scan, once from nothing; the facts,
the findings and the walk's counts must be the same, and the reuse must really happen.

The fingerprint's claims (docs/performance.md) are tested one by one: a file replaced with
the same mtime, an mtime set back, a script rewritten in place, a file added inside a
dist-info directory. The inventory is migrated from schema 1, and an inventory that root
does not own is not used.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from venvkeeper.inventory import reuse as inv_reuse
from venvkeeper.inventory.snapshot import snapshot_of_venv
from venvkeeper.inventory.store import MIGRATIONS, SCHEMA_VERSION, open_store
from venvkeeper.model.report import Report
from venvkeeper.scan import incremental
from venvkeeper.scan.incremental import Reuse
from venvkeeper.scan.pipeline import ScanOptions, scan

from conftest import User, require_python, run_cli
from factory import FakeDistro, install, make_project, make_venv, sh

pytestmark = pytest.mark.slow

#: Changes made this long before a scan count as settled (instead of two seconds): the
#: tests sleep this long after each change rather than two seconds.
SETTLE = 0.05


@pytest.fixture(autouse=True)
def _short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incremental, "RACY_SECONDS", SETTLE)


def verdicts(report: Report) -> list[Any]:
    """What must not differ: every venv's facts and findings, what the inventory records
    of it (a kept verdict's snapshot is the kept one), the aliases, conda environments and
    the walk's counts."""
    s = report.stats
    return [
        [(v.path, v.alias_of, v.facts, v.findings, snapshot_of_venv(v)) for v in report.venvs],
        report.aliases,
        report.conda_envs,
        (s.directories, s.entries, sorted(s.skipped.items())),
    ]


def both(root: Path, db: Path, *, full: bool = False) -> tuple[Report, Report, Reuse]:
    """(the incremental scan, recorded and kept in *db*; a cold scan; the reuse used)."""
    time.sleep(SETTLE * 1.5)
    opts = ScanOptions(roots=(str(root),))
    inc, why = inv_reuse.prepare(str(db), full=full, collect=True)
    assert inc is not None and not why, why
    warm = scan(options=opts, reuse=inc.reuse)
    inv_reuse.record_and_keep(str(db), warm, (), inc)
    cold = scan(options=opts)
    return warm, cold, inc.reuse


def assert_same(warm: Report, cold: Report, label: str = "") -> None:
    w, c = verdicts(warm), verdicts(cold)
    for a, b, what in zip(w, c, ("venvs", "aliases", "conda", "walk")):
        assert a == b, f"{label}: the incremental scan's {what} differ: {_diff(a, b)}"


# --- the world: a distro-like prefix with two minors, venvs copied from templates --------


@dataclasses.dataclass
class World:
    base: Path  # the distro prefix (outside the scanned root)
    root: Path  # what is scanned
    templates: dict[str, Path]
    minors: tuple[str, str]


@pytest.fixture(scope="module")
def world_parts(tmp_path_factory: pytest.TempPathFactory) -> World:
    for minor in ("3.11", "3.12"):
        if not FakeDistro.available(minor):
            pytest.skip(f"pyenv CPython {minor} is needed")
    top = tmp_path_factory.mktemp("incr-world")
    distro = FakeDistro(top / "usr")
    for minor in ("3.11", "3.12"):
        distro.install(minor)
    distro.set_default("3.11")
    alpha = make_project(top / "p", "alpha", script="alpha-cli")
    beta = make_project(top / "p", "beta")
    gamma = make_project(top / "p", "gamma")
    tpl = top / "templates"
    templates = {
        "py3": make_venv(top / "usr" / "bin" / "python3", tpl / "py3"),
        "v312": make_venv(top / "usr" / "bin" / "python3.12", tpl / "v312"),
        "copies": make_venv(top / "usr" / "bin" / "python3.11", tpl / "copies", copies=True),
        "uv": make_venv(top / "usr" / "bin" / "python3.11", tpl / "uv", creator="uv"),
    }
    for name, v in templates.items():
        install(v, alpha, beta if name != "v312" else gamma)
    install(templates["py3"], gamma, editable=True)
    return World(top / "usr", top / "world", templates, ("3.11", "3.12"))


def _site(v: Path) -> Path:
    return next(v.glob("lib/python3.*/site-packages"))


def _old(p: Path, days: float = 3) -> None:
    t = time.time() - days * 86400
    os.utime(p, (t, t), follow_symlinks=False)


OPS = (
    "create",
    "delete",
    "add_dist",
    "remove_dist",
    "inside_dist",
    "script_in_place",
    "cfg_same_mtime",
    "mtime_back",
    "break",
    "repair",
    "swap_base",
    "stdlib_gone",
    "stdlib_back",
    "base_replaced",
    "chmod_site",
    "pth",
    "move",
    "alias",
    "plain_dirs",
)


def apply(w: World, op: str, n: int, made: dict[int, Path]) -> None:
    """One change to the world, as the tools or a person would make it."""
    names = sorted(w.templates)
    venvs = [made[k] for k in sorted(made) if made[k].exists()]
    v = venvs[n % len(venvs)] if venvs else None
    minor = w.minors[n % 2]
    if op == "create" or v is None:
        k = max(made, default=0) + 1
        dest = w.root / f"d{n % 3}" / f"v{k}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(w.templates[names[n % len(names)]], dest, symlinks=True)
        made[k] = dest
    elif op == "delete":
        shutil.rmtree(v)
    elif op == "add_dist":
        d = _site(v) / f"extra{n}-1.0.dist-info"
        d.mkdir(exist_ok=True)
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: extra{n}\nVersion: 1.0\n")
        (d / "RECORD").write_text("")
    elif op == "remove_dist":
        found = sorted(_site(v).glob("*.dist-info"))
        if found:
            shutil.rmtree(found[n % len(found)])
    elif op == "inside_dist":  # a file added (or removed) in a dist-info directory
        found = sorted(_site(v).glob("*.dist-info"))
        if found:
            requested = found[n % len(found)] / "REQUESTED"
            if requested.exists():
                requested.unlink()
            else:
                requested.write_text("")
    elif op == "script_in_place":  # rewritten in place, mtime put back
        scripts = [p for p in (v / "bin").iterdir() if p.name.endswith("-cli")]
        for p in scripts:
            st = p.stat()
            text = p.read_text()
            with open(p, "r+") as f:  # same inode
                f.seek(0)
                f.truncate()
                f.write(text.replace("#!", f"#!/nonexistent{n}/python\n#", 1))
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif op == "cfg_same_mtime":  # replaced by a copy (cp -p): new content, same mtime
        cfg = v / "pyvenv.cfg"
        st = cfg.stat()
        tmp = v / "pyvenv.cfg.new"
        tmp.write_text(cfg.read_text() + f"version_info = 3.{n % 20}.0\n")
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        tmp.replace(cfg)
    elif op == "mtime_back":  # a change, and the mtime set days back
        cfg = v / "pyvenv.cfg"
        cfg.write_text(cfg.read_text().replace("include-system-site-packages = false", "x = y"))
        _old(cfg)
        _old(v)
    elif op == "break":
        link = v / "bin" / "python"
        link.unlink()
        link.symlink_to(f"/nonexistent/python{minor}")
    elif op == "repair":
        link = v / "bin" / "python"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(w.base / "bin" / f"python{minor}")
    elif op == "swap_base":
        w.base.joinpath("bin", "python3").unlink()
        w.base.joinpath("bin", "python3").symlink_to(f"python{minor}")
    elif op == "stdlib_gone":
        lib = w.base / "lib" / f"python{minor}"
        if lib.is_symlink():
            lib.rename(lib.with_name(lib.name + ".gone"))
    elif op == "stdlib_back":
        gone = w.base / "lib" / f"python{minor}.gone"
        if gone.is_symlink():
            gone.rename(w.base / "lib" / f"python{minor}")
    elif op == "base_replaced":  # what dpkg does: a new file renamed over the old one
        exe = w.base / "bin" / f"python{minor}"
        other = w.base / "bin" / f"python{w.minors[(n + 1) % 2]}"
        tmp = exe.with_name(".dpkg-new")
        shutil.copy2(exe if n % 3 else other, tmp)
        tmp.replace(exe)
    elif op == "chmod_site":
        site = _site(v)
        site.chmod(site.stat().st_mode ^ 0o020)
    elif op == "pth":
        pth = _site(v) / "zz_extra.pth"
        if pth.exists():  # edited in place, its mtime put back
            st = pth.stat()
            with open(pth, "a") as f:
                f.write(f"import os  # {n}\n")
            os.utime(pth, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            pth.write_text("/tmp\n")
    elif op == "move":
        dest = v.parent.parent / f"d{(n + 1) % 3}" / (v.name + "m")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            v.rename(dest)
            for k, p in made.items():
                if p == v:
                    made[k] = dest
    elif op == "alias":
        link = v.parent / ".venv"
        if link.is_symlink():
            link.unlink()
        else:
            link.symlink_to(v)
    elif op == "plain_dirs":
        d = w.root / "plain" / f"p{n % 4}"
        if d.exists() and n % 2:
            shutil.rmtree(d)
        else:
            (d / "src" / f"s{n}").mkdir(parents=True, exist_ok=True)
            (d / "src" / f"s{n}" / "f.txt").write_text("x")
    else:  # pragma: no cover
        raise AssertionError(op)


@settings(max_examples=25, suppress_health_check=list(HealthCheck))
@given(
    steps=st.lists(
        st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 50)), min_size=1, max_size=4),
        min_size=1,
        max_size=5,
    )
)
def test_incremental_equals_cold_over_generated_worlds(
    world_parts: World, tmp_path_factory: pytest.TempPathFactory, steps: list[Any]
) -> None:
    """Random sequences of changes."""
    _run_world(world_parts, tmp_path_factory, steps)


@pytest.mark.parametrize("op", OPS)
def test_incremental_equals_cold_after_each_change(
    world_parts: World, tmp_path_factory: pytest.TempPathFactory, op: str
) -> None:
    """Each kind of change on its own, on each venv in turn (random sequences could mask
    one change by another on the same venv). Two venvs of each template: the verdicts of
    the unchanged venvs of a group are kept (:class:`incremental.KeptReport`), and must
    still equal a cold scan's."""
    kept = _run_world(
        world_parts,
        tmp_path_factory,
        [[(op, 0)], [(op, 0)], [(op, 1)], [(op, 2)], [(op, 5)]],
        venvs=8,
    )
    assert kept > 0, "no verdict was kept: the shortcut went untested"


def _run_world(
    world_parts: World,
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[Any],
    venvs: int = 3,
) -> int:
    """Run *steps* on a new world of *venvs* venvs, an incremental and a cold scan after
    each; how many verdicts the incremental scans kept (without judging them)."""
    w, top, db, made = _new_world(world_parts, tmp_path_factory, venvs)
    warm, cold, _ = both(w.root, db)
    assert_same(warm, cold, "first scan")
    kept = 0
    for n, batch in enumerate(steps):
        _settle_all(w.root)
        warm, cold, used = both(w.root, db)  # unchanged: everything reused
        assert_same(warm, cold, f"unchanged before step {n}")
        assert used.read_venvs == 0 and len(used.reused) == len(warm.venvs), used
        kept += len(used.verdicts_kept)
        for op, k in batch:
            apply(w, op, k, made)
        warm, cold, used = both(w.root, db)
        assert_same(warm, cold, f"after {batch}")
        kept += len(used.verdicts_kept)
    shutil.rmtree(top)
    return kept


def _new_world(
    world_parts: World, tmp_path_factory: pytest.TempPathFactory, venvs: int = 3
) -> tuple[World, Path, Path, dict[int, Path]]:
    """A world of its own (its base, templates, *venvs* venvs): (world, its top directory,
    its inventory, the venvs made)."""
    top = tmp_path_factory.mktemp("gen")
    w = dataclasses.replace(world_parts, root=top / "world", base=top / "usr")
    shutil.copytree(world_parts.base, w.base, symlinks=True)
    for minor in w.minors:
        gone = w.base / "lib" / f"python{minor}.gone"
        if gone.exists():
            gone.rename(w.base / "lib" / f"python{minor}")
    # the templates' links name the module's base: repoint them at this example's copy
    w.templates = {}
    for name, t in world_parts.templates.items():
        dest = top / "templates" / name
        shutil.copytree(t, dest, symlinks=True)
        for link in (dest / "bin").iterdir():
            if link.is_symlink() and str(world_parts.base) in os.readlink(link):
                target = os.readlink(link).replace(str(world_parts.base), str(w.base))
                link.unlink()
                link.symlink_to(target)
        cfg = dest / "pyvenv.cfg"
        cfg.write_text(cfg.read_text().replace(str(world_parts.base), str(w.base)))
        w.templates[name] = dest
    w.root.mkdir()
    db = top / "inventory.db"
    made: dict[int, Path] = {}
    for i in range(venvs):
        apply(w, "create", i, made)
    return w, top, db, made


# --- the apt hook's judging by groups equals judging each venv -----------------------------

#: What a package run changes: the base's files only (an apt run changes no venv).
HOST_OPS = ("patch", "patch_back", "swap_base", "stdlib_gone", "stdlib_back", "base_replaced")


def apply_host(w: World, op: str, n: int, made: dict[int, Path]) -> None:
    """One change of the base's files, as dpkg would make it."""
    minor = w.minors[n % 2]
    include = w.base / "include" / f"python{minor}"
    if op == "patch":  # a patch upgrade: the headers tell another X.Y.Z
        from venvkeeper.host.hostfs import patchlevel_bytes

        if include.is_symlink():
            include.rename(include.with_name(include.name + ".orig"))
        include.mkdir(exist_ok=True)
        (include / "patchlevel.h").write_bytes(patchlevel_bytes(f"{minor}.{50 + n}"))
    elif op == "patch_back":
        orig = include.with_name(include.name + ".orig")
        if orig.is_symlink():
            shutil.rmtree(include)
            orig.rename(include)
    else:
        apply(w, op, n, made)


def grouped_and_one_by_one(db: Path, root: Path) -> tuple[Any, Any]:
    """The apt hook's judging of every kept venv, by groups and one by one."""
    store, why = inv_reuse.open_for_reuse(str(db))
    assert store is not None, why
    with store:
        kept = inv_reuse.load(store, listings=False, own=False)
        paths = sorted(kept.facts)
        opts = ScanOptions(roots=(str(root),))
        own_of = inv_reuse.own_reader(store)
        grouped = inv_reuse.rejudge(kept, paths, (), opts, own_of=own_of)
        each = inv_reuse.rejudge(kept, paths, (), opts, grouped=False, own_of=own_of)
    return grouped, each


def assert_grouped_equals_each(grouped: Any, each: Any, label: str) -> None:
    assert [v.path for v in grouped.venvs] == [v.path for v in each.venvs], label
    for a, b in zip(grouped.venvs, each.venvs):
        assert a == b, f"{label}: {_diff(a, b)}"
    assert grouped.depends == each.depends, label
    assert grouped.verdicts == each.verdicts, label  # the groups and reads kept too


@settings(max_examples=20, suppress_health_check=list(HealthCheck))
@given(
    templates=st.lists(st.integers(0, 50), min_size=2, max_size=6),
    ops=st.lists(st.tuples(st.sampled_from(HOST_OPS), st.integers(0, 50)), min_size=1, max_size=4),
)
def test_judging_by_groups_equals_judging_each_venv(
    world_parts: World,
    tmp_path_factory: pytest.TempPathFactory,
    templates: list[int],
    ops: list[tuple[str, int]],
) -> None:
    """Venvs of every template (symlinked, copies, uv, on python3 or a minor), kept by a
    recorded scan; then the base's files change as a package run changes them (a patch
    upgrade, python3 repointed, a stdlib removed and back, the binary replaced): judging
    the kept venvs by groups gives what judging each one gives, verdicts and what is kept."""
    w, top, db, made = _new_world(world_parts, tmp_path_factory, venvs=0)
    for k in templates:
        apply(w, "create", k, made)
    both(w.root, db)
    for op, n in ops:
        apply_host(w, op, n, made)
    grouped, each = grouped_and_one_by_one(db, w.root)
    assert_grouped_equals_each(grouped, each, f"after {ops}")
    shutil.rmtree(top)


@pytest.mark.parametrize("op", HOST_OPS)
def test_judging_by_groups_after_each_host_change(
    world_parts: World, tmp_path_factory: pytest.TempPathFactory, op: str
) -> None:
    """Each change of the base on its own, with two or three venvs of each template (every
    group has members to keep or judge again), on each minor in turn."""
    w, top, db, made = _new_world(world_parts, tmp_path_factory, venvs=0)
    for k in range(11):
        apply(w, "create", k, made)
    both(w.root, db)
    for n in (0, 1, 0):
        apply_host(w, "patch" if op == "patch_back" else op, n, made)
        if op == "patch_back":
            apply_host(w, op, n, made)
        grouped, each = grouped_and_one_by_one(db, w.root)
        assert_grouped_equals_each(grouped, each, f"{op} {n}")
        # the next scan keeps the rows whose verdict did not change as they were (their
        # group's view older than the host): the next change is judged against that
        both(w.root, db)
    shutil.rmtree(top)


@pytest.mark.parametrize("op", HOST_OPS)
def test_a_scan_after_the_apt_hook_recorded_its_judging_equals_a_cold_one(
    world_parts: World, tmp_path_factory: pytest.TempPathFactory, op: str
) -> None:
    """The apt hook records what it judged again by groups (a member's verdict with the
    new base's summary, the group's new key); the next incremental scan keeps verdicts
    from those rows, and must still equal a cold scan, change after change."""
    w, top, db, made = _new_world(world_parts, tmp_path_factory, venvs=0)
    for k in range(11):
        apply(w, "create", k, made)
    both(w.root, db)
    kept = 0
    for n in (0, 1, 0):
        apply_host(w, "patch" if op == "patch_back" else op, n, made)
        if op == "patch_back":
            apply_host(w, op, n, made)
        store, why = inv_reuse.open_for_reuse(str(db))
        assert store is not None, why
        with store:
            k = inv_reuse.load(store, listings=False, own=False)
            opts = ScanOptions(roots=(str(w.root),))
            judged = inv_reuse.rejudge(
                k, sorted(k.facts), (), opts, own_of=inv_reuse.own_reader(store)
            )
            inv_reuse.record_rejudged(store, judged, k)
        warm, cold, used = both(w.root, db)
        assert_same(warm, cold, f"{op} {n}, after the hook")
        warm, cold, used = both(w.root, db)  # and once more, from what that scan kept
        assert_same(warm, cold, f"{op} {n}, the scan after")
        kept += len(used.verdicts_kept)
    assert kept > 0, "no verdict was kept: the shortcut went untested"
    shutil.rmtree(top)


def test_a_patch_upgrade_judges_one_venv_per_group(
    world_parts: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """After a patch upgrade of the base, the symlinked venvs keep their verdict (they read
    nothing of the patch version) and their summary tells the new patch; a copy is judged
    again (its check reads the patch version: copy-behind)."""
    w, top, db, made = _new_world(world_parts, tmp_path_factory, venvs=0)
    # templates by n % 4: copies, py3, uv, v312: one copy, five on python3, four of uv's
    for k in (0, 1, 5, 9, 13, 17, 2, 6, 10, 14):
        apply(w, "create", k, made)
    both(w.root, db)
    apply_host(w, "patch", 0, made)  # 3.11.50
    grouped, each = grouped_and_one_by_one(db, w.root)
    assert_grouped_equals_each(grouped, each, "patch")
    assert each.judged_in_full == len(each.venvs) == len(made) == 10
    assert grouped.judged_in_full == 3, grouped.judged_in_full  # a venv of each group, the copy
    copy = next(v for v in grouped.venvs if v.path.endswith("/v1"))
    assert "copy-behind-base" in {f.code for f in copy.findings}, copy
    patched = [v for v in grouped.venvs if v.python == "3.11"]
    assert patched and all(v.python_patch == "3.11.50" for v in patched)
    shutil.rmtree(top)


def _settle_all(root: Path) -> None:
    """Nothing is left within the racy window (a scan right after a change re-reads)."""
    time.sleep(SETTLE * 1.5)


# --- the fingerprint's claims, one by one ------------------------------------------------


@pytest.fixture
def one(world_parts: World, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    v = root / "v"
    root.mkdir()
    shutil.copytree(world_parts.templates["py3"], v, symlinks=True)
    db = tmp_path / "inventory.db"
    warm, cold, used = both(root, db)
    assert_same(warm, cold)
    assert used.read_venvs == 1
    warm, cold, used = both(root, db)
    assert used.reused == {str(v)} and used.read_venvs == 0 and used.reused_dirs > 0
    return v, db


def _rescanned(v: Path, db: Path) -> None:
    warm, cold, used = both(v.parent, db)
    assert_same(warm, cold)
    assert used.read_venvs == 1 and not used.reused, "the change went unseen"


def test_a_file_replaced_with_the_same_mtime_is_seen(one: tuple[Path, Path]) -> None:
    v, db = one
    cfg = v / "pyvenv.cfg"
    st = cfg.stat()
    new = v / "cfg.tmp"
    new.write_text(cfg.read_text().replace("include-system-site-packages = false", "k = v"))
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    new.replace(cfg)
    assert cfg.stat().st_mtime_ns == st.st_mtime_ns
    _rescanned(v, db)


def test_a_file_rewritten_in_place_with_its_mtime_put_back_is_seen(
    one: tuple[Path, Path],
) -> None:
    v, db = one
    script = v / "bin" / "alpha-cli"
    st = script.stat()
    subprocess.run(["cp", "-p", "/bin/true", str(script)], check=True)  # cp -p: in place
    os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert script.stat().st_ino == st.st_ino and script.stat().st_mtime_ns == st.st_mtime_ns
    _rescanned(v, db)


def test_an_mtime_set_back_is_seen(one: tuple[Path, Path]) -> None:
    v, db = one
    cfg = v / "pyvenv.cfg"
    cfg.write_text(cfg.read_text() + "prompt = moved\n")
    _old(cfg, 400)
    _old(v, 400)
    _rescanned(v, db)


def test_a_file_added_or_removed_inside_a_dist_info_is_seen(one: tuple[Path, Path]) -> None:
    v, db = one
    requested = next(_site(v).glob("alpha-*.dist-info")) / "REQUESTED"
    requested.unlink()
    _rescanned(v, db)
    requested.write_text("")
    _rescanned(v, db)


def test_what_the_fingerprint_does_not_see_full_does(one: tuple[Path, Path]) -> None:
    """The one blind spot (docs/performance.md): a file inside a dist-info directory
    rewritten in place (no installer does that: each install writes a new dist-info
    directory). ``--full`` reads it."""
    v, db = one
    du = next(_site(v).glob("alpha-*.dist-info")) / "direct_url.json"
    du.write_text('{"url": "file:///nowhere", "dir_info": {"editable": true}}')  # in place
    warm, cold, used = both(v.parent, db)
    assert used.reused == {str(v)}
    editable = [d.editable_path for d in warm.venvs[0].facts.distributions if d.name == "alpha"]
    assert editable != ["/nowhere"]
    warm, cold, used = both(v.parent, db, full=True)
    assert_same(warm, cold)
    assert [d.editable_path for d in warm.venvs[0].facts.distributions if d.name == "alpha"] == [
        "/nowhere"
    ]


def test_a_pth_edited_in_place_is_seen(one: tuple[Path, Path]) -> None:
    v, db = one
    pth = next(p for p in _site(v).glob("*.pth"))
    with open(pth, "a") as f:
        f.write("import os\n")
    _rescanned(v, db)


def test_a_recent_change_is_never_reused(
    world_parts: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the racy window a change could keep the recorded ctime (same clock tick):
    what changed less than RACY_SECONDS before a scan is read again by the next one."""
    monkeypatch.setattr(incremental, "RACY_SECONDS", 3600.0)
    root = tmp_path / "root"
    shutil.copytree(world_parts.templates["py3"], root / "v", symlinks=True)
    db = tmp_path / "inventory.db"
    for _ in range(2):
        warm, cold, used = both(root, db)
        assert_same(warm, cold)
        assert used.read_venvs == 1 and not used.reused and used.reused_dirs == 0


def test_full_reads_everything_again(one: tuple[Path, Path]) -> None:
    v, db = one
    warm, cold, used = both(v.parent, db, full=True)
    assert_same(warm, cold)
    assert used.read_venvs == 1 and not used.reused and used.reused_dirs == 0
    res = run_cli("scan", "--db", str(db), "--full", "-q", str(v.parent))
    assert res.code in (0, 1, 2) and res.err == "", res.err


def _stable(out: str) -> str:
    """A command's output without what differs between two runs (times, durations)."""
    import json
    import re

    if out.startswith("{"):
        doc = json.loads(out)
        for key in ("started_at", "duration_seconds"):
            doc.pop(key, None)
        return json.dumps(doc, sort_keys=True)
    return re.sub(r"seconds=[\d.]+s", "seconds=Ts", re.sub(r" in \d+\.\d+s", " in Ts", out))


def test_kept_verdicts_print_what_a_cold_scan_prints(
    world_parts: World, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every output of a scan whose verdicts were kept (:class:`incremental.KeptReport`:
    its facts made only when the output reads them) is the cold scan's: the JSON document,
    the table, ``-q``'s line and ``check``'s."""
    from venvkeeper.scan import pipeline

    w, top, db, _ = _new_world(world_parts, tmp_path_factory, venvs=8)
    kept: list[str] = []
    real = pipeline.Scanner._kept

    def noting(self: Any, cand: Any, reuse: Reuse, host: Any) -> Any:
        got = real(self, cand, reuse, host)
        if got is not None:
            kept.append(cand.path)
        return got

    monkeypatch.setattr(pipeline.Scanner, "_kept", noting)
    _settle_all(w.root)
    assert run_cli("scan", "--db", str(db), "-q", str(w.root)).code in (1, 2)
    time.sleep(SETTLE * 1.5)
    for argv in (["scan", "--json"], ["scan"], ["scan", "-q"], ["check"]):
        kept.clear()
        warm = run_cli(*argv, "--db", str(db), str(w.root))
        assert kept, f"{argv}: no verdict was kept"
        cold = run_cli(*argv, "--db", str(db), "--full", str(w.root))
        assert (warm.code, warm.err) == (cold.code, cold.err), argv
        assert _stable(warm.out) == _stable(cold.out), argv
    shutil.rmtree(top)


# --- real changes by the real tools --------------------------------------------------------


def test_real_changes(tmp_path: Path) -> None:
    py311, py312 = require_python("3.11"), require_python("3.12")
    root = tmp_path / "root"
    a1 = make_project(tmp_path / "p", "alpha", script="alpha-cli")
    a2 = make_project(tmp_path / "p", "alpha", "2.0", script="alpha-cli")
    b = make_project(tmp_path / "p", "beta")
    v1 = make_venv(py311, root / "one")
    v2 = make_venv(py312, root / "two", pip=True)
    install(v1, a1)
    install(v2, a1, b, installer="pip")
    db = tmp_path / "inventory.db"
    warm, cold, used = both(root, db)
    assert_same(warm, cold, "first")
    steps: list[tuple[str, Any]] = [
        ("nothing", lambda: None),
        ("uv upgrades alpha", lambda: install(v1, a2)),
        ("pip reinstalls beta", lambda: _pip(v2, "install", "--force-reinstall", b.path)),
        ("pip uninstalls beta", lambda: _pip(v2, "uninstall", "-y", "beta")),
        ("a new venv", lambda: make_venv(py312, root / "three")),
        ("a venv removed", lambda: shutil.rmtree(root / "three")),
        ("the base link broken", lambda: _relink(v1, "/nonexistent/python3.11")),
        ("repaired by venvkeeper", lambda: _repair(v1)),
        ("venv --upgrade", lambda: _run(str(py312), "-m", "venv", "--upgrade", str(v2))),
    ]
    for label, change in steps:
        change()
        warm, cold, used = both(root, db)
        assert_same(warm, cold, label)
        if label == "nothing":
            assert used.read_venvs == 0 and len(used.reused) == 2, label


def _run(*argv: str) -> None:
    sh(*argv)


def _pip(v: Path, *args: object) -> None:
    extra = ("--no-index",) if args[0] == "install" else ()
    _run(str(v / "bin" / "python"), "-m", "pip", "-q", *map(str, args), *extra)


def _relink(v: Path, target: str) -> None:
    link = v / "bin" / "python"
    link.unlink()
    link.symlink_to(target)


def _repair(v: Path) -> None:
    res = run_cli("repair", "--offline", "--python", str(require_python("3.11")), str(v))
    assert res.code == 0, res.out + res.err


# --- the inventory: migration and trust ----------------------------------------------------


def test_schema_1_is_migrated_and_its_scans_kept(world_parts: World, tmp_path: Path) -> None:
    db = tmp_path / "inventory.db"
    conn = sqlite3.connect(db)
    for sql in MIGRATIONS[0]:
        conn.execute(sql)
    conn.execute("PRAGMA application_id = 1986750830")
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO scans (started_at, finished_at, host, roots, excludes, duration_seconds,"
        " venvs, ok, warning, unknown, critical, tool_version)"
        " VALUES (1, 2, 'h', '[]', '[]', 1, 0, 0, 0, 0, 0, 'old')"
    )
    conn.commit()
    conn.close()
    root = tmp_path / "root"
    shutil.copytree(world_parts.templates["py3"], root / "v", symlinks=True)
    warm, cold, used = both(root, db)
    assert_same(warm, cold)
    with open_store(str(db), create=False) as store:
        assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION == 3
        assert store.query("SELECT COUNT(*) FROM scans")[0][0] == 2
        assert store.query("SELECT COUNT(*) FROM reuse_facts")[0][0] == 1
    warm, cold, used = both(root, db)
    assert used.reused == {str(root / "v")}


def test_an_inventory_root_does_not_own_is_not_used(
    one: tuple[Path, Path], unprivileged_user: User
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    v, db = one
    os.chown(db, unprivileged_user.uid, unprivileged_user.gid)
    inc, why = inv_reuse.prepare(str(db), full=False, collect=False)
    assert inc is None and "not trusted" in why and f"uid {unprivileged_user.uid}" in why
    res = run_cli("scan", "--db", str(db), "-q", str(v.parent))
    lines = [
        ln for ln in res.err.splitlines() if ln.startswith("venvkeeper: warning: reading every")
    ]
    assert len(lines) == 1 and "not trusted" in lines[0], res.err
    os.chown(db, 0, 0)
    db.parent.chmod(0o777)  # a directory anyone may write: a file planted there
    try:
        inc, why = inv_reuse.prepare(str(db), full=False, collect=False)
        assert inc is None and "is writable by every user" in why  # the one trust rule
    finally:
        db.parent.chmod(0o700)
    inc, why = inv_reuse.prepare(str(db), full=False, collect=False)
    assert inc is not None and not why


def test_facts_of_another_version_are_not_reused(
    one: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from venvkeeper.scan import codec

    v, db = one
    monkeypatch.setattr(codec, "SIGNATURE", "facts-1-another")
    warm, cold, used = both(v.parent, db)
    assert_same(warm, cold)
    assert used.read_venvs == 1 and not used.reused and used.reused_dirs == 0


def test_the_codec_round_trips_every_fact(world_parts: World) -> None:
    from venvkeeper.host.bases import HostCache
    from venvkeeper.scan import codec
    from venvkeeper.scan.inspect import inspect_venv, read_own

    for v in world_parts.templates.values():
        for facts in (read_own(str(v)), inspect_venv(str(v), host=HostCache())):
            assert codec.decode(codec.encode(facts)) == facts
    with pytest.raises(codec.CodecError):
        codec.decode("[1, 2]")
    with pytest.raises(codec.CodecError):
        codec.decode("not json")


def _diff(a: Any, b: Any, where: str = "") -> list[str]:  # debugging aid
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        out = []
        for f in dataclasses.fields(a):
            out += _diff(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
        return out
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _diff(x, y, f"{where}[{i}]")
        return out
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]
