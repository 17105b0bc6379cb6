"""An unprivileged user attacks root's repair, rollback and prune-backups.

The user owns a directory with a venv in it (or can write the directory of a venv of
root's) and plants what venvkeeper would find beside the venv: forged journals (each
field), links and hard links for the lock, the journal and the backups, a FIFO, a venv
path that is a link, a recorded process group of root's. Root then runs the command for
real. After each: root's canary files and directories are byte-identical (contents, modes,
owners), root's canary process lives, and the refusal names the planted object.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from venvkeeper.repair import transaction
from venvkeeper.repair.safety import Actor, identity, who_controls

from conftest import User, host_tmpdir, remove_tree, run_cli, validate_json
from factory import make_venv, tree_hash

SYSTEM_PYTHON = Path("/usr/bin/python3")
STAMP = "20990101T000000-1-1"


@dataclass
class World:
    top: Path
    home: Path  # the user's directory
    venv: Path  # the user's venv in it, moved there (repair rewrites its paths)
    canary_dir: Path  # root's
    canary_file: Path  # root's
    user: User

    def as_user(self, *argv: str) -> None:
        subprocess.run(
            list(argv),
            check=True,
            user=self.user.uid,
            group=self.user.gid,
            extra_groups=[],
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
        )

    def plant(self, path: Path, text: str) -> None:
        """*path* written by the user (so it is theirs)."""
        self.as_user("sh", "-c", 'printf "%s" "$1" > "$2"', "plant", text, str(path))

    def sibling(self, kind: str, venv: Path | None = None) -> Path:
        return Path(transaction.sibling(str(venv or self.venv), kind))

    def canaries(self) -> tuple[object, ...]:
        return (tree_hash(self.canary_dir), tree_hash(self.canary_file.parent))


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, dirs, files in os.walk(root):
        os.lchown(dirpath, uid, gid)
        for n in dirs + files:
            os.lchown(os.path.join(dirpath, n), uid, gid)


def _moved_venv(where: Path) -> Path:
    """A real venv of the system's python3, made elsewhere and moved to *where*."""
    made = where.parent / (where.name + "-made")
    make_venv(SYSTEM_PYTHON, made)
    made.rename(where)
    return where


@pytest.fixture
def world(unprivileged_user: User) -> Iterator[World]:
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 to make venvs the user can run")
    top = host_tmpdir("attack")
    try:
        canary_dir = top / "root-data"
        (canary_dir / "sub").mkdir(parents=True)
        (canary_dir / "secret").write_text("root's secret\n")
        os.chmod(canary_dir / "secret", 0o600)
        (canary_dir / "sub" / "more").write_text("more\n")
        canary_file = top / "root-etc" / "passwd"
        canary_file.parent.mkdir()
        canary_file.write_text("root:x:0:0::/root:/bin/bash\n")
        home = top / "home"
        home.mkdir()
        venv = _moved_venv(home / "app")
        _chown_tree(home, unprivileged_user.uid, unprivileged_user.gid)
        yield World(top, home, venv, canary_dir, canary_file, unprivileged_user)
    finally:
        remove_tree(top)


def _journal(w: World, venv: Path, **fields: object) -> str:
    st = os.lstat(venv)
    data: dict[str, object] = {
        "version": 1,
        "path": str(venv),
        "new": str(w.sibling("new-" + STAMP, venv)),
        "backup": str(w.sibling("backup-" + STAMP, venv)),
        "action": "repair (rebuild)",
        "old_id": [st.st_dev, st.st_ino],
        "new_id": None,
        "step": "verified",
        "keep_new": False,
        "pid": 1,
        "started": 0.0,
        "groups": [],
    }
    data.update(fields)
    return json.dumps(data)


def _inode(p: Path) -> list[int]:
    st = os.lstat(p)
    return [st.st_dev, st.st_ino]


# --- forged journals ----------------------------------------------------------------


def _forgeries(w: World) -> dict[str, dict[str, object]]:
    """Each field of a journal, forged to make root act outside the venv's directory."""
    evil = w.home / "evil"
    return {
        # the first attack: exchange /etc/passwd with a file of the user's
        "path": {"path": str(w.canary_file), "new": str(evil), "new_id": _inode(evil)},
        # the second: new = DIR/.. passes a dirname check; rmtree of the parent's parent
        "new-dotdot": {"new": str(w.home / ".."), "new_id": _inode(w.top), "step": "journal"},
        "new-elsewhere": {"new": str(w.canary_dir), "new_id": _inode(w.canary_dir)},
        "backup-elsewhere": {"backup": str(w.canary_dir), "old_id": _inode(w.canary_dir)},
        "new-traversal": {"new": str(w.home / ".app.venvkeeper-new-x/../../root-data")},
        "ids-of-root-files": {
            "old_id": _inode(w.canary_dir),
            "new_id": _inode(w.canary_file),
            "step": "journal",
        },
        "not-json-deep": {},
    }


