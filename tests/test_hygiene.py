"""The suite leaves the host as it found it: the private inventory and configuration hold
from the session's start (module-scoped fixtures included), the build backend leaves no
temporary directory, the test account is this run's own, and the session-end check
(conftest's host_changes) finds exactly this run's changes."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from venvkeeper import config as vk_config
from venvkeeper.inventory.store import default_path

import factory
from conftest import (
    SESSION_PREFIX,
    User,
    _HostState,
    _inventory_state,
    host_changes,
    remove_user,
    run_cli,
)
from factory import make_project


@dataclass(frozen=True)
class SeenEarly:
    db: str
    tree: Path
    system_config: str
    user_config: str


@pytest.fixture(scope="module")
def seen_by_a_module_fixture(tmp_path_factory: pytest.TempPathFactory) -> SeenEarly:
    """What a module-scoped world sees and does (it runs before any function-scoped
    autouse fixture): the configuration's places, and a scan that records into the
    default inventory."""
    tree = tmp_path_factory.mktemp("module-world")
    assert run_cli("scan", "-q", str(tree)).code == 0
    return SeenEarly(default_path(), tree, vk_config.SYSTEM_CONFIG, vk_config.user_config_path())


def test_module_fixtures_have_the_sessions_inventory_and_no_host_config(
    seen_by_a_module_fixture: SeenEarly,
) -> None:
    seen = seen_by_a_module_fixture
    session = Path(seen.db).parent
    assert seen.db != "/var/lib/venvkeeper/inventory.db"
    assert session.name.startswith(f"{SESSION_PREFIX}session-")
    with contextlib.closing(sqlite3.connect(seen.db)) as con:
        roots = [json.loads(r) for (r,) in con.execute("SELECT roots FROM scans")]
    assert [str(seen.tree)] in roots
    for cfg in (seen.system_config, seen.user_config):
        assert Path(cfg).is_relative_to(session) and not Path(cfg).exists()


def test_the_build_backend_leaves_no_temporary_directory(tmp_path: Path) -> None:
    """A real pip builds a wheel with a C extension through tests/data/vkbackend.py, with
    its temporary directory private to the test: nothing may be left in it."""
    private = tmp_path / "tmp"
    private.mkdir()
    proj = make_project(tmp_path, "tidy", ext=True)
    wheels = tmp_path / "wheels"
    factory.sh(
        factory.DEV_BIN / "python",
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-index",
        "--no-build-isolation",
        "-w",
        wheels,
        proj.path,
        env=factory.clean_env(TMPDIR=str(private)),
    )
    assert [w.name.split("-")[0] for w in wheels.iterdir()] == ["tidy"]
    assert list(private.iterdir()) == []


def test_the_account_is_this_runs_own(unprivileged_user: User) -> None:
    assert unprivileged_user.name.startswith(f"vkt-{os.getpid()}-")
    pw = pwd.getpwnam(unprivileged_user.name)
    assert pw.pw_shell.endswith("nologin") and not Path(pw.pw_dir).exists()
    assert 0 < pw.pw_uid < 1000  # a system account


def test_an_account_is_removed_with_its_group_and_processes() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = f"vkt-{os.getpid()}-rm"
    subprocess.run(
        ["useradd", "--system", "--user-group", "-M", "-d", "/nonexistent", name],
        check=True,
        capture_output=True,
        timeout=30,
    )
    pw = pwd.getpwnam(name)
    left = subprocess.Popen(["sleep", "300"], user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    try:
        assert remove_user(name) is None
        with pytest.raises(KeyError):
            pwd.getpwnam(name)
        assert subprocess.run(["getent", "group", name], capture_output=True).returncode == 2
        assert left.wait(timeout=10) == -9
    finally:
        if left.poll() is None:
            left.kill()
            left.wait()
        remove_user(name)


def _state(tmp_path: Path, dbs: dict[str, object], tmp: Path) -> _HostState:
    return _HostState(
        started=time.time() - 1,
        session_dir=tmp_path / f"{SESSION_PREFIX}session-x",
        inventories=dbs,  # type: ignore[arg-type]
        tmp_names=frozenset(os.listdir(tmp)),
        basetemp=str(tmp_path / "basetemp"),
    )


def _record(db: Path, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    assert run_cli("scan", "-q", "--db", str(db), str(root)).code == 0


def test_the_session_check_finds_this_runs_changes_only(tmp_path: Path) -> None:
    """A stand-in host (an inventory, a /tmp): this run's scans, directories and strays
    are told apart from those of others on the machine."""
    host_tmp = tmp_path / "host-tmp"
    host_tmp.mkdir()
    db = tmp_path / "host-inventory.db"
    _record(db, tmp_path / "elsewhere")  # before the session
    state = _state(tmp_path, {str(db): _inventory_state(str(db))}, host_tmp)
    assert host_changes(state, [host_tmp], host_tmp) == ([], [])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "elsewhere",
        "host-inventory.db",
        "host-tmp",
    ]

    _record(db, tmp_path / "other-run")  # another process's scan
    (host_tmp / "vk-test-1-other-run").mkdir()  # another run's directory
    changed, notes = host_changes(state, [host_tmp], host_tmp)
    assert changed == [] and [n.split(" changed")[0] for n in notes] == [str(db)]

    state = _state(tmp_path, {str(db): _inventory_state(str(db))}, host_tmp)
    _record(db, tmp_path / "basetemp" / "test0")  # this run's scan
    mine = host_tmp / f"{SESSION_PREFIX}deep-abc"
    (mine / "sub").mkdir(parents=True)
    (mine / "sub").chmod(0)
    (host_tmp / "tmpabc123").mkdir()  # a stray: cannot be told whose, only noted
    changed, notes = host_changes(state, [host_tmp], host_tmp)
    assert len(changed) == 2, changed
    assert changed[0].startswith(f"recorded into the host's inventory {db}: scans [(3, ")
    assert changed[1] == f"left {mine}" and not mine.exists()
    assert (host_tmp / "vk-test-1-other-run").exists()
    assert notes[-1].startswith("1 new") and notes[-1].endswith("tmpabc123")
    assert not list(tmp_path.glob("*.db-*"))  # the check read a copy: no -wal, no -shm

    created = tmp_path / "created.db"
    state = _state(tmp_path, {str(created): None}, host_tmp)
    _record(created, tmp_path / "basetemp" / "test1")
    assert host_changes(state, [host_tmp], host_tmp)[0][0].startswith(
        f"recorded into the host's inventory {created}"
    )


# --- no bare open() in src/ (tools/check_open.py, run by ./dev.sh lint) ------------------

CHECK_OPEN = Path(__file__).resolve().parent.parent / "tools" / "check_open.py"


def _check_open(*args: str) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, str(CHECK_OPEN), *args], capture_output=True, text=True, timeout=120
    )


def test_src_has_no_bare_open() -> None:
    res = _check_open()
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_planted_bare_open_fails_the_lint(tmp_path: Path) -> None:
    """Each way of reading a path that bypasses fsutil is found, with its file and line;
    the careful ways are not."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "sub" / "bad.py").write_text(
        "from pathlib import Path\n"
        "import gzip\n"
        "def first(p):\n"
        "    with open(p) as f:\n"  # line 4
        "        return f.read()\n"
        "def second(p):\n"
        "    return Path(p).read_text()\n"  # line 7
        "def third(p):\n"
        "    return Path(p).read_bytes(), gzip.open(p), Path(p).open()\n"  # line 9
    )
    (pkg / "good.py").write_text(
        "import os\nfrom venvkeeper.host import fsutil\n"
        "def fine(p):\n"
        "    fd = os.open(p, os.O_RDONLY)\n"
        "    return fd, fsutil.read_bytes(p), fsutil.read_text(p)\n"
    )
    res = _check_open("--src", str(pkg))
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    bad = str(pkg / "sub" / "bad.py")
    assert [ln.split(": ", 1)[0] for ln in lines] == [
        f"{bad}:4",
        f"{bad}:7",
        f"{bad}:9",
        f"{bad}:9",
        f"{bad}:9",
    ], lines
    assert "open() in first" in lines[0] and "read_text() in second" in lines[1]
    assert "good.py" not in res.stdout
