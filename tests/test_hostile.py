"""Hostile trees: every bad input gives a finding or a counted skip, never a traceback or a
hang. Real files, FIFOs, devices, loops and permissions; a patched ``os.scandir`` only for
what a test cannot make happen on cue (a directory vanishing mid-walk, ESTALE)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venvkeeper.host.mounts import parse_mountinfo, read_mounts
from venvkeeper.scan import discovery
from venvkeeper.scan.cfg import parse_pyvenv_cfg
from venvkeeper.scan.discovery import Candidate, WalkOptions, WalkStats, walk
from venvkeeper.scan.inspect import inspect_venv
from venvkeeper.scan.pipeline import scan
from venvkeeper.textutil import decode, escape

import factory
from conftest import User, host_tmpdir, remove_tree, validate_json
from factory import in_mount_namespace
from test_discovery import fake_venv

DEV_PYTHON = sys.executable
SRC = Path(__file__).parent.parent / "src"


def run_scan_subprocess(*args: str, user: User | None = None, timeout: float = 120):
    """The CLI in a child process: a hang fails the test through the timeout."""
    kwargs: dict[str, object] = {}
    # This checkout's code, not whatever the dev venv's editable install points at.
    python, env = DEV_PYTHON, {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(SRC)}
    if user is not None:
        kwargs = {"user": user.uid, "group": user.gid, "extra_groups": []}
        python, env["PYTHONPATH"] = factory.runner_for_others()
    return subprocess.run(
        [python, "-m", "venvkeeper", "scan", "--json", "--no-record", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd="/",
        **kwargs,  # type: ignore[arg-type]
    )


def venvs_of(res: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    assert res.returncode in (0, 1, 2), res.stderr
    assert "Traceback" not in res.stderr
    return {v["path"]: v for v in validate_json("scan", res.stdout)["venvs"]}


@pytest.fixture
def shared_tmp(unprivileged_user: User) -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path is root-only)."""
    top = host_tmpdir("hostile")
    try:
        yield top
    finally:
        remove_tree(top)


# --- pyvenv.cfg that is not a regular file, or is huge ---------------------------------


def test_fifo_named_pyvenv_cfg_is_never_opened(tmp_path: Path) -> None:
    v = fake_venv(tmp_path / "v")
    (v / "pyvenv.cfg").unlink()
    os.mkfifo(v / "pyvenv.cfg")  # opening it for reading would block forever
    rep = venvs_of(run_scan_subprocess(str(tmp_path), timeout=60))[str(v)]
    assert rep["status"] == "unknown"
    assert rep["findings"][0]["code"] == "cfg-unreadable"
    assert "FIFO" in rep["findings"][0]["message"]