@pytest.mark.parametrize("command", ["repair", "rollback", "prune-backups"])
@pytest.mark.parametrize(
    "field",
    [
        "path",
        "new-dotdot",
        "new-elsewhere",
        "backup-elsewhere",
        "new-traversal",
        "ids-of-root-files",
        "not-json-deep",
    ],
)
def test_a_forged_journal_never_makes_root_act_outside(
    world: World, command: str, field: str
) -> None:
    w = world
    w.plant(w.home / "evil", "the user's file\n")
    journal = w.sibling("journal")
    if field == "not-json-deep":
        w.plant(journal, "[" * 100_000)
    else:
        w.plant(journal, _journal(w, w.venv, **_forgeries(w)[field]))
    before, venv_before = w.canaries(), tree_hash(w.venv)
    top_before = sorted(os.listdir(w.top))
    res = run_cli(command, str(w.venv if command != "prune-backups" else w.home))
    assert w.canaries() == before
    assert sorted(os.listdir(w.top)) == top_before
    assert tree_hash(w.venv) == venv_before  # the venv itself is not touched either
    assert journal.exists()  # left as it is, for the admin to look at
    assert "Traceback" not in res.out + res.err
    if command != "prune-backups":  # prune only settles venvs that have backups
        assert res.code in (1, 2), res.out + res.err
        if field != "ids-of-root-files":  # that one names no tree of ours: left to the admin
            assert str(journal) in res.out, res.out
        else:
            assert "nothing was deleted" in res.out, res.out


def test_a_journal_of_another_user_is_refused_in_a_sticky_directory(
    world: World,
) -> None:
    """Root's own venv in a sticky, world-writable directory (as /tmp): the user may
    create names there but not move root's: a journal they planted is not root's."""
    w = world
    sticky = w.top / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    venv = _moved_venv(sticky / "app")
    journal = w.sibling("journal", venv)
    w.plant(
        journal,
        _journal(w, venv, new=str(w.sibling("new-" + STAMP, venv)), new_id=_inode(w.canary_dir)),
    )
    before = w.canaries()
    res = run_cli("repair", "--json", str(venv))
    (r,) = validate_json("repair", res.out)["results"]
    assert r["outcome"] == "refused", r
    assert str(journal) in r["message"] and "belongs to" in r["message"], r["message"]
    assert w.canaries() == before


def test_a_recorded_process_group_of_roots_is_not_killed(world: World) -> None:
    w = world
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        w.plant(
            w.sibling("journal"),
            _journal(w, w.venv, step="journal", groups=[victim.pid], started=time.time() - 5),
        )
        res = run_cli("repair", "--json", str(w.venv))
        assert res.code == 0, res.out
        (r,) = validate_json("repair", res.out)["results"]
        assert r["recovered"] and r["outcome"] == "repaired", r
        assert victim.poll() is None  # root's process lives
    finally:
        victim.kill()
        victim.wait()


# --- links, hard links and FIFOs for the lock, the journal and backups ---------------


@pytest.mark.parametrize("kind", ["lock", "journal"])
@pytest.mark.parametrize("how", ["symlink", "hardlink", "fifo"])
@pytest.mark.parametrize("command", ["repair", "rollback"])
def test_a_planted_lock_or_journal_is_refused(
    world: World, kind: str, how: str, command: str
) -> None:
    w = world
    target = w.sibling(kind)
    if how == "symlink":
        w.as_user("ln", "-s", str(w.canary_file), str(target))
    elif how == "hardlink":
        # protected_hardlinks stops the user linking root's file; where it is off they
        # could: the test makes the link itself.
        os.link(w.canary_file, target)
    else:
        w.as_user("mkfifo", str(target))
    before = w.canaries()
    start = time.monotonic()
    res = run_cli(command, "--json", str(w.venv))
    assert time.monotonic() - start < 60  # a FIFO never hangs us
    (r,) = validate_json(command, res.out)["results"]
    assert r["outcome"] == "refused", r
    assert str(target) in r["message"], r["message"]
    assert w.canaries() == before
    assert os.lstat(target)  # left as it is


def test_a_planted_backup_is_neither_restored_nor_deleted(world: World) -> None:
    """Backups that are links or directories of somebody else are not venvkeeper's."""
    w = world
    sticky = w.top / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    venv = _moved_venv(sticky / "app")  # root's
    link = w.sibling("backup-" + STAMP, venv)
    w.as_user("ln", "-s", str(w.canary_dir), str(link))
    theirs = w.sibling("backup-20980101T000000-2-2", venv)
    w.as_user("mkdir", str(theirs))
    w.as_user("ln", "-s", str(w.canary_file), str(theirs) + "/data")
    before, venv_before = w.canaries(), tree_hash(venv)
    res = run_cli("rollback", "--json", str(venv))
    (r,) = validate_json("rollback", res.out)["results"]
    assert r["outcome"] == "failed" and "no backup" in r["message"], r
    assert str(link) in r["message"] or str(theirs) in r["message"]
    assert run_cli("rollback", "--list", str(venv)).out.startswith("no backups")
    res = run_cli("prune-backups", "--keep", "0", str(sticky))
    assert "0 backups deleted" in res.out, res.out
    assert w.canaries() == before and tree_hash(venv) == venv_before
    assert link.is_symlink() and theirs.is_dir()


