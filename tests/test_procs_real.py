"""restarts against real processes: Python processes started from real venvs (a script, a
console script, ``python -m``, ``env``, a relative path, a bare ``python`` found on PATH),
then the base interpreter's files are replaced, a package upgraded, the venv swapped as a
repair does; exactly the affected processes must be reported, with the right reason."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from venvkeeper.model.restarts import ProcessReport
from venvkeeper.restarts.scan import scan_processes

import factory
from conftest import Result, User, find_python, run_cli, validate_json
from factory import clean_env, install, make_project, make_venv

pytestmark = pytest.mark.slow

BODY = "import time\nimport beta, _bisect\nprint('ready', flush=True)\ntime.sleep(600)\n"


def proc_view(top: Path, pids: Iterable[int], reader: bool = True) -> Path:
    """A procfs root that shows only *pids* (the test's own processes), and with *reader*
    this process too, as its ``self``: each entry a link to the real ``/proc``'s, so what
    is read is real, and no other process on this machine (another run's broken venv)
    can change a verdict."""
    top.mkdir(parents=True)
    for name in ("uptime", "stat"):
        (top / name).symlink_to(f"/proc/{name}")
    if reader:
        me = os.getpid()
        (top / "self").symlink_to(str(me))  # as /proc/self reads: this process's pid
        (top / str(me)).symlink_to(f"/proc/{me}")
    for pid in pids:
        (top / str(pid)).symlink_to(f"/proc/{pid}")
    return top


def replace_file(path: Path) -> None:
    """What a package manager does: write a new file beside, rename it over the old one."""
    tmp = path.with_name(path.name + ".new")
    shutil.copy2(path, tmp)
    os.replace(tmp, path)


@dataclass
class World:
    root: Path
    prefix: Path  # a distro-like prefix whose files the test may replace
    venv: Path
    other: Path  # a venv of an untouched interpreter
    beta_v2: object
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def start(
        self, name: str, argv: list[str], cwd: Optional[Path] = None, **env: str
    ) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            argv,
            cwd=cwd or self.root,
            env=clean_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "ready", (name, line, p.stderr.read() if p.stderr else "")
        self.procs[name] = p
        return p

    def stop_all(self) -> None:
        for p in self.procs.values():
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            for stream in (p.stdout, p.stderr):
                if stream is not None:
                    stream.close()

    def reported(self) -> dict[str, ProcessReport]:
        """What the real /proc says of this test's processes (and of no other)."""
        by_pid = {p.pid: p for p in scan_processes().processes}
        return {name: by_pid[p.pid] for name, p in self.procs.items() if p.pid in by_pid}

    def restarts(self, *args: str) -> Result:
        """``venvkeeper restarts`` over this test's processes only (see :func:`proc_view`):
        its exit code is theirs, whatever else runs on the machine."""
        view = Path(tempfile.mkdtemp(prefix="proc-", dir=self.root)) / "proc"
        proc_view(view, [p.pid for p in self.procs.values()])
        return run_cli("restarts", "--proc-root", str(view), *args)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    src = find_python("3.11")
    other_py = find_python("3.12")
    if src is None or other_py is None or "/versions/" not in str(src):
        pytest.skip("needs pyenv CPython 3.11 and 3.12")
    real_prefix = src.parent.parent
    prefix = tmp_path / "usr"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy2(src, prefix / "bin" / "python3.11")
    (prefix / "bin" / "python3").symlink_to("python3.11")
    # lib/python3.11: links to the real stdlib, but lib-dynload copied so that the test
    # can replace a compiled stdlib module like an upgrade would
    lib = prefix / "lib" / "python3.11"
    lib.mkdir(parents=True)
    for e in (real_prefix / "lib" / "python3.11").iterdir():
        if e.name == "lib-dynload":
            shutil.copytree(e, lib / e.name)
        elif e.name != "site-packages":
            (lib / e.name).symlink_to(e)
    (lib / "site-packages").mkdir()
    (prefix / "include").mkdir()
    (prefix / "include" / "python3.11").symlink_to(real_prefix / "include" / "python3.11")
    beta = make_project(tmp_path, "beta", ext=True)
    beta2 = make_project(tmp_path / "v2", "beta", "2.0", ext=True)
    venv = make_venv(prefix / "bin" / "python3", tmp_path / "app")
    install(venv, beta)
    other = make_venv(other_py, tmp_path / "other")
    install(other, beta)
    for v in (venv, other):
        script = v / "bin" / "sleeper"
        script.write_text(f"#!{v}/bin/python\n{BODY}")
        script.chmod(0o755)
        site = next(v.glob("lib/python3.*/site-packages"))
        (site / "sleepmod.py").write_text(BODY)
    (tmp_path / "job.py").write_text(BODY)
    w = World(tmp_path, prefix, venv, other, beta2)
    try:
        yield w
    finally:
        w.stop_all()


def start_all(w: World) -> None:
    v = w.venv
    w.start("script", [f"{v}/bin/python", str(w.root / "job.py")])
    w.start("console-script", [f"{v}/bin/sleeper"])
    w.start("python-m", [f"{v}/bin/python", "-m", "sleepmod"], cwd=Path("/"))
    w.start("env", ["/usr/bin/env", f"{v}/bin/python", "job.py"])
    w.start("relative", ["app/bin/python", "job.py"])
    w.start("bare-python", ["python", str(w.root / "job.py")], PATH=f"{v}/bin:/usr/bin:/bin")
    w.start("untouched", [f"{w.other}/bin/sleeper"])
    # A start time is known to a clock tick and "changed after it started" has a small
    # margin: let the changes the tests make come clearly later, as real ones do.
    time.sleep(0.3)


def test_nothing_is_reported_before_anything_changes(world: World) -> None:
    start_all(world)
    assert world.reported() == {}


def test_replaced_interpreter(world: World) -> None:
    start_all(world)
    replace_file(world.prefix / "bin" / "python3.11")
    got = world.reported()
    assert set(got) == set(world.procs) - {"untouched"}
    for name, p in got.items():
        assert p.venv == str(world.venv), name
        assert [r.code for r in p.reasons] == ["interpreter-replaced"], (name, p.reasons)
        assert not p.restart_fails
    assert got["bare-python"].venv_evidence == "maps"  # no path in its command line
    assert got["relative"].venv_evidence == "cmdline"  # resolved against its cwd
    res = world.restarts()
    assert res.code == 1, res.out + res.err
    assert str(world.venv) in res.out


def test_replaced_stdlib_extension(world: World) -> None:
    start_all(world)
    so = next((world.prefix / "lib" / "python3.11" / "lib-dynload").glob("_bisect.*.so"))
    replace_file(so)
    got = world.reported()
    assert set(got) == set(world.procs) - {"untouched"}
    for p in got.values():
        assert [(r.code, r.path) for r in p.reasons] == [("library-replaced", str(so))]


def test_upgraded_package(world: World) -> None:
    start_all(world)
    install(world.venv, world.beta_v2)  # type: ignore[arg-type]
    got = world.reported()
    assert set(got) == set(world.procs) - {"untouched"}
    for name, p in got.items():
        codes = {r.code for r in p.reasons}
        assert "venv-changed" in codes, (name, p.reasons)
        assert "library-replaced" in codes, (name, p.reasons)  # beta's _speed .so


def test_swapped_venv_and_restart_into_a_broken_venv(world: World) -> None:
    """A repair swaps the venv by rename: the old one moves aside, a new one takes its path.
    Here the new one is broken (its interpreter link dangles): restarting would fail."""
    start_all(world)
    aside = world.root / "app.old"
    world.venv.rename(aside)
    shutil.copytree(aside, world.venv, symlinks=True)
    for name in ("python", "python3", "python3.11"):
        link = world.venv / "bin" / name
        if link.is_symlink():
            link.unlink()
            link.symlink_to("/nonexistent/python3.11")
    got = world.reported()
    assert set(got) == set(world.procs) - {"untouched"}
    for name, p in got.items():
        codes = {r.code for r in p.reasons}
        assert "venv-changed" in codes, (name, p.reasons)
        if name != "bare-python":
            assert p.venv == str(world.venv) and "venv-swapped" in codes, name
            assert p.restart_fails, name
    # a bare `python` from PATH: only its mapped files tell its venv, now moved aside
    assert got["bare-python"].venv == str(aside)
    res = world.restarts()
    assert res.code == 2, res.out + res.err
    assert "REPAIR FIRST" in res.out


def test_never_executes_anything_from_a_process(world: World, tmp_path: Path) -> None:
    """A process whose environment points PYTHONPATH at a planted module (the
    CVE-2024-48990 trap) and whose interpreter was replaced: venvkeeper reads, never runs."""
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "pwned"
    for mod in ("importlib", "sitecustomize", "site", "encodings"):
        (evil / f"{mod}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    v = world.venv
    world.start(
        "target",
        [f"{v}/bin/python", "-E", str(world.root / "job.py")],
        PYTHONPATH=str(evil),
        VIRTUAL_ENV=str(v),
    )
    replace_file(world.prefix / "bin" / "python3.11")
    assert "target" in world.reported()
    res = world.restarts("--json")
    assert res.code == 1, res.out + res.err
    (target,) = validate_json("restarts", res.out)["processes"]
    assert target["pid"] == world.procs["target"].pid
    assert not marker.exists()


def test_as_an_unprivileged_user_other_users_processes_are_counted(
    world: World, unprivileged_user: User, open_tmp: Path
) -> None:
    """Not root: root's processes cannot be examined; they are counted, never a traceback,
    and nothing of theirs is reported or guessed."""
    start_all(world)
    replace_file(world.prefix / "bin" / "python3.11")
    python, pythonpath = factory.runner_for_others()
    # the test's processes only (the reader is another process: no "self")
    view = proc_view(open_tmp / "proc", [p.pid for p in world.procs.values()], reader=False)
    res = subprocess.run(
        [python, "-m", "venvkeeper", "restarts", "--json", "--proc-root", str(view)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath, "LANG": "C.UTF-8"},
        cwd="/",
        user=unprivileged_user.uid,
        group=unprivileged_user.gid,
        extra_groups=[],
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    doc = validate_json("restarts", res.stdout)
    assert doc["processes"] == []
    assert doc["skipped"] == {"permission-denied": len(world.procs)}


WHEELS = Path(__file__).resolve().parent.parent / ".dev" / "wheels"


def server_home(root: Path) -> Path:
    """A HOME for a server the test starts: what it writes there (gunicorn's control
    socket in ~/.gunicorn) stays in the test's directory, apart from other runs'."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    return home


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def test_gunicorn_master_and_workers(world: World) -> None:
    """A real gunicorn with two workers; setproctitle rewrites their titles to
    ``gunicorn: worker [app:app]``, so the command line no longer names the venv."""
    if not list(WHEELS.glob("gunicorn-*.whl")) or not list(WHEELS.glob("setproctitle-*.whl")):
        pytest.skip("gunicorn wheels not fetched (./dev.sh test downloads them into .dev/wheels)")
    uv = factory.tool("uv")
    res = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(world.venv / "bin" / "python"),
            "--no-index",
            "--offline",
            "--find-links",
            str(WHEELS),
            "gunicorn",
            "setproctitle",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(UV_PYTHON_DOWNLOADS="never"),
    )
    assert res.returncode == 0, res.stderr
    (world.root / "wsgiapp.py").write_text(
        "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n"
    )
    master = subprocess.Popen(
        [f"{world.venv}/bin/gunicorn", "-w", "2", "-b", "127.0.0.1:0", "wsgiapp:app"],
        cwd=world.root,
        env=clean_env(HOME=str(server_home(world.root))),  # gunicorn makes ~/.gunicorn
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    world.procs["master"] = master
    deadline = time.monotonic() + 30
    workers: list[int] = []
    while time.monotonic() < deadline:
        workers = _children(master.pid)
        titles = [Path(f"/proc/{w}/cmdline").read_bytes() for w in workers]
        if len(workers) == 2 and all(b"worker" in t for t in titles):
            break
        time.sleep(0.1)
    assert len(workers) == 2, master.stderr.read() if master.poll() is not None else workers
    time.sleep(0.3)
    replace_file(world.prefix / "bin" / "python3.11")
    by_pid = {p.pid: p for p in scan_processes().processes}
    for pid in [master.pid, *workers]:
        assert pid in by_pid, pid
        assert by_pid[pid].venv == str(world.venv), (pid, by_pid[pid].argv)
        assert [r.code for r in by_pid[pid].reasons] == ["interpreter-replaced"]
    assert by_pid[workers[0]].argv[0] == "gunicorn:"  # the rewritten title


def test_a_process_in_another_mount_namespace_is_listed_not_judged(world: World) -> None:
    """A container-like process: its paths are those of its own mount namespace."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare")
    v = world.venv
    p = world.start(
        "container",
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            f"{v}/bin/python",
            str(world.root / "job.py"),
        ],
    )
    replace_file(world.prefix / "bin" / "python3.11")
    rep = scan_processes()
    assert p.pid not in {x.pid for x in rep.processes}
    (foreign,) = [f for f in rep.foreign if f.pid == p.pid]
    assert foreign.exe_deleted


def test_a_process_that_chroots_itself_is_judged_by_what_it_mapped(world: World) -> None:
    """A real process that chroots itself into an empty directory once started: its
    command line names host paths no longer its own (the jail has no venv: none is taken
    from it). Before, it was judged by them; then only listed. Its mapped files are shown
    as our paths by the kernel: they still name the venv it runs, and the interpreter it
    runs was replaced, so it is judged, with its root."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    jail = world.root / "jail"
    jail.mkdir()
    job = world.root / "chrooted.py"
    job.write_text(BODY.replace("print(", f"import os\nos.chroot({str(jail)!r})\nprint(", 1))
    p = world.start("chrooted", [f"{world.venv}/bin/python", str(job)])
    replace_file(world.prefix / "bin" / "python3.11")
    rep = scan_processes()
    assert p.pid not in {f.pid for f in rep.foreign}
    (mine,) = [x for x in rep.processes if x.pid == p.pid]
    assert (mine.root, mine.venv, mine.venv_evidence) == (str(jail), str(world.venv), "maps")
    assert "interpreter-replaced" in {r.code for r in mine.reasons}
    assert mine.venv_status is not None and mine.venv_status.value != "critical"  # ours judges


def test_uwsgi_master_and_workers(tmp_path: Path) -> None:
    """Debian's uWSGI with its python3 plugin serving a venv (``--home``): the binary is
    uwsgi, not python; a package upgraded in the venv must flag master and workers."""
    uwsgi = shutil.which("uwsgi_python3") or shutil.which("uwsgi_python311")
    if uwsgi is None or not os.path.exists("/usr/bin/python3"):
        pytest.skip("uWSGI with the python3 plugin is not installed (./dev.sh test installs it)")
    system_py = Path(os.path.realpath("/usr/bin/python3"))
    alpha = make_project(tmp_path, "alpha")
    alpha2 = make_project(tmp_path / "v2", "alpha", "2.0")
    venv = make_venv(system_py, tmp_path / "site")
    install(venv, alpha)
    (tmp_path / "app.py").write_text(
        "import alpha\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'ok']\n"
    )
    master = subprocess.Popen(
        [
            uwsgi,
            "--http-socket",
            "127.0.0.1:0",
            "--home",
            str(venv),
            "--wsgi-file",
            str(tmp_path / "app.py"),
            "--master",
            "--processes",
            "2",
            "--need-app",
        ],
        cwd=tmp_path,
        env=clean_env(HOME=str(server_home(tmp_path))),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:
            workers = _children(master.pid)
            time.sleep(0.1)
        assert len(workers) == 2, master.stderr.read() if master.poll() is not None else workers
        assert master.pid not in {p.pid for p in scan_processes().processes}
        time.sleep(0.3)
        install(venv, alpha2)
        by_pid = {p.pid: p for p in scan_processes().processes}
        for pid in [master.pid, *workers]:
            assert pid in by_pid, pid
            assert by_pid[pid].venv == str(venv)
            assert by_pid[pid].venv_evidence == "cmdline"  # uwsgi's --home
            assert [r.code for r in by_pid[pid].reasons] == ["venv-changed"]
    finally:
        with contextlib.suppress(OSError):
            os.killpg(master.pid, signal.SIGKILL)
        master.wait()
        if master.stderr is not None:
            master.stderr.close()


def test_bytecode_written_after_start_is_not_a_change(world: World) -> None:
    """The first import of a top-level module creates site-packages/__pycache__, which
    changes the directory's time: not a package change, no restart needed."""
    site = next(world.venv.glob("lib/python3.*/site-packages"))
    shutil.rmtree(site / "__pycache__", ignore_errors=True)
    (site / "fresh_module.py").write_text("X = 1\n")
    world.start("service", [f"{world.venv}/bin/sleeper"], PYTHONDONTWRITEBYTECODE="1")
    time.sleep(0.3)
    assert not (site / "__pycache__").exists()
    subprocess.run(
        [f"{world.venv}/bin/python", "-c", "import fresh_module"],
        env=clean_env(),
        check=True,
        timeout=60,
    )
    assert (site / "__pycache__").is_dir()
    assert world.reported() == {}  # the directory changed, but no package did
    time.sleep(0.3)
    (site / "fresh_module.py").unlink()  # a module removed: a real change
    assert set(world.reported()) == {"service"}


def test_after_a_distro_upgrade_a_restart_would_land_in_the_broken_venv(tmp_path: Path) -> None:
    """The headline case: python3 moves from 3.10 to 3.12 and 3.10 is removed. The service
    still runs the deleted 3.10 binary; restarting it would start 3.12 with its packages
    invisible (the silent failure). venvkeeper says both, and exits 2."""
    for minor in ("3.10", "3.12"):
        if not factory.FakeDistro.available(minor):
            pytest.skip(f"pyenv CPython {minor} is needed for the simulated upgrade")
    distro = factory.FakeDistro(tmp_path / "usr")
    distro.install("3.10")
    py3 = distro.set_default("3.10")
    beta = make_project(tmp_path, "beta", ext=True)
    venv = make_venv(py3, tmp_path / "svc")
    install(venv, beta)
    (tmp_path / "job.py").write_text(BODY)
    w = World(tmp_path, tmp_path / "usr", venv, venv, None)
    try:
        service = w.start("service", [f"{venv}/bin/python", str(tmp_path / "job.py")])
        time.sleep(0.3)
        assert w.reported() == {}
        # Before the upgrade, predict names the venv and the service it would take down.
        usr = tmp_path / "usr"
        change = (f"--python-becomes={usr}/bin/python3=3.12", f"--remove={usr}/bin/python3.10")
        pred = validate_json("predict", run_cli("predict", "--json", str(venv), *change).out)[
            "venvs"
        ][0]
        assert pred["effect"] == "breaks-silently"
        assert [u["pid"] for u in pred["used_by"]] == [service.pid]
        table = run_cli("predict", str(venv), *change).out
        assert f"running services that would break: pid {service.pid} (python)" in table
        distro.install("3.12")
        distro.set_default("3.12")
        distro.remove("3.10")
        got = w.reported()["service"]
        assert [r.code for r in got.reasons] == ["interpreter-replaced"]
        assert got.restart_fails
        assert got.venv_finding is not None and got.venv_finding.code == "version-mismatch"
        res = w.restarts()
        assert res.code == 2, res.out + res.err
        assert "REPAIR FIRST" in res.out and "version-mismatch" in res.out
    finally:
        w.stop_all()
