"""Shared fixtures: the machine's interpreters, an unprivileged user, and a CLI runner;
and the session's promise to leave the host as it found it (see "the host" below)."""

from __future__ import annotations

import contextlib
import functools
import grp
import io
import json
import os
import pwd
import secrets
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import settings

from venvkeeper import config as vk_config
from venvkeeper.cli import main
from venvkeeper.formats import envelope
from venvkeeper.inventory.store import default_path

import tiers

# Property tests check behaviour, not speed: no per-example deadline that a loaded CI
# machine could trip over.
settings.register_profile("venvkeeper", deadline=None, print_blob=True)
settings.load_profile("venvkeeper")

#: Everything this run makes outside pytest's tmp_path (a directory other users can
#: traverse, a test tree in /opt or /srv) is named with this prefix: the session-end check
#: finds exactly this run's leftovers, whatever other runs on the machine are doing.
SESSION_PREFIX = f"vk-test-{os.getpid()}-"
#: The host's temporary directory (the places below are checked for leftovers). Asking
#: tempfile now also fixes it for this process (pytest's basetemp included) before the
#: session points $TMPDIR of the tools it runs elsewhere (pytest_configure).
HOST_TMP = Path(tempfile.gettempdir())
LEFTOVER_PLACES = (HOST_TMP, Path("/opt"), Path("/srv"))


def host_tmpdir(tag: str, mode: int = 0o755) -> Path:
    """A new directory in the host's temporary directory that other users can traverse
    (pytest's tmp_path is private to its owner), named for this session. The caller
    removes it (:func:`remove_tree`); one left behind fails the run."""
    d = Path(tempfile.mkdtemp(prefix=f"{SESSION_PREFIX}{tag}-", dir=HOST_TMP))
    d.chmod(mode)
    return d


