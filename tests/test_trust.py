"""The one trust rule (venvkeeper.host.trust) and the one program finder
(venvkeeper.host.programs), against a real unprivileged user: each verdict is checked
against what the kernel lets that user do."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from venvkeeper.host import programs
from venvkeeper.host.trust import Distrust, TrustCache, distrust, tree_distrust

from conftest import User, host_tmpdir, remove_tree

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture
def top(unprivileged_user: User) -> Iterator[Path]:
    d = host_tmpdir("trust")
    try:
        yield d
    finally:
        remove_tree(d)


def as_user(user: User, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        cwd="/",
    )


def python_as(user: User, code: str, path: str) -> subprocess.CompletedProcess[str]:
    """*code* run by the system's python3 as *user*, importing venvkeeper from src/ (the
    suite's own venv lives under /root, which the user cannot read)."""
    res = subprocess.run(
        ["/usr/bin/python3", "-c", code],
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": path, "PYTHONPATH": str(SRC)},
        cwd="/",
    )
    if res.returncode != 0 and "No module named" in res.stderr:
        pytest.skip(f"the user cannot import venvkeeper from {SRC}: {res.stderr.strip()}")
    return res


def can_create(user: User, directory: Path) -> bool:
    """What the kernel says: may *user* add a name to *directory*?"""
    probe = directory / "probe-by-user"
    ok = as_user(user, "touch", str(probe)).returncode == 0
    if ok:
        probe.unlink()
    return ok


def _mine(path: Path, user: User) -> None:
    os.lchown(path, user.uid, user.gid)


def test_roots_own_tree_is_trusted_for_root_and_for_every_user(
    top: Path, unprivileged_user: User
) -> None:
    f = top / "a" / "b" / "file"
    f.parent.mkdir(parents=True)
    f.write_text("x")
    assert distrust(str(f), 0) is None
    assert distrust(str(f), unprivileged_user.uid) is None
    assert distrust("/", 0) is None


def test_what_a_user_owns_is_trusted_for_them_only(top: Path, unprivileged_user: User) -> None:
    u = unprivileged_user
    home = top / "home"
    home.mkdir()
    _mine(home, u)
    f = home / "file"
    f.write_text("x")
    d = distrust(str(f), 0)
    assert isinstance(d, Distrust) and d.path == str(home) and d.uid == 0
    assert d.why == f"is owned by {u.name} (uid {u.uid})"
    assert str(d) == f"{home} is owned by {u.name} (uid {u.uid}), on the way to {f}"
    assert distrust(str(f), u.uid) is None  # theirs and root's only
    other = distrust(str(f), u.uid + 1)
    assert other is not None and other.path == str(home)


def test_write_bits_for_every_user_and_for_a_group(top: Path, unprivileged_user: User) -> None:
    u = unprivileged_user
    d = top / "d"
    d.mkdir()
    os.chmod(d, 0o777)
    assert can_create(u, d)
    assert "writable by every user" in str(distrust(str(d), 0))
    assert "writable by every user" in str(distrust(str(d / "x"), 0) or "")  # above, too
    f = top / "f"
    f.write_text("x")
    os.chmod(f, 0o646)
    assert distrust(str(f), 0) == Distrust(str(f), 0, "is writable by every user")
    # the user's own group: its only member is the user
    g = top / "g"
    g.mkdir()
    os.chown(g, 0, u.gid)
    os.chmod(g, 0o775)
    assert can_create(u, g)
    got = distrust(str(g), 0)
    assert got is not None and got.why == f"is writable by the group {u.name} (gid {u.gid})"
    assert distrust(str(g), u.uid) is None
    # root's group, with no member but root: only root can write
    import grp

    if grp.getgrgid(0).gr_mem:
        pytest.skip("the root group has members on this host")
    os.chown(g, 0, 0)
    os.chmod(g, 0o775)
    assert not can_create(u, g)
    assert distrust(str(g), 0) is None


def test_sticky_directories_as_the_kernel_treats_them(top: Path, unprivileged_user: User) -> None:
    u = unprivileged_user
    sticky = top / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    roots = sticky / "roots"
    roots.write_text("x")
    # the kernel: the user may add a name, not move root's entry
    assert can_create(u, sticky)
    assert as_user(u, "mv", str(roots), str(sticky / "moved")).returncode != 0
    assert distrust(str(roots), 0) is None  # safe above root's file
    whole = distrust(str(sticky), 0)
    assert whole is not None and "every user" in whole.why  # as a whole: others add files
    assert distrust(str(sticky), 0, new_names_ok=True) is None
    theirs = sticky / "theirs"
    assert as_user(u, "touch", str(theirs)).returncode == 0
    got = distrust(str(theirs), 0)
    assert got is not None and got.path == str(theirs) and u.name in got.why


