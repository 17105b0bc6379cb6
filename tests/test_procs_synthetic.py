"""restarts on a synthetic /proc: what is hard to make real here (systemd units, other mount
namespaces, kernel threads, zombies, unreadable or garbage entries)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venvkeeper.model.restarts import Elsewhere
from venvkeeper.restarts.procfs import parse_cgroup, parse_maps, parse_stat
from venvkeeper.restarts.scan import scan_processes
from venvkeeper.restarts.venvs import venv_from_argv

from conftest import run_cli, validate_json

NS = "mnt:[4026531832]"


def fake_venv(root: Path, name: str = "venv") -> Path:
    v = root / name
    (v / "bin").mkdir(parents=True)
    (v / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (v / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.2\n")
    return v


class FakeProc:
    """A /proc tree: files as the kernel shows them, links as readlink returns them."""

    def __init__(self, root: Path, uptime: float = 0.0) -> None:
        # Booted "now" and processes started 1 s later (100 ticks): every file the test
        # writes is older than them, unless it is given a later time on purpose.
        self.root = root
        root.mkdir()
        (root / "uptime").write_text(f"{uptime:.2f} 10.00\n")
        (root / "stat").write_text("cpu 1 2 3\nbtime 1700000000\n")
        me = self.add(99999, comm="venvkeeper", exe="/usr/bin/python3.11")
        (root / "self").symlink_to(me.name)

    def add(
        self,
        pid: int,
        *,
        comm: str = "python3",
        state: str = "S",
        ppid: int = 1,
        flags: int = 0,
        start_ticks: int = 100,
        exe: Optional[str] = "/usr/bin/python3.11",
        argv: tuple[str, ...] = (),
        cwd: str = "/",
        maps: str = "",
        cgroup: str = "0::/system.slice/app.service\n",
        ns: str = NS,
        environ: bytes = b"",
        root: Optional[str] = "/",
    ) -> Path:
        d = self.root / str(pid)
        (d / "ns").mkdir(parents=True)
        fields = [state, str(ppid), "1", "1", "0", "-1", str(flags)] + ["0"] * 12
        fields += [str(start_ticks)] + ["0"] * 30
        (d / "stat").write_text(f"{pid} ({comm}) " + " ".join(fields) + "\n")
        (d / "cmdline").write_bytes(
            b"\0".join(a.encode("utf-8", "surrogateescape") for a in argv)
            + (b"\0" if argv else b"")
        )
        if exe is not None:
            (d / "exe").symlink_to(exe)
        (d / "cwd").symlink_to(cwd)
        (d / "maps").write_text(maps)
        (d / "cgroup").write_text(cgroup)
        (d / "environ").write_bytes(environ)
        (d / "ns" / "mnt").symlink_to(ns)
        if root is not None:  # None: unreadable (another user's process)
            (d / "root").symlink_to(root)
        return d


def maps_line(path: str, deleted: bool = False, inode: int = 42) -> str:
    return (
        f"7f0000000000-7f0000001000 r-xp 00000000 08:01 {inode}  {path}"
        + (" (deleted)" if deleted else "")
        + "\n"
    )


@pytest.fixture
def world(tmp_path: Path) -> tuple[FakeProc, Path]:
    return FakeProc(tmp_path / "proc"), fake_venv(tmp_path)


def test_units_and_reasons(world: tuple[FakeProc, Path]) -> None:
    proc, venv = world
    py = f"{venv}/bin/python"
    proc.add(10, exe="/usr/bin/python3.11 (deleted)", argv=(py, f"{venv}/bin/gunicorn"))
    proc.add(
        11,
        ppid=10,
        exe="/usr/bin/python3.11 (deleted)",
        argv=("gunicorn: worker [app]",),
        cgroup="0::/system.slice/app.service\n",
    )
    proc.add(
        12,
        argv=(py, "-m", "worker"),
        maps=maps_line(f"{venv}/lib/python3.11/site-packages/x/_c.cpython-311.so", deleted=True),
        cgroup="0::/user.slice/user-1000.slice/user@1000.service/app.slice/jobs.service\n",
    )
    proc.add(
        13,
        argv=("/usr/bin/python3", "tool.py"),
        maps=maps_line("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", deleted=True),
        cgroup="0::/user.slice/user-1000.slice/session-3.scope\n",
    )
    proc.add(14, argv=(py, "ok.py"))  # nothing changed: not reported
    rep = scan_processes(str(proc.root), judge=False)
    assert {p.pid for p in rep.processes} == {10, 11, 12, 13}
    later = os.stat(venv).st_mtime + 3600  # a package upgraded after they all started
    os.utime(venv / "lib" / "python3.11" / "site-packages", (later, later))
    changed = {p.pid: p for p in scan_processes(str(proc.root), judge=False).processes}
    assert [r.code for r in changed[14].reasons] == ["venv-changed"]
    assert "site-packages is newer" in changed[14].reasons[0].message
    by = {p.pid: p for p in rep.processes}
    assert set(by) == {10, 11, 12, 13}
    assert [r.code for r in by[10].reasons] == ["interpreter-replaced"]
    assert (by[10].venv, by[10].venv_evidence, by[10].unit) == (str(venv), "cmdline", "app.service")
    assert (by[11].venv, by[11].venv_evidence) == (str(venv), "parent")  # a rewritten title
    assert [r.code for r in by[12].reasons] == ["library-replaced"]
    assert (by[12].unit, by[12].user_unit) == ("jobs.service", True)
    assert [r.code for r in by[13].reasons] == ["interpreter-replaced"]
    assert (by[13].unit, by[13].session) == (None, "session-3.scope")


def test_unit_commands_group_units_and_never_restart_into_broken_venvs(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path / "proc")
    good = tmp_path / "good"
    broken = fake_venv(tmp_path, "broken")  # no interpreter at all: critical when judged
    proc.add(
        20,
        exe="/usr/bin/python3.11 (deleted)",
        argv=(str(broken / "bin/python"), "a.py"),
        cgroup="0::/system.slice/broken.service\n",
    )
    proc.add(
        21,
        exe="/usr/bin/python3.11 (deleted)",
        argv=("/usr/bin/python3", "b.py"),
        cgroup="0::/system.slice/web.service\n",
    )
    proc.add(
        22,
        exe="/usr/bin/python3.11 (deleted)",
        argv=("/usr/bin/python3", "c.py"),
        cgroup="0::/system.slice/web.service\n",
    )
    proc.add(
        23,
        exe="/usr/bin/python3.11 (deleted)",
        argv=("/usr/bin/python3", "d.py"),
        cgroup="0::/user.slice/user-0.slice/user@0.service/app.slice/mine.service\n",
    )
    del good
    res = run_cli("restarts", "--proc-root", str(proc.root), "--unit-commands")
    assert res.code == 2  # a restart would land in a broken venv
    lines = res.out.splitlines()
    assert "systemctl restart web.service" in lines
    who = pwd.getpwuid(os.getuid()).pw_name  # the owner of the fake /proc/23: this run's
    assert any(
        ln.startswith(f"systemctl --user --machine={who}@ restart mine.service") for ln in lines
    )
    assert "# repair its venv first: systemctl restart broken.service" in lines
    table = run_cli("restarts", "--proc-root", str(proc.root))
    assert f"restart these units: web.service, mine.service (user {who})" in table.out
    assert "repair these venvs before restarting: broken.service" in table.out
    assert "REPAIR FIRST" in table.out


def test_unit_commands_say_what_to_do_outside_any_unit(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path / "proc")
    broken = fake_venv(tmp_path, "broken")
    proc.add(
        40,
        exe="/usr/bin/python3.11 (deleted)",
        argv=("/usr/bin/python3", "app.py", "--name=\x1b]0;evil\x07"),
        cgroup="0::/user.slice/user-0.slice/session-3.scope\n",
    )
    proc.add(
        41,
        exe="/usr/bin/python3.11 (deleted)",
        argv=(str(broken / "bin/python"), "job.py"),
        cgroup="0::/user.slice/user-0.slice/session-3.scope\n",
    )
    proc.add(42, argv=("/usr/bin/python3", "fine.py"), cgroup="0::/init.scope\n")
    res = run_cli("restarts", "--proc-root", str(proc.root), "--unit-commands")
    lines = res.out.splitlines()
    assert (
        "# pid 40 (/usr/bin/python3 app.py --name=\\x1b]0;evil\\x07) runs outside any unit"
        " (in session-3.scope): restart it by hand (or restart its supervisor; kill -HUP if"
        " it reloads)"
    ) in lines, res.out
    assert any(
        ln.startswith("# pid 41 (")
        and ln.endswith("repair its venv first, then restart it by hand")
        for ln in lines
    ), res.out
    assert not any("pid 42" in ln for ln in lines)  # nothing to restart
    assert "\x1b" not in res.out
    assert all(ln.startswith("#") for ln in lines)  # nothing a shell would run


def test_exit_codes(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path / "proc")
    proc.add(30, argv=("/usr/bin/python3", "x.py"))
    assert run_cli("restarts", "--proc-root", str(proc.root)).code == 0
    proc.add(31, exe="/usr/bin/python3.11 (deleted)", argv=("/usr/bin/python3", "y.py"))
    res = run_cli("restarts", "--proc-root", str(proc.root), "--json")
    assert res.code == 1
    doc = validate_json("restarts", res.out)
    assert doc["kind"] == "restarts" and doc["units"]["restart"] == ["app.service"]
    assert [p["pid"] for p in doc["processes"]] == [31]
    assert run_cli("restarts", "--proc-root", str(tmp_path / "nothing")).code == 3


def test_hard_cases_are_counted_not_crashed(world: tuple[FakeProc, Path]) -> None:
    proc, _venv = world
    proc.add(2, comm="kthreadd", ppid=0, exe=None)
    proc.add(40, comm="kworker/0:1", ppid=2, exe=None, flags=0x00200000)
    proc.add(41, state="Z", exe="/usr/bin/python3.11 (deleted)")
    proc.add(42, exe=None)  # exe unreadable (another user's, not root)
    garbage = proc.add(43)
    (garbage / "stat").write_text("garbage without parens")
    proc.add(44, ns="mnt:[4026532999]", exe="/usr/bin/python3.12 (deleted)", comm="py-in-container")
    (proc.root / "45").mkdir()  # vanished between listing and reading
    rep = scan_processes(str(proc.root), judge=False)
    assert rep.processes == ()
    assert rep.skipped == {
        "kernel-thread": 2,
        "zombie": 1,
        "permission-denied": 1,
        "unreadable": 1,
        "vanished": 1,
    }
    (foreign,) = rep.foreign
    assert (foreign.pid, foreign.exe_deleted) == (44, True)
    out = run_cli("restarts", "--proc-root", str(proc.root)).out
    assert "other mount namespaces (containers) not judged: 44 (py-in-container)" in out


def test_a_chrooted_process_is_judged_against_its_root(tmp_path: Path) -> None:
    """A process under another root: its command line names paths inside that root (the
    kernel shows its exe, cwd and maps as our paths). Before, it was judged by this host's
    paths (the wrong venv, or a repair of the wrong directory), then only listed; now its
    venv is found inside its root and reported with the root."""
    proc = FakeProc(tmp_path / "proc")
    venv = fake_venv(tmp_path)
    jail = tmp_path / "jail"
    inner = fake_venv(jail / "srv", "app")  # the venv the chrooted process really runs
    py = f"{venv}/bin/python"
    deleted = "/usr/bin/python3.11 (deleted)"
    proc.add(50, exe=deleted, argv=(py, "app.py"))  # on our root: judged
    # The same command line in the jail names nothing there: no venv of ours is blamed.
    proc.add(51, exe=deleted, argv=(py, "app.py"), root=str(jail), comm="jailed\x1b")
    proc.add(53, exe=deleted, argv=("/srv/app/bin/python", "app.py"), root=str(jail))
    proc.add(52, exe=deleted, argv=(py, "app.py"), root=None)  # unreadable: judged
    rep = scan_processes(str(proc.root), judge=False)
    by_pid = {p.pid: p for p in rep.processes}
    assert set(by_pid) == {50, 51, 52, 53} and not rep.foreign
    assert (by_pid[50].venv, by_pid[50].root) == (str(venv), None)
    assert (by_pid[51].venv, by_pid[51].root) == (None, str(jail))
    assert (by_pid[53].venv, by_pid[53].root) == (str(inner), str(jail))
    assert by_pid[53].venv_evidence == "cmdline"
    out = run_cli("restarts", "--proc-root", str(proc.root)).out
    assert f"{inner} (chroot {jail})" in out
    assert "not judged" not in out
    doc = validate_json(
        "restarts", run_cli("restarts", "--json", "--proc-root", str(proc.root)).out
    )
    assert doc["foreign"] == []
    roots = {p["pid"]: (p["venv"], p["root"]) for p in doc["processes"]}
    assert roots[53] == (str(inner), str(jail)) and roots[50] == (str(venv), None)


def test_a_root_that_reads_as_slash_but_is_not_ours_is_a_chroot(tmp_path: Path) -> None:
    """When venvkeeper itself runs under a root the other process is outside of, the
    kernel shows that process's root as "/": the directories' identities tell them apart."""
    proc = FakeProc(tmp_path / "proc")
    jail = tmp_path / "jail"
    jail.mkdir()
    (proc.root / "99999" / "root").unlink()
    (proc.root / "99999" / "root").symlink_to(jail)  # we run under jail
    proc.add(60, exe="/usr/bin/python3.11 (deleted)", argv=("/usr/bin/python3", "x.py"))
    rep = scan_processes(str(proc.root), judge=False)
    assert rep.processes == ()
    (foreign,) = rep.foreign
    assert (foreign.pid, foreign.where, foreign.root) == (60, Elsewhere.CHROOT, "/")


def test_command_lines_are_escaped(world: tuple[FakeProc, Path]) -> None:
    proc, _venv = world
    proc.add(
        50,
        comm="evil\x1b[2J",
        exe="/usr/bin/python3.11 (deleted)",
        argv=("/usr/bin/python3", "\x1b]0;pwned\x07", "\udcff"),
    )
    res = run_cli("restarts", "--proc-root", str(proc.root))
    assert "\x1b" not in res.out and "\x07" not in res.out
    assert "\\x1b" in res.out
    doc = validate_json(
        "restarts", run_cli("restarts", "--proc-root", str(proc.root), "--json").out
    )
    assert "\x1b" not in json.dumps(doc, ensure_ascii=False)


def test_environ_is_only_a_hint(world: tuple[FakeProc, Path], tmp_path: Path) -> None:
    proc, venv = world
    proc.add(
        60,
        exe="/usr/bin/python3.11 (deleted)",
        argv=("python", "-c", "pass"),
        environ=b"PATH=/bin\0VIRTUAL_ENV=" + str(venv).encode() + b"\0",
    )
    proc.add(
        61,
        exe="/usr/bin/python3.11 (deleted)",
        argv=("python",),
        environ=b"VIRTUAL_ENV=/no/such/venv\0PYTHONPATH=/tmp/evil\0",
    )
    by = {p.pid: p for p in scan_processes(str(proc.root), judge=False).processes}
    assert (by[60].venv, by[60].venv_evidence) == (str(venv), "environ (hint)")
    assert by[61].venv is None


def test_venv_from_argv(tmp_path: Path) -> None:
    v = fake_venv(tmp_path)
    py = f"{v}/bin/python"
    assert venv_from_argv((py, "app.py"), "/") == str(v)
    assert venv_from_argv(("/usr/bin/env", "-i", "A=1", py, "x"), "/") == str(v)
    assert venv_from_argv(("venv/bin/python", "-m", "x"), str(tmp_path)) == str(v)
    assert venv_from_argv(("python3", "-X", "dev", f"{v}/bin/celery", "worker"), "/") == str(v)
    assert venv_from_argv(("uwsgi", "--ini", "a.ini", "-H", str(v)), "/") == str(v)
    assert venv_from_argv(("uwsgi", f"--virtualenv={v}"), "/") == str(v)
    assert venv_from_argv(("python3", "-c", f"{v}/bin/x"), "/") is None
    assert venv_from_argv((), None) is None


def test_parsers() -> None:
    s = parse_stat(b"7 (a) b (c)) S 1 7 7 0 -1 4194560 " + b"0 " * 12 + b"555 0 0\n")
    assert (s.comm, s.state, s.ppid, s.starttime) == ("a) b (c)", "S", 1, 555)
    assert parse_cgroup("0::/system.slice/nginx.service\n") == ("nginx.service", False, None)
    assert parse_cgroup("12:name=systemd:/system.slice/cron.service\n0::/\n") == (
        "cron.service",
        False,
        None,
    )
    assert parse_cgroup("0::/init.scope\n") == (None, False, "init.scope")
    assert parse_cgroup("0::/user.slice/user-1000.slice/user@1000.service/init.scope") == (
        None,
        True,
        "init.scope",
    )
    assert parse_cgroup("0::/\n") == (None, False, None)
    (m,) = parse_maps(b"7f-7f r-xp 0 08:01 9 /a b/c.so (deleted)\n7f-7f rw-p 0 00:00 0 [heap]\n")
    assert (m.path, m.deleted, m.inode) == ("/a b/c.so", True, 9)


@given(st.binary(max_size=300))
def test_garbage_never_raises(data: bytes) -> None:
    for parse in (parse_stat,):
        with contextlib.suppress(ValueError):
            parse(data)
    parse_maps(data)
    parse_cgroup(data.decode("utf-8", "replace"))


def test_real_proc_smoke() -> None:
    """On the real /proc: no traceback, this test's own process never reported."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc")
    rep = scan_processes()
    assert rep.scanned > 0
    assert os.getpid() not in {p.pid for p in rep.processes}


def test_predict_names_the_services_of_each_venv(world: tuple[FakeProc, Path]) -> None:
    from venvkeeper.restarts.scan import venv_users

    proc, venv = world
    proc.add(70, argv=(f"{venv}/bin/python", "app.py"), cgroup="0::/system.slice/shop.service\n")
    proc.add(
        71, argv=(f"{venv}/bin/python", "-m", "celery"), cgroup="0::/user.slice/session-9.scope\n"
    )
    proc.add(72, argv=("/usr/bin/python3", "other.py"))
    users = venv_users(str(proc.root))
    assert [(u.pid, u.label) for u in users[str(venv)]] == [
        (70, "shop.service"),
        (71, "pid 71 (python3)"),
    ]
    assert len(users) == 1
    res = run_cli("predict", "--json", str(venv.parent), "--proc-root", str(proc.root))
    (v,) = validate_json("predict", res.out)["venvs"]
    assert [u["unit"] for u in v["used_by"]] == ["shop.service", None]
    assert v["effect"] == "already-broken"  # the skeleton venv has no interpreter
    res = run_cli("predict", str(venv.parent), "--proc-root", str(proc.root), "--no-processes")
    assert "shop.service" not in res.out