def test_a_real_backup_the_user_swaps_for_a_link_is_not_followed(world: World) -> None:
    """Root repairs the user's venv (as the user), then the user replaces the backup by
    a link to root's directory and the note by a link to root's file: rollback and
    prune-backups do nothing to either."""
    w = world
    res = run_cli("repair", "--json", str(w.venv))
    (r,) = validate_json("repair", res.out)["results"]
    assert r["outcome"] == "repaired", r
    backup = Path(r["backup"])
    assert os.lstat(backup).st_uid == w.user.uid  # made as the user
    w.as_user("mv", str(backup), str(w.home / "stash"))
    w.as_user("ln", "-s", str(w.canary_dir), str(backup))
    w.as_user("rm", "-f", str(backup) + ".json")
    w.as_user("ln", "-s", str(w.canary_file), str(backup) + ".json")
    before = w.canaries()
    assert run_cli("rollback", str(w.venv)).code == 2
    run_cli("prune-backups", "--keep", "0", str(w.home))
    assert w.canaries() == before
    assert backup.is_symlink()


def test_the_repair_of_a_users_venv_is_done_as_that_user(world: World) -> None:
    """Everything the transaction leaves is the user's: the venv, the backup, its note."""
    w = world
    res = run_cli("repair", "--json", str(w.venv))
    (r,) = validate_json("repair", res.out)["results"]
    assert r["outcome"] == "repaired", r
    for p in (w.venv, Path(r["backup"]), Path(r["backup"] + ".json")):
        assert os.lstat(p).st_uid == w.user.uid, p
    owners = {os.lstat(os.path.join(d, n)).st_uid for d, ds, fs in os.walk(w.venv) for n in ds + fs}
    assert owners == {w.user.uid}


def test_a_venv_path_that_is_a_link_is_judged_where_it_leads(world: World) -> None:
    """``repair LINK`` acts on what the link names now, once; a link to root's directory
    makes root act on nothing of the user's choosing outside that (not-a-venv) tree."""
    w = world
    link = w.home / "app-link"
    w.as_user("ln", "-s", str(w.canary_dir), str(link))
    before = w.canaries()
    res = run_cli("repair", "--json", str(link))
    (r,) = validate_json("repair", res.out)["results"]
    assert r["outcome"] in ("failed", "refused"), r
    assert w.canaries() == before
    assert not [n for n in os.listdir(w.top) if "venvkeeper" in n]


# --- directories others control -----------------------------------------------------


def test_root_does_not_repair_its_venv_in_a_directory_a_user_controls(world: World) -> None:
    w = world
    venv = _moved_venv(w.home / "roots-app")  # root's, in the user's directory
    before = tree_hash(venv)
    res = run_cli("repair", "--json", str(venv))
    (r,) = validate_json("repair", res.out)["results"]
    assert r["outcome"] == "refused", r
    assert str(w.home) in r["message"] and w.user.name in r["message"], r["message"]
    assert tree_hash(venv) == before
    assert not [n for n in os.listdir(w.home) if "roots-app.venvkeeper" in n]


def test_who_controls_names_the_directory_and_the_user(world: World) -> None:
    w = world
    assert who_controls(str(w.canary_dir)) is None
    assert w.user.name in (who_controls(str(w.home / "app")) or "")
    os.chmod(w.canary_dir, 0o777)
    assert "every user" in (who_controls(str(w.canary_dir)) or "")
    os.chmod(w.canary_dir, 0o1777)  # sticky: others cannot move root's entries
    assert who_controls(str(w.canary_dir)) is None
    os.chmod(w.canary_dir, 0o755)


def test_identity_is_per_thread_and_restored(world: World) -> None:
    """The user's filesystem identity: root's file is unreadable inside, readable after,
    and another thread keeps root's identity meanwhile."""
    import threading

    w = world
    os.chmod(w.canary_file, 0o600)
    seen: dict[str, object] = {}
    inside = threading.Event()
    done = threading.Event()

    def other() -> None:
        inside.wait(10)
        try:
            w.canary_file.read_text()
            seen["other"] = "read"
        except OSError as e:
            seen["other"] = e.errno
        done.set()

    t = threading.Thread(target=other)
    t.start()
    actor = Actor(w.user.uid, w.user.gid, w.user.uid, w.user.gid)
    with actor.beside():
        with pytest.raises(PermissionError):
            w.canary_file.read_text()
        made = w.home / "made-inside"
        made.write_text("x")
        inside.set()
        done.wait(10)
        with identity(0, 0):  # nested: back to root for a moment
            w.canary_file.read_text()
        with pytest.raises(PermissionError):
            w.canary_file.read_text()
    t.join()
    assert seen["other"] == "read"
    assert w.canary_file.read_text().startswith("root:")
    assert os.lstat(made).st_uid == w.user.uid


