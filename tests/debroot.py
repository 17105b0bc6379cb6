"""Real Debian roots for the end-to-end tests: bookworm by debootstrap, upgraded to trixie.

A root is built once with ``debootstrap`` and kept as a tarball under
``~/.cache/venvkeeper-tests/`` (``$VENVKEEPER_TEST_CACHE``), named by the suite, the
package list and this module's recipe version: a fresh clone on the same machine reuses it.
The root after a real ``apt-get full-upgrade`` to trixie is cached the same way, without the
test's own files (``KEEP``): when that cache is missing the test upgrades for real, and the
next run unpacks the upgraded root and moves its files across (the upgrade never touches
them: this is what the upgrade would have left).

Everything runs as root in a ``chroot`` with its own ``/proc`` (mounted for each command and
unmounted after it); a ``policy-rc.d`` forbids starting services. Only Debian's archive
(``deb.debian.org``) is reached. A test that cannot have a root (not root, no debootstrap,
the archive unreachable) is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Optional

import pytest

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
NEXT = "trixie"
VARIANT = "minbase"
#: What bookworm needs for ``python3 -m venv`` (ensurepip's wheels are split out on
#: Debian), python3-packaging for venvkeeper itself (its one hard dependency), and
#: python3-pip for ``venvkeeper wheelhouse`` (its prefetch is pip's download), and
#: Debian's virtualenv (it seeds pip, setuptools and wheel from Debian's wheels).
PACKAGES = (
    "python3",
    "python3-venv",
    "python3.11-venv",
    "python3-pip-whl",
    "python3-setuptools-whl",
    "python3-packaging",
    "python3-pip",
    "python3-virtualenv",
)
#: Bump when the way a root is built changes: older tarballs are then not reused.
RECIPE = 1
#: The test's own files in a root (venvs, wheels, venvkeeper's source): left out of the
#: upgraded root's tarball, moved into an unpacked one.
KEEP = ("srv", "opt")
CACHE = Path(os.environ.get("VENVKEEPER_TEST_CACHE") or "~/.cache/venvkeeper-tests").expanduser()
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
}
POLICY_RC_D = "#!/bin/sh\n# venvkeeper tests: never start services in this root\nexit 101\n"


def cache_key(packages: Sequence[str] = PACKAGES, suite: str = SUITE) -> str:
    recipe = {"suite": suite, "variant": VARIANT, "packages": packages, "mirror": MIRROR}
    recipe["recipe"] = RECIPE
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def base_tarball(packages: Sequence[str] = PACKAGES, suite: str = SUITE) -> Path:
    return CACHE / f"debian-{suite}-{VARIANT}-{cache_key(packages, suite)}.tar{_ext()}"


def upgraded_tarball(packages: Sequence[str] = PACKAGES, key: str = "") -> Path:
    """The upgraded root's tarball: one per package set, and per *key* (a hash of what a
    test put in the root before the upgrade besides :data:`KEEP`, such as its configs)."""
    extra = f"-{key}" if key else ""
    return CACHE / f"debian-{SUITE}-{VARIANT}-{cache_key(packages)}{extra}-{NEXT}.tar{_ext()}"


def _ext() -> str:
    return ".zst" if shutil.which("zstd") else ".gz"


def _compress_flag() -> list[str]:
    return ["-I", "zstd -T0 -3 -q"] if shutil.which("zstd") else ["-z"]


# --- preconditions ------------------------------------------------------------------------


def archive_reachable(suite: str = SUITE) -> Optional[str]:
    """None when Debian's archive answers, else why not."""
    url = f"{MIRROR}/dists/{suite}/Release"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15):
            return None
    except (urllib.error.URLError, OSError) as e:
        return f"Debian's archive is unreachable ({url}: {e})"


def require_root_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("a Debian chroot needs root (debootstrap, chroot, mount)")
    for t in ("chroot", "mount", "umount", "tar"):
        if shutil.which(t) is None:
            pytest.skip(f"{t} is not installed")


def _require_network(suite: str) -> None:
    why = archive_reachable(suite)
    if why is not None:
        print(f"skipping: {why}")
        pytest.skip(why)


# --- mounts and removal -----------------------------------------------------------------


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below *root* (deepest first), from /proc/self/mountinfo."""
    prefix = os.path.realpath(root)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _umount_all(root: Path) -> None:
    for point in mounts_under(root):
        subprocess.run(["umount", point], capture_output=True, timeout=60)
    left = mounts_under(root)
    if left:
        subprocess.run(["umount", "-l", *left], capture_output=True, timeout=60)
        left = mounts_under(root)
    if left:
        raise RuntimeError(f"still mounted under {root}: {left}")


def remove_root(root: Path) -> None:
    """Delete a root, never through a mount (a /proc or /dev left mounted)."""
    if not root.exists():
        return
    _umount_all(root)
    shutil.rmtree(root)


@contextlib.contextmanager
def mounted(root: Path) -> Iterator[None]:
    """/proc mounted in *root* (the device nodes are debootstrap's own), unmounted after."""
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True, timeout=60)
    try:
        yield
    finally:
        _umount_all(root)


