"""Other OS roots (chroots, container roots): which directories are roots, the root-relative
view of their files, and venvs judged as their root sees them (venvkeeper.host.osroots,
venvkeeper.host.hostfs.RootFS).

These build small roots of files (a stand-in interpreter binary, a stdlib landmark): what is
tested is where paths lead, not what an interpreter does. tests/test_osroots_real.py judges
real venvs in a real debootstrapped root against running them there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from debroot import mounts_under
from venvkeeper.host import osroots
from venvkeeper.host.hostfs import RootFS
from venvkeeper.host.osroots import Roots, has_markers, is_store
from venvkeeper.model.venv import path_in_root
from venvkeeper.scan import discovery
from venvkeeper.scan.discovery import WalkOptions, WalkStats, walk
from venvkeeper.scan.pipeline import ScanOptions, inspect_path, scan

from conftest import run_cli, validate_json

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 64


def make_root(
    d: Path,
    *,
    minor: str = "3.11",
    release: str = "etc",
    merged_usr: bool = True,
    dpkg: bool = False,
) -> Path:
    """A tiny OS root: ``usr/bin/pythonX.Y`` (a stand-in binary), ``python3`` linking to it,
    its stdlib landmark, an os-release (in etc/, usr/lib/, or none), merged /usr."""
    (d / "usr/bin").mkdir(parents=True)
    (d / "usr/lib" / f"python{minor}").mkdir(parents=True)
    (d / "usr/lib" / f"python{minor}" / "os.py").write_text("")
    exe = d / "usr/bin" / f"python{minor}"
    exe.write_bytes(ELF)
    exe.chmod(0o755)
    (d / "usr/bin/python3").symlink_to(f"python{minor}")
    if merged_usr:
        (d / "bin").symlink_to("usr/bin")
    if release == "etc":
        (d / "etc").mkdir()
        (d / "etc/os-release").write_text('ID=debian\nPRETTY_NAME="Debian"\n')
    elif release == "usr/lib":
        (d / "usr/lib/os-release").write_text("ID=debian\n")
        (d / "etc").mkdir()
        (d / "etc/os-release").symlink_to("/usr/lib/os-release")  # absolute: the root's own
    if dpkg:
        (d / "var/lib/dpkg/info").mkdir(parents=True)
        (d / "var/lib/dpkg/status").write_text("")
    return d


def make_venv_in(
    root: Path, inner: str, link: str = "/usr/bin/python3", minor: str = "3.11"
) -> Path:
    """A venv as ``python3 -m venv INNER`` run inside *root* writes it: its link, its
    ``pyvenv.cfg`` with ``command``, a console script and ``activate`` naming INNER."""
    v = root / inner.lstrip("/")
    (v / "bin").mkdir(parents=True)
    site = v / "lib" / f"python{minor}" / "site-packages"
    (site / "tool-1.0.dist-info").mkdir(parents=True)
    (site / "tool-1.0.dist-info/METADATA").write_text(
        "Metadata-Version: 2.1\nName: tool\nVersion: 1.0\n"
    )
    (site / "tool-1.0.dist-info/RECORD").write_text("")
    (v / "bin/python").symlink_to(link)
    (v / "bin/python3").symlink_to("python")
    (v / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(link)}\ninclude-system-site-packages = false\n"
        f"version = {minor}.2\nexecutable = /usr/bin/python{minor}\n"
        f"command = /usr/bin/python3 -m venv {inner}\n"
    )
    (v / "bin/tool").write_text(f"#!{inner}/bin/python\nimport tool\n")
    (v / "bin/tool").chmod(0o755)
    (v / "bin/activate").write_text(f'VIRTUAL_ENV="{inner}"\nexport VIRTUAL_ENV\n')
    return v


# --- which directories are roots ----------------------------------------------------------


def test_os_release_and_usr_bin_make_a_root(tmp_path: Path) -> None:
    etc = make_root(tmp_path / "etc-release")
    usrlib = make_root(tmp_path / "usr-lib-release", release="usr/lib")
    bare = make_root(tmp_path / "no-release", release="none")
    assert has_markers(str(etc)) and has_markers(str(usrlib))
    assert not has_markers(str(bare))  # a prefix with usr/bin is not a system
    (tmp_path / "only-etc/etc").mkdir(parents=True)
    (tmp_path / "only-etc/etc/os-release").write_text("ID=x\n")
    assert not has_markers(str(tmp_path / "only-etc"))
    assert not Roots(frozenset()).is_root("/")  # the host is nobody's other root


def test_absolute_links_are_looked_up_inside_the_root(tmp_path: Path) -> None:
    """``etc/os-release -> /usr/lib/os-release`` names the root's file: where the root has
    none, this host's (which exists on Debian) must not stand in for it."""
    r = make_root(tmp_path / "r", release="none")
    (r / "etc").mkdir()
    (r / "etc/os-release").symlink_to("/usr/lib/os-release")
    assert not has_markers(str(r))
    (r / "usr/lib/os-release").write_text("ID=debian\n")
    assert has_markers(str(r))