# --- installers die with venvkeeper ---------------------------------------------------

_KILLED = r"""
import os, sys
from venvkeeper.host import command
print(os.getpid(), flush=True)
command.run(["sleep", "120"], timeout=300, die_with_parent=True,
                on_start=lambda pg: print(pg, flush=True))
"""


def test_an_installer_dies_with_venvkeeper_even_by_sigkill() -> None:
    import sys

    if not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("util-linux setpriv is not installed")
    parent = subprocess.Popen([sys.executable, "-c", _KILLED], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    parent.stdout.readline()
    child = int(parent.stdout.readline())
    # setpriv sets the signal, then becomes the installer: wait for that (the instant
    # before is covered by the journal's process groups, next test)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{child}/comm").read_text() != "sleep\n":
        time.sleep(0.01)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow  # real installers, killed and recovered
def test_recovery_ends_the_installers_a_killed_run_left(tmp_path: Path) -> None:
    """A run killed outright leaves its journal with the installers' process groups:
    the next run ends what is left of them before it settles the trees."""
    v = tmp_path / "v"
    (v / "bin").mkdir(parents=True)
    (v / "pyvenv.cfg").write_text("home = /usr/bin\n")
    new = Path(transaction.sibling(str(v), "new-" + STAMP))
    new.mkdir()
    straggler = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        st, nst = os.lstat(v), os.lstat(new)
        j = transaction.Journal(
            str(v),
            str(new),
            transaction.sibling(str(v), "backup-" + STAMP),
            "test",
            (st.st_dev, st.st_ino),
            (nst.st_dev, nst.st_ino),
            started=time.time() - 5,
            groups=[straggler.pid],
        )
        j.save()
        with transaction.locked(str(v)):
            what = transaction.recover(str(v))
        assert what is not None and "undid" in what
        assert straggler.wait(timeout=10) == -signal.SIGKILL
        assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]
    finally:
        with contextlib.suppress(OSError):
            straggler.kill()
        straggler.wait()


def test_mode_of_lock_and_journal_files(tmp_path: Path) -> None:
    """Lock and journal are private files (0600)."""
    v = tmp_path / "v"
    v.mkdir()
    with transaction.locked(str(v)):
        assert stat.S_IMODE(os.lstat(transaction.sibling(str(v), "lock")).st_mode) == 0o600


def test_a_thread_started_under_the_owners_identity_can_return_to_roots(
    world: World,
) -> None:
    """Linux gives a new thread its creator's identity (the verification's pool starts
    under the owner's): going back to root there must really go back."""
    import threading

    w = world
    os.chmod(w.canary_file, 0o600)
    actor = Actor(0, 0, w.user.uid, w.user.gid)
    seen: list[object] = []

    def child() -> None:
        try:
            w.canary_file.read_text()
            seen.append("read as the owner")  # must not happen
        except PermissionError:
            seen.append("denied")
        with actor.beside():
            seen.append(w.canary_file.read_text().split(":")[0])

    with actor.inside():
        t = threading.Thread(target=child)
        t.start()
        t.join()
    assert seen == ["denied", "root"]


# --- issue 20: nothing another user can change ever runs as root ------------------------
#
# Each attack below ran the user's code as root (a canary file with uid 0), hung, or read
# the user's configuration before the one trust rule (venvkeeper.host.trust). Every
# command runs in a child process under a timeout; the canaries are written into a sticky
# drop directory, so a canary exists whoever ran the planted code.

_RUNNER = r"""
import json, sys
from venvkeeper import config
config.SYSTEM_CONFIG = sys.argv[1]
exec(sys.argv[2])
from venvkeeper.cli import main
sys.exit(main(json.loads(sys.argv[3])))
"""


@dataclass
class Bounded:
    code: int
    out: str
    err: str


def run_bounded(
    *args: str,
    env: dict[str, str | None] | None = None,
    setup: str = "",
    timeout: float = 240.0,
) -> Bounded:
    """``venvkeeper ARGS`` in a child process (this run's inventory, no host
    configuration), killed after *timeout*: a hang fails the test instead of blocking it."""
    import sys

    from venvkeeper import config as vk_config

    base: dict[str, str | None] = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "TMPDIR": os.environ.get("TMPDIR"),
        "VENVKEEPER_DB": os.environ.get("VENVKEEPER_DB"),
        "XDG_CONFIG_HOME": os.environ.get("XDG_CONFIG_HOME"),
    }
    base.update(env or {})
    clean = {k: v for k, v in base.items() if v is not None}
    argv = [sys.executable, "-c", _RUNNER, vk_config.SYSTEM_CONFIG, setup, json.dumps(args)]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=clean, cwd="/"
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"venvkeeper {' '.join(args)} hung: still running after {timeout:g}s ({e})")
    return Bounded(done.returncode, done.stdout, done.stderr)