def test_device_named_pyvenv_cfg_is_never_opened(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root")
    v = fake_venv(tmp_path / "v")
    (v / "pyvenv.cfg").unlink()
    os.mknod(v / "pyvenv.cfg", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
    rep = venvs_of(run_scan_subprocess(str(tmp_path), timeout=60))[str(v)]
    assert rep["findings"][0]["code"] == "cfg-unreadable"
    assert "device" in rep["findings"][0]["message"]


def test_huge_sparse_pyvenv_cfg_is_read_capped(tmp_path: Path) -> None:
    v = fake_venv(tmp_path / "v")
    with open(v / "pyvenv.cfg", "r+b") as f:
        f.truncate(10 * 1024**3)  # 10 GB, sparse: no disk used
    rep = venvs_of(run_scan_subprocess(str(tmp_path), timeout=60))[str(v)]
    assert "cfg-malformed" in {f["code"] for f in rep["findings"]}
    assert any("too large" in f["message"] for f in rep["findings"])


def test_pyvenv_cfg_that_is_a_directory(tmp_path: Path) -> None:
    v = fake_venv(tmp_path / "v")
    (v / "pyvenv.cfg").unlink()
    (v / "pyvenv.cfg").mkdir()
    rep = scan([str(tmp_path)])
    assert next(f.code for f in rep.venvs[0].findings) == "cfg-unreadable"


def test_garbage_pyvenv_cfg(tmp_path: Path) -> None:
    v = fake_venv(tmp_path / "v")
    (v / "pyvenv.cfg").write_bytes(os.urandom(4096) + b"\nhome = /usr/bin\n")
    rep = scan([str(tmp_path)])
    assert rep.venvs[0].facts.cfg is not None  # parsed leniently, problems collected


# --- link loops, symlinked directories, bind-mount loops -------------------------------


def test_directory_symlink_loops_are_never_followed(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "self").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "up").symlink_to("..")
    other = fake_venv(tmp_path.parent / f"{tmp_path.name}-elsewhere")
    (tmp_path / "a" / "link-to-venv").symlink_to(other)
    try:
        st_ = WalkStats()
        items = list(walk([str(tmp_path)], WalkOptions(workers=4), st_))
        assert items == []  # a symlink (not named .venv) to a venv is not followed
        assert st_.directories == 2
    finally:
        shutil.rmtree(other)


def test_interpreter_symlink_loop(tmp_path: Path) -> None:
    v = fake_venv(tmp_path / "v")
    (v / "bin" / "python").unlink()
    (v / "bin" / "python").symlink_to("python3")
    (v / "bin" / "python3").symlink_to("python")
    rep = scan([str(tmp_path)]).venvs[0]
    assert rep.status.value == "critical"
    assert rep.findings[0].code == "interpreter-dangling"
    assert "loop" in rep.findings[0].message


def test_bind_mount_loop_terminates(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    fake_venv(tmp_path / "a" / "v")
    code = (
        "import json; from venvkeeper.scan.pipeline import scan;"
        f"r = scan([{str(tmp_path)!r}]);"
        "print(json.dumps([[v.path for v in r.venvs], r.stats.skipped]))"
    )
    # The scan root mounted again below itself.
    res = in_mount_namespace(f"mount --bind {tmp_path} {tmp_path / 'a' / 'b'}", code)
    venvs, skipped = json.loads(res.stdout)
    assert venvs == [str(tmp_path / "a" / "v")]  # not again through a/b
    assert skipped == {"mount-loop": 1}


def test_very_deep_tree_is_cut_and_counted(tmp_path: Path) -> None:
    d = tmp_path
    for _ in range(discovery.MAX_DEPTH + 5):
        d = d / "d"
    d.mkdir(parents=True)
    st_ = WalkStats()
    assert list(walk([str(tmp_path)], WalkOptions(), st_)) == []
    assert st_.skipped["too-deep"] == 1


# --- names ------------------------------------------------------------------------------


def test_undecodable_and_control_character_names(tmp_path: Path) -> None:
    base = os.fsencode(str(tmp_path))
    os.mkdir(base + b"/proj-\xff\xfe")
    os.mkdir(base + b"/proj-\xff\xfe/ctl-\x1b]0;pwned\x07")
    v = os.fsdecode(base + b"/proj-\xff\xfe/ctl-\x1b]0;pwned\x07/venv")
    fake_venv(Path(v))
    site = Path(v) / "lib" / "python3.11" / "site-packages"
    os.mkdir(os.fsencode(str(site)) + b"/bad\xff-1.0.dist-info")
    res = run_scan_subprocess(str(tmp_path), timeout=60)
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    got = venvs_of(res)
    assert len(got) == 1
    path = next(iter(got))
    assert path.endswith("proj-\\xff\\xfe/ctl-\\x1b]0;pwned\\x07/venv")
    table = subprocess.run(
        [DEV_PYTHON, "-m", "venvkeeper", "scan", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "\x1b" not in table.stdout and "\\x1b]0;pwned" in table.stdout


# --- directories that vanish, ESTALE, unreadable ----------------------------------------


def _patched_scandir(monkeypatch: pytest.MonkeyPatch, victim: Path, action: str) -> None:
    real = os.scandir

    def scandir(path: str):  # type: ignore[no-untyped-def]
        if path == str(victim):
            if action == "vanish":
                shutil.rmtree(victim)
            else:
                raise OSError(errno.ESTALE, "Stale file handle", path)
        return real(path)

    monkeypatch.setattr(discovery.os, "scandir", scandir)


@pytest.mark.parametrize(("action", "reason"), [("vanish", "vanished"), ("estale", "stale-handle")])
@pytest.mark.parametrize("workers", [1, 4])
def test_directory_lost_mid_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str, reason: str, workers: int
) -> None:
    keep = fake_venv(tmp_path / "keep" / "v")
    victim = tmp_path / "victim"
    fake_venv(victim / "v")
    _patched_scandir(monkeypatch, victim, action)
    st_ = WalkStats()
    items = list(walk([str(tmp_path)], WalkOptions(workers=workers), st_))
    assert items == [Candidate(str(keep), discovery.VenvKind.VENV)]
    assert st_.skipped == {reason: 1}


def test_unreadable_directories_as_an_unprivileged_user(
    shared_tmp: Path, unprivileged_user: User
) -> None:
    system = "/usr/bin/python3"  # a base the unprivileged user can reach
    ok = fake_venv(shared_tmp / "ok", python=system)
    locked = shared_tmp / "locked"
    fake_venv(locked / "hidden", python=system)
    cfg_locked = fake_venv(shared_tmp / "cfglocked", python=system)
    site_locked = fake_venv(shared_tmp / "sitelocked", python=system)
    root_only = fake_venv(shared_tmp / "rootonly")  # its base lives under /root
    # A script naming a python the user may not look at: unknown, not "moved".
    script = root_only / "bin" / "tool"
    script.write_text(f"#!{os.path.realpath(sys.executable)}\n")
    script.chmod(0o755)
    # A base whose binary the user may see but whose stdlib is root's only. (3.7: no
    # /lib/python3.7 above it, where the upward search, like CPython's, would end.)
    base = shared_tmp / "base"
    (base / "bin").mkdir(parents=True)
    (base / "bin" / "python3.7").write_bytes(b"\x7fELF")
    (base / "bin" / "python3.7").chmod(0o755)  # an interpreter is executable
    (base / "lib" / "python3.7").mkdir(parents=True)
    (base / "lib" / "python3.7" / "os.py").write_text("")
    os.chmod(base / "lib" / "python3.7", 0o700)
    hidden_stdlib = fake_venv(shared_tmp / "hiddenstdlib", python=str(base / "bin" / "python3.7"))
    (hidden_stdlib / "pyvenv.cfg").write_text(f"home = {base / 'bin'}\nversion = 3.7.16\n")
    for v in (ok, cfg_locked, site_locked, root_only, hidden_stdlib, base / "bin"):
        for dirpath, _dirnames, _filenames in os.walk(v):
            os.chmod(dirpath, 0o755)
    os.chmod(locked, 0o700)  # owned by root: the user cannot list it
    os.chmod(cfg_locked / "pyvenv.cfg", 0o600)
    os.chmod(site_locked / "lib" / "python3.11" / "site-packages", 0o700)
    res = run_scan_subprocess(str(shared_tmp), user=unprivileged_user)
    got = venvs_of(res)
    doc = validate_json("scan", res.stdout)
    assert doc["stats"]["skipped"] == {"permission-denied": 2}  # locked/ and base/lib/...
    assert str(locked / "hidden") not in got
    assert got[str(ok)]["status"] != "unknown"
    assert got[str(cfg_locked)]["findings"][0]["code"] == "cfg-unreadable"
    assert got[str(cfg_locked)]["status"] == "unknown"
    assert "read-errors" in {f["code"] for f in got[str(site_locked)]["findings"]}
    # A link the user cannot follow is not "dangling": the verdict is unknown.
    assert got[str(root_only)]["status"] == "unknown"
    assert [f["code"] for f in got[str(root_only)]["findings"]] == ["read-errors"]
    hs = got[str(hidden_stdlib)]
    assert hs["python"]["stdlib_present"] is None
    assert "stdlib-missing" not in {f["code"] for f in hs["findings"]}
    assert hs["status"] == "unknown"


# --- garbage inside site-packages -------------------------------------------------------


def test_garbage_distribution_metadata(tmp_path: Path) -> None:
    v = fake_venv(tmp_path / "v")
    site = v / "lib" / "python3.11" / "site-packages"
    cases = {
        "random-1.0.dist-info": {
            "METADATA": os.urandom(3000),
            "RECORD": os.urandom(3000),
            "direct_url.json": os.urandom(100),
            "INSTALLER": os.urandom(50),
        },
        "wrongjson-1.0.dist-info": {
            "METADATA": b"Name: wrongjson\nVersion: 1.0\n",
            "direct_url.json": b'{"url": [1, 2], "dir_info": 5}',
        },
        "listjson-2.0.dist-info": {"direct_url.json": b"[1, 2, 3]"},
        "empty-0.dist-info": {},
        "nul-1.dist-info": {"METADATA": b"Name: nul\x00\x00\nVersion: 1\n"},
    }
    for name, files in cases.items():
        (site / name).mkdir()
        for fn, data in files.items():
            (site / name / fn).write_bytes(data)
    huge = site / "huge-1.0.dist-info"
    huge.mkdir()
    (huge / "METADATA").write_text("Name: huge\nVersion: 1.0\n")
    with open(huge / "RECORD", "wb") as f:
        f.truncate(5 * 1024**3)  # sparse 5 GB RECORD: read capped
    fifo_dist = site / "fifo-1.0.dist-info"
    fifo_dist.mkdir()
    os.mkfifo(fifo_dist / "METADATA")
    os.mkfifo(fifo_dist / "RECORD")
    os.mkfifo(site / "evil.pth")
    (site / "notadir.dist-info").write_text("a file, not a directory")
    facts = inspect_venv(str(v))
    names = {d.name for d in facts.distributions}
    assert {"wrongjson", "listjson", "empty", "huge", "fifo", "nul\x00\x00"} <= names
    by = {d.name: d for d in facts.distributions}
    assert by["wrongjson"].direct_url_kind is not None
    assert by["wrongjson"].direct_url_kind.value == "invalid"
    assert any("METADATA" in p for p in by["fifo"].problems)
    rep = scan([str(tmp_path)])
    assert rep.venvs[0].status.value in ("ok", "warning")


@pytest.mark.slow  # a real install, then a scan and a show process per hostile file
def test_a_hostile_direct_url_costs_only_that_url(tmp_path: Path) -> None:
    """A real installed distribution whose direct_url.json is replaced by a 100k-deep
    nesting (before: RecursionError, the venv unknown with every fact lost), a 50 MB file,
    non-UTF-8 garbage, a FIFO or a link loop: the scan keeps every other fact."""
    py = Path("/usr/bin/python3") if os.path.exists("/usr/bin/python3") else Path(sys.executable)
    v = factory.make_venv(py, tmp_path / "root" / "v")
    factory.install(v, factory.make_project(tmp_path, "vkdeep", "1.2"))
    (du,) = v.glob("lib/python*/site-packages/vkdeep-1.2.dist-info/direct_url.json")

    def scan_json() -> tuple[dict, dict]:
        res = run_scan_subprocess(str(tmp_path / "root"))
        (venv,) = venvs_of(res).values()
        assert venv["packages"] >= 1
        res = subprocess.run(
            [DEV_PYTHON, "-m", "venvkeeper", "show", "--json", str(v)],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(SRC)},
        )
        assert res.returncode in (0, 1, 2) and "Traceback" not in res.stderr, res.stderr
        venv = validate_json("show", res.stdout)["venv"]
        (dist,) = [
            d for s in venv["site_packages"] for d in s["distributions"] if d["name"] == "vkdeep"
        ]
        return venv, dist

    before, dist = scan_json()
    assert dist["direct_url"]["kind"] in ("directory", "archive") and not dist["problems"]
    hostile: dict[str, bytes | None] = {
        "deep": b"[" * 100_000 + b"]" * 100_000,  # over the size limit, too
        "deep-within-the-size-limit": b"[" * 60_000,
        "deep-object": b'{"url": "file:///x", "a": ' * 2_000,
        "huge": b'{"url": "' + b"x" * (50 << 20) + b'"}',
        "garbage": os.urandom(300) + b"\xff",
        "fifo": None,
        "loop": None,
    }
    seen: dict[str, str] = {}
    for name, data in hostile.items():
        du.unlink()
        if name == "fifo":
            os.mkfifo(du)
        elif name == "loop":
            du.symlink_to(du.name)
        else:
            assert data is not None
            du.write_bytes(data)
        after, dist = scan_json()
        assert after["status"] == before["status"], name
        assert [f["code"] for f in after["findings"]] == [f["code"] for f in before["findings"]]
        assert after["python"] == before["python"], name
        assert dist["version"] == "1.2", name
        du_fact = dist["direct_url"]
        assert du_fact is None or du_fact["kind"] == "invalid", (name, du_fact)
        (problem,) = dist["problems"]
        seen[name] = problem
        assert problem.startswith("direct_url.json "), (name, problem)
        assert len(problem) < 200, problem
    for name in ("deep-within-the-size-limit", "deep-object"):
        assert "nested deeper than" in seen[name], seen
    assert "larger than" in seen["huge"] and "larger than" in seen["deep"], seen
    assert "not UTF-8" in seen["garbage"] or "not valid JSON" in seen["garbage"], seen


# --- parsers, property-based ------------------------------------------------------------


@given(st.text(max_size=2000))
def test_cfg_parser_never_raises(text: str) -> None:
    cfg = parse_pyvenv_cfg(text)
    for key in cfg.values:
        assert key == key.strip().lower() and key


@given(st.binary(max_size=2000))
def test_cfg_parser_takes_any_bytes(data: bytes) -> None:
    parse_pyvenv_cfg(decode(data))


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("home = /usr/bin\n", "home", "/usr/bin"),
        ("home=/usr/bin\r\nversion=3.12.1\r\n", "version", "3.12.1"),
        ("\ufeffhome = /usr/bin\n", "home", "/usr/bin"),
        ("HOME = /a\nhome = /b\n", "home", "/a"),  # getpath stops at the first home
        ("version = 3.10\nversion = 3.11\n", "version", "3.11"),  # site.py: last one wins
        ("version_info = 3.12.1.final.0\n", "version_info", "3.12.1.final.0"),
        ("version_info = 3.13t\n", "version_info", "3.13t"),
        ("  prompt  =  'my env'  \n", "prompt", "'my env'"),
        ("command = /x -m venv --prompt a=b /v\n", "command", "/x -m venv --prompt a=b /v"),
    ],
)
def test_cfg_variants(text: str, key: str, value: str) -> None:
    assert parse_pyvenv_cfg(text).get(key) == value


