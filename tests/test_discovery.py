"""The walk: pruning at venv roots, the parallel walker, filesystems, aliases."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from venvkeeper.host.mounts import Mount
from venvkeeper.model.report import Alias, CondaEnv
from venvkeeper.model.venv import VenvKind
from venvkeeper.scan import discovery
from venvkeeper.scan.discovery import Candidate, WalkOptions, WalkStats, walk
from venvkeeper.scan.pipeline import ScanOptions, scan

from factory import in_mount_namespace


def fake_venv(path: Path, minor: str = "3.11", python: str = "") -> Path:
    """A venv skeleton (enough for discovery; inspection tests use real venvs)."""
    (path / "bin").mkdir(parents=True)
    (path / "lib" / f"python{minor}" / "site-packages").mkdir(parents=True)
    (path / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {minor}.0\n")
    (path / "bin" / "python").symlink_to(python or os.path.realpath(sys.executable))
    return path


def build_tree(root: Path, seed: int = 7) -> set[str]:
    rng = random.Random(seed)
    venvs: set[str] = set()
    for i in range(40):
        d = root
        for _ in range(rng.randint(1, 5)):
            d = d / f"d{rng.randint(0, 6)}"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(rng.randint(0, 5)):
            (d / f"f{j}.txt").write_text("x")
        if i % 4 == 0 and not (d / "pyvenv.cfg").exists():
            v = d / f"venv{i}"
            if not v.exists():
                venvs.add(str(fake_venv(v)))
    return venvs


def found(root: Path, **kw: object) -> tuple[set[str], WalkStats]:
    st = WalkStats()
    got = {
        x.path
        for x in walk([str(root)], WalkOptions(**kw), st)  # type: ignore[arg-type]
        if isinstance(x, Candidate)
    }
    return got, st


def test_serial_walk_finds_every_venv_and_prunes(tmp_path: Path) -> None:
    venvs = build_tree(tmp_path)
    # A venv inside a venv's lib/ must not be reported: we never descend into venvs.
    inner = next(iter(sorted(venvs)))
    fake_venv(Path(inner) / "lib" / "nested")
    got, _st = found(tmp_path, workers=1)
    assert got == venvs
    assert not any("nested" in p for p in got)


@pytest.mark.parametrize("workers", [2, 4, 8])
def test_parallel_walk_equals_serial_when_every_walker_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    venvs = build_tree(tmp_path, seed=workers)
    # Make every listing count as slow, so every walker wakes and work is really shared.
    monkeypatch.setattr(discovery, "_SLOW_SECONDS", -1.0)
    monkeypatch.setattr(discovery, "_WAKE_AFTER_SLOW", 1)
    got, st = found(tmp_path, workers=workers)
    serial, st1 = found(tmp_path, workers=1)
    assert got == serial == venvs
    assert st.directories == st1.directories and st.entries == st1.entries


class _Listings:
    """Which thread lists which directory, on a clock of its own: a listing under a
    directory named ``cold`` takes one second of it, any other none. The walker's choice
    to wake or park its helpers follows that clock, whatever the machine's load."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[tuple[str, bool]] = []  # (directory, listed by a helper)
        self.main = threading.current_thread()
        self._now = threading.local()
        clock = types.SimpleNamespace(perf_counter=lambda: getattr(self._now, "t", 0.0))
        monkeypatch.setattr(discovery, "time", clock)
        visit = discovery._Walker.visit

        def timed(walker: object, path: str, *args: object) -> object:
            self.log.append((path, threading.current_thread() is not self.main))
            if "/cold" in path:
                self._now.t = getattr(self._now, "t", 0.0) + 1.0
            time.sleep(0.001)  # lets the other threads run, as a real listing would
            return visit(walker, path, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(discovery._Walker, "visit", timed)


def _wide_tree(top: Path, fanout: int, depth: int) -> int:
    """*fanout* subdirectories per directory, *depth* levels: how many directories."""
    n = 1
    top.mkdir(parents=True)
    if depth:
        for i in range(fanout):
            n += _wide_tree(top / f"d{i}", fanout, depth - 1)
    return n


def test_parallel_walk_on_a_warm_tree_parks_extra_walkers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a warm cache (every listing fast) the helpers stay parked: the calling thread
    lists every directory. Slow listings wake them and they share the work; after a
    streak of fast listings they park again, handing their work back."""
    listings = _Listings(monkeypatch)
    monkeypatch.setattr(discovery, "_PARK_AFTER_FAST", 40)
    warm = tmp_path / "warm"
    n_warm = _wide_tree(warm, 6, 3)
    got, st = found(warm, workers=4)
    assert got == set() and st.directories == n_warm == len(listings.log)
    assert not any(by_helper for _, by_helper in listings.log)

    listings.log.clear()
    cold, warm2 = tmp_path / "cold", tmp_path / "warm2"
    n_cold = _wide_tree(cold, 8, 2)
    n_warm2 = _wide_tree(warm2, 6, 3)
    st = WalkStats()
    assert not list(walk([str(cold), str(warm2)], WalkOptions(workers=4), st))  # cold first
    assert st.directories == n_cold + n_warm2 == len(listings.log)
    helpers_cold = sum(1 for p, h in listings.log if h and "/cold" in p)
    helpers_warm = sum(1 for p, h in listings.log if h and "/warm2" in p)
    assert helpers_cold > 0, "slow listings never woke a helper"
    # Parked after 40 fast listings in a row (counted without a lock, so a few more):
    # the helpers list a bounded share of the warm half, and none of its end.
    assert helpers_warm < n_warm2 // 4, (helpers_warm, n_warm2)
    assert not any(h for _, h in listings.log[-100:])


def test_early_stop_of_the_consumer_ends_the_walkers(tmp_path: Path) -> None:
    build_tree(tmp_path, seed=5)
    before = set(threading.enumerate())
    it = walk([str(tmp_path)], WalkOptions(workers=4))
    next(it)
    assert len(set(threading.enumerate()) - before) == 3  # the helpers run
    it.close()  # must not hang (pytest-timeout fails it if it does)
    assert set(threading.enumerate()) == before


def test_conda_and_legacy_and_alias(tmp_path: Path) -> None:
    conda = tmp_path / "miniconda"
    (conda / "conda-meta").mkdir(parents=True)
    (conda / "bin").mkdir()
    env = conda / "envs" / "data"
    (env / "conda-meta").mkdir(parents=True)
    (conda / "pkgs" / "somepkg" / "bin").mkdir(parents=True)
    legacy = tmp_path / "old"
    (legacy / "bin").mkdir(parents=True)
    (legacy / "bin" / "python").write_text("")
    (legacy / "lib" / "python2.7").mkdir(parents=True)
    (legacy / "lib" / "python2.7" / "orig-prefix.txt").write_text("/usr")
    outside = fake_venv(tmp_path.parent / f"{tmp_path.name}-outside")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / ".venv").symlink_to(outside)
    try:
        items = list(walk([str(tmp_path)], WalkOptions()))
        assert CondaEnv(str(conda)) in items and CondaEnv(str(env)) in items
        assert Candidate(str(legacy), VenvKind.LEGACY_VIRTUALENV) in items
        assert Alias(str(proj / ".venv"), str(outside)) in items
        report = scan([str(tmp_path)])
        assert [v.path for v in report.venvs if v.alias_of] == [str(outside)]
        assert {c.path for c in report.conda_envs} == {str(conda), str(env)}
    finally:
        shutil.rmtree(outside)


def test_network_and_pseudo_filesystems_are_skipped_by_the_mount_table(tmp_path: Path) -> None:
    nfs = tmp_path / "nfs"
    proc = tmp_path / "procish"
    v1 = fake_venv(nfs / "shared-venv")
    fake_venv(proc / "x")
    mounts = (Mount(str(nfs), "nfs4"), Mount(str(proc), "proc"))
    got, st = found(tmp_path, mounts=mounts)
    assert got == set()
    assert st.skipped["network-filesystem"] == 1 and st.skipped["pseudo-filesystem"] == 1
    got, st = found(tmp_path, mounts=mounts, include_network=True)
    assert got == {str(v1)}


def test_mountinfo_is_a_parameter_of_the_scan(tmp_path: Path) -> None:
    nfs = tmp_path / "net"
    fake_venv(nfs / "v")
    info = tmp_path / "mountinfo"
    info.write_text(f"36 35 0:31 / {nfs} rw,relatime shared:1 - nfs4 srv:/x rw\n")
    r = scan([str(tmp_path)], ScanOptions(mountinfo=str(info)))
    assert r.venvs == () and r.stats.skipped == {"network-filesystem": 1}
    r = scan([str(tmp_path)], ScanOptions(mountinfo=str(info), include_network=True))
    assert len(r.venvs) == 1


def test_one_file_system_with_a_real_mount(tmp_path: Path) -> None:
    fake_venv(tmp_path / "here")
    (tmp_path / "mnt").mkdir()
    code = (
        "import json, sys; from venvkeeper.scan.pipeline import scan, ScanOptions;"
        f"a = scan([{str(tmp_path)!r}], ScanOptions(one_file_system=True));"
        f"b = scan([{str(tmp_path)!r}]);"
        "print(json.dumps([[v.path for v in a.venvs], [v.path for v in b.venvs],"
        " a.stats.skipped]))"
    )
    setup = (
        f"mount -t tmpfs none {tmp_path / 'mnt'} && mkdir -p {tmp_path / 'mnt/v/bin'}"
        f" && touch {tmp_path / 'mnt/v/pyvenv.cfg'}"
    )
    one, every, skipped = json.loads(in_mount_namespace(setup, code).stdout)
    assert one == [str(tmp_path / "here")]
    assert sorted(every) == [str(tmp_path / "here"), str(tmp_path / "mnt" / "v")]
    assert skipped == {"other-filesystem": 1}


def test_excludes_by_name_and_by_path(tmp_path: Path) -> None:
    fake_venv(tmp_path / "node_modules" / "v")
    fake_venv(tmp_path / "a" / "cache" / "v")
    keep = fake_venv(tmp_path / "b" / "cache" / "v")
    got, st = found(tmp_path, exclude=("node_modules", f"{tmp_path}/a/*"))
    assert got == {str(keep)}
    assert st.skipped["excluded"] == 2


def test_a_venv_that_vanishes_before_inspection_is_a_counted_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from venvkeeper.scan import pipeline as scan_module

    keep = fake_venv(tmp_path / "keep")
    gone = fake_venv(tmp_path / "gone")
    real = scan_module.inspect_venv

    def racing(path: str, *a: object, **kw: object):  # type: ignore[no-untyped-def]
        if path == str(gone):
            shutil.rmtree(gone)  # removed between discovery and inspection
        return real(path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_module, "inspect_venv", racing)
    r = scan([str(tmp_path)])
    assert [v.path for v in r.venvs] == [str(keep)]
    assert r.stats.skipped == {"vanished": 1}


def test_an_internal_error_costs_one_verdict_not_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from venvkeeper.scan import pipeline as scan_module

    fake_venv(tmp_path / "a")
    bad = fake_venv(tmp_path / "b")
    real = scan_module.inspect_venv

    def buggy(path: str, *a: object, **kw: object):  # type: ignore[no-untyped-def]
        if path == str(bad):
            raise ZeroDivisionError("a bug")
        return real(path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_module, "inspect_venv", buggy)
    r = scan([str(tmp_path)])
    by_path = {v.path: v for v in r.venvs}
    assert by_path[str(bad)].status.value == "unknown"
    assert [f.code for f in by_path[str(bad)].findings] == ["read-errors"]
    assert "ZeroDivisionError" in by_path[str(bad)].findings[0].message


def test_inspection_pool_gives_the_same_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from venvkeeper.scan import pipeline as scan_module

    build_tree(tmp_path, seed=11)
    inline = scan([str(tmp_path)], ScanOptions(inspect_workers=4))
    # Pretend every inspection waited on the disk: the pool takes over after the first venv.
    monkeypatch.setattr(scan_module, "_POOL_AFTER", 1)
    monkeypatch.setattr(scan_module, "_IO_SHARE", -1.0)
    monkeypatch.setattr(scan_module, "_MIN_SPENT", -1.0)
    made: list[object] = []

    import concurrent.futures

    class SpyPool(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, *a: object, **kw: object) -> None:
            made.append(self)
            super().__init__(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", SpyPool)
    pooled = scan([str(tmp_path)], ScanOptions(inspect_workers=4))
    assert len(made) == 1
    assert len(inline.venvs) >= 5
    assert [(v.path, v.findings) for v in pooled.venvs] == [
        (v.path, v.findings) for v in inline.venvs
    ]


def test_vcs_internals_and_caches_are_not_walked_unless_asked(tmp_path: Path) -> None:
    hidden = fake_venv(tmp_path / "proj" / ".git" / "odd" / "v")
    fake_venv(tmp_path / "proj" / "__pycache__" / "v")
    normal = fake_venv(tmp_path / "proj" / ".venv")
    got, _ = found(tmp_path)
    assert got == {str(normal)}
    got, _ = found(tmp_path, all_dirs=True)
    assert str(hidden) in got and len(got) == 3


def test_walk_beside_streams_the_same_as_walk(tmp_path: Path) -> None:
    venvs = build_tree(tmp_path, seed=13)
    st_a, st_b = WalkStats(), WalkStats()
    a = list(discovery.walk([str(tmp_path)], WalkOptions(), st_a))
    b = list(discovery.walk_beside([str(tmp_path)], WalkOptions(), st_b))
    assert sorted(map(repr, a)) == sorted(map(repr, b))
    assert {x.path for x in b} == venvs
    assert (st_a.directories, st_a.entries) == (st_b.directories, st_b.entries)


def test_walk_beside_child_is_reaped_when_the_consumer_stops(tmp_path: Path) -> None:
    build_tree(tmp_path, seed=17)
    it = discovery.walk_beside([str(tmp_path)], WalkOptions())
    next(it)
    it.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left behind, not even a zombie


def test_scan_with_and_without_the_walker_process(tmp_path: Path) -> None:
    build_tree(tmp_path, seed=19)
    a = scan([str(tmp_path)], ScanOptions(walk_beside=True))
    b = scan([str(tmp_path)], ScanOptions(walk_beside=False))
    assert [(v.path, v.findings) for v in a.venvs] == [(v.path, v.findings) for v in b.venvs]
    assert a.stats.directories == b.stats.directories


def test_container_storage_is_not_this_hosts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docker = tmp_path / "var" / "lib" / "docker"
    inside = fake_venv(docker / "overlay2" / "abc" / "diff" / "app" / "venv")
    mine = fake_venv(tmp_path / "srv" / "venv")
    monkeypatch.setattr(discovery, "NEVER_PATHS", frozenset({str(docker)}))
    got, st = found(tmp_path)
    assert got == {str(mine)} and st.skipped == {"not-this-host": 1}
    got, _ = found(tmp_path, all_dirs=True)
    assert got == {str(mine), str(inside)}