def test_a_symlinked_usr_bin_is_followed_inside_the_root(tmp_path: Path) -> None:
    """usr/bin may be a link (to an absolute path, read inside the root); a link to itself
    is a loop there, never this host's /usr/bin."""
    r = make_root(tmp_path / "r")
    real = r / "usr/lib/sysbin"
    shutil.move(str(r / "usr/bin"), str(real))
    (r / "usr/bin").symlink_to("/usr/lib/sysbin")
    assert has_markers(str(r))
    v = make_venv_in(r, "/srv/app")
    rep = inspect_path(str(v))
    assert rep.facts.root == str(r) and rep.status.value == "ok", rep.findings
    # bin/python -> /usr/bin/python3 -> (usr/bin is /usr/lib/sysbin) python3.11, inside r
    assert rep.facts.base is not None and rep.facts.base.executable == "/usr/lib/sysbin/python3.11"
    (r / "usr/bin").unlink()
    (r / "usr/bin").symlink_to("/usr/bin")
    assert not has_markers(str(r))


def test_a_root_inside_a_root_owns_its_venvs(tmp_path: Path) -> None:
    outer = make_root(tmp_path / "outer")
    inner = make_root(outer / "var/lib/machines/inner", minor="3.13")
    a = make_venv_in(outer, "/srv/a")
    b = make_venv_in(inner, "/srv/b", minor="3.13")
    roots = Roots(frozenset())
    assert roots.root_of(str(a)) == str(outer)
    assert roots.root_of(str(b)) == str(inner)
    assert roots.root_of(str(outer)) is None  # a root is not its own root
    report = scan([str(tmp_path)], ScanOptions(walk_beside=False))
    got = {
        r.path: (r.facts.root, r.status.value, r.facts.base and r.facts.base.version)
        for r in report.venvs
    }
    assert got == {str(a): (str(outer), "ok", "3.11"), str(b): (str(inner), "ok", "3.13")}


def test_a_root_with_no_dpkg_database(tmp_path: Path) -> None:
    """No dpkg status: the root is still a root and its venvs are judged; whether the base's
    package is still offered is unknown (no base-obsolete), never an error."""
    r = make_root(tmp_path / "r", dpkg=False)
    v = make_venv_in(r, "/srv/app")
    rep = inspect_path(str(v))
    assert rep.facts.root == str(r)
    assert rep.status.value == "ok" and not rep.facts.errors, rep.findings
    assert rep.facts.base is not None and rep.facts.base.obsolete_package is None


