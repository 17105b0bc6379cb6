"""The Debian package state read statically (venvkeeper.host.aptdb), and the base-obsolete finding.

Against real databases: this host's own dpkg and apt lists (checked against dpkg-query and
apt-cache), and a bookworm root upgraded to trixie for real (python3.11 left installed, which
trixie's lists do not carry). Small roots built in tmp_path cover what no real host shows on
demand: no lists, unreadable lists, removed packages, a list that changes.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import debroot
from venvkeeper.checks.registry import run_checks
from venvkeeper.host import aptdb
from venvkeeper.host.bases import HostCache
from venvkeeper.model.venv import OsPackage, VenvKind
from venvkeeper.scan.inspect import inspect_venv

# --- this host: real, compared with dpkg-query and apt-cache ---------------------------


def _policy_sources(pkg: str) -> list[str]:
    """The sources ``apt-cache policy`` lists for *pkg*'s versions (ground truth)."""
    out = subprocess.run(
        ["apt-cache", "policy", pkg], capture_output=True, text=True, timeout=60
    ).stdout
    return [ln.split(None, 1)[1] for ln in out.splitlines() if ln.startswith("        ")]


def test_this_hosts_interpreter_package() -> None:
    exe = os.path.realpath("/usr/bin/python3")
    if not os.path.exists("/var/lib/dpkg/status") or shutil.which("apt-cache") is None:
        pytest.skip("not a Debian host")
    owner = subprocess.run(["dpkg-query", "-S", exe], capture_output=True, text=True, timeout=60)
    if owner.returncode != 0:
        pytest.skip(f"{exe} belongs to no package here")
    state = aptdb.AptState("/")
    pkg = state.owner(exe)
    assert pkg is not None and pkg.name == owner.stdout.split(":")[0]
    version = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", pkg.name], capture_output=True, text=True
    ).stdout
    assert pkg.version == version
    sources = _policy_sources(pkg.name)
    offered = any("/var/lib/dpkg/status" not in s for s in sources)
    lists = state.signature.lists
    if not lists:
        assert state.offered(pkg.name) is None
    elif all(aptdb._decompress(p) is not None for p, *_ in lists):
        assert state.offered(pkg.name) is offered, sources
        assert (state.obsolete(exe) is None) is offered
    assert state.owner("/nonexistent/python3.99") is None


# --- a real upgrade: trixie's lists, bookworm's python3.11 still installed --------------


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dpkg's and apt's state of a real bookworm root after ``full-upgrade`` to trixie."""
    tarball = debroot.upgraded_tarball()
    if not tarball.exists():
        root = tmp_path_factory.mktemp("build") / "root"
        try:
            debroot.bookworm_root(root)
            debroot.upgrade_to_trixie(root)
        finally:
            debroot.remove_root(root)
    dest = tmp_path_factory.mktemp("upgraded")
    argv = ["tar", "--numeric-owner", *debroot._compress_flag(), "-xf", str(tarball)]
    members = ["./var/lib/dpkg", "./var/lib/apt/lists", "./etc/apt"]
    subprocess.run([*argv, "-C", str(dest), *members], check=True, timeout=600)
    return dest


@pytest.mark.slow
def test_obsolete_after_a_real_upgrade(upgraded: Path) -> None:
    state = aptdb.AptState(str(upgraded))
    old = state.owner("/usr/bin/python3.11")
    assert old is not None and old.name == "python3.11-minimal", old
    assert old.version.startswith("3.11.") and "deb12" in old.version
    assert state.owner("/bin/python3.11") == old  # merged /usr: either name
    assert state.offered("python3.11-minimal") is False
    assert state.obsolete("/usr/bin/python3.11") == old
    new = state.owner("/usr/bin/python3.13")
    assert new is not None and new.name == "python3.13-minimal"
    assert state.offered(new.name) is True and state.obsolete("/usr/bin/python3.13") is None
    assert state.obsolete("/usr/bin/python3") is None  # python3-minimal: trixie's
    # apt itself agrees: the installed python3.11 is known only to dpkg's status.
    apt = ["apt-cache", "-o", f"Dir={upgraded}", "-o", "Dir::Cache=/nonexistent-cache"]
    policy = subprocess.run(
        [*apt, "policy", "python3.11-minimal", "python3.13-minimal"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    old_part, new_part = policy.split("python3.13-minimal:")
    assert "/var/lib/dpkg/status" in old_part and "http" not in old_part, policy
    assert "trixie" in new_part, policy


# --- small roots for what real hosts do not show on demand ------------------------------

STATUS = """\
Package: python3.11-minimal
Status: install ok installed
Architecture: amd64
Version: 3.11.2-6+deb12u6