def _drop(w: World) -> Path:
    """A sticky directory every user may write: the planted code's canaries land here."""
    d = w.top / "drop"
    if not d.exists():
        d.mkdir()
        os.chmod(d, 0o1777)
    return d


def _uid_canary(path: Path) -> str:
    """Python that records the uid it runs as in *path*."""
    return f"import os; open({str(path)!r}, 'w').write(str(os.getuid()))"


def _root_venv(w: World, name: str, python: Path = SYSTEM_PYTHON) -> Path:
    return make_venv(python, w.top / name)


def _site(venv: Path) -> Path:
    (site,) = venv.glob("lib/python3*/site-packages")
    return site


def _deep_skip(res: Bounded, venv: Path) -> str:
    assert res.code in (0, 1, 2), res.out + res.err
    assert "Traceback" not in res.err, res.err
    (rep,) = [v for v in validate_json("scan", res.out)["venvs"] if v["path"] == str(venv)]
    skipped = [f["message"] for f in rep["findings"] if f["code"] == "deep-skipped"]
    assert skipped, rep["findings"]
    assert rep["deep"] is None or not rep["deep"]["ran"], rep["deep"]
    return skipped[0]


def test_deep_never_imports_a_pth_planted_in_roots_world_writable_site(world: World) -> None:
    """Root's venv with a world-writable site-packages (venvkeeper reports it as
    ``writable-by-others``): a user's ``evil.pth`` there ran as root under ``--deep``."""
    w = world
    venv = _root_venv(w, "wwsite")
    site = _site(venv)
    os.chmod(site, 0o777)
    canary = _drop(w) / "pth"
    w.plant(site / "evil.pth", _uid_canary(canary) + "\n")
    res = run_bounded("scan", "--deep", "--json", "--no-record", str(venv))
    assert not canary.exists(), canary.read_text()
    message = _deep_skip(res, venv)
    assert str(site) in message and "every user" in message, message


def test_deep_never_runs_an_interpreter_a_user_controls(world: World) -> None:
    """Root's venv whose ``bin/python`` leads into a user's interpreter (a user's pyenv)."""
    w = world
    venv = _root_venv(w, "linked")
    canary = _drop(w) / "interpreter"
    theirs = w.home / "pyenv-python3"
    w.plant(theirs, f'#!/bin/sh\nid -u > {canary}\nexec {SYSTEM_PYTHON} "$@"\n')
    w.as_user("chmod", "755", str(theirs))
    (venv / "bin" / "python").unlink()
    (venv / "bin" / "python").symlink_to(theirs)
    res = run_bounded("scan", "--deep", "--json", "--no-record", str(venv))
    assert not canary.exists(), canary.read_text()
    message = _deep_skip(res, venv)
    assert str(theirs) in message and w.user.name in message, message


@pytest.mark.parametrize("how", ["pth-directory", "group-writable-site"])
def test_deep_never_imports_a_sitecustomize_a_user_controls(world: World, how: str) -> None:
    """A ``sitecustomize`` reached through a site directory a user can write: a directory
    a ``.pth`` line of root's adds to ``sys.path``, or root's site-packages writable by
    the user's group. (A pyenv interpreter: Debian's stdlib has a sitecustomize of its
    own, found first.)"""
    from conftest import require_python

    w = world
    py = require_python("3.12")
    venv = _root_venv(w, "sitecustom", py)
    site = _site(venv)
    canary = _drop(w) / "sitecustomize"
    if how == "pth-directory":
        theirs = w.home / "lib"
        w.as_user("mkdir", str(theirs))
        (site / "extra.pth").write_text(f"{theirs}\n")
        where = theirs
    else:
        os.chown(site, 0, w.user.gid)
        os.chmod(site, 0o775)
        where = site
    w.plant(where / "sitecustomize.py", _uid_canary(canary) + "\n")
    res = run_bounded("scan", "--deep", "--json", "--no-record", str(venv))
    assert not canary.exists(), canary.read_text()
    message = _deep_skip(res, venv)
    assert str(where) in message and w.user.name in message, message


def _fake_program(w: World, path: Path, canary: Path) -> None:
    w.as_user("mkdir", "-p", str(path.parent))
    w.plant(path, f"#!/bin/sh\nid -u > {canary}\nexit 1\n")
    w.as_user("chmod", "755", str(path))