@contextlib.contextmanager
def bind_mount(src: Path, dest: Path) -> Iterator[Path]:
    dest.mkdir(parents=True)
    done = subprocess.run(["mount", "--bind", str(src), str(dest)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    try:
        yield dest
    finally:
        subprocess.run(["umount", str(dest)], check=True, timeout=60)


@pytest.mark.skipif(os.geteuid() != 0, reason="a bind mount needs root")
def test_a_root_that_is_a_bind_mount(tmp_path: Path) -> None:
    """A root bind-mounted elsewhere (a machine's tree mounted where the walk finds it): the
    mount point is the root, and its venvs are judged there as in the original."""
    r = make_root(tmp_path / "store/deb")
    make_venv_in(r, "/srv/app")
    with bind_mount(r, tmp_path / "walked/machine") as point:
        assert mounts_under(point) == [str(point)]  # (ismount cannot tell a bind mount)
        assert Roots(frozenset()).root_of(str(point / "srv/app")) == str(point)
        report = scan([str(tmp_path / "walked")], ScanOptions(walk_beside=False))
        (rep,) = report.venvs
        assert (rep.path, rep.facts.root, rep.status.value) == (
            str(point / "srv/app"),
            str(point),
            "ok",
        )


def test_known_stores_and_schroot_config(tmp_path: Path) -> None:
    assert is_store("/var/lib/machines/deb")
    assert is_store("/var/lib/lxc/web/rootfs")
    assert is_store("/var/lib/docker/overlay2/0123abcd/merged")
    assert is_store("/var/lib/containers/storage/overlay/ab/diff")
    assert not is_store("/var/lib/machines")
    assert not is_store("/var/lib/machines/deb/opt")
    assert not is_store("/var/lib/lxc/web")
    conf = tmp_path / "schroot.conf"
    conf.write_text("[bookworm]\ntype=directory\ndirectory=/srv/build/bookworm/\n")
    d = tmp_path / "chroot.d"
    d.mkdir()
    (d / "sid").write_text("[sid]\n  directory = /srv/build/sid\n")
    (d / ".hidden").write_text("directory=/nope\n")
    found = osroots.schroot_dirs((str(conf), str(d)))
    assert found == {"/srv/build/bookworm", "/srv/build/sid"}
    assert is_store("/srv/build/sid", found)


def test_an_image_layer_is_a_root_whose_venvs_are_not_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store entry without usr/bin (one image layer: ``RUN python -m venv /opt/v``) is
    another system's files, but what its venvs link to lives in the layers below: they
    are counted as skipped, never judged by this host's /usr/bin, nor called broken."""
    layer = tmp_path / "overlay2/abc/diff"
    make_venv_in(layer, "/opt/v")
    conf = tmp_path / "schroot.conf"
    conf.write_text(f"directory={layer}\n")
    monkeypatch.setattr(osroots, "SCHROOT_CONFIG", (str(conf),))
    report = scan([str(tmp_path)], ScanOptions(walk_beside=False))
    assert report.venvs == ()
    assert report.stats.skipped == {"in-image-layer": 1}
    old = scan([str(tmp_path)], ScanOptions(walk_beside=False, other_roots=False))
    assert [r.status.value for r in old.venvs] == ["critical"]  # the host's view, as before


# --- the root's view of its files ---------------------------------------------------------


def test_rootfs_resolves_inside_and_never_climbs_out(tmp_path: Path) -> None:
    r = make_root(tmp_path / "r")
    (r / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (r / "usr/bin/escape").symlink_to("../../../../../../../etc/passwd")
    (r / "usr/bin/abs").symlink_to("/etc/passwd")
    fs = RootFS(str(r))
    assert fs.realpath("/bin/python3") == "/usr/bin/python3.11"
    assert fs.realpath("/usr/bin/escape") == "/etc/passwd"
    assert fs.read_head("/usr/bin/escape", 100) == b"root:x:0:0::/root:/bin/sh\n"
    assert fs.read_head("/usr/bin/abs", 100) == b"root:x:0:0::/root:/bin/sh\n"
    assert fs.host_path("/bin/python3") == str(r / "usr/bin/python3.11")
    assert fs.file_state("/usr/bin/python3.99") is False
    assert sorted(fs.listdir("/bin"))[:2] == ["abs", "escape"]
    assert path_in_root(str(r), str(r / "srv/app")) == "/srv/app"
    assert path_in_root(str(r), str(r)) == "/"
    assert path_in_root(None, "/srv/app") == "/srv/app"


def test_a_venv_in_a_root_is_judged_as_the_root_sees_it(tmp_path: Path) -> None:
    """The issue's case: a venv made inside a root names /usr/bin/python3 and its own
    inner path. This host's view called it critical ``moved``; the root's view is ok. The
    root's own breakage (a link to an interpreter the root lacks) is still critical."""
    r = make_root(tmp_path / "r", minor="3.11")
    good = make_venv_in(r, "/srv/good")
    bad = make_venv_in(r, "/srv/bad", link="/usr/bin/python3.12", minor="3.12")
    report = scan([str(tmp_path)], ScanOptions(walk_beside=False))
    status = {v.path: v.status.value for v in report.venvs}
    assert status == {str(good): "ok", str(bad): "critical"}
    bad_rep = next(v for v in report.venvs if v.path == str(bad))
    assert "interpreter-dangling" in {f.code for f in bad_rep.findings}
    host_view = scan([str(tmp_path)], ScanOptions(walk_beside=False, other_roots=False))
    old = {v.path: {f.code for f in v.findings} for v in host_view.venvs}
    assert "moved" in old[str(good)]  # what was reported before: wrong


def test_kept_facts_of_a_venv_in_a_root_are_judged_as_the_root_sees_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incremental scan reuses the venv's own facts and asks its root (not this host)
    for the rest; what its verdict depends on are the root's files, named as host paths:
    the apt hook of this host judges it again only when the root's Python changes."""
    import time

    from venvkeeper.inventory import reuse
    from venvkeeper.scan import incremental

    monkeypatch.setattr(incremental, "RACY_SECONDS", 0.05)
    r = make_root(tmp_path / "r")
    v = make_venv_in(r, "/srv/app")
    db = str(tmp_path / "inventory.db")
    options = ScanOptions(roots=(str(r),), walk_beside=False)
    time.sleep(0.1)
    inc, why = reuse.prepare(db, full=False, collect=True)
    assert inc is not None, why
    first = scan(options=options, reuse=inc.reuse)
    reuse.record_and_keep(db, first, (), inc)
    (rep,) = first.venvs
    assert rep.facts.root == str(r) and rep.status.value == "ok", rep.findings
    kept, why = reuse.load_kept(db)
    assert kept is not None, why
    deps = json.loads(kept.depends[str(v)])
    assert str(r / "usr/bin/python3.11") in deps and all(d.startswith(str(r)) for d in deps)
    assert reuse.depending_on(kept, frozenset({"/usr/bin/python3.11"}), ("/",)) == []
    assert reuse.depending_on(kept, frozenset({str(r / "usr/bin/python3.11")}), ("/",)) == [str(v)]
    # the root's Python removed (this host's /usr/bin/python3.11 is still there)
    (r / "usr/bin/python3.11").unlink()
    inc, why = reuse.prepare(db, full=False, collect=True)
    assert inc is not None, why
    warm = scan(options=options, reuse=inc.reuse)
    cold = scan(options=options)
    assert inc.reuse.reused == {str(v)}
    (w,), (c,) = warm.venvs, cold.venvs
    assert (w.facts, w.findings) == (c.facts, c.findings)
    assert w.status.value == "critical" and w.facts.root == str(r)
    # the apt hook's judging from the kept facts: the same, as the root sees it
    again = reuse.rejudge(kept, [str(v)], (), options)
    assert [x.status.value for x in again.venvs] == ["critical"]


def test_table_and_json_name_the_root(tmp_path: Path) -> None:
    r = make_root(tmp_path / "r")
    make_venv_in(r, "/srv/app")
    res = run_cli("scan", "--no-record", str(tmp_path))
    header = res.out.splitlines()[0].split()
    assert header[:3] == ["STATUS", "ROOT", "PATH"]
    assert f"ok      {r}  {r}/srv/app" in res.out
    assert "1 venv inside 1 other OS root" in res.out
    doc = validate_json("scan", run_cli("scan", "--json", "--no-record", str(tmp_path)).out)
    (v,) = doc["venvs"]
    assert (v["root"], v["path_in_root"], v["status"]) == (str(r), "/srv/app", "ok")
    assert v["interpreter_links"][0]["hops"][0] == "/srv/app/bin/python"
    old = validate_json(
        "scan", run_cli("scan", "--json", "--no-record", "--no-other-roots", str(tmp_path)).out
    )
    assert old["venvs"][0]["root"] is None and old["venvs"][0]["status"] == "critical"
    assert "ROOT" not in run_cli("scan", "--no-record", "--no-other-roots", str(tmp_path)).out
    show = validate_json("show", run_cli("show", "--json", str(r / "srv/app")).out)
    assert show["venv"]["root"] == str(r)
    assert f"root: {r}" in run_cli("show", str(r / "srv/app")).out


def test_root_stores_are_walked_unless_other_roots_are_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/var/lib/machines (and lxc, lxd) hold whole roots: walked by default now that their
    venvs are judged as their root sees them; skipped as before with --no-other-roots."""
    store = tmp_path / "machines"
    v = make_venv_in(make_root(store / "deb"), "/srv/app")
    monkeypatch.setattr(discovery, "ROOT_STORES", frozenset({str(store)}))
    st = WalkStats()
    assert [c.path for c in walk([str(tmp_path)], WalkOptions(), st)] == [str(v)]
    st = WalkStats()
    assert list(walk([str(tmp_path)], WalkOptions(other_roots=False), st)) == []
    assert st.skipped == {"not-this-host": 1}


def test_predict_changes_the_host_or_the_root_it_names(tmp_path: Path) -> None:
    """A change described for the host leaves the venvs of other roots as they are;
    ``--in-root DIR`` makes it a change inside DIR (its /usr/bin/python3), and only there."""
    r = make_root(tmp_path / "r")
    make_venv_in(r, "/srv/app")
    here = ["predict", "--json", "--no-processes", "--python-becomes", "3.12", str(tmp_path)]
    doc = validate_json("predict", run_cli(*here).out)
    (v,) = doc["venvs"]
    assert (v["root"], v["effect"]) == (str(r), "survives") and doc["change"]["root"] is None
    there = [*here[:2], "--in-root", str(r), *here[2:]]
    doc = validate_json("predict", run_cli(*there).out)
    (v,) = doc["venvs"]
    assert doc["change"]["root"] == str(r)
    assert (v["effect"], v["python_then"]) == ("breaks-silently", "3.12")
    # the repair is planned with the root's interpreters, named as the root names them
    assert v["plan"]["target"]["path"] == "/usr/bin/python3"
    text = run_cli(*[a for a in there if a != "--json"]).out
    assert f"change: in the OS root {r}: /usr/bin/python3" in text
    bad = run_cli("predict", "--in-root", str(tmp_path), "--python-becomes", "3.12", str(tmp_path))
    assert bad.code == 3 and "not an OS root" in bad.err
    off = run_cli("predict", "--no-other-roots", "--in-root", str(r), str(tmp_path))
    assert off.code == 3 and "--no-other-roots" in off.err


def test_a_tool_command_runs_inside_the_root(tmp_path: Path) -> None:
    """A pipx venv inside a root: the command to fix it is run there (chroot), with the
    root's paths."""
    r = make_root(tmp_path / "r")
    v = make_venv_in(
        r, "/root/.local/share/pipx/venvs/tool", link="/usr/bin/python3.12", minor="3.12"
    )
    (v / "pipx_metadata.json").write_text(
        json.dumps({"main_package": {"package": "tool"}, "pipx_metadata_version": "0.5"})
    )
    doc = validate_json("plan", run_cli("plan", "--json", "--no-processes", str(tmp_path)).out)
    (p,) = doc["venvs"]
    cmd = p["plan"]["tool_command"]
    assert p["plan"]["strategy"] == "use-tool", p["plan"]
    assert (
        cmd.startswith(f"chroot {r} sh -c ")
        and "pipx" in cmd
        and str(r) not in cmd[len(f"chroot {r}") :]
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership tests need root")
def test_what_root_would_run_inside_a_root_must_be_roots_alone(tmp_path: Path) -> None:
    """A root-owned venv's repair runs the root's Python as root: refused when another user
    could change that Python or its stdlib (a group-writable usr/bin, a user's tree)."""
    assert osroots.changeable_by_others(str(tmp_path)) is None
    sticky = tmp_path / "sticky"
    sticky.mkdir(mode=0o777)
    sticky.chmod(0o1777)
    (sticky / "mine").mkdir()
    assert osroots.changeable_by_others(str(sticky / "mine")) is None  # like /tmp/x
    sticky.chmod(0o777)
    assert osroots.changeable_by_others(str(sticky / "mine")) == str(sticky)
    os.chown(sticky / "mine", 4242, 4242)
    sticky.chmod(0o755)
    assert osroots.changeable_by_others(str(sticky / "mine")) == str(sticky / "mine")
    r = make_root(tmp_path / "r")
    v = make_venv_in(r, "/srv/app")
    (v / "bin/tool").write_text("#!/srv/old/bin/python\nimport tool\n")  # moved: a rewrite
    (r / "usr/bin").chmod(0o775)
    doc = validate_json("repair", run_cli("repair", "--json", "--dry-run", str(v)).out)
    (res,) = doc["results"]
    assert res["outcome"] == "refused", res
    assert f"{r}/usr/bin can be changed by another user than root" in res["message"]
    (r / "usr/bin").chmod(0o755)
    doc = validate_json("repair", run_cli("repair", "--json", "--dry-run", str(v)).out)
    (res,) = doc["results"]
    assert (res["outcome"], res["strategy"]) == ("planned", "rewrite-paths"), res