def test_cfg_problems_are_collected() -> None:
    cfg = parse_pyvenv_cfg("home = /a\njunk line\nhome = /b\nx\x00y = 1\n", truncated=True)
    messages = " | ".join(p.message for p in cfg.problems)
    assert "not a 'key = value' line" in messages
    assert "more than once" in messages
    assert "NUL" in messages
    assert "too large" in messages
    assert cfg.duplicates == ("home",)


@given(st.text(max_size=300))
def test_escape_output_is_one_printable_line(text: str) -> None:
    out = escape(text)
    assert out.isprintable()
    assert "\n" not in out and "\x1b" not in out


@settings(max_examples=50)
@given(st.binary(max_size=200))
def test_escape_of_undecodable_names(data: bytes) -> None:
    assert escape(os.fsdecode(data)).isprintable()


def test_escape_keeps_ordinary_text() -> None:
    assert escape("/srv/café/日本/venv") == "/srv/café/日本/venv"
    assert escape("a\\b") == "a\\\\b"
    assert escape("\x1b[31m") == "\\x1b[31m"


def test_mountinfo_parsing() -> None:
    text = (
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "23 22 0:5 / /proc rw,nosuid - proc proc rw\n"
        "24 22 0:40 / /mnt/my\\040share rw shared:5 master:2 - nfs4 srv:/x rw\n"
        "garbage line\n"
        "\n"
    )
    mounts = parse_mountinfo(text)
    assert [(m.mountpoint, m.fstype) for m in mounts] == [
        ("/", "ext4"),
        ("/proc", "proc"),
        ("/mnt/my share", "nfs4"),
    ]
    assert mounts[1].is_pseudo and mounts[2].is_network and not mounts[0].is_network
    assert read_mounts("/nonexistent/mountinfo") == []
    assert any(m.mountpoint == "/" for m in read_mounts())