def remove_tree(top: Path) -> None:
    """rmtree that first makes every directory searchable (tests make unreadable ones)."""
    for dirpath, dirnames, _ in os.walk(top):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            with contextlib.suppress(OSError):
                if not os.path.islink(p):
                    os.chmod(p, 0o755)
    with contextlib.suppress(OSError):
        os.chmod(top, 0o755)
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary directory others can traverse (pytest's are private to root)."""
    d = host_tmpdir("open")
    try:
        yield d
    finally:
        remove_tree(d)


def pyenv_root() -> Optional[Path]:
    env = os.environ.get("PYENV_ROOT")
    for cand in (env, os.path.expanduser("~/.pyenv")):
        if cand and Path(cand, "versions").is_dir():
            return Path(cand)
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and Path(out.stdout.strip(), "versions").is_dir():
                return Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return None


def find_python(minor: str) -> Optional[Path]:
    """A real CPython X.Y binary: pyenv's first, then PATH. None when the machine lacks it."""
    root = pyenv_root()
    if root is not None:
        for d in sorted((root / "versions").glob(f"{minor}.*"), reverse=True):
            exe = d / "bin" / f"python{minor}"
            if exe.is_file() and os.access(exe, os.X_OK) and not exe.is_symlink():
                return exe
            if exe.is_file():
                return exe
    found = shutil.which(f"python{minor}")
    return Path(os.path.realpath(found)) if found else None


def require_python(minor: str) -> Path:
    exe = find_python(minor)
    if exe is None:
        pytest.skip(f"CPython {minor} is not installed on this machine (pyenv or PATH)")
    return exe


@functools.cache
def os_packaged(exe: Path) -> bool:
    """Whether the OS's package manager owns interpreter *exe* (its real path), as dpkg or
    rpm tell, never as venvkeeper does. A test derives from it what venvkeeper must say of a
    venv on that base (``unmanaged-base``, a warning, when not), whichever interpreter
    :func:`find_python` found on this machine: pyenv's, Debian's or one in /usr/local."""
    real = os.path.realpath(exe)
    for argv in (["dpkg-query", "-S", real], ["rpm", "-qf", real]):
        if shutil.which(argv[0]):
            res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            return res.returncode == 0 and bool(res.stdout.strip())
    return False


def base_status(exe: Path) -> str:
    """The status of a sound venv on base *exe*: ``ok``, or ``warning`` when no package
    manager patches the base (``unmanaged-base``)."""
    return "ok" if os_packaged(exe) else "warning"


def base_codes(exe: Path) -> list[str]:
    """The findings of a sound venv on base *exe* (see :func:`base_status`)."""
    return [] if os_packaged(exe) else ["unmanaged-base"]


def require_unmanaged_python(minor: str) -> Path:
    """A CPython X.Y that no package manager patches (pyenv's, one in /usr/local), for a
    test whose world needs an ``unmanaged-base`` warning; skips when the machine has none."""
    cands = [find_python(minor), Path(f"/usr/local/bin/python{minor}")]
    for exe in cands:
        if exe is not None and exe.is_file() and not os_packaged(exe):
            return exe
    pytest.skip(f"no CPython {minor} outside the OS's packages (pyenv, /usr/local)")


def require_root(why: str) -> None:
    """Skip unless this run is root; *why* says what needs it. A test that calls this
    (or skips on ``os.geteuid()`` itself) is marked ``root`` (tests/tiers.py)."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root: {why}")


@pytest.fixture(autouse=True)
def _private_inventory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scans record into an inventory by default: each test gets its own (outside its
    tmp_path, which tests scan), never the host's."""
    db = tmp_path_factory.mktemp("inventory") / "inventory.db"
    monkeypatch.setenv("VENVKEEPER_DB", str(db))


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


@pytest.fixture(scope="session")
def unprivileged_user(request: pytest.FixtureRequest) -> Iterator[User]:
    """A real unprivileged account for permission tests, created (as root) for this run
    only and deleted at its end, pass or fail: a system account with no home and no
    login shell, named for the run (``vkt-PID-XXXX``) because other runs on this machine
    have their own at the same time."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create and switch to an unprivileged user")
    name = f"vkt-{os.getpid()}-{secrets.token_hex(2)}"
    for attempt in range(5):
        res = subprocess.run(
            [
                shutil.which("useradd") or "/usr/sbin/useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        # another run's (or xdist worker's) useradd or userdel holds /etc/passwd's lock
        if res.returncode == 0 or "lock" not in res.stderr:
            break
        time.sleep(0.5 * (attempt + 1))
    if res.returncode != 0:
        pytest.skip(f"cannot create user {name}: {res.stderr.strip()}")
    request.config.stash[_HOST].users.append(name)
    pw = pwd.getpwnam(name)
    try:
        yield User(pw.pw_name, pw.pw_uid, pw.pw_gid)
    finally:
        remove_user(name)


def remove_user(name: str) -> Optional[str]:
    """Delete a test account and its group (killing what still runs as it: only this
    run's tests start processes as its own account). None, or what went wrong."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        uid = None
    problem = None
    if uid is not None:
        for attempt in range(3):
            res = subprocess.run(
                [shutil.which("userdel") or "/usr/sbin/userdel", name],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if res.returncode == 0:
                problem = None
                break
            problem = f"userdel {name}: {res.stderr.strip()}"
            _kill_processes_of(uid)
            time.sleep(0.2 * (attempt + 1))
    with contextlib.suppress(KeyError):
        grp.getgrnam(name)
        res = subprocess.run(
            [shutil.which("groupdel") or "/usr/sbin/groupdel", name],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if res.returncode != 0:
            problem = f"groupdel {name}: {res.stderr.strip()}"
    return problem


def _kill_processes_of(uid: int) -> None:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if d.stat().st_uid == uid:
                    os.kill(int(d.name), signal.SIGKILL)


@pytest.fixture(autouse=True)
def _no_host_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tests never read this machine's /etc/venvkeeper or ~/.config/venvkeeper: a test that
    wants a configuration writes its own and names it."""
    from venvkeeper import config

    nowhere = tmp_path_factory.getbasetemp() / "no-config"
    monkeypatch.setattr(config, "SYSTEM_CONFIG", str(nowhere / "etc" / "config.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(nowhere / "xdg"))
    monkeypatch.delenv(config.ENV_VAR, raising=False)


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> Result:
    """Run ``venvkeeper ARGS`` in-process, capturing its output."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


# --- JSON documents: each validated against its kind's published schema ------------------


def closed(schema: Any) -> Any:
    """*schema* with every described object closed (``additionalProperties: false``): the
    published schemas allow unknown fields, the suite does not, so a field a renderer adds
    without its schema fails."""
    if isinstance(schema, list):
        return [closed(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@functools.cache
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(closed(envelope.schema(kind)))


def json_kind(argv: Sequence[str]) -> str:
    """The kind of the JSON document that ``venvkeeper ARGV --json`` prints."""
    words = list(argv)
    if words[:1] == ["--config"]:
        words = words[2:]
    command = words[0]
    if command == "rollback" and "--list" in words:
        return "rollback-list"
    return "predict" if command == "apt-hook" else command


def validate_json(kind: str, text: str) -> Any:
    """The JSON document *text* of *kind* (``scan``, ``predict``, ...), parsed, after
    checking it against that kind's published schema; any mismatch fails the test with
    every error and where it is."""
    assert text.endswith("\n") and not text.endswith("\n\n"), f"{kind}: not one final newline"
    doc = json.loads(text)
    assert isinstance(doc, dict) and doc.get("kind") == kind, f"not a {kind} document"
    errors = sorted(_validator(kind).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, f"{kind} document does not match its schema:\n" + "\n".join(
        f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:20]
    )
    return doc


# --- the host: left as the session found it ---------------------------------------------
#
# From the first moment of the session (collection and module- or session-scoped fixtures
# included, which run before any function-scoped autouse fixture), venvkeeper has a
# private inventory and no configuration of the host's; at its end a check fails the run
# if it changed the host's inventory, left this run's directories in /tmp, /opt or /srv,
# or left its test account. Other developers run the suite on this machine at the same
# time, so everything is attributed exactly: by this run's name prefix, this run's basetemp
# among the roots of the inventory's new scans, this run's account name.


@dataclass
class _HostState:
    started: float
    session_dir: Path
    #: the host's inventories: path -> (identity, newest scan id), None when absent
    inventories: dict[str, Optional[tuple[tuple[int, int, int], int]]]
    tmp_names: frozenset[str]
    users: list[str] = field(default_factory=list)
    basetemp: Optional[str] = None


_HOST = pytest.StashKey[_HostState]()
#: (worker, what it changed on the host, notes) of each xdist worker, as each ends
_WORKERS = pytest.StashKey[list[tuple[str, list[str], list[str]]]]()


def _inventory_state(db: str) -> Optional[tuple[tuple[int, int, int], int]]:
    try:
        st = os.stat(db)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns), max((i for i, _ in _scans(db, -1)), default=0)


def _scans(db: str, after: int) -> list[tuple[int, list[str]]]:
    """(id, roots) of the scans after *after*, read from a copy: even a read-only
    connection to a WAL database leaves its -wal and -shm files beside it."""
    with tempfile.TemporaryDirectory(prefix=f"{SESSION_PREFIX}db-", dir=HOST_TMP) as d:
        copy = os.path.join(d, "inventory.db")
        try:
            shutil.copyfile(db, copy)
        except OSError:
            return []
        with contextlib.suppress(OSError):
            shutil.copyfile(f"{db}-wal", f"{copy}-wal")
        try:
            con = sqlite3.connect(copy, timeout=10)
            try:
                rows = con.execute("SELECT id, roots FROM scans WHERE id > ?", (after,)).fetchall()
            finally:
                con.close()
        except sqlite3.Error:
            return []
    return [(int(i), json.loads(r)) for i, r in rows]


def pytest_addoption(parser: pytest.Parser) -> None:
    tiers.addoption(parser)


def xdist_controller(config: pytest.Config) -> bool:
    """This process hands tests to xdist workers and runs none itself."""
    return (
        not hasattr(config, "workerinput")
        and config.pluginmanager.hasplugin("xdist")
        and config.getoption("dist", "no") != "no"
        and bool(config.getoption("tx", None))
        and not config.getoption("collectonly")
    )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(tiers.Tiers(config), "venvkeeper-tiers")
    if xdist_controller(config):
        # Each worker is a session of its own (below): private inventory, configuration,
        # TMPDIR, account and the check at its end, reported here (pytest_testnodedown).
        # The workers inherit this process's environment: it must stay the host's.
        config.stash[_WORKERS] = []
        return
    host_dbs = {"/var/lib/venvkeeper/inventory.db"}
    host_dbs.add(default_path({k: v for k, v in os.environ.items() if k != "VENVKEEPER_DB"}))
    session = Path(tempfile.mkdtemp(prefix=f"{SESSION_PREFIX}session-", dir=HOST_TMP))
    session.chmod(0o711)  # its tmp is every user's
    (session / "tmp").mkdir(mode=0o1777)
    (session / "tmp").chmod(0o1777)
    config.stash[_HOST] = _HostState(
        started=time.time(),
        session_dir=session,
        inventories={db: _inventory_state(db) for db in sorted(host_dbs)},
        tmp_names=frozenset(os.listdir(HOST_TMP)),
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("VENVKEEPER_DB", str(session / "inventory.db"))
    mp.setenv("XDG_STATE_HOME", str(session / "state"))
    mp.setenv("VENVKEEPER_STATE_DIR", str(session / "state" / "venvkeeper"))  # root's too
    mp.setenv("XDG_CONFIG_HOME", str(session / "no-config" / "xdg"))
    mp.setattr(vk_config, "SYSTEM_CONFIG", str(session / "no-config" / "etc" / "config.toml"))
    mp.delenv(vk_config.ENV_VAR, raising=False)
    # A width for venvkeeper's tables only where a test sets one: not the developer's shell's,
    # nor the one GNU readline exports in an xdist worker (pdb imports it; its input is a pipe).
    mp.delenv("COLUMNS", raising=False)
    mp.delenv("LINES", raising=False)
    # The tools the tests run (pip, uv, compilers, venvkeeper in a child process) keep
    # their temporary files in the session's directory: what they fail to remove goes
    # with it, and is told at the end.
    mp.setenv("TMPDIR", str(session / "tmp"))
    if hasattr(config, "workerinput"):
        # xdist puts its working directory first on a worker's PYTHONPATH, which every
        # process a test starts would inherit: the venvs they run must see what a user's do.
        here, _, rest = os.environ.get("PYTHONPATH", "").partition(os.pathsep)
        if here == os.getcwd():
            if rest:
                mp.setenv("PYTHONPATH", rest)
            else:
                mp.delenv("PYTHONPATH")

    def restore() -> None:
        mp.undo()
        remove_tree(session)

    config.add_cleanup(restore)


@pytest.fixture(scope="session", autouse=True)
def _session_basetemp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    request.config.stash[_HOST].basetemp = str(tmp_path_factory.getbasetemp())


def _ours(path: str, basetemp: Optional[str]) -> bool:
    if basetemp and (path == basetemp or path.startswith(basetemp.rstrip("/") + "/")):
        return True
    return any(part.startswith(SESSION_PREFIX) for part in Path(path).parts)


def host_changes(
    state: _HostState, places: Sequence[Path] = LEFTOVER_PLACES, tmp: Path = HOST_TMP
) -> tuple[list[str], list[str]]:
    """(what this run changed on the host, notes about changes others may have made).
    This run's leftovers in *places* are removed; so is its account."""
    changed: list[str] = []
    notes: list[str] = []
    for db, before in state.inventories.items():
        after = _inventory_state(db)
        if after is None or (before is not None and after[0] == before[0]):
            continue
        new = _scans(db, before[1] if before else 0)
        mine = [(i, roots) for i, roots in new if any(_ours(r, state.basetemp) for r in roots)]
        if mine:
            changed.append(f"recorded into the host's inventory {db}: scans {mine}")
        elif before is None and not new:
            changed.append(f"created the host's inventory {db}")
        else:
            notes.append(f"{db} changed during the run, by scans that are not this run's")
    for place in places:
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(place)):
                p = place / name
                if name.startswith(SESSION_PREFIX) and p != state.session_dir:
                    changed.append(f"left {p}")
                    remove_tree(p)
    for name in state.users:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            changed.append(f"left the account {name}: {remove_user(name) or 'now removed'}")
    with contextlib.suppress(OSError):
        left = sorted(os.listdir(state.session_dir / "tmp"))
        if left:
            notes.append(
                f"the tools this run ran left {len(left)} entries in its TMPDIR (removed"
                f" with it): {' '.join(left[:10])}"
            )
    me = os.geteuid()
    strays = []
    for name in sorted(set(os.listdir(tmp)) - state.tmp_names):
        with contextlib.suppress(OSError):
            st = os.lstat(tmp / name)
            if name.startswith("tmp") and st.st_uid == me and st.st_mtime >= state.started:
                strays.append(name)
    if strays:
        notes.append(
            f"{len(strays)} new {tmp}/tmp* entries of uid {me} (this machine's other"
            f" processes may have made them): {' '.join(strays[:10])}"
        )
    return changed, notes


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """An xdist worker ended: keep what its session-end check found (a worker that
    crashed sent nothing: its crash already fails the run)."""
    found = getattr(node, "workeroutput", {}).get("venvkeeper_host")
    workers = node.config.stash.get(_WORKERS, None)
    if found is not None and workers is not None:
        workers.append((node.gateway.id, found[0], found[1]))


@pytest.hookimpl(trylast=True)  # after the session fixtures' teardown and pytest's own cleanup
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(_HOST, None)
    if state is not None:
        changed, notes = host_changes(state)
        if hasattr(config, "workerinput"):  # told by the controller, which prints
            config.workeroutput["venvkeeper_host"] = (changed, notes)  # type: ignore[attr-defined]
            return
    elif _WORKERS in config.stash:
        changed, notes = [], []
        for worker, c, n in sorted(config.stash[_WORKERS]):
            changed += [f"{worker}: {x}" for x in c]
            notes += [f"{worker}: {x}" for x in n]
    else:
        return
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line("")
        for note in notes:
            tr.write_line(f"note: {note}")
    if changed:
        if tr is not None:
            tr.write_sep("!", "this run did not leave the host as it found it")
            for c in changed:
                tr.write_line(c)
        if exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def quiet_installers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's pip and uv configuration (a constraints file, extra indexes) is the
    admin's: installers run by a test (and by venvkeeper in it) use only what it built."""
    from factory import uv_cache

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("UV_CACHE_DIR", uv_cache())
