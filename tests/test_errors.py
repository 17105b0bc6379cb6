"""Errors of the run: one line naming the path and what went wrong, and the documented exit
code (3: usage, an unusable file, an OS failure; README "Exit codes"), never a traceback,
a hang, or "internal error" for an ordinary condition. Real files, FIFOs, a corrupt
database, real permissions (as an unprivileged user) and a real closed pipe."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from venvkeeper.errors import os_reason_in_output

from conftest import User, run_cli, validate_json
from factory import runner_for_others, system_venv

SRC = Path(__file__).resolve().parent.parent / "src"


def cli_process(
    *args: str,
    user: User | None = None,
    env: dict[str, str] | None = None,
    system_config: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process (a hang fails through the timeout), as *user* when given.
    *system_config* replaces config.SYSTEM_CONFIG (the host's /etc is never read)."""
    python, pythonpath = sys.executable, str(SRC)
    kwargs: dict[str, object] = {}
    if user is not None:
        python, pythonpath = runner_for_others()
        kwargs = {"user": user.uid, "group": user.gid, "extra_groups": []}
    nowhere = "/nonexistent/venvkeeper-test"
    code = (
        "import sys; from venvkeeper import config; "
        f"config.SYSTEM_CONFIG = {system_config or nowhere + '/config.toml'!r}; "
        "from venvkeeper.cli import main; sys.exit(main())"
    )
    full_env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": pythonpath,
        "HOME": nowhere,
        "XDG_CONFIG_HOME": nowhere,
        "VENVKEEPER_DB": os.environ["VENVKEEPER_DB"],  # the test's own (conftest)
        "VENVKEEPER_STATE_DIR": os.environ["VENVKEEPER_STATE_DIR"],  # the session's (conftest)
        **(env or {}),
    }
    return subprocess.run(
        [python, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in full_env.items() if v},
        cwd="/",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def shared_tmp(unprivileged_user: User) -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path is root-only)."""
    top = Path(
        subprocess.run(
            ["mktemp", "-d", "/tmp/vk-errors.XXXXXX"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    os.chmod(top, 0o755)
    yield top
    for dirpath, dirnames, _ in os.walk(top):
        for d in dirnames:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(dirpath, d), 0o755)
    shutil.rmtree(top, ignore_errors=True)


def one_error_line(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 3, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    assert res.stderr.startswith("venvkeeper: error: ") and res.stderr.count("\n") == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


# --- item 5: a --db that is not a regular file, or in a directory that does not exist ----


def test_a_fifo_as_the_inventory_is_refused_without_hanging(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    fifo = tmp_path / "inv.db"
    os.mkfifo(fifo)
    for argv, env in (
        (["inventory", "--db", str(fifo)], {}),
        (["changes", "--db", str(fifo)], {}),
        (["scan", "-q", "--db", str(fifo), str(tmp_path / "tree")], {}),
        (["scan", "-q", str(tmp_path / "tree")], {"VENVKEEPER_DB": str(fifo)}),
        (["inventory"], {"VENVKEEPER_DB": str(fifo)}),
    ):
        res = cli_process(*argv, env=env, timeout=30)
        one_error_line(res, f"inventory {fifo}: is a FIFO, not a regular file")
        assert res.stdout == ""
    # A symbolic link is refused too (the inventory is opened without following one).
    db = tmp_path / "real.db"
    assert run_cli("scan", "-q", "--db", str(db), str(tmp_path / "tree")).code == 0
    link = tmp_path / "link.db"
    link.symlink_to(db)
    res = run_cli("inventory", "--db", str(link))
    assert res.code == 3 and "is a symbolic link" in res.err


def test_a_db_in_a_missing_directory_is_an_error_and_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    typo = tmp_path / "typo" / "dir" / "x.db"
    for argv, env in (
        (["scan", "-q", "--db", str(typo), str(tmp_path / "tree")], {}),
        (["scan", "-q", str(tmp_path / "tree")], {"VENVKEEPER_DB": str(typo)}),
    ):
        res = cli_process(*argv, env=env)
        one_error_line(res, f"cannot create inventory {typo}: its directory {typo.parent}")
        assert res.stdout == ""  # refused before scanning
        assert not (tmp_path / "typo").exists()


def test_the_default_place_is_still_created(shared_tmp: Path, unprivileged_user: User) -> None:
    home = shared_tmp / "home"
    home.mkdir()
    os.chown(home, unprivileged_user.uid, unprivileged_user.gid)
    (shared_tmp / "tree").mkdir()
    # No --db, no $VENVKEEPER_DB: the default place, ~/.local/state/venvkeeper, is made.
    res = cli_process(
        "scan",
        "-q",
        str(shared_tmp / "tree"),
        user=unprivileged_user,
        env={"HOME": str(home), "VENVKEEPER_DB": "", "VENVKEEPER_STATE_DIR": ""},
    )
    assert res.returncode == 0, res.stderr
    db = home / ".local" / "state" / "venvkeeper" / "inventory.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700  # it lists other users' venvs


# --- item 9: a database with corrupt pages is refused by every command -----------------


def test_every_command_refuses_a_database_with_corrupt_pages(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    v = system_venv(tree / "v")
    db = tmp_path / "inv.db"
    for i in range(3):
        system_venv(tree / f"more{i}")
        assert run_cli("scan", "-q", "--db", str(db), str(tree)).code == 0
    assert run_cli("inventory", "--db", str(db)).code == 0  # checkpointed into the file
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    (index_page,) = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_venvs_1'"
    ).fetchone()
    conn.close()
    # One page in the middle (the unique index on venv paths), not the header: the
    # tables the read commands use are intact, so before the integrity check they
    # printed what was left as if it were all.
    data = bytearray(db.read_bytes())
    start = (index_page - 1) * page_size
    assert index_page > 1 and start + page_size < len(data)
    data[start : start + page_size] = b"\xa5" * page_size
    db.write_bytes(bytes(data))
    prom = tmp_path / "m.prom"
    for argv in (
        ["inventory"],
        ["inventory", "--json"],
        ["changes"],
        ["history", str(v)],
        ["export", "--from-inventory", "--prometheus", str(prom)],
        ["scan", str(tree)],
    ):
        res = run_cli(*argv, "--db", str(db))
        assert res.code == 3, (argv, res.out, res.err)
        assert res.out == ""
        assert f"inventory {db}: is corrupt (SQLite quick_check: " in res.err, res.err
        assert res.err.count("\n") == 1 and "\\x0a" not in res.err
        assert db.read_bytes() == bytes(data)  # left as it was
    res = run_cli("check", "--db", str(db), str(tree))
    assert res.code == 3 and res.out.startswith(f"VENVKEEPER UNKNOWN - inventory {db}: is corrupt")
    assert not prom.exists()


# --- item 10: ordinary OS conditions are one line, not "internal error" ----------------


def test_permission_denied_as_an_unprivileged_user(
    shared_tmp: Path, unprivileged_user: User
) -> None:
    user = unprivileged_user
    if os.access("/root", os.R_OK, effective_ids=False) and os.stat("/root").st_mode & 0o004:
        pytest.skip("/root is readable by everyone on this machine")
    # show of a directory the user may not list
    one_error_line(cli_process("show", "/root", user=user), "/root: permission denied")
    # a root below a directory the user may not enter: not "is not a directory"
    res = cli_process("scan", "--no-record", "/root/.pyenv", user=user)
    one_error_line(res, "/root/.pyenv: permission denied")
    assert "not a directory" not in res.stderr
    # check of a root the user may not list: UNKNOWN, not "OK - no venvs found"
    locked = shared_tmp / "locked"
    locked.mkdir(mode=0o700)
    res = cli_process("check", "--no-record", str(locked), user=user)
    assert res.returncode == 3, res.stdout
    assert res.stdout == (
        f"VENVKEEPER UNKNOWN - {locked}: permission denied (run as a user who may use it, or"
        " as root)\n"
    )
    # prune-backups of a directory the user may not list, and of backups it may not delete
    one_error_line(cli_process("prune-backups", str(locked), user=user), "permission denied")
    venvs = shared_tmp / "venvs"
    (venvs / "v").mkdir(parents=True)
    backup = venvs / ".v.venvkeeper-backup-20250101T000000-1-1"
    (backup / "lib").mkdir(parents=True)
    (backup / "lib" / "file").write_text("root's")
    (backup / "pyvenv.cfg").write_text("home = /usr/bin\n")
    os.chown(venvs, user.uid, user.gid)  # the user may take the lock, not empty lib/
    os.chown(backup, user.uid, user.gid)
    res = cli_process("prune-backups", str(venvs), user=user)
    one_error_line(res, f"cannot delete the backups in {venvs}: file: permission denied")
    assert (backup / "lib" / "file").exists()


# --- item 11: messages and exit codes -----------------------------------------------------


def test_config_problems_one_per_line_and_joined_in_check(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[scan]\nrots = ["/srv"]\n[check]\nwarning = "x"\n')
    res = run_cli("--config", str(cfg), "scan", "--no-record", str(tmp_path))
    assert res.code == 3 and res.out == ""
    assert res.err.splitlines() == [
        f'venvkeeper: error: {cfg}:2: unknown key "rots" in [scan] (did you mean "roots"?)',
        f"venvkeeper: error: {cfg}:4: warning in [check] must be a whole number of venvs,"
        ' 0 or more, not "x"',
    ]
    res = run_cli("--config", str(cfg), "check", "--no-record", str(tmp_path))
    assert res.code == 3 and "\\x0a" not in res.out and res.out.count("\n") == 1
    assert res.out.startswith(f'VENVKEEPER UNKNOWN - {cfg}:2: unknown key "rots"')
    assert f'(did you mean "roots"?); {cfg}:4: warning in [check]' in res.out


def test_show_of_a_directory_that_is_not_a_venv_names_it(tmp_path: Path) -> None:
    res = run_cli("show", str(tmp_path))
    assert res.code == 3
    assert res.err.rstrip().endswith(f"try: `venvkeeper scan {shlex.quote(str(tmp_path))}`")


@pytest.mark.parametrize(
    "argv",
    [
        ["repair"],
        ["repair", "--all"],
        ["repair", "--dry-run"],
        ["prune-backups"],
        ["host-profile", "--no-run", "--no-packages", "--search"],
        ["scan", "--no-record"],
        ["show"],
    ],
    ids=lambda a: "-".join(a),
)
def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path, argv: list[str]) -> None:
    missing = tmp_path / "nonexistent"
    res = run_cli(*argv, str(missing))
    assert res.code == 3, (res.out, res.err)
    assert res.out == ""
    assert res.err == f"venvkeeper: error: {missing}: does not exist\n"


def _critical_tree(root: Path, n: int) -> None:
    """*n* venvs whose interpreter link dangles: critical, and enough JSON to fill buffers."""
    for i in range(n):
        v = root / f"venv{i:03d}"
        (v / "bin").mkdir(parents=True)
        (v / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
        (v / "pyvenv.cfg").write_text("home = /nonexistent/bin\nversion = 3.11.4\n")
        (v / "bin" / "python").symlink_to("/nonexistent/bin/python3.11")


@pytest.mark.parametrize("read", [0, 100])
def test_a_closed_pipe_keeps_the_verdicts_exit_code(tmp_path: Path, read: int) -> None:
    """``scan --json | head -c 100``: the critical verdict's 2, and nothing more printed."""
    _critical_tree(tmp_path / "tree", 60)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    with subprocess.Popen(
        [sys.executable, "-m", "venvkeeper", "scan", "--json", "--no-record", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as p:
        assert p.stdout is not None and p.stderr is not None
        head = p.stdout.read(read) if read else b""
        p.stdout.close()  # the reader goes away
        err = p.stderr.read().decode()
        assert p.wait(timeout=120) == 2, err
    assert err == ""  # no "Exception ignored ... BrokenPipeError", no traceback
    assert head.startswith(b'{"schema_version"') or not read
    full = run_cli("scan", "--json", "--no-record", str(tmp_path))
    assert full.code == 2 and len(full.out) > 64 * 1024  # more than a pipe holds


def test_no_command_is_a_usage_error_on_stderr() -> None:
    res = run_cli()
    assert res.code == 3 and res.out == ""
    assert res.err.startswith("usage: venvkeeper ")
    assert res.err.endswith("venvkeeper: error: give a COMMAND (venvkeeper --help lists them)\n")
    assert run_cli("--help").code == 0


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["scan", "--workers", "x"], "argument --workers: must be a positive whole number"),
        (["scan", "--workers", "0"], "argument --workers: must be a positive whole number"),
        (["repair", "--keep-backups", "many", "/"], "must be a whole number, 0 or more"),
        (["scan", "--deep-timeout", "soon"], "argument --deep-timeout: must be a number above 0"),
        (["check", "--warning", "x"], "argument --warning: must be a positive whole number"),
    ],
)
def test_bad_option_values_are_said_in_words(argv: list[str], words: str) -> None:
    res = run_cli(*argv)
    assert res.code == 3
    assert words in res.err, res.err
    assert "invalid" not in res.err and "_int" not in res.err and "_float" not in res.err


