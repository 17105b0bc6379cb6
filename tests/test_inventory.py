"""The inventory: real scans of a changing tree of real venvs, recorded and compared.

Every step changes the tree the way a host changes (venvs made, broken, removed,
repaired), scans it with the real CLI, and checks what ``changes``, ``history`` and
``inventory`` say against what was done."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from venvkeeper.inventory.queries import parse_since
from venvkeeper.inventory.record import covers
from venvkeeper.inventory.store import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, default_path

from conftest import (
    User,
    host_tmpdir,
    json_kind,
    remove_tree,
    require_unmanaged_python,
    run_cli,
    validate_json,
)
from factory import break_venv, make_venv, repair_venv, runner_for_others, system_venv

SRC = Path(__file__).resolve().parent.parent / "src"


def scan(db: Path, *roots: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    res = run_cli("scan", "--json", "--db", str(db), *extra, *map(str, roots))
    assert res.code in (0, 1, 2), res.err
    return validate_json("scan", res.out)


def jcli(*args: str) -> dict[str, Any]:
    res = run_cli(*args)
    assert res.code == 0, res.err
    return validate_json(json_kind(args), res.out)


def changes(db: Path, *extra: str) -> dict[str, list[str]]:
    doc = jcli("changes", "--json", "--db", str(db), *extra)
    return {
        k: [c["path"] for c in doc[k]] for k in ("new", "vanished", "broken", "fixed", "improved")
    }


def history(db: Path, path: Path) -> dict[str, Any]:
    return jcli("history", "--json", "--db", str(db), str(path))


def known(db: Path) -> dict[str, dict[str, Any]]:
    return {v["path"]: v for v in jcli("inventory", "--json", "--db", str(db))["venvs"]}


def test_a_changing_tree_over_five_scans(tmp_path: Path) -> None:
    tree, other, db = tmp_path / "tree", tmp_path / "other", tmp_path / "state" / "inv.db"
    db.parent.mkdir()
    a = system_venv(tree / "a")
    b = make_venv(require_unmanaged_python("3.11"), tree / "b")  # unmanaged-base: warning
    c = system_venv(tree / "c")
    sa, sb, sc = str(a), str(b), str(c)

    # Scan 1: three venvs, all new (from an empty inventory).
    s1 = scan(db, tree)
    assert {v["path"]: v["status"] for v in s1["venvs"]} == {
        sa: "ok",
        sb: "warning",
        sc: "ok",
    }
    assert changes(db) == {
        "new": [sb, sa, sc],
        "vanished": [],
        "broken": [],
        "fixed": [],
        "improved": [],
    }
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    # (the default place's directory is created 0700: test_errors.py)

    # Scan 2: d is made, a breaks.
    d = system_venv(tree / "d")
    target = break_venv(a)
    scan(db, tree)
    assert changes(db) == {
        "new": [str(d)],
        "vanished": [],
        "broken": [sa],
        "fixed": [],
        "improved": [],
    }
    doc = jcli("changes", "--json", "--db", str(db))
    assert doc["since"]["id"] == 1 and doc["until"]["id"] == 2
    (broken,) = doc["broken"]
    assert (broken["before"], broken["after"]) == ("ok", "critical")
    assert [f["code"] for f in broken["venv"]["findings"]] == ["interpreter-dangling"]

    # Scan 3: c is removed, a is repaired.
    shutil.rmtree(c)
    repair_venv(a, target)
    scan(db, tree)
    assert changes(db) == {"new": [], "vanished": [sc], "broken": [], "fixed": [sa], "improved": []}
    # From scan 1, a broke and came back: no net change; c vanished, d is new.
    assert changes(db, "--since", "1") == {
        "new": [str(d)],
        "vanished": [sc],
        "broken": [],
        "fixed": [],
        "improved": [],
    }

    # Scan 4: another root. d is removed too, but this scan did not cover it: not seen,
    # never vanished; what it found is new, and nothing else changed.
    e = system_venv(other / "e")
    shutil.rmtree(d)
    scan(db, other)
    assert changes(db) == {
        "new": [str(e)],
        "vanished": [],
        "broken": [],
        "fixed": [],
        "improved": [],
    }
    inv = known(db)
    assert {p: v["presence"] for p, v in inv.items()} == {
        str(e): "seen",
        sa: "not-seen",
        sb: "not-seen",
        str(d): "not-seen",
        sc: "vanished",
    }
    assert inv[sa]["status"] == "ok" and inv[sb]["status"] == "warning"
    assert inv[sc]["vanished"]["scan"] == 3 and inv[sc]["last_seen"]["scan"] == 2
    assert inv[sa]["first_seen"]["scan"] == 1 and inv[sa]["last_seen"]["scan"] == 3

    # Scan 5: the tree again: now d is found gone.
    scan(db, tree)
    assert changes(db) == {
        "new": [],
        "vanished": [str(d)],
        "broken": [],
        "fixed": [],
        "improved": [],
    }

    # The history of a: ok, critical, ok, (not scanned), ok.
    h = history(db, a)
    assert h["presence"] == "seen" and h["vanished"] is None
    assert [(x["scan"], x["event"], x["status"], x["codes"]) for x in h["entries"]] == [
        (1, "seen", "ok", []),
        (2, "seen", "critical", ["interpreter-dangling"]),
        (3, "seen", "ok", []),
        (5, "seen", "ok", []),
    ]
    assert h["entries"][0]["python"] == h["entries"][2]["python"]
    assert h["entries"][0]["python"].startswith("3.")
    assert h["entries"][1]["python"] is None  # its interpreter link led nowhere
    # The history of c: seen twice, then vanished at scan 3.
    h = history(db, c)
    assert h["presence"] == "vanished" and h["vanished"]["scan"] == 3
    assert [(x["scan"], x["event"]) for x in h["entries"]] == [
        (1, "seen"),
        (2, "seen"),
        (3, "vanished"),
    ]
    # b on the same unmanaged 3.11 throughout.
    h = history(db, b)
    assert {x["python"] for x in h["entries"]} == {h["entries"][0]["python"]}
    assert h["entries"][0]["python"].startswith("3.11")
    assert all(x["codes"] == ["unmanaged-base"] for x in h["entries"])

    # Durations: everything since a week ago is new (no scan is that old); since now, nothing.
    assert sorted(changes(db, "--since", "1w")["new"]) == sorted([sa, sb, str(e)])
    assert changes(db, "--since", "0s") == {
        k: [] for k in ("new", "vanished", "broken", "fixed", "improved")
    }

    # The tables tell the same.
    out = run_cli("inventory", "--db", str(db)).out
    assert "5 venvs known from 5 scans: 2 seen by the latest, 1 not seen" in out
    assert "2 vanished" in out
    out = run_cli("history", "--db", str(db), str(c)).out
    assert out.splitlines()[-1].split()[0] == "3" and "vanished" in out.splitlines()[-1]


def test_a_venv_that_comes_back_is_new_again(tmp_path: Path) -> None:
    db = tmp_path / "inv.db"
    v = system_venv(tmp_path / "tree" / "v")
    scan(db, tmp_path / "tree")
    shutil.move(str(v), str(tmp_path / "aside"))
    scan(db, tmp_path / "tree")
    assert changes(db)["vanished"] == [str(v)]
    shutil.move(str(tmp_path / "aside"), str(v))
    scan(db, tmp_path / "tree")
    doc = jcli("changes", "--json", "--db", str(db))
    assert [(c["path"], c["reappeared"]) for c in doc["new"]] == [(str(v), True)]
    assert known(db)[str(v)]["presence"] == "seen"
    assert [x["event"] for x in history(db, v)["entries"]] == ["seen", "vanished", "seen"]


def test_an_excluded_or_unreached_venv_is_not_vanished(tmp_path: Path) -> None:
    db = tmp_path / "inv.db"
    tree = tmp_path / "tree"
    keep = system_venv(tree / "keep" / "v")
    gone = system_venv(tree / "gone" / "v")
    scan(db, tree)
    # Excluded and present: not seen. Excluded and removed: still not vanished (this scan
    # did not cover it); the next scan that covers it finds it gone.
    shutil.rmtree(gone)
    scan(db, tree, extra=("--exclude", "keep", "--exclude", str(tree / "gone")))
    inv = known(db)
    assert inv[str(keep)]["presence"] == "not-seen"
    assert inv[str(gone)]["presence"] == "not-seen"
    scan(db, tree)
    inv = known(db)
    assert inv[str(keep)]["presence"] == "seen"
    assert inv[str(gone)]["presence"] == "vanished"


def test_coverage_rule() -> None:
    assert covers("/srv/a/venv", ["/srv"])
    assert covers("/srv/a/venv", ["/"])
    assert covers("/srv/a/venv", ["/srv/a/venv"])
    assert not covers("/srv/a/venv", ["/srv/b", "/home"])
    assert not covers("/srvx/venv", ["/srv"])
    assert not covers("/srv/a/venv", ["/srv"], ["a"])
    assert not covers("/srv/a/venv", ["/srv"], ["/srv/a"])
    assert covers("/srv/a/venv", ["/srv"], ["b", "/srv/b*"])
    assert covers("/srv/a/venv", ["/srv", "/srv/a"], ["/srv"])  # excludes apply below a root


def test_since_parsing() -> None:
    assert parse_since("12").scan_id == 12
    assert parse_since("30m").seconds == 1800
    assert parse_since("12h").seconds == 12 * 3600
    assert parse_since("1d").seconds == 86400
    assert parse_since("2w").seconds == 14 * 86400
    for bad in ("", "1y", "-1d", "d", "1.5h", "12 h"):
        res = run_cli("changes", "--since", bad)
        assert res.code == 3 and "--since" in res.err


def test_read_commands_need_an_inventory(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    for argv in (["inventory"], ["changes"], ["history", str(tmp_path)]):
        res = run_cli(*argv, "--db", str(db))
        assert res.code == 3 and "no inventory" in res.err and "venvkeeper scan" in res.err
    assert not db.exists()  # reading never creates one
    system_venv(tmp_path / "tree" / "v")
    scan(db, tmp_path / "tree")
    res = run_cli("history", "--db", str(db), str(tmp_path / "elsewhere"))
    assert res.code == 3 and "not in the inventory" in res.err
    res = run_cli("changes", "--db", str(db), "--since", "99")
    assert res.code == 3 and "no such scan" in res.err
    # One scan: everything it found is new.
    assert changes(db)["new"] == [str(tmp_path / "tree" / "v")]


def test_no_record_and_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system_venv(tmp_path / "tree" / "v")
    db = tmp_path / "env.db"
    monkeypatch.setenv("VENVKEEPER_DB", str(db))
    assert run_cli("scan", "--no-record", str(tmp_path / "tree")).code == 0
    assert not db.exists()
    assert run_cli("scan", "-q", str(tmp_path / "tree")).code == 0
    assert jcli("inventory", "--json")["scans"] == 1
    assert jcli("inventory", "--json")["db"] == str(db)


def test_default_path() -> None:
    assert default_path({}, euid=0) == "/var/lib/venvkeeper/inventory.db"
    assert default_path({"XDG_STATE_HOME": "/x/state", "HOME": "/home/u"}, euid=1000) == (
        "/x/state/venvkeeper/inventory.db"
    )
    # A relative XDG_STATE_HOME is to be ignored (the XDG spec).
    assert default_path({"XDG_STATE_HOME": "rel", "HOME": "/home/u"}, euid=1000) == (
        "/home/u/.local/state/venvkeeper/inventory.db"
    )
    assert default_path({"VENVKEEPER_DB": "/d/i.db"}, euid=0) == "/d/i.db"


def test_an_unwritable_default_place_warns_and_scans(unprivileged_user: User) -> None:
    """A user whose home cannot hold the inventory still gets the scan, with a warning."""
    python, pythonpath = runner_for_others()
    top = host_tmpdir("inv")
    try:
        tree = top / "tree"
        system_venv(tree / "v")
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": pythonpath,
            "HOME": "/nonexistent",
        }

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [python, "-m", "venvkeeper", "scan", "-q", str(tree)],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
                cwd="/",
                user=unprivileged_user.uid,
                group=unprivileged_user.gid,
                extra_groups=[],
            )

        res = run()
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("1 venv: ")
        assert "warning: this scan is not recorded: cannot create inventory" in res.stderr
        assert "/nonexistent/.local/state/venvkeeper/inventory.db" in res.stderr
        assert "Traceback" not in res.stderr
        # Named explicitly, the same kind of place is an error, before any scanning.
        env["VENVKEEPER_DB"] = "/nonexistent/inv.db"
        res = run()
        assert res.returncode == 3 and "cannot create inventory" in res.stderr
        assert res.stdout == ""
    finally:
        remove_tree(top)


# --- the database file itself -------------------------------------------------------------


def _sqlite_db(path: Path, *, app_id: int, version: int, tables: bool = True) -> bytes:
    conn = sqlite3.connect(path)
    if tables:
        conn.execute("CREATE TABLE something (x)")
        conn.execute("INSERT INTO something VALUES (1)")
    conn.execute(f"PRAGMA application_id = {app_id}")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    "content",
    [
        b"\x00garbage\xff" * 1000,
        b"this is a text file, not a database\n",
        b"SQLite format 3\x00" + b"\xff" * 4080,  # the right magic, a garbage header
    ],
    ids=["binary", "text", "bad-header"],
)
def test_a_corrupt_file_is_refused_and_left_alone(tmp_path: Path, content: bytes) -> None:
    system_venv(tmp_path / "tree" / "v")
    db = tmp_path / "inv.db"
    db.write_bytes(content)
    for argv in (
        ["scan", "--db", str(db), str(tmp_path / "tree")],
        ["inventory", "--db", str(db)],
        ["changes", "--db", str(db)],
        ["history", "--db", str(db), str(tmp_path / "tree" / "v")],
        [
            "export",
            "--db",
            str(db),
            "--prometheus",
            str(tmp_path / "m.prom"),
            str(tmp_path / "tree"),
        ],
    ):
        res = run_cli(*argv)
        assert res.code == 3, (argv, res.err)
        assert f"inventory {db}:" in res.err and "left as it is" in res.err
        assert "Traceback" not in res.err
        assert res.out == ""  # scan refused before it scanned
        assert db.read_bytes() == content
    res = run_cli("check", "--db", str(db), str(tmp_path / "tree"))
    assert res.code == 3 and res.out.startswith("VENVKEEPER UNKNOWN - inventory ")
    assert res.out.count("\n") == 1
    assert db.read_bytes() == content
    assert not (tmp_path / "m.prom").exists()


def test_a_database_with_corrupt_pages_is_refused_and_left_alone(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    system_venv(tree / "v")
    db = tmp_path / "inv.db"
    for i in range(3):
        system_venv(tree / f"more{i}")
        scan(db, tree)
    run_cli("inventory", "--db", str(db))  # checkpointed: everything is in the main file
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page : len(data)] = b"\xa5" * (len(data) - 2 * page)
    db.write_bytes(bytes(data))
    for wal in (db.with_name("inv.db-wal"), db.with_name("inv.db-shm")):
        assert not wal.exists()
    for argv in (["scan", "--db", str(db), str(tree)], ["inventory", "--db", str(db)]):
        res = run_cli(*argv)
        assert res.code == 3, res.err
        assert "corrupt" in res.err or "malformed" in res.err
        assert db.read_bytes() == bytes(data)


def test_pages_corrupted_after_an_open_are_refused_by_the_next_one(tmp_path: Path) -> None:
    """A process opens its inventory up to three times per scan and checks its pages only
    when a byte of it may have changed since it last found it whole: a corruption that
    keeps the size and the mtime is still found (the ctime tells)."""
    from venvkeeper.errors import InventoryError
    from venvkeeper.inventory.store import open_store

    tree = tmp_path / "tree"
    for i in range(3):
        system_venv(tree / f"v{i}")
    db = tmp_path / "inv.db"
    scan(db, tree)
    conn = sqlite3.connect(db)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sightings'").fetchone()
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    open_store(str(db), create=False).close()  # whole: the next open need not check
    open_store(str(db), create=False).close()
    st = db.stat()
    with open(db, "r+b") as f:  # a page of rows (not of the schema), in place
        f.seek((root[0] - 1) * size)
        f.write(b"\xa5" * size)
    os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (db.stat().st_size, db.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    with pytest.raises(InventoryError, match=r"corrupt|malformed"):
        open_store(str(db), create=False).close()


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "inv.db"
    content = _sqlite_db(db, app_id=APPLICATION_ID, version=SCHEMA_VERSION + 1)
    system_venv(tmp_path / "tree" / "v")
    for argv in (["scan", "--db", str(db), str(tmp_path / "tree")], ["inventory", "--db", str(db)]):
        res = run_cli(*argv)
        assert res.code == 3
        assert f"schema version {SCHEMA_VERSION + 1}, newer than" in res.err
        assert "upgrade venvkeeper" in res.err
        assert db.read_bytes() == content


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    content = _sqlite_db(db, app_id=0, version=0)
    res = run_cli("scan", "--db", str(db), str(tmp_path))
    assert res.code == 3 and "another application (tables: something)" in res.err
    assert db.read_bytes() == content


@pytest.mark.parametrize("start", ["missing", "empty-file", "empty-sqlite"])
def test_an_empty_database_is_migrated_to_the_current_schema(tmp_path: Path, start: str) -> None:
    db = tmp_path / "sub" / "inv.db"
    db.parent.mkdir()  # a --db is created, its directory never (a typo is not a place)
    if start == "empty-file":
        db.write_bytes(b"")
    elif start == "empty-sqlite":
        _sqlite_db(db, app_id=0, version=0, tables=False)
        assert db.stat().st_size > 0
    system_venv(tmp_path / "tree" / "v")
    scan(db, tmp_path / "tree")
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"scans", "venvs", "sightings", "findings", "vanishings"} <= tables
        assert conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0] == 1
    finally:
        conn.close()
    assert len(MIGRATIONS) == SCHEMA_VERSION


# --- concurrency ----------------------------------------------------------------------------


def _scan_process(db: Path, root: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), VENVKEEPER_DB=str(db))
    return subprocess.Popen(
        [sys.executable, "-m", "venvkeeper", "scan", "-q", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_concurrent_scans_all_record(tmp_path: Path) -> None:
    """Four real processes create and fill one new database at the same moment."""
    roots = []
    for i in range(4):
        system_venv(tmp_path / f"t{i}" / "v")
        roots.append(tmp_path / f"t{i}")
    db = tmp_path / "state" / "inv.db"
    db.parent.mkdir()
    procs = [_scan_process(db, r) for r in roots]
    for p in procs:
        _out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        assert "Traceback" not in err and "not recorded" not in err
    doc = jcli("inventory", "--json", "--db", str(db))
    assert doc["scans"] == 4
    assert sorted(v["path"] for v in doc["venvs"]) == sorted(str(r / "v") for r in roots)
    assert all(v["presence"] in ("seen", "not-seen") for v in doc["venvs"])


def test_the_header_is_read_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's first migration between two reads of the header (seen by
    test_concurrent_scans_all_record, now and then: "an SQLite database of another
    application"): here at the worst moment, from a thread, when the application id was
    read and the schema version is next. The reads are one snapshot: the migration waits
    for them, and both openings succeed."""
    import threading

    from venvkeeper.inventory import store as store_mod

    db = tmp_path / "inv.db"
    db.touch(mode=0o600)  # a new database, as the first scan leaves it before migrating
    real_connect = sqlite3.connect
    other: list[BaseException] = []
    done = threading.Event()

    def migrate_meanwhile() -> None:
        try:
            store_mod.open_store(str(db)).close()
        except BaseException as e:
            other.append(e)
        finally:
            done.set()

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        started: list[threading.Thread] = []

        def trace(sql: str) -> None:
            if "user_version" in sql and not started:
                started.append(threading.Thread(target=migrate_meanwhile))
                started[0].start()
                done.wait(3)  # time enough to migrate, unless our reads hold it off

        conn.set_trace_callback(trace)
        monkeypatch.setattr(sqlite3, "connect", real_connect)  # the thread's is plain
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    store_mod.open_store(str(db)).close()
    assert done.wait(120) and not other, other
    with store_mod.open_store(str(db)) as st:
        assert st.query("PRAGMA user_version")[0][0] == store_mod.SCHEMA_VERSION