def _acl(*entries: tuple[int, int, int]) -> bytes:
    undefined = 0xFFFFFFFF
    out = struct.pack("<I", 2)
    for tag, perm, ident in sorted(entries):
        out += struct.pack("<HHI", tag, perm, undefined if ident < 0 else ident)
    return out


@pytest.mark.parametrize("mask", [0o7, 0o5])
@pytest.mark.parametrize("who", ["user", "group"])
def test_an_acl_entry_makes_its_user_or_group_a_writer(
    top: Path, unprivileged_user: User, mask: int, who: str
) -> None:
    """A POSIX access ACL naming the user (or their group) with write: the kernel lets them
    create files, and the rule says who, unless the mask takes the write away."""
    u = unprivileged_user
    d = top / "acl"
    d.mkdir()
    os.chmod(d, 0o755)
    tag, ident = (0x02, u.uid) if who == "user" else (0x08, u.gid)
    entries = [(0x01, 7, -1), (tag, 7, ident), (0x04, 5, -1), (0x10, mask, -1), (0x20, 5, -1)]
    try:
        os.setxattr(d, "system.posix_acl_access", _acl(*entries))
    except OSError as e:
        pytest.skip(f"no POSIX ACLs on this filesystem ({e})")
    assert can_create(u, d) == (mask == 0o7)
    got = distrust(str(d), 0)
    if mask == 0o5:
        assert got is None
        return
    assert got is not None and got.why.endswith("through its ACL") and u.name in got.why, got
    assert distrust(str(d), u.uid) is None  # for the user themselves: theirs and root's


def test_links_are_checked_hop_by_hop(top: Path, unprivileged_user: User) -> None:
    u = unprivileged_user
    home = top / "home"
    home.mkdir()
    _mine(home, u)
    target = home / "python3"
    target.write_text("#!/bin/sh\n")
    link = top / "python"
    link.symlink_to(target)
    got = distrust(str(link), 0)
    assert got is not None and got.path == str(home)
    assert got.via == f"{link} -> {target}"
    assert str(got).startswith(f"{home} is owned by {u.name}")
    # a link of the user's to root's file: the link is theirs to repoint
    ok = top / "ok"
    ok.write_text("x")
    theirs = top / "theirs-link"
    theirs.symlink_to(ok)
    _mine(theirs, u)
    got = distrust(str(theirs), 0)
    assert got is not None and got.path == str(theirs)
    assert got.why == f"is a symbolic link owned by {u.name} (uid {u.uid})"
    # relative hops and ".." after a link, as the kernel resolves them
    (top / "x" / "y").mkdir(parents=True)
    (top / "x" / "y" / "up").symlink_to("..")
    assert distrust(str(top / "x" / "y" / "up" / ".." / "x" / "y"), 0) is None
    (top / "loop1").symlink_to("loop2")
    (top / "loop2").symlink_to("loop1")
    got = distrust(str(top / "loop1"), 0)
    assert got is not None and "symbolic links" in got.why


def test_a_missing_path_is_as_trusted_as_where_it_would_be_made(
    top: Path, unprivileged_user: User
) -> None:
    """Whoever can add a name to a directory can create what is missing there."""
    u = unprivileged_user
    assert distrust(str(top / "nothing" / "here"), 0) is None  # only root writes top
    sticky = top / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    assert can_create(u, sticky)
    got = distrust(str(sticky / "python3"), 0)
    assert got is not None and got.path == str(sticky / "python3")
    assert "anyone may create it" in got.why and "every user" in got.why
    # hidden from the one asking: not trusted (here, a user asks about root's private dir)
    private = top / "private"
    private.mkdir(mode=0o700)
    (private / "f").write_text("x")
    code = "from venvkeeper.host.trust import distrust; print(distrust(%r, %d))"
    code %= (str(private / "f"), u.uid)
    res = python_as(u, code, "/usr/bin:/bin")
    assert "cannot be checked (permission denied" in res.stdout, res.stdout + res.stderr