@pytest.mark.slow
@pytest.mark.parametrize("where", ["path", "home"])
def test_root_never_runs_a_uv_from_the_callers_path_or_home(world: World, where: str) -> None:
    """``sudo -E venvkeeper repair``: root's environment carries the user's PATH and HOME,
    with a fake ``uv`` first on PATH or in ``$HOME/.local/bin``. Root's venv is rebuilt
    (another minor): no uv of the user's may run. venvkeeper runs here as the Debian
    package's does, from /usr/bin/python3 (no uv beside it)."""
    from conftest import require_python
    from factory import build_wheel, install_from, make_project

    w = world
    old, new = require_python("3.12"), require_python("3.11")
    venv = _root_venv(w, "rootapp", old)
    wheels = build_wheel(make_project(w.top / "src", "alpha"), w.top / "wheels")
    install_from(venv, wheels, "alpha==1.0")
    canary = _drop(w) / "uv"
    _fake_program(w, w.home / "bin" / "uv", canary)
    _fake_program(w, w.home / ".local" / "bin" / "uv", canary)
    path = f"{w.home}/bin:/usr/bin:/bin" if where == "path" else "/usr/bin:/bin"
    res = run_bounded(
        "repair", "--json", "--python", str(new), "--offline", "--find-links", str(wheels),
        str(venv),
        env={"PATH": path, "HOME": str(w.home)},
        setup="import sys; sys.executable = '/usr/bin/python3'",
        timeout=600,
    )  # fmt: skip
    assert not canary.exists(), canary.read_text()
    assert "Traceback" not in res.err, res.err


def test_install_apt_hooks_refuses_a_venvkeeper_in_a_users_directory(world: World) -> None:
    """Named with ``--venvkeeper``, or found on a PATH the user set (``sudo -E``): apt
    would run it as root on every dpkg run."""
    w = world
    canary = _drop(w) / "hook"
    theirs = w.home / "bin" / "venvkeeper"
    _fake_program(w, theirs, canary)
    apt_dir = w.top / "apt.conf.d"
    apt_dir.mkdir()
    for res in (
        run_bounded(
            "install-apt-hooks", "--apt-conf-dir", str(apt_dir), "--venvkeeper", str(theirs)
        ),
        run_bounded(
            "install-apt-hooks", "--apt-conf-dir", str(apt_dir),
            env={"PATH": f"{w.home}/bin:/usr/bin:/bin"},
        ),
    ):  # fmt: skip
        assert res.code == 3, res.out + res.err
        assert not (apt_dir / "60venvkeeper").exists()
        assert str(theirs) in res.err and w.user.name in res.err, res.err
        assert "/usr/local/bin" in res.err and ".deb" in res.err, res.err  # what to do instead
    assert not canary.exists()


def test_install_apt_hooks_refuses_a_root_script_run_by_a_users_interpreter(
    world: World,
) -> None:
    w = world
    canary = _drop(w) / "hook-python"
    theirs = w.home / "python3"
    _fake_program(w, theirs, canary)
    script = w.top / "bin" / "venvkeeper"
    script.parent.mkdir()
    script.write_text(f"#!{theirs}\nimport venvkeeper\n")
    script.chmod(0o755)
    apt_dir = w.top / "apt.conf.d"
    apt_dir.mkdir()
    res = run_bounded(
        "install-apt-hooks", "--apt-conf-dir", str(apt_dir), "--venvkeeper", str(script)
    )
    assert res.code == 3, res.out + res.err
    assert str(theirs) in res.err and w.user.name in res.err, res.err
    assert not (apt_dir / "60venvkeeper").exists() and not canary.exists()


def test_install_apt_hooks_never_runs_an_apt_config_from_the_callers_path(
    world: World,
) -> None:
    import sys

    w = world
    canary = _drop(w) / "apt-config"
    _fake_program(w, w.home / "bin" / "apt-config", canary)
    apt_dir = w.top / "apt.conf.d"
    apt_dir.mkdir()
    ours = str(Path(sys.executable).parent / "venvkeeper")
    res = run_bounded(
        "install-apt-hooks", "--apt-conf-dir", str(apt_dir), "--venvkeeper", ours,
        env={"PATH": f"{w.home}/bin:/usr/bin:/bin"},
    )  # fmt: skip
    assert not canary.exists(), canary.read_text()
    assert res.code == 0, res.out + res.err
    assert (apt_dir / "60venvkeeper").exists()