def test_a_scan_waits_for_another_writer(tmp_path: Path) -> None:
    """A scan that finds the database locked by a writer waits for it, then records."""
    system_venv(tmp_path / "tree" / "v")
    db = tmp_path / "inv.db"
    scan(db, tmp_path / "tree")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # the write lock, as a scan recording holds it
    conn.execute(
        "INSERT INTO scans (started_at, finished_at, host, roots, excludes,"
        " duration_seconds, venvs, ok, warning, unknown, critical, tool_version)"
        " VALUES (0, 0, 'h', '[]', '[]', 0, 0, 0, 0, 0, 0, 'test')"
    )
    proc = _scan_process(db, tmp_path / "tree")
    try:
        # The scan opens the database to record what it found: from then on it must wait
        # for the lock, not fail nor give up while the writer holds it.
        deadline = time.monotonic() + 120
        while not _has_open(proc.pid, db):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the scan never opened the database"
            time.sleep(0.02)
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()  # still waiting for the lock
    finally:
        conn.execute("COMMIT")
        conn.close()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "not recorded" not in err and "locked" not in err, err
    doc = jcli("inventory", "--json", "--db", str(db))
    assert doc["scans"] == 3 and doc["latest_scan"]["id"] == 3
    assert doc["latest_scan"]["tool_version"] != "test"  # the waiting scan's, after ours