def test_a_tree_is_checked_to_its_last_file_and_the_cache_agrees(
    top: Path, unprivileged_user: User
) -> None:
    u = unprivileged_user
    tree = top / "venv" / "lib" / "python3.11" / "site-packages" / "pkg"
    tree.mkdir(parents=True)
    (tree / "__init__.py").write_text("")
    deep = tree / "mod.py"
    deep.write_text("")
    cache = TrustCache()
    assert tree_distrust(str(top / "venv"), 0, cache=cache) is None
    os.chmod(deep, 0o666)
    assert tree_distrust(str(top / "venv"), 0, cache=cache) is None  # remembered
    fresh = tree_distrust(str(top / "venv"), 0)
    assert fresh == Distrust(str(deep), 0, "is writable by every user")
    os.chmod(deep, 0o644)
    (tree / "link").symlink_to(top / "elsewhere")
    (top / "elsewhere").mkdir()
    _mine(top / "elsewhere", u)
    got = tree_distrust(str(top / "venv"), 0)
    assert got is not None and got.path == str(top / "elsewhere") and u.name in got.why
    # a directory above checked once per command: the cache holds it
    cache = TrustCache()
    assert distrust(str(deep), 0, cache=cache) is None
    assert (str(tree), 0) in cache.above and (str(top), 0) in cache.above


# --- the program finder ---------------------------------------------------------------


def test_root_finds_programs_in_the_system_directories_only(
    top: Path, unprivileged_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    u = unprivileged_user
    fake = top / "bin"
    fake.mkdir()
    _mine(fake, u)
    for name in ("cp", "uv"):
        (fake / name).write_text("#!/bin/sh\nexit 0\n")
        (fake / name).chmod(0o755)
        _mine(fake / name, u)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
    monkeypatch.setenv("HOME", str(top))
    cp = programs.find("cp")
    assert cp is not None and os.path.dirname(cp) in programs.SYSTEM_DIRS
    assert programs.require("cp") == cp
    found = programs.locate("uv", local=True)
    assert found.path is None or not found.path.startswith(str(top))
    # a directory named explicitly is checked too: the user's candidate is refused
    got = programs.locate("cp", dirs=[str(fake)])
    assert got.path is None and got.refused and u.name in str(got.refused[0])
    with pytest.raises(programs.ProgramRefused) as e:
        programs.require("cp", dirs=[str(fake)])
    assert str(fake) in str(e.value) and u.name in str(e.value)


def test_a_program_named_explicitly_is_checked(top: Path, unprivileged_user: User) -> None:
    u = unprivileged_user
    theirs = top / "uv"
    theirs.write_text("#!/bin/sh\n")
    theirs.chmod(0o755)
    assert programs.checked(str(theirs), what="--uv") == str(theirs)  # root's own
    _mine(theirs, u)
    with pytest.raises(programs.ProgramRefused) as e:
        programs.checked(str(theirs), what="--uv")
    assert str(theirs) in str(e.value) and u.name in str(e.value) and "--uv" in str(e.value)
    assert programs.checked(str(theirs), what="--uv", run_as=u.uid) == str(theirs)
    with pytest.raises(programs.ProgramRefused, match="absolute path"):
        programs.checked("uv", what="--uv")
    with pytest.raises(programs.ProgramRefused, match="not an executable file"):
        programs.checked(str(top), what="--uv")


def test_another_user_finds_programs_on_their_own_path(top: Path, unprivileged_user: User) -> None:
    """As another user, their PATH, as any program they start would use."""
    u = unprivileged_user
    own = top / "own"
    own.mkdir()
    _mine(own, u)
    (own / "cp").write_text("#!/bin/sh\n")
    (own / "cp").chmod(0o755)
    _mine(own / "cp", u)
    res = python_as(
        u,
        "from venvkeeper.host import programs; print(programs.find('cp'))",
        f"{own}:/usr/bin:/bin",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(own / "cp")


def test_python_running_this_suite_is_what_programs_call_own() -> None:
    assert programs.own_dir() == os.path.dirname(os.path.abspath(sys.executable))


def test_restorecon_runs_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20, item 5: restorecon is in /usr/sbin, and ran by its bare name with
    ``PATH=/usr/bin:/bin``: on an SELinux host whose sbin is not merged into bin, every
    relink and rebuild of a labelled venv failed. A stand-in /usr/sbin (root's, as the
    finder requires) holds a restorecon that records how it was called."""
    from venvkeeper.repair import carry

    sbin = tmp_path / "sbin"
    sbin.mkdir()
    calls = tmp_path / "calls"
    fake = sbin / "restorecon"
    fake.write_text(f'#!/bin/sh\necho "$0 $*" >> {calls}\n')
    fake.chmod(0o755)
    like, tree = tmp_path / "old", tmp_path / "new"
    like.mkdir()
    tree.mkdir()
    try:
        os.setxattr(like, "security.selinux", b"system_u:object_r:usr_t:s0\0")
    except OSError as e:
        pytest.skip(f"cannot label a directory here ({e})")
    monkeypatch.setattr(programs, "SYSTEM_DIRS", (str(sbin), "/usr/bin", "/bin"))
    carry.match_root(str(tree), str(like))
    assert calls.read_text() == f"{fake} -R -F {tree}\n"