def chroot_run(
    root: Path,
    argv: Sequence[str],
    env: Optional[Mapping[str, str]] = None,
    *,
    timeout: float = 600,
    check: bool = True,
    cwd: str = "/",
    input: Optional[str] = None,
) -> subprocess.CompletedProcess[str]:
    """Run *argv* inside *root* with a clean environment (``ENV`` plus *env*)."""
    full = dict(ENV)
    full.update(env or {})
    with mounted(root):
        res = subprocess.run(
            ["chroot", str(root), "/usr/bin/env", "-C", cwd, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    if check and res.returncode != 0:
        raise RuntimeError(
            f"in {root}: {list(argv)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n"
            f"{res.stderr[-3000:]}"
        )
    return res


def _network_files(root: Path) -> None:
    for name in ("resolv.conf", "hosts"):
        src = Path("/etc", name)
        dst = root / "etc" / name
        if src.is_file():
            with contextlib.suppress(OSError):
                dst.unlink()
            shutil.copyfile(src, dst)


# --- building, caching, unpacking -------------------------------------------------------


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """One builder of a tarball at a time (two test runs on one machine)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _pack(root: Path, dest: Path, exclude: Sequence[str] = ()) -> None:
    part = dest.with_name(dest.name + ".part")
    argv = ["tar", "--numeric-owner", "--xattrs", *_compress_flag(), "-cf", str(part)]
    argv += ["--exclude=./proc/*", "--exclude=./sys/*"]
    argv += [f"--exclude=./{x}" for x in exclude]
    subprocess.run([*argv, "-C", str(root), "."], check=True, timeout=900, capture_output=True)
    os.replace(part, dest)


def _unpack(tarball: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    argv = ["tar", "--numeric-owner", "--xattrs", *_compress_flag(), "-xpf", str(tarball)]
    subprocess.run([*argv, "-C", str(dest)], check=True, timeout=900, capture_output=True)


def _debootstrap(dest: Path, packages: Sequence[str] = PACKAGES, suite: str = SUITE) -> None:
    exe = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(exe):
        pytest.skip("debootstrap is not installed (./dev.sh test installs it with apt)")
    _require_network(suite)
    res = subprocess.run(
        [
            exe,
            f"--variant={VARIANT}",
            "--include=" + ",".join(packages),
            suite,
            str(dest),
            MIRROR,
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )
    if res.returncode != 0:
        log = dest / "debootstrap" / "debootstrap.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else res.stderr[-3000:]
        raise RuntimeError(f"debootstrap failed ({res.returncode}):\n{tail}")
    policy = dest / "usr/sbin/policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)


def bookworm_root(dest: Path, packages: Sequence[str] = PACKAGES) -> Path:
    """A bookworm root at *dest* (unpacked from the cache, built into it first if needed),
    with *packages* (the default set, or more: each set is a tarball of its own)."""
    require_root_tools()
    tarball = base_tarball(packages)
    with _locked(tarball.name):
        if not tarball.exists():
            build = CACHE / f"build-{os.getpid()}"
            remove_root(build)
            try:
                _debootstrap(build, packages)
                _pack(build, tarball)
            finally:
                remove_root(build)
    _unpack(tarball, dest)
    _network_files(dest)
    return dest


def apt_update(root: Path, suite: str = SUITE) -> None:
    """``apt-get update`` in *root* (its sources name *suite*), skipped when the archive
    cannot be reached."""
    _require_network(suite)
    _network_files(root)
    chroot_run(root, ["apt-get", "update"], timeout=900)


def full_upgrade(root: Path) -> subprocess.CompletedProcess[str]:
    """A real ``apt-get full-upgrade`` of *root* (bookworm) to trixie, the sources switched;
    its output (stdout and stderr) is returned. Never cached: see :func:`upgrade_to_trixie`."""
    sources = root / "etc/apt/sources.list"
    sources.write_text(sources.read_text().replace(SUITE, NEXT))
    apt_update(root, NEXT)
    res = chroot_run(
        root,
        [
            "apt-get",
            "-y",
            "-o",
            "Dpkg::Options::=--force-confnew",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "full-upgrade",
        ],
        timeout=1800,
    )
    chroot_run(root, ["apt-get", "clean"])
    return res


def upgrade_to_trixie(
    root: Path,
    packages: Sequence[str] = PACKAGES,
    *,
    key: str = "",
    keep: Sequence[str] = KEEP,
) -> dict[str, float]:
    """*root* (a bookworm root of *packages*) as a real ``apt-get full-upgrade`` to trixie
    leaves it. The first time, the upgrade runs in *root* and the result (without *keep*,
    the test's own top directories) is cached under *key* (see :func:`upgraded_tarball`);
    after that the cached root is unpacked and *keep* moved into it. Returns timings."""
    times: dict[str, float] = {}
    tarball = upgraded_tarball(packages, key)
    with _locked(tarball.name):
        t0 = time.monotonic()
        if not tarball.exists():
            full_upgrade(root)
            times["full-upgrade"] = time.monotonic() - t0
            _pack(root, tarball, exclude=keep)
            times["pack"] = time.monotonic() - t0 - times["full-upgrade"]
            return times
    new = root.with_name(root.name + ".upgraded")
    old = root.with_name(root.name + ".bookworm")
    remove_root(new)
    _unpack(tarball, new)
    for name in keep:
        if (root / name).exists():
            remove_root(new / name)
            os.rename(root / name, new / name)
    os.rename(root, old)
    os.rename(new, root)
    remove_root(old)
    _network_files(root)
    times["unpack-upgraded"] = time.monotonic() - t0
    return times


def purge(root: Path, pkgs: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """``apt-get purge`` *pkgs* in *root* (no download needed)."""
    return chroot_run(root, ["apt-get", "-y", "purge", *pkgs], timeout=900)