Package: python3.10-minimal
Status: deinstall ok config-files
Architecture: amd64
Version: 3.10.9-1

Package: python3.13-minimal
Status: install ok installed
Architecture: amd64
Version: 3.13.5-2
"""


def _root(tmp: Path, lists: dict[str, bytes]) -> Path:
    info = tmp / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (tmp / "var/lib/dpkg/status").write_text(STATUS)
    (info / "python3.11-minimal:amd64.list").write_text("/.\n/usr\n/usr/bin/python3.11\n")
    (info / "python3.10-minimal.list").write_text("/usr/bin/python3.10\n")
    (info / "python3.13-minimal.list").write_text("/usr/bin/python3.13\n")
    d = tmp / "var/lib/apt/lists"
    d.mkdir(parents=True)
    for name, data in lists.items():
        (d / name).write_bytes(data)
    return tmp


def test_no_lists_means_unknown(tmp_path: Path) -> None:
    state = aptdb.AptState(str(_root(tmp_path, {})))
    assert state.owner("/usr/bin/python3.11") == OsPackage(
        "python3.11-minimal", "3.11.2-6+deb12u6", "amd64"
    )
    assert state.offered("python3.11-minimal") is None
    assert state.obsolete("/usr/bin/python3.11") is None
    assert state.owner("/usr/bin/python3.10") is None  # removed, only its conffiles left


def test_compressed_and_unreadable_lists(tmp_path: Path) -> None:
    offered = b"Package: python3.13-minimal\nVersion: 3.13.5-2\n\n"
    root = _root(
        tmp_path,
        {
            "x_dists_trixie_main_binary-amd64_Packages.gz": gzip.compress(offered),
            "y_dists_other_main_binary-amd64_Packages.xz": b"not xz at all",
            "x_dists_trixie_main_i18n_Translation-en": b"Package: python3.11-minimal\n",
        },
    )
    state = aptdb.AptState(str(root))
    assert state.offered("python3.13-minimal") is True
    # Not in the readable list, and the other one cannot be read: cannot tell.
    assert state.offered("python3.11-minimal") is None
    (root / "var/lib/apt/lists/y_dists_other_main_binary-amd64_Packages.xz").unlink()
    fresh = aptdb.state(str(root))  # the lists changed: read again
    assert fresh.offered("python3.11-minimal") is False
    assert fresh.obsolete("/usr/bin/python3.11") is not None
    assert aptdb.state(str(root)) is fresh  # unchanged: the same cached state
    assert fresh.obsolete("/usr/bin/python3.13") is None


def test_an_rpm_host_or_none_at_all(tmp_path: Path) -> None:
    state = aptdb.AptState(str(tmp_path))
    assert not state.is_debian
    assert state.owner("/usr/bin/python3.11") is None
    assert state.obsolete("/usr/bin/python3.11") is None


# --- the finding, on real venvs ---------------------------------------------------------


def _system_python() -> Path:
    exe = Path("/usr/bin/python3.11")
    if not exe.is_file():
        pytest.skip("needs the system's /usr/bin/python3.11")
    return exe


@pytest.mark.parametrize("copies", [False, True])
def test_base_obsolete_on_a_real_venv(tmp_path: Path, copies: bool) -> None:
    """A venv on /usr/bin/python3.11, judged against a dpkg root whose archive no longer
    offers python3.11-minimal (and against one that does)."""
    exe = _system_python()
    v = tmp_path / "app"
    argv = [str(exe), "-m", "venv", "--without-pip", *(["--copies"] if copies else []), str(v)]
    subprocess.run(argv, check=True, timeout=120)
    gone = _root(tmp_path / "gone", {"a_Packages": b"Package: python3.13-minimal\n"})
    facts = inspect_venv(str(v), VenvKind.VENV, host=HostCache(packages_root=str(gone)))
    assert facts.base is not None
    assert facts.base.obsolete_package is not None
    assert facts.base.obsolete_package.name == "python3.11-minimal"
    found = {f.code: f for f in run_checks(facts)}
    assert "base-obsolete" in found, found
    msg = found["base-obsolete"].message
    assert "python3.11-minimal 3.11.2-6+deb12u6" in msg and "/usr/bin/python3.11" in msg
    assert found["base-obsolete"].severity.value == "warning"
    kept = _root(tmp_path / "kept", {"a_Packages": b"Package: python3.11-minimal\n"})
    facts = inspect_venv(str(v), VenvKind.VENV, host=HostCache(packages_root=str(kept)))
    assert "base-obsolete" not in {f.code for f in run_checks(facts)}
    facts = inspect_venv(str(v), VenvKind.VENV, host=HostCache(packages_root=None))
    assert facts.base is not None and facts.base.obsolete_package is None