def _has_open(pid: int, path: Path) -> bool:
    """Whether process *pid* has *path* open (its /proc/PID/fd)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


def test_since_a_duration_picks_the_last_scan_before_that_age(tmp_path: Path) -> None:
    """Three real scans, recorded as if made three days, one day and zero days ago."""
    import dataclasses

    from venvkeeper.inventory.queries import changes
    from venvkeeper.inventory.record import record
    from venvkeeper.inventory.snapshot import snapshot_of
    from venvkeeper.inventory.store import open_store
    from venvkeeper.scan.pipeline import scan as run_scan

    tree = tmp_path / "tree"
    db = tmp_path / "inv.db"
    now = time.time()
    a = system_venv(tree / "a")
    b = None
    for age_days in (3, 1, 0):
        if age_days == 1:
            b = system_venv(tree / "b")
        if age_days == 0:
            break_venv(a)
        snap = snapshot_of(run_scan([str(tree)]))
        snap = dataclasses.replace(snap, started_at=now - age_days * 86400)
        with open_store(str(db)) as store:
            record(store, snap)
    assert b is not None
    with open_store(str(db), create=False) as store:
        two_days = changes(store, parse_since("2d"), now=now)
        half_day = changes(store, parse_since("12h"), now=now)
        four_days = changes(store, parse_since("4d"), now=now)
    assert two_days.since is not None and two_days.since.scan_id == 1
    assert [(c.kind.value, c.path) for c in two_days.changes] == [
        ("new", str(b)),
        ("broken", str(a)),
    ]
    assert half_day.since is not None and half_day.since.scan_id == 2
    assert [(c.kind.value, c.path) for c in half_day.changes] == [("broken", str(a))]
    assert four_days.since is None
    assert sorted((c.kind.value, c.path) for c in four_days.changes) == [
        ("new", str(a)),
        ("new", str(b)),
    ]