def test_an_unreadable_system_config_is_skipped_for_a_user(
    shared_tmp: Path, unprivileged_user: User
) -> None:
    etc = shared_tmp / "etc"
    etc.mkdir()
    system = etc / "config.toml"
    system.write_text('[scan]\nexclude = ["node_modules"]\n')
    system.chmod(0o600)  # root's only
    tree = shared_tmp / "tree"
    tree.mkdir()
    res = cli_process(
        "scan", "-q", "--no-record", str(tree), user=unprivileged_user, system_config=str(system)
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("0 venvs")
    assert res.stderr == (
        f"venvkeeper: warning: {system}: cannot read: permission denied (run as a user who may"
        " use it, or as root); skipped (ask root to make it readable, mode 644)\n"
    )
    # Named explicitly, the same file is an error.
    res = cli_process(
        "--config", str(system), "scan", "--no-record", str(tree), user=unprivileged_user
    )
    one_error_line(res, f"{system}: cannot read: permission denied")
    # And root (who may read it) reads it.
    res = cli_process("scan", "--json", "--no-record", str(tree), system_config=str(system))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert validate_json("scan", res.stdout)["summary"]["venvs"] == 0


def test_check_thresholds_are_taken_the_same_from_both_places(tmp_path: Path) -> None:
    """warning counts venvs not ok, critical counts critical ones: a warning threshold
    above the critical one is meaningful, and is taken from the options and the
    configuration alike (it used to be refused from the configuration only)."""
    res = run_cli("check", "--no-record", "--warning", "5", "--critical", "2", str(tmp_path))
    assert res.code == 0 and res.out.startswith("VENVKEEPER OK"), res.out
    cfg = tmp_path / "config.toml"
    cfg.write_text("[check]\nwarning = 5\ncritical = 2\n")
    res = run_cli("--config", str(cfg), "check", "--no-record", str(tmp_path))
    assert res.code == 0 and res.out.startswith("VENVKEEPER OK"), res.out
    assert "critical=0;;1;0 not_ok=0;4;;0" in res.out, res.out  # "at least 2", "at least 5"
    res = run_cli("--config", str(cfg), "check", "--no-record", "--warning", "0", str(tmp_path))
    assert res.code == 3 and "positive whole number" in res.err, res.err


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (
            "ERROR: Could not install packages due to an OSError: [Errno 28] No space left"
            " on device",
            "no space left on device (free some space and try again)",
        ),
        (
            "error: failed to write x: No space left on device (os error 28)",
            "no space left on device (free some space and try again)",
        ),
        ("OSError: [Errno 30] Read-only file system: '/v/lib'", "on a read-only filesystem"),
        (
            "error: Disk quota exceeded (os error 122)",
            "disk quota exceeded (free some space and try again)",
        ),
        # a package's own problem, not the host's
        ("ERROR: [Errno 2] No such file or directory: 'setup.py'", None),
        ("ERROR: No matching distribution found for six==9", None),
    ],
)
def test_os_errors_in_an_installers_output_are_named(output: str, reason: str | None) -> None:
    assert os_reason_in_output(output) == reason