def test_root_skips_a_users_configuration_under_sudo_e(world: World) -> None:
    """``sudo -E``: HOME names the user's home, whose config.toml ignores everything."""
    w = world
    venv = _root_venv(w, "configured")
    conf = w.home / ".config" / "venvkeeper" / "config.toml"
    w.as_user("mkdir", "-p", str(conf.parent))
    w.plant(conf, 'ignore = ["/*"]\n')
    res = run_bounded(
        "scan",
        "--json",
        "--no-record",
        str(venv),
        env={"HOME": str(w.home), "XDG_CONFIG_HOME": None},
    )
    assert res.code in (0, 1, 2), res.out + res.err
    assert [v["path"] for v in validate_json("scan", res.out)["venvs"]] == [str(venv)]
    warnings = [ln for ln in res.err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and str(conf) in warnings[0] and w.user.name in warnings[0], res.err
    # named through the environment, it is an error: root does not read it either
    res = run_bounded(
        "scan", "--json", "--no-record", str(venv), env={"VENVKEEPER_CONFIG": str(conf)}
    )
    assert res.code == 3 and str(conf) in res.err and w.user.name in res.err, res.out + res.err


# The check, then open: each site given a FIFO, in place before the call and swapped in at
# the moment between the check and the open (every stat-like call on the path swaps it
# once, right after it answered). A call that blocks is released and fails the test.


class _Lying:
    """The test hook between a check and an open: every check ``os`` offers by path
    (``stat``, ``lstat``, ``isfile``, ...) answers for *twin*, a regular file with the same
    bytes, while *path* itself is a FIFO: as if the FIFO were swapped in right after the
    last check. Only what looks at the open file (``fstat``) sees the truth."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path, twin: Path) -> None:
        self.path, self.twin = str(path), str(twin)
        for mod, name in (
            (os, "stat"), (os, "lstat"), (os.path, "isfile"), (os.path, "islink"),
            (os.path, "isdir"), (os.path, "exists"), (os.path, "lexists"),
            (os.path, "getsize"),
        ):  # fmt: skip
            monkeypatch.setattr(mod, name, self._wrap(getattr(mod, name)))

    def _wrap(self, real):  # type: ignore[no-untyped-def]
        def checked(p, *a, **k):  # type: ignore[no-untyped-def]
            if isinstance(p, (str, os.PathLike)) and os.fspath(p) == self.path:
                p = self.twin
            return real(p, *a, **k)

        return checked


def _bounded_call(fn, fifo: Path, seconds: float = 20.0) -> object:  # type: ignore[no-untyped-def]
    import threading

    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        with contextlib.suppress(OSError):  # release the reader, then fail
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(10)
        pytest.fail(f"blocked on the FIFO {fifo}")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


SCRIPT = "#!/usr/bin/env python3\nprint('hi')\n"


def _fifo_sites(w: World, fifo_first: bool) -> dict[str, tuple[Path, object]]:
    """Each check-then-open site: (the path it opens, a call of it)."""
    from venvkeeper.host.hostfs import REAL
    from venvkeeper.repair import carry, edit, verify

    bin_dir = w.venv / "bin"
    empty = w.top / "empty"
    empty.write_bytes(b"" if fifo_first else SCRIPT.encode())
    tool = bin_dir / "tool"
    notes = w.venv / "notes.txt"
    for p in (tool, notes):
        w.plant(p, SCRIPT)
    copy_to = w.top / "copy"
    copy_to.mkdir(exist_ok=True)
    return {
        "same_bytes": (tool, lambda: REAL.same_bytes(str(tool), str(empty))),
        "shebang": (tool, lambda: verify._shebang(str(tool))),
        "check_scripts": (tool, lambda: verify.check_scripts(str(w.venv), str(w.venv))),
        "edit_read": (tool, lambda: edit._read(str(tool))),
        "rewrite_paths": (tool, lambda: edit.rewrite_paths(str(w.venv), "/old", "/new")),
        "copy_extra": (notes, lambda: carry.copy_extra(str(notes), str(copy_to / "notes.txt"))),
    }


SITES = ["same_bytes", "shebang", "check_scripts", "edit_read", "rewrite_paths", "copy_extra"]


@pytest.mark.parametrize("site", SITES)
def test_a_fifo_in_place_never_blocks(world: World, site: str) -> None:
    w = world
    path, call = _fifo_sites(w, fifo_first=True)[site]  # same_bytes: with an empty file
    os.unlink(path)
    w.as_user("mkfifo", str(path))
    _told(site, path, _bounded_call(call, path))  # type: ignore[arg-type]
    assert stat.S_ISFIFO(os.lstat(path).st_mode)  # left as it is


def _told(site: str, path: Path, value: object) -> None:
    """What each site answers for a FIFO: nothing read, and the carry-over names it."""
    if site in ("same_bytes", "shebang", "edit_read"):
        assert value is None, value
    elif site in ("check_scripts", "rewrite_paths"):
        assert value == [], value
    else:
        assert isinstance(value, list) and len(value) == 1, value
        assert value[0].startswith(str(path)) and "fifo" in value[0].lower(), value


@pytest.mark.parametrize("site", SITES)
def test_a_fifo_swapped_in_between_check_and_open_never_blocks(
    world: World, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    path, call = _fifo_sites(w, fifo_first=False)[site]
    twin = w.top / "twin"
    twin.write_text(SCRIPT)
    os.unlink(path)
    w.as_user("mkfifo", str(path))
    _Lying(monkeypatch, path, twin)
    try:
        value = _bounded_call(call, path)  # type: ignore[arg-type]
    finally:
        monkeypatch.undo()
    _told(site, path, value)
    assert stat.S_ISFIFO(os.lstat(path).st_mode)


# A worker that raises: one clear error line and exit 3, never a spin or a thread's
# traceback.

_BOOM = r"""
import threading, time
from venvkeeper.scan import discovery, pipeline
real = discovery._Walker.visit
def visit(self, path, *a, **k):
    if {where}:
        raise RuntimeError("boom in " + path)
    time.sleep(0.02)  # the main thread is slow: the helpers get work before it ends
    return real(self, path, *a, **k)
discovery._Walker.visit = visit
discovery._SLOW_SECONDS = -1.0  # every listing is slow: the helper walkers wake at once
"""


@pytest.mark.parametrize(
    ("mode", "where", "extra"),
    [
        ("serial", "True", ["--workers", "1"]),
        ("helper-thread", "threading.current_thread() is not threading.main_thread()",
         ["--workers", "4"]),
        ("forked-walker", "True", []),
    ],
)  # fmt: skip
def test_a_walker_that_raises_ends_the_scan_with_one_line(
    world: World, mode: str, where: str, extra: list[str]
) -> None:
    w = world
    tree = w.top / "tree"
    for i in range(10):
        for j in range(10):
            (tree / f"x{i}" / f"y{j}").mkdir(parents=True)
    setup = _BOOM.format(where=where)
    if mode != "forked-walker":  # the walk in this process
        setup += "\npipeline.walk_beside = pipeline.walk\n"
    res = run_bounded("scan", "--no-record", *extra, str(tree), setup=setup, timeout=60)
    assert res.code == 3, (res.code, res.out, res.err)
    assert "Traceback" not in res.err and "Exception in thread" not in res.err, res.err
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("venvkeeper: error:"), res.err
    assert "boom in" in lines[0], lines


@pytest.mark.parametrize("how", ["option", "config"])
def test_a_uv_named_explicitly_that_a_user_controls_is_refused(world: World, how: str) -> None:
    """``repair --uv PATH`` or ``[repair] uv`` naming a uv of the user's: refused before
    any venv is touched, naming it and who controls it."""
    w = world
    canary = _drop(w) / "named-uv"
    theirs = w.home / "bin" / "uv"
    _fake_program(w, theirs, canary)
    venv = _root_venv(w, "named")
    before = tree_hash(venv)
    if how == "option":
        res = run_bounded("repair", "--uv", str(theirs), "--python", str(SYSTEM_PYTHON), str(venv))
    else:
        conf = w.top / "config.toml"
        conf.write_text(f'[repair]\nuv = "{theirs}"\n')
        res = run_bounded("--config", str(conf), "repair", str(venv))
    assert res.code == 3, res.out + res.err
    assert str(theirs) in res.err and w.user.name in res.err, res.err
    assert not canary.exists() and tree_hash(venv) == before


def test_deep_never_runs_an_interpreter_a_user_controls_inside_another_os_root(
    world: World,
) -> None:
    """Root's venv inside another OS root (a chroot root's ``/srv/v``) whose ``bin/python``
    leads, as the root sees it, to ``/usr/bin/python3`` of that root, a file the user owns:
    ``--deep`` runs it there through ``chroot``, so it is judged inside the root (the
    host's own ``/usr/bin/python3`` is root's and says nothing about it)."""
    import shutil

    w = world
    root = w.top / "machine"
    for d in ("etc", "usr/bin", "bin", "lib/x86_64-linux-gnu", "lib64", "srv"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    shutil.copy2("/bin/dash", root / "bin" / "sh")
    shutil.copy2("/lib/x86_64-linux-gnu/libc.so.6", root / "lib/x86_64-linux-gnu/libc.so.6")
    shutil.copy2("/lib64/ld-linux-x86-64.so.2", root / "lib64/ld-linux-x86-64.so.2")
    drop = root / "drop"
    drop.mkdir()
    os.chmod(drop, 0o1777)
    theirs = root / "usr" / "bin" / "python3"
    theirs.write_text("#!/bin/sh\necho ran > /drop/canary\n")
    os.chown(theirs, w.user.uid, w.user.gid)  # the user's file in root's directory
    os.chmod(theirs, 0o755)
    venv = root / "srv" / "v"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
    )
    (venv / "bin" / "python").symlink_to("/usr/bin/python3")
    res = run_bounded("scan", "--deep", "--json", "--no-record", str(venv))
    assert not (drop / "canary").exists()
    message = _deep_skip(res, venv)
    assert str(theirs) in message and w.user.name in message, message