# --- an internal error: one line, its traceback kept in the state directory -------------


def _a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    import venvkeeper.checks.registry

    def broken() -> None:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(venvkeeper.checks.registry, "all_codes", broken)


def test_an_internal_error_saves_its_traceback_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _a_bug(monkeypatch)
    state = tmp_path / "state"
    monkeypatch.setenv("VENVKEEPER_STATE_DIR", str(state))
    res = run_cli("codes")
    assert res.code == 3 and res.out == ""
    (saved,) = state.glob("crash-*.txt")
    assert res.err == (
        f"venvkeeper: internal error: ZeroDivisionError: simulated bug; its traceback is in"
        f" {saved}: please report it with the command line you used\n"
    )
    text = saved.read_text()
    assert text.startswith("venvkeeper ") and "command line: 'venvkeeper codes'" in text
    assert "Traceback (most recent call last):" in text and "in broken" in text
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    # --debug prints it too, after the line
    res = run_cli("--debug", "codes")
    first, rest = res.err.split("\n", 1)
    assert first.startswith("venvkeeper: internal error: ZeroDivisionError: simulated bug;")
    assert "Traceback (most recent call last):" in rest and "ZeroDivisionError" in rest
    assert len(list(state.glob("crash-*.txt"))) == 2


def test_a_traceback_that_cannot_be_saved_is_still_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _a_bug(monkeypatch)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("VENVKEEPER_STATE_DIR", str(tmp_path / "file" / "state"))
    res = run_cli("codes")
    assert res.code == 3
    assert res.err.count("\n") == 1 and "Traceback" not in res.err
    assert "its traceback could not be saved" in res.err and "--debug" in res.err
    assert f"{tmp_path}/file/state: not a directory" in res.err


def test_the_state_directory_is_roots_or_the_users() -> None:
    from venvkeeper.host.state import state_dir
    from venvkeeper.inventory.store import default_path

    assert state_dir({}, 0) == "/var/lib/venvkeeper"
    assert state_dir({"XDG_STATE_HOME": "/x/state"}, 1000) == "/x/state/venvkeeper"
    assert state_dir({"HOME": "/home/u"}, 1000) == "/home/u/.local/state/venvkeeper"
    assert state_dir({"VENVKEEPER_STATE_DIR": "/t/s"}, 0) == "/t/s"
    assert default_path({"VENVKEEPER_STATE_DIR": "/t/s"}, 0) == "/t/s/inventory.db"
    assert default_path({}, 0) == "/var/lib/venvkeeper/inventory.db"
